from __future__ import annotations

import asyncio

from ccxt_static import case, client, recorded_markets
from typer.testing import CliRunner

from rulebook.cli import app
from rulebook.market import LiveSource, ReplaySource, RetryPolicy
from rulebook.market._record import record_snapshots

runner = CliRunner()


def test_snapshot_help_describes_the_command():
    res = runner.invoke(app, ["snapshot", "--help"])
    assert res.exit_code == 0
    for word in ("--output", "--exchanges", "--coins", "--every", "--count", "Example"):
        assert word in res.output


def test_snapshot_rejects_bad_options_without_traceback(tmp_path):
    out = tmp_path / "s.jsonl"
    res = runner.invoke(app, ["snapshot", "-o", str(out), "--every", "soon"])
    assert res.exit_code == 2 and "not a duration" in res.output
    res = runner.invoke(app, ["snapshot", "-o", str(out), "--exchanges", "binance,binanse"])
    assert res.exit_code == 2 and "binanse" in res.output
    assert "Traceback" not in res.output


def test_record_snapshots_appends_cycles_that_replay(tmp_path):
    body = case("bybit", "fetchFundingRates")["httpResponse"]
    ex = client("bybit", recorded_markets("bybit"), {"category=linear": body})
    t = [1_760_000_000.0]
    src = LiveSource(
        ["bybit"],
        ["BTC"],
        clients={"bybit": ex},
        retry=RetryPolicy(max_attempts=1),
        clock=lambda: t[0],
    )
    seen = []

    def on_cycle(n, res):
        seen.append(n)
        t[0] += 30

    out = tmp_path / "rec.jsonl"
    written = asyncio.run(
        record_snapshots(out, every_s=0.01, count=3, source=src, on_cycle=on_cycle)
    )
    assert seen == [1, 2, 3] and written == 3
    views = list(ReplaySource(out))
    assert [v.at for v in views] == [1_760_000_000_000, 1_760_000_030_000, 1_760_000_060_000]
    assert views[-1].funding_8h("bybit", "BTC") == 0.0001
