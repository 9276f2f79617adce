"""`rulebook history fetch` offline, through the real ccxt exchange classes.

Two kinds of input, said plainly:

* Backpack: ccxt's own recorded ``fetchFundingRateHistory`` response
  (tests/fixtures/ccxt-static, MIT), fed to ccxt's backpack class.
* Binance paging and resuming: ccxt's static fixtures hold no Binance
  funding-rate-history or kline response, so the bodies here are *built*, in
  Binance's documented layouts (``/fapi/v1/fundingRate`` objects and kline
  arrays), from real values: the Binance BTCUSDT rows of the AHA-HH dataset
  slice in tests/fixtures/funding-history/aha-hh (MIT). They are not recorded
  responses; they exercise ccxt's request building (startTime, limit) and
  parsing, and our paging over them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from ccxt_static import FIXTURES, case, client, perp_stub, recorded_markets

from rulebook.history import fetch_history, import_history, read_history

H = 3_600_000
AHA = Path(__file__).parent / "fixtures" / "funding-history" / "aha-hh" / "all_exchanges.csv"


def _backpack_markets() -> list[dict]:
    data = json.loads((FIXTURES / "trading" / "markets" / "backpack.json").read_text())
    return [v for k, v in data.items() if k != "_source"]


def test_backpack_recorded_funding_history_becomes_settlement_records(tmp_path: Path) -> None:
    rec = case("backpack", "fetchFundingRateHistory")
    ex = client("backpack", _backpack_markets(), {"fundingRates": rec["httpResponse"]})
    out = tmp_path / "bp.jsonl"
    since = 1757584800000  # 2025-09-11 10:00 UTC, the first recorded settlement
    stats = asyncio.run(fetch_history("backpack", ["ETH"], since, since + 2 * H, out, client=ex))
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    settle = [r for r in rows if r["market"] == "settlement"]
    expected = [(p["timestamp"], p["fundingRate"]) for p in rec["parsedResponse"]]
    assert [(r["ts"], r["funding_rate"]) for r in settle] == expected
    assert all(r["funding_interval_h"] == 1.0 for r in settle)  # hourly, from the spacing
    assert all(r["coin"] == "ETH" and r["exchange"] == "backpack" for r in settle)
    # no kline recording exists for backpack: said, and no price invented
    assert not [r for r in rows if r["market"] != "settlement"]
    assert any("no mark candles" in n for n in stats.notes)
    assert any("no spot candles" in n for n in stats.notes)
    assert any("fundingRates" in u for u in ex.calls)


def _aha_binance() -> tuple[list[dict], list[list], list[list]]:
    """Binance BTCUSDT funding, perp and spot 8h candles from the AHA-HH slice."""
    res = import_history([AHA])
    perp = {
        r["ts"]: r
        for r in res.records
        if r["market"] == "perp" and r["exchange"] == "binance" and r["coin"] == "BTC"
    }
    spot = {
        r["ts"]: r
        for r in res.records
        if r["market"] == "spot" and r["exchange"] == "binance" and r["coin"] == "BTC"
    }
    rates = [
        r
        for r in res.records
        if r["market"] == "settlement" and r["exchange"] == "binance" and r["coin"] == "BTC"
    ]
    funding = [{"symbol": "BTCUSDT", "fundingTime": r["ts"] + 3, "fundingRate": repr(r["funding_rate"]),
                "markPrice": repr(perp[r["ts"]]["mark"])} for r in rates]  # fmt: skip

    def kline(ts: int, px: float) -> list:
        return [
            ts,
            repr(px),
            repr(px),
            repr(px),
            repr(px),
            "1.0",
            ts + 8 * H - 1,
            "1.0",
            1,
            "0",
            "0",
            "0",
        ]

    return (
        funding,
        [kline(t, p["mark"]) for t, p in sorted(perp.items())],
        [kline(t, s["bid"]) for t, s in sorted(spot.items())],
    )


def _binance_client(funding: list[dict], marks: list[list], spots: list[list]):
    def page(rows: list, key) -> object:
        def answer(url: str) -> list:
            q = parse_qs(urlparse(url).query)
            start = int(q["startTime"][0]) if "startTime" in q else 0
            limit = int(q.get("limit", ["500"])[0])
            return [r for r in rows if key(r) >= start][:limit]

        return answer

    markets = recorded_markets("binance") + [
        perp_stub("binance", "BTC", "USDT", "BTCUSDT", precision={"amount": 0.001, "price": 0.1}),
    ]
    assert any(m["symbol"] == "BTC/USDT" for m in markets)
    return client("binance", markets, {
        "/fapi/v1/fundingRate": page(funding, lambda r: r["fundingTime"]),
        "/fapi/v1/markPriceKlines": page(marks, lambda r: r[0]),
        "/api/v3/klines": page(spots, lambda r: r[0]),
    })  # fmt: skip


def test_binance_pages_through_funding_mark_and_spot(tmp_path: Path) -> None:
    funding, marks, spots = _aha_binance()
    ex = _binance_client(funding, marks, spots)
    out = tmp_path / "bn.jsonl"
    since, until = funding[0]["fundingTime"] - 3, funding[-1]["fundingTime"]
    stats = asyncio.run(
        fetch_history("binance", ["BTC"], since, until, out, client=ex, timeframe="8h", limit=10)
    )
    h, problems = read_history([out])
    assert problems == []
    s = h.settlements[("binance", "BTC")]
    assert len(s) == len(funding) == 27
    assert [float(x) for x in s.rate] == [float(f["fundingRate"]) for f in funding]
    assert set(s.ts % (8 * H)) == {0}  # Binance's +3 ms jitter rounded off
    assert set(s.interval_h.tolist()) == {8.0}
    p = h.prices[("binance", "BTC", "perp")]
    assert [float(x) for x in p.price] == [float(k[1]) for k in marks]
    assert len(h.prices[("binance", "BTC", "spot")]) == len(spots)
    # paged: 27 rows at 10 a page are 3 pages per series; the last reaches --until
    assert sum("/fapi/v1/fundingRate" in u for u in ex.calls) == 3
    assert sum("markPriceKlines" in u for u in ex.calls) == 3
    assert any("no index candles" in n for n in stats.notes)  # no recording: not invented


def test_an_interrupted_fetch_resumes_where_it_stopped(tmp_path: Path) -> None:
    funding, marks, spots = _aha_binance()
    since, until = funding[0]["fundingTime"] - 3, funding[-1]["fundingTime"]
    whole = tmp_path / "whole.jsonl"
    asyncio.run(fetch_history("binance", ["BTC"], since, until, whole,
                              client=_binance_client(funding, marks, spots), timeframe="8h", limit=10))  # fmt: skip
    parts = tmp_path / "parts.jsonl"
    middle = since + 12 * 8 * H
    asyncio.run(fetch_history("binance", ["BTC"], since, middle, parts,
                              client=_binance_client(funding, marks, spots), timeframe="8h", limit=10))  # fmt: skip
    torn_at = len(parts.read_text().splitlines()) + 1
    with open(parts, "a") as fh:
        fh.write('{"ts": 17')  # a torn line, as a killed process leaves it
    ex = _binance_client(funding, marks, spots)
    stats = asyncio.run(fetch_history("binance", ["BTC"], since, until, parts, client=ex,
                                      timeframe="8h", limit=10))  # fmt: skip
    assert stats.resumed  # it said where it resumed
    first = parse_qs(urlparse(next(u for u in ex.calls if "fundingRate" in u)).query)
    # the first run got settlements up to since + 88h (Binance stamps the one at
    # `middle` 3 ms late, after --until): the second starts right after that one
    assert int(first["startTime"][0]) == since + 11 * 8 * H + 1
    a, _ = read_history([whole])
    b, problems = read_history([parts])
    assert [e.line for e in problems] == [torn_at]  # only the torn line
    for key in a.settlements:
        assert a.settlements[key].ts.tolist() == b.settlements[key].ts.tolist()
        assert a.settlements[key].rate.tolist() == b.settlements[key].rate.tolist()
    for key in a.prices:
        assert a.prices[key].price.tolist() == b.prices[key].price.tolist()


def test_fetch_cli_reports_a_bad_date_without_a_traceback(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rulebook.cli import app

    res = CliRunner().invoke(app, ["history", "fetch", "--exchange", "binance", "--coins", "BTC",
                                   "--since", "yesterday-ish", "-o", str(tmp_path / "x.jsonl")])  # fmt: skip
    assert res.exit_code == 2
    assert "Traceback" not in res.output and "--since" in res.output
