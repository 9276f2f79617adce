"""`rulebook history import` on slices of the three real datasets (tests/fixtures/funding-history)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rulebook.history import (
    HistoryImportError,
    detect_format,
    import_history,
    read_history,
    write_history,
)

FX = Path(__file__).parent / "fixtures" / "funding-history"
H = 3_600_000


def _settlements(res, ex: str, coin: str) -> list[dict]:
    return [
        r
        for r in res.records
        if r["market"] == "settlement" and r["exchange"] == ex and r["coin"] == coin
    ]


def test_detects_each_format() -> None:
    assert detect_format(FX / "supervik") == "supervik"
    assert detect_format(FX / "aha-hh" / "all_exchanges.csv") == "aha-hh"
    assert detect_format(FX / "zushen" / "binance_bybit_BTC_ETH_SOL.csv") == "zushen"
    assert detect_format(FX / "zushen" / "venue=bybit" / "data.parquet") == "zushen"


def test_supervik_moves_binance_and_bybit_from_utc_plus_3_and_keeps_gate() -> None:
    res = import_history([FX / "supervik"])
    b = _settlements(res, "binance", "BTC")
    g = _settlements(res, "gate", "BTC")
    # source: binance "2020-01-01 03:00:00.000" -0.00012359 is 2020-01-01 00:00 UTC
    assert b[0]["ts"] == 1577836800000 and b[0]["funding_rate"] == -0.00012359
    # gate "2020-01-01 00:00:00" is already UTC
    assert g[0]["ts"] == 1577836800000
    by = _settlements(res, "bybit", "BTC")
    assert by[0]["ts"] == 1609459200000  # bybit "2021-01-01 03:00:00" (UTC+3)
    for r in b + g + by:
        assert r["ts"] % (8 * H) == 0  # every one on the 00/08/16 UTC grid
        assert r["funding_interval_h"] == 8.0
        assert "mark" not in r or r["mark"] is None
    # no prices in this dataset: said, and no price line written
    assert not [r for r in res.records if r["market"] != "settlement"]
    assert any("no prices" in n for n in res.notes)


def test_supervik_binance_millisecond_jitter_is_rounded_to_the_minute() -> None:
    lines = (FX / "supervik/BTC-USDT").glob("*binance*")
    text = next(lines).read_text()
    assert ".001" in text or ".002" in text or ".000" in text
    res = import_history([FX / "supervik"])
    assert all(r["ts"] % 60_000 == 0 for r in res.records)


def test_aha_hh_london_time_across_the_switch_to_summer_time() -> None:
    res = import_history([FX / "aha-hh" / "all_exchanges.csv"])
    s = _settlements(res, "binance", "BTC")
    times = [r["ts"] for r in s]
    # 27 candles from 2023-03-22 00:00 to 2023-03-30 16:00 London; BST from 26 March 01:00 UTC:
    # "2023-03-26 09:00:00" London is 08:00 UTC. One 8h grid throughout, no gap, no duplicate.
    assert times == list(range(times[0], times[0] + 27 * 8 * H, 8 * H))
    assert times[0] == 1679443200000  # 2023-03-22 00:00 UTC
    perp = [
        r
        for r in res.records
        if r["market"] == "perp" and r["exchange"] == "binance" and r["coin"] == "BTC"
    ]
    spot = [
        r
        for r in res.records
        if r["market"] == "spot" and r["exchange"] == "binance" and r["coin"] == "BTC"
    ]
    assert len(perp) == len(spot) == 27
    assert "funding_rate" not in perp[0]  # a price observation, not a forecast
    assert spot[0]["bid"] == spot[0]["ask"]
    src = (FX / "aha-hh" / "all_exchanges.csv").read_text().splitlines()
    row = next(ln for ln in src if ln.startswith("2023-03-26 09:00:00,binance,bitcoin,BTCUSDT,"))
    cols = row.split(",")
    at = next(r for r in perp if r["ts"] == 1679817600000)  # 2023-03-26 08:00 UTC
    assert at["mark"] == float(cols[5])  # the candle's open
    rate = next(r for r in s if r["ts"] == 1679817600000)
    assert rate["funding_rate"] == float(cols[10])
    # coin-margined perps are not imported
    assert res.skipped == 486 // 18 * 6


def test_zushen_csv_marks_for_binance_none_for_bybit() -> None:
    res = import_history([FX / "zushen" / "binance_bybit_BTC_ETH_SOL.csv"])
    b = _settlements(res, "binance", "BTC")
    y = _settlements(res, "bybit", "BTC")
    assert len(b) == len(y) == 30  # USDT perps only; the USDC ones are skipped
    assert all(r["mark"] is not None for r in b)
    assert all(r["mark"] is None for r in y)
    assert b[0]["ts"] == 1755763200000  # 2025-08-21T08:00:00.000Z
    assert any("bybit BTC" in n and "no prices" in n for n in res.notes)


def test_zushen_parquet_changing_intervals_and_a_missing_one() -> None:
    pytest.importorskip("pyarrow")
    res = import_history([FX / "zushen" / "venue=bybit" / "data.parquet"])
    s = _settlements(res, "bybit", "INJ")
    intervals = {r["funding_interval_h"] for r in s}
    assert intervals == {1.0, 8.0}
    one_h = [r for r in s if r["funding_interval_h"] == 1.0]
    gaps = {b["ts"] - a["ts"] for a, b in zip(one_h, one_h[1:], strict=False)}
    assert gaps == {H}  # 1h settlements really are an hour apart


def test_written_history_reads_back_as_columns(tmp_path: Path) -> None:
    res = import_history([FX / "aha-hh" / "all_exchanges.csv"])
    out = tmp_path / "h.jsonl.gz"
    n = write_history(out, res.records)
    assert n == len(res.records)
    h, problems = read_history([out])
    assert problems == []
    assert set(h.settlements) == {
        (e, c) for e in ("binance", "bybit", "okx") for c in ("BTC", "ETH")
    }
    s = h.settlements[("okx", "ETH")]
    assert s.ts.dtype == np.int64 and np.all(np.diff(s.ts) == 8 * H)
    assert h.has_price("okx", "ETH", "perp") and h.has_price("okx", "ETH", "spot")
    # the same records give the same bytes (a re-import shows no diff)
    again = tmp_path / "again.jsonl.gz"
    write_history(again, res.records)
    assert again.read_bytes() == out.read_bytes()


def test_bad_history_lines_are_reported_with_their_line(tmp_path: Path) -> None:
    p = tmp_path / "h.jsonl"
    good = {"ts": 1700000000000, "exchange": "binance", "coin": "BTC", "market": "settlement",
            "funding_rate": 0.0001, "funding_interval_h": 8}  # fmt: skip
    bad_rate = dict(good, ts=1700028800000, funding_rate=0.5)
    bad_interval = dict(good, ts=1700057600000, funding_interval_h=48)
    p.write_text("\n".join(json.dumps(x) for x in (good, bad_rate, bad_interval)) + "\nnot json\n")
    h, problems = read_history([p])
    assert len(h.settlements[("binance", "BTC")]) == 1
    assert [(e.line, e.message.split(":")[0]) for e in problems] == [
        (2, "funding_rate"),
        (3, "funding_interval_h"),
        (4, "not valid JSON"),
    ]


def test_unknown_source_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(HistoryImportError, match="unknown header"):
        import_history([p])
    with pytest.raises(HistoryImportError, match="no such file"):
        import_history([tmp_path / "missing.csv"])


# -- the command: an existing output is replaced only with --force -----------------------


def _import(*args: str):
    from typer.testing import CliRunner

    from rulebook.cli import app

    return CliRunner().invoke(app, ["history", "import", str(FX / "supervik"), *args])


@pytest.mark.parametrize("name", ["h.jsonl", "h.jsonl.gz", "h.parquet"])
def test_import_refuses_an_existing_output_without_force(tmp_path: Path, name: str) -> None:
    if name.endswith(".parquet"):
        pytest.importorskip("pyarrow")
    out = tmp_path / name
    out.write_bytes(b"an operator's file\n")
    res = _import("-o", str(out))
    assert res.exit_code == 2, res.output
    assert res.stderr.strip() == f"error: {out} exists; give --force to replace it"  # as convert
    assert res.stdout == ""
    assert out.read_bytes() == b"an operator's file\n"  # untouched
    res = _import("-o", str(out), "--force")
    assert res.exit_code == 0, res.output
    fresh = tmp_path / f"fresh-{name}"
    assert _import("-o", str(fresh)).exit_code == 0  # no output yet: no --force needed
    assert out.read_bytes() == fresh.read_bytes()  # replaced by exactly what an import writes
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, f"fresh-{name}"])


def test_import_refuses_before_reading_the_sources(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rulebook.cli import app

    out = tmp_path / "h.jsonl"
    out.write_text("kept\n")
    missing = tmp_path / "nothing.csv"
    res = CliRunner().invoke(app, ["history", "import", str(missing), "-o", str(out)])
    assert res.exit_code == 2
    assert "exists; give --force to replace it" in res.stderr  # not the missing source
    assert out.read_text() == "kept\n"


def test_a_failed_write_leaves_the_replaced_file_whole(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "h.jsonl.gz"
    records = import_history([FX / "supervik"]).records
    write_history(out, records)
    before = out.read_bytes()

    def full_disk(self, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("gzip.GzipFile.write", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_history(out, records[: len(records) // 2])
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["h.jsonl.gz"]  # no temporary file left
