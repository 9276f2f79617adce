"""The commands that append as they go (`snapshot`, `history fetch`) write Parquet through
a JSONL spool beside it, folded in when they end; a spool a killed run left is folded in
by the next run. Offline, through the real ccxt classes (tests/ccxt_static.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from ccxt_static import case, client, recorded_markets
from test_history_fetch import _aha_binance, _binance_client
from typer.testing import CliRunner

from rulebook.cli import app
from rulebook.history import fetch_history, read_history
from rulebook.market import (
    LiveSource,
    ReplaySource,
    RetryPolicy,
    fold_into_columnar,
    iter_parquet,
    spool_path,
)
from rulebook.market._record import record_snapshots

pytest.importorskip("pyarrow")
H = 3_600_000
runner = CliRunner()


def _bybit_source(t: list[float]) -> LiveSource:
    body = case("bybit", "fetchFundingRates")["httpResponse"]
    ex = client("bybit", recorded_markets("bybit"), {"category=linear": body})
    return LiveSource(["bybit"], ["BTC"], clients={"bybit": ex},
                      retry=RetryPolicy(max_attempts=1), clock=lambda: t[0])  # fmt: skip


def _record(out: Path, count: int, t: list[float]) -> int:
    def on_cycle(n: int, res: object) -> None:
        t[0] += 30

    return asyncio.run(
        record_snapshots(out, every_s=0.01, count=count, source=_bybit_source(t),
                         on_cycle=on_cycle)
    )  # fmt: skip


def test_snapshot_to_parquet_appends_run_after_run(tmp_path: Path) -> None:
    out, jl = tmp_path / "rec.parquet", tmp_path / "rec.jsonl"
    t, u = [1_760_000_000.0], [1_760_000_000.0]
    assert _record(out, 2, t) == 2 and _record(jl, 2, u) == 2
    assert not spool_path(out).exists()  # folded in at the end
    assert _record(out, 1, t) == 1 and _record(jl, 1, u) == 1  # a second run appends
    views = list(ReplaySource(out))
    assert [v.at for v in views] == [1_760_000_000_000, 1_760_000_030_000, 1_760_000_060_000]
    assert [v.observations() for v in views] == [v.observations() for v in ReplaySource(jl)]


def test_a_spool_left_by_a_killed_run_is_folded_in_by_the_next(tmp_path: Path) -> None:
    out, t = tmp_path / "rec.parquet", [1_760_000_000.0]
    _record(out, 1, t)
    spool = spool_path(out)
    # what a killed run leaves: its cycles in the spool, the last line torn
    line = {"ts": 1_760_000_015_000, "exchange": "bybit", "coin": "BTC", "market": "perp",
            "funding_rate": 0.0001, "funding_interval_h": 8.0, "mark": 60000.0}  # fmt: skip
    spool.write_text(json.dumps(line) + "\n" + '{"ts": 17')
    assert [v.at for v in ReplaySource(spool)] == [1_760_000_015_000]  # readable meanwhile
    _record(out, 1, t)  # the next run appends after the torn line, and folds all in
    assert not spool.exists()
    assert [v.at for v in ReplaySource(out)] == [
        1_760_000_000_000, 1_760_000_015_000, 1_760_000_030_000
    ]


def test_folding_reports_the_spools_bad_lines(tmp_path: Path) -> None:
    out = tmp_path / "rec.parquet"
    spool = spool_path(out)
    spool.write_text('{"ts": 17\n')
    result = fold_into_columnar(out)
    assert result.rows == 0 and result.skipped == 1 and not spool.exists()
    assert str(result.problems[0]).startswith(f"{spool}:1: error: not valid JSON")
    assert not out.exists()  # nothing valid: no file made


def test_snapshot_format_must_agree_with_the_suffix(tmp_path: Path) -> None:
    res = runner.invoke(app, ["snapshot", "-o", str(tmp_path / "s.jsonl"), "--format", "parquet"])
    assert res.exit_code == 2 and "needs an output named .parquet" in res.output
    res = runner.invoke(app, ["snapshot", "-o", str(tmp_path / "s.parquet"), "--format", "csv"])
    assert res.exit_code == 2 and "jsonl or parquet" in res.output
    assert "Traceback" not in res.output and not list(tmp_path.iterdir())


def test_history_fetch_to_parquet_resumes_and_equals_the_jsonl_fetch(tmp_path: Path) -> None:
    funding, marks, spots = _aha_binance()
    since, until = funding[0]["fundingTime"] - 3, funding[-1]["fundingTime"]

    def fetch(out: Path, end: int) -> None:
        asyncio.run(fetch_history("binance", ["BTC"], since, end, out, timeframe="8h", limit=10,
                                  client=_binance_client(funding, marks, spots)))  # fmt: skip

    whole, parts = tmp_path / "whole.jsonl", tmp_path / "parts.parquet"
    fetch(whole, until)
    fetch(parts, since + 12 * 8 * H)
    assert parts.exists() and not spool_path(parts).exists()
    fetch(parts, until)  # resumes after what the Parquet file holds
    a, _ = read_history([whole])
    b, problems = read_history([parts])
    assert problems == []
    for key, s in a.settlements.items():
        assert s.ts.tolist() == b.settlements[key].ts.tolist()
        assert s.rate.tolist() == b.settlements[key].rate.tolist()
    for key, p in a.prices.items():
        assert p.price.tolist() == b.prices[key].price.tolist()
    rows = sum(1 for _, r, _ in iter_parquet(parts) if r is not None)
    assert rows == len(whole.read_text().splitlines())
