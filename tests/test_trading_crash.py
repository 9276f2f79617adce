"""A real kill -9 in the middle of a replay: the restart loses and duplicates nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from trading_helpers import wavy_rows, with_settlements, write_jsonl

RULES = """
rule pairs:
    for coin in [SOL, ETH], hi in [binance, bybit], lo in [binance, bybit]
    when spread(coin, hi, lo) > 0.02%
    then hedge 1000 USDT
    exit when spread(coin, hi, lo) < 0%

risk:
    max_total_exposure 1500 USDT
"""

HOURS = 400


def _run(rules: Path, rec: Path, db: Path, *extra: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "rulebook.cli",
        "run",
        str(rules),
        "--paper",
        "--replay",
        str(rec),
        "--db",
        str(db),
        *extra,
    ]
    # cwd is the test's own directory: no rulebook.toml of the developer's is read.
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=rules.parent)


def _cycles(db: Path) -> int:
    try:
        con = sqlite3.connect(db, timeout=5)
        try:
            return con.execute("select count(*) from cycles").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


def _dump(db: Path) -> dict[str, list[tuple]]:
    con = sqlite3.connect(db)
    try:
        return {
            "positions": con.execute(
                "select id, rule, bindings, coin, legs, notional, status, opened_at, closed_at, "
                "close_reason, pnl_funding, pnl_fees, pnl_price, pnl_borrow, pnl "
                "from positions order by id"
            ).fetchall(),
            "funding": con.execute(
                "select position_id, exchange, ts, interval_h, rate, mark, amount, rate_source,"
                " mark_source from funding_payments order by position_id, exchange, ts"
            ).fetchall(),
            "fills": con.execute(
                "select position_id, ts, exchange, side, price, size, fee from fills order by id"
            ).fetchall(),
            "cycles": con.execute("select ts, opened, closed from cycles order by ts").fetchall(),
            "balances": con.execute("select * from balances order by exchange").fetchall(),
            "opportunities": con.execute(
                "select cycle_ts, rule, bindings, decision, amount from opportunities order by id"
            ).fetchall(),
        }
    finally:
        con.close()


@pytest.mark.parametrize("records", [False, True], ids=["estimated", "settled-late"])
def test_kill_9_mid_replay_then_restart_matches_an_uninterrupted_run(tmp_path, records) -> None:
    rules = tmp_path / "pairs.rules"
    rules.write_text(RULES)
    rows = wavy_rows(HOURS)
    # with records written a cycle after each settlement: a kill between the two
    # must neither pay the settlement twice nor skip it
    rec = write_jsonl(tmp_path / "rec.jsonl", with_settlements(rows) if records else rows)

    reference = tmp_path / "reference.db"
    p = _run(rules, rec, reference)
    assert p.wait(timeout=120) == 0, p.stderr.read().decode()

    crashed = tmp_path / "crashed.db"
    # 3600 s per cycle at 360000x real time: 10 ms a cycle, so the kill lands mid-run.
    p = _run(rules, rec, crashed, "--speed", "360000")
    deadline = time.monotonic() + 60
    while _cycles(crashed) < HOURS // 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=10)
    done_at_kill = _cycles(crashed)
    assert HOURS // 3 <= done_at_kill < HOURS, "the kill must land in the middle of the replay"

    p = _run(rules, rec, crashed)
    assert p.wait(timeout=120) == 0, p.stderr.read().decode()
    err = p.stderr.read().decode()
    assert f"resumed: {done_at_kill} cycle(s) were already in" in err

    ref, got = _dump(reference), _dump(crashed)
    assert len(ref["positions"]) > 10 and len(ref["funding"]) > 20  # a busy replay
    for table in ref:
        assert got[table] == ref[table], table
    sources = [(f[7], f[8]) for f in ref["funding"]]
    if records:  # most are settled a cycle late; a position that closes at a settlement
        # takes the estimate (nothing is left waiting after a close), as does the first
        settled = sources.count(("settled", "settlement"))
        assert settled > len(sources) // 2, sources
    else:
        assert set(sources) == {("estimated", "perp")}


def test_sigterm_stops_after_the_cycle_under_way(tmp_path) -> None:
    rules = tmp_path / "pairs.rules"
    rules.write_text(RULES)
    rec = write_jsonl(tmp_path / "rec.jsonl", wavy_rows(HOURS))
    db = tmp_path / "p.db"
    p = _run(rules, rec, db, "--speed", "360000")
    deadline = time.monotonic() + 60
    while _cycles(db) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 0
    assert "halted: SIGTERM" in p.stderr.read().decode()
    con = sqlite3.connect(db)
    try:
        (cycles,) = con.execute("select count(*) from cycles").fetchone()
        halts = con.execute("select detail from events where kind = 'halt'").fetchall()
        open_rows = con.execute("select count(*) from positions where status='open'").fetchone()
        runner = con.execute("select count(*) from meta where key='runner_pid'").fetchone()
    finally:
        con.close()
    assert 20 <= cycles < HOURS
    assert halts == [(f"halted by SIGTERM; {open_rows[0]} position(s) left open",)]
    assert runner == (0,)


def test_rulebook_halt_stops_a_running_replay(tmp_path) -> None:
    rules = tmp_path / "pairs.rules"
    rules.write_text(RULES)
    rec = write_jsonl(tmp_path / "rec.jsonl", wavy_rows(HOURS))
    db = tmp_path / "p.db"
    p = _run(rules, rec, db, "--speed", "360000")
    deadline = time.monotonic() + 60
    while _cycles(db) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    halt = subprocess.run(
        [sys.executable, "-m", "rulebook.cli", "halt", "--db", str(db), "--close-all"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert halt.returncode == 0, halt.stderr
    assert halt.stdout.startswith(
        f"requested halt and close all positions of the runtime (pid {p.pid})"
    )
    assert p.wait(timeout=30) == 0
    assert "halted: rulebook halt --close-all" in p.stderr.read().decode()
    con = sqlite3.connect(db)
    try:
        still_open = con.execute("select count(*) from positions where status='open'").fetchone()
        reasons = con.execute(
            "select distinct close_reason from positions where close_reason like 'halt%'"
        ).fetchall()
        (cycles,) = con.execute("select count(*) from cycles").fetchone()
    finally:
        con.close()
    assert still_open == (0,) and cycles < HOURS
    assert reasons in ([], [("halt --close-all",)])  # [] when nothing happened to be open
