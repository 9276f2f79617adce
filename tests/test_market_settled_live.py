"""Settled rates from the exchanges' funding-rate history, through the real ccxt classes.

Backpack's body is ccxt's recorded static response (fetchFundingRateHistory,
three hourly settlements, MIT, tests/fixtures/ccxt-static/LICENSE). No Binance
USD-M funding-history recording exists in ccxt's fixtures: its body is the
example response documented in ccxt's binance.parse_funding_rate_history
source comment, labelled as such.
"""

from __future__ import annotations

import asyncio

import pytest
from ccxt_static import case, client, perp_stub, recorded_markets, spot_stub

from rulebook.market import (
    LiveSource,
    Observation,
    ReplaySource,
    RetryPolicy,
    SettlementFetcher,
    SettlementLog,
    read_settlements,
)
from rulebook.market._record import record_snapshots

H = 3_600_000
S10 = 1757584800000  # 2025-09-11 10:00 UTC, the first recorded Backpack settlement


def _backpack(routes):
    markets = [
        perp_stub("backpack", "ETH", "USDC", "ETH_USDC_PERP", info={"fundingInterval": 3_600_000}),
        spot_stub("ETH", "USDC", "ETH_USDC"),
    ]
    ex = client("backpack", markets, routes)
    return ex, LiveSource(
        ["backpack"], ["ETH"], clients={"backpack": ex}, retry=RetryPolicy(max_attempts=1)
    )


def _shown(ts, nxt, ex="backpack", coin="ETH", interval=1):
    return Observation.checked(
        ts=ts,
        exchange=ex,
        coin=coin,
        market="perp",
        funding_rate=0.0001,
        funding_interval_h=interval,
        next_funding_ts=nxt,
        mark=4300.0,
    )


def test_backpack_recorded_history_gives_the_settled_rates():
    history = case("backpack", "fetchFundingRateHistory")["httpResponse"]
    ex, src = _backpack({"/api/v1/fundingRates": history})
    f = SettlementFetcher(src)
    f.note([_shown(S10 - 30 * 60_000, S10)])
    # before the settlement nothing is asked
    assert asyncio.run(f.fetch(S10 - 60_000)).records == [] and ex.calls == []
    got = asyncio.run(f.fetch(S10 + 2 * H + 30_000))
    assert any("symbol=ETH_USDC_PERP" in u for u in ex.calls)
    assert [
        (r.ts, r.exchange, r.coin, r.funding_rate, r.funding_interval_h, r.mark)
        for r in got.records
    ] == [
        (S10, "backpack", "ETH", 6.196e-06, 1.0, None),  # the interval shown for 10:00
        (S10 + H, "backpack", "ETH", 1.25e-05, 1.0, None),  # the spacing to 10:00
        (S10 + 2 * H, "backpack", "ETH", 1.25e-05, 1.0, None),
    ]
    # each record once: nothing is awaited any more, and no call is made
    calls = len(ex.calls)
    assert asyncio.run(f.fetch(S10 + 3 * H)).records == [] and len(ex.calls) == calls
    asyncio.run(src.close())


def test_a_history_that_fails_is_asked_again_and_given_up_later():
    ex, src = _backpack({})  # every request fails like an endpoint that is down
    f = SettlementFetcher(src, give_up_ms=2 * H)
    f.note([_shown(S10 - 60_000, S10)])
    got = asyncio.run(f.fetch(S10 + 60_000))
    assert got.records == [] and "no recording" in got.failures[("backpack", "ETH")]
    assert f.awaited(S10 + 60_000) == {("backpack", "ETH"): [S10]}
    asyncio.run(f.fetch(S10 + 3 * H))  # past give_up: no longer awaited
    assert f.awaited(S10 + 3 * H) == {}
    asyncio.run(src.close())


def test_only_the_keys_asked_for_are_fetched():
    history = case("backpack", "fetchFundingRateHistory")["httpResponse"]
    ex, src = _backpack({"/api/v1/fundingRates": history})
    f = SettlementFetcher(src)
    f.note([_shown(S10 - 60_000, S10)])
    assert asyncio.run(f.fetch(S10 + 60_000, keys=[("binance", "BTC")])).records == []
    assert ex.calls == []
    asyncio.run(src.close())


# ccxt binance.parse_funding_rate_history's documented example body
FUNDING_RATE_DOC = [
    {"symbol": "BTCUSDT", "fundingRate": "0.00063521", "fundingTime": "1621267200000"}
]


def test_binance_doc_history_through_the_real_class():
    spot = recorded_markets("binance")
    for m in spot:
        m["precision"]["price"] = 0.01
    ex = client(
        "binance",
        spot + [perp_stub("binance", "BTC", "USDT", "BTCUSDT")],
        {"/fapi/v1/fundingRate": FUNDING_RATE_DOC},
    )
    src = LiveSource(
        ["binance"], ["BTC"], clients={"binance": ex}, retry=RetryPolicy(max_attempts=1)
    )
    f = SettlementFetcher(src)
    s = 1621267200000
    f.note([_shown(1621252344001, s, ex="binance", coin="BTC", interval=8)])
    got = asyncio.run(f.fetch(s + 30_000))
    assert any("/fapi/v1/fundingRate" in u and "startTime" in u for u in ex.calls)
    assert [(r.ts, r.funding_rate, r.funding_interval_h) for r in got.records] == [
        (s, 0.00063521, 8.0)
    ]
    asyncio.run(src.close())


def test_snapshot_writes_settlement_records_that_replay_pays():
    marks = case("backpack", "fetchFundingRate")["httpResponse"]
    history = case("backpack", "fetchFundingRateHistory")["httpResponse"]
    ex, src = _backpack({"/api/v1/markPrices": marks, "/api/v1/fundingRates": history})
    s = 1754956800000  # the recorded markPrices' nextFundingTimestamp
    t = [(s - 30_000) / 1000]

    def on_cycle(n, res):
        t[0] += 60

    src.clock = lambda: t[0]
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "rec.jsonl"
        written = asyncio.run(
            record_snapshots(out, every_s=0.01, count=2, source=src, on_cycle=on_cycle)
        )
        records, errors = read_settlements(out)
        assert errors == []
        # the cycle after s asked the history; it answered with its three
        # recorded settlements (which all lie after s), written once each
        assert [(r.ts, r.funding_rate) for r in records] == [
            (S10, 6.196e-06),
            (S10 + H, 1.25e-05),
            (S10 + 2 * H, 1.25e-05),
        ]
        assert written == 2 + 3  # two perp observations and three records
        views = list(ReplaySource(out))
        assert [len(v.settlements) for v in views] == [0, 0]  # all lie after the last view
        log = SettlementLog()
        for v in views:
            log.add_view(v)
        assert log.known_times("backpack", "ETH", 0, S10) == [s]


@pytest.mark.parametrize(
    "ts, expected", [(1621267200001, 1621267200000), (1621267199999, 1621267200000)]
)
def test_settlement_time_is_the_whole_second(ts, expected):
    from rulebook.market._settled_live import _settlement_time

    assert _settlement_time(ts) == expected


def test_catch_up_asks_once_for_everything_after_the_last_paid():
    history = case("backpack", "fetchFundingRateHistory")["httpResponse"]
    ex, src = _backpack({"/api/v1/fundingRates": history})
    f = SettlementFetcher(src)
    f.catch_up(("backpack", "ETH"), S10)  # 10:00 was paid before the restart
    got = asyncio.run(f.fetch(S10 + 3 * H))
    assert [r.ts for r in got.records] == [S10 + H, S10 + 2 * H]
    # 11:00 has no observed interval: the spacing to 10:00 in the exchange's list
    assert [r.funding_interval_h for r in got.records] == [1.0, 1.0]
    calls = len(ex.calls)
    asyncio.run(f.fetch(S10 + 4 * H))
    assert len(ex.calls) == calls  # asked once
    asyncio.run(src.close())
