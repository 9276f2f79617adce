"""A replay commits its complete cycles in groups (docs/trading.md, "Commits in a
replay"): what a kill -9 in the middle of a group leaves, and what a restart makes
of it; a failed cycle in a group; a halt and a status while a replay holds a group.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_trading_crash import RULES, _cycles, _dump, _run
from trading_helpers import wavy_rows, with_settlements, write_jsonl

from rulebook.lang import load_ruleset
from rulebook.market import ReplaySource
from rulebook.trading import (
    CommitGroups,
    Ledger,
    PaperExecutor,
    RulesetHolder,
    Runtime,
    TradingConfig,
)

CHILD = Path(__file__).parent / "replay_kill_child.py"
HOURS = 300
GROUP = 25


def _child(rules: Path, rec: Path, db: Path, kill_at: int = 0, stop_at: int = 0) -> str:
    p = subprocess.run(
        [sys.executable, str(CHILD), str(rules), str(rec), str(db), str(GROUP), str(kill_at),
         str(stop_at)],
        capture_output=True, text=True, timeout=180, cwd=rules.parent,
    )  # fmt: skip
    if kill_at:
        assert p.returncode == -9, (p.returncode, p.stdout, p.stderr)
        return ""
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.mark.parametrize("records", [False, True], ids=["estimated", "settled-late"])
def test_a_kill_mid_group_leaves_the_last_committed_groups_whole(tmp_path, records) -> None:
    rules = tmp_path / "pairs.rules"
    rules.write_text(RULES)
    rows = wavy_rows(HOURS)
    rec = write_jsonl(tmp_path / "rec.jsonl", with_settlements(rows) if records else rows)

    # killed when asked for view 161: cycles 1-160 ran, 151-160 in a group never committed
    crashed = tmp_path / "crashed.db"
    _child(rules, rec, crashed, kill_at=161)
    assert _cycles(crashed) == 150  # six whole groups of 25, nothing of the seventh

    # exactly what a run of the first 150 cycles leaves: complete cycles, no part of one
    first = tmp_path / "first150.db"
    _child(rules, rec, first, stop_at=150)
    assert _dump(crashed) == _dump(first)

    # the restart resumes after cycle 150 and ends with what an uninterrupted run has
    out = _child(rules, rec, crashed)
    reference = tmp_path / "reference.db"
    _child(rules, rec, reference)
    assert "skipped 150" in out
    ref, got = _dump(reference), _dump(crashed)
    assert len(ref["positions"]) > 10 and len(ref["funding"]) > 20  # a busy replay
    for table in ref:
        assert got[table] == ref[table], table


def test_a_failed_cycle_in_a_group_rolls_back_alone(tmp_path) -> None:
    """A cycle that raises in the middle of a group: the group's earlier cycles are
    committed, nothing of the failed one is, and the run says so."""
    rules = tmp_path / "pairs.rules"
    rules.write_text(RULES)
    rec = write_jsonl(tmp_path / "rec.jsonl", wavy_rows(80))
    ruleset = load_ruleset([rules]).ruleset
    assert ruleset is not None
    db = tmp_path / "p.db"
    config = TradingConfig(ledger=str(db))
    ledger = Ledger(db)
    ex = PaperExecutor(config, ledger)
    runtime = Runtime(RulesetHolder(ruleset), config, ledger, None, "replay", executor=ex)
    views = list(ReplaySource(rec))
    failing_at = views[57].at
    persist = ex.persist

    def persist_or_fail(t: int) -> None:
        persist(t)
        if t == failing_at:  # after the cycle's writes, before its cycle row
            raise RuntimeError("boom")

    ex.persist = persist_or_fail  # type: ignore[method-assign]
    summary = runtime.run(views, commits=CommitGroups(seconds=3600.0, cycles=GROUP))
    ledger.close()
    assert summary.cycles == 57
    assert summary.failed is not None and "every earlier cycle is in the ledger" in summary.failed
    con = sqlite3.connect(db)
    try:
        (cycles,) = con.execute("select count(*) from cycles").fetchone()
        (last,) = con.execute("select max(ts) from cycles").fetchone()
        later = con.execute(
            "select (select count(*) from fills where ts >= ?)"
            " + (select count(*) from opportunities where cycle_ts >= ?)"
            " + (select count(*) from funding_payments where ts > ?)",
            (failing_at, failing_at, last),
        ).fetchone()
        errors = con.execute("select detail from events where kind = 'error'").fetchall()
    finally:
        con.close()
    assert cycles == 57 and last == views[56].at
    assert later == (0,)
    assert len(errors) == 1 and "boom" in errors[0][0]


def test_a_group_is_committed_at_the_end_and_before_every_wait(tmp_path) -> None:
    rules = tmp_path / "pairs.rules"
    rules.write_text(RULES)
    rec = write_jsonl(tmp_path / "rec.jsonl", wavy_rows(40))
    ruleset = load_ruleset([rules]).ruleset
    assert ruleset is not None
    db = tmp_path / "p.db"
    config = TradingConfig(ledger=str(db))
    ledger = Ledger(db)
    runtime = Runtime(
        RulesetHolder(ruleset), config, ledger, None, "replay",
        executor=PaperExecutor(config, ledger),
    )  # fmt: skip
    seen: list[tuple[int, int]] = []

    def pace(prev: int | None, at: int) -> None:  # what --speed does: wait between cycles
        runtime.wait(0.0)
        seen.append((_cycles(db), ledger.uncommitted_cycles))

    summary = runtime.run(
        ReplaySource(rec), pace=pace, commits=CommitGroups(seconds=3600.0, cycles=1000)
    )
    assert summary.cycles == 40
    # every wait committed the cycles before it: another process sees them all
    assert seen == [(n, 0) for n in range(40)]
    assert _cycles(db) == 40 and ledger.uncommitted_cycles == 0
    ledger.close()


def test_rulebook_halt_and_status_get_in_while_a_replay_commits_in_groups(tmp_path) -> None:
    """A replay at full speed holds the write lock for a group at a time (half a
    second); `rulebook halt` asks for the lock every millisecond and lands between two
    groups, and `rulebook status` reads without waiting for it."""
    rules = tmp_path / "pairs.rules"
    rules.write_text(RULES)
    rec = write_jsonl(tmp_path / "rec.jsonl", wavy_rows(12000))  # ~20 s at full speed
    db = tmp_path / "p.db"
    p = _run(rules, rec, db)
    try:
        deadline = time.monotonic() + 60
        while _cycles(db) < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert p.poll() is None, "the replay must still be running"
        for command in (["status"], ["halt"]):
            started = time.monotonic()
            done = subprocess.run(
                [sys.executable, "-m", "rulebook.cli", *command, "--db", str(db)],
                capture_output=True, text=True, cwd=tmp_path, timeout=60,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert time.monotonic() - started < 20, command
        assert p.wait(timeout=60) == 0
        assert "halted: rulebook halt" in p.stderr.read().decode()
    finally:
        if p.poll() is None:
            p.kill()
    assert _cycles(db) < 12000


def test_only_a_replay_groups_its_commits(tmp_path) -> None:
    """Without `commits`, every cycle is committed as it ends (live and paper-live)."""
    rules = tmp_path / "pairs.rules"
    rules.write_text(RULES)
    rec = write_jsonl(tmp_path / "rec.jsonl", wavy_rows(10))
    ruleset = load_ruleset([rules]).ruleset
    assert ruleset is not None
    db = tmp_path / "p.db"
    config = TradingConfig(ledger=str(db))
    ledger = Ledger(db)
    runtime = Runtime(
        RulesetHolder(ruleset), config, ledger, None, executor=PaperExecutor(config, ledger)
    )
    counts: list[int] = []
    runtime.run(ReplaySource(rec), on_cycle=lambda r: counts.append(_cycles(db)))
    assert counts == list(range(1, 11))
    assert ledger.uncommitted_cycles == 0
    ledger.close()


def test_nested_savepoints_roll_back_the_inner_one_only(tmp_path) -> None:
    """Savepoints of one name nest: a failed inner one (a cycle in a group, an event in
    a cycle) rolls back alone, and the outer one keeps what it wrote."""
    ledger = Ledger(tmp_path / "p.db")
    ledger.group_cycles(CommitGroups(seconds=3600.0, cycles=1000))
    with ledger.cycle():
        ledger.record_event("a", "kept", ts=1)
    with pytest.raises(RuntimeError):
        with ledger.cycle():
            ledger.record_event("b", "rolled back", ts=2)
            raise RuntimeError("boom")
    with ledger.cycle():
        ledger.record_event("c", "kept too", ts=3)
        with pytest.raises(RuntimeError):
            with ledger._atomic():
                ledger.record_event("d", "rolled back", ts=4)
                raise RuntimeError("inner")
    assert ledger.uncommitted_cycles == 2
    ledger.group_cycles(None)
    con = sqlite3.connect(tmp_path / "p.db")
    try:
        kinds = [k for (k,) in con.execute("select kind from events order by id")]
    finally:
        con.close()
    assert kinds == ["a", "c"]
    ledger.close()
