"""`rulebook run / status / halt` as an operator meets them: clear errors, no tracebacks."""

from __future__ import annotations

import json

from trading_helpers import T0, H, T, pair_rows, write_jsonl
from typer.testing import CliRunner

from rulebook.cli import app

RULES = """
rule sol_spread:
    when spread(SOL, bybit, binance) > 0.01%
    then hedge 1000 USDT
"""

runner = CliRunner()


def _setup(tmp_path):
    (tmp_path / "s.rules").write_text(RULES)
    rows = pair_rows(T0, "SOL", (100.0, 0.0001), (100.2, 0.0004), T) + pair_rows(
        T, "SOL", (101.0, 0.0001), (101.1, 0.0003), T + 8 * H
    )
    return write_jsonl(tmp_path / "rec.jsonl", rows)


def test_run_replay_then_status(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _setup(tmp_path)
    res = runner.invoke(app, ["run", "s.rules", "--paper", "--replay", "rec.jsonl", "--db", "p.db"])
    assert res.exit_code == 0, res.output
    assert "opportunities found  2 over all cycles (1 distinct rule bindings)" in res.output
    assert "active positions     1 (exposure 1,000.00)" in res.output
    res = runner.invoke(app, ["status", "--db", "p.db", "--json"])
    assert res.exit_code == 0
    data = json.loads(res.stdout)
    s = 1000 / 100.1  # coins per leg, both legs fill at 100.1
    # funding at T: s * (101.1 * 0.0004 - 101.0 * 0.0001) = s * 0.03034
    assert abs(data["stats"]["funding"] - s * 0.03034) < 1e-9
    assert data["stats"]["cycles"] == 2 and data["stats"]["active_positions"] == 1
    (pos,) = data["positions"]
    assert pos["rule"] == "sol_spread" and pos["status"] == "open"
    # a second run on the same recording and ledger has nothing left to do
    res = runner.invoke(app, ["run", "s.rules", "--paper", "--replay", "rec.jsonl", "--db", "p.db"])
    assert res.exit_code == 0 and "resumed: 2 cycle(s) were already in p.db" in res.output


def test_config_typo_is_one_clear_line(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _setup(tmp_path)
    (tmp_path / "rulebook.toml").write_text("[exchanges.bybit]\nbalanse = 1\n")
    res = runner.invoke(app, ["run", "s.rules", "--paper", "--replay", "rec.jsonl"])
    assert res.exit_code == 2
    assert res.output.strip() == (
        "error: configuration: rulebook.toml: exchanges.bybit.balanse: unknown key; "
        "did you mean 'balance'?"
    )


def test_operator_mistakes(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _setup(tmp_path)
    res = runner.invoke(app, ["run", "s.rules", "--replay", "rec.jsonl"])
    assert (res.exit_code, res.output.strip()) == (
        2,
        "error: choose one: --paper (no orders sent) or --live (real orders; docs/live.md)",
    )
    res = runner.invoke(app, ["run", "s.rules", "--paper", "--replay", "nope.jsonl"])
    assert res.output.strip() == "error: nope.jsonl: recording not found"
    (tmp_path / "dir.jsonl").mkdir()  # it exists, but it is not a file to read
    res = runner.invoke(app, ["run", "s.rules", "--paper", "--replay", "dir.jsonl"])
    assert (res.exit_code, res.output.strip()) == (
        2,
        "error: dir.jsonl: not a recording (not a regular file)",
    )
    res = runner.invoke(
        app, ["run", "s.rules", "--paper", "--replay", "rec.jsonl", "--speed", "fast"]
    )
    assert res.exit_code == 2 and "give a positive number (times real time) or max" in res.output
    (tmp_path / "junk.db").write_text("this is not sqlite, " * 100)
    res = runner.invoke(
        app, ["run", "s.rules", "--paper", "--replay", "rec.jsonl", "--db", "junk.db"]
    )
    assert res.exit_code == 2 and res.output.startswith("error: junk.db: not a SQLite file")
    assert "Traceback" not in res.output
    res = runner.invoke(app, ["status", "--db", "absent.db"])
    assert res.output.strip() == (
        "error: absent.db: no ledger here (run `rulebook run --paper` first)"
    )


def test_halt_without_a_runtime_says_so(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _setup(tmp_path)
    runner.invoke(app, ["run", "s.rules", "--paper", "--replay", "rec.jsonl", "--db", "p.db"])
    res = runner.invoke(app, ["halt", "--db", "p.db"])
    assert res.exit_code == 1
    assert "no runtime is running on p.db: nothing to halt" in res.output
    # no request is left behind for the next run to trip over
    res = runner.invoke(app, ["run", "s.rules", "--paper", "--replay", "rec.jsonl", "--db", "p.db"])
    assert res.exit_code == 0 and "halted" not in res.output


def test_halt_close_all_without_a_runtime_closes_at_the_last_marks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _setup(tmp_path)
    runner.invoke(app, ["run", "s.rules", "--paper", "--replay", "rec.jsonl", "--db", "p.db"])
    res = runner.invoke(app, ["halt", "--db", "p.db", "--close-all"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "no runtime is running on p.db: closed 1 paper position(s) here at their last marks" in text
    assert "2025-07-21 16:00:00 UTC" in text  # the last cycle, T
    data = json.loads(runner.invoke(app, ["status", "--db", "p.db", "--json"]).stdout)
    assert data["stats"]["active_positions"] == 0
    (pos,) = data["positions"]
    assert pos["status"] == "closed" and pos["closed_at"] == T
    assert pos["close_reason"].startswith("halt --close-all (no runtime running")
    # short bybit, long binance, both filled at 100.1; the last marks (at T) are
    # binance 101.0 and bybit 101.1, closed at mark -/+ the default 0.05% slippage
    s = 1000 / 100.1
    price = s * (101.0 * (1 - 0.0005) - 100.1) + s * (100.1 - 101.1 * (1 + 0.0005))
    assert abs(pos["pnl_price"] - price) < 1e-9
    res = runner.invoke(app, ["halt", "--db", "p.db", "--close-all"])
    assert "closed 0 paper position(s)" in " ".join(res.output.split())
