"""A group of cycles writes its in-place rows (open positions, marks, cash) once, at
its commit (`Ledger`'s `_InPlace`): at every commit another process sees exactly what
a writer committing every cycle stores, a failed cycle's rows go with it, and the
writer's own reads in between see what a cycle-by-cycle writer would have stored.

The general path (every cycle's rows written in the cycle, committed at once) is the
reference: the same calls are made on a ledger of each kind and compared table by
table, at every commit and at the end."""

from __future__ import annotations

import copy
import math
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from test_trading_crash import RULES
from trading_helpers import wavy_rows, write_jsonl

from rulebook.lang import Subject, load_ruleset
from rulebook.market import ReplaySource
from rulebook.trading import (
    CommitGroups,
    Ledger,
    LedgerError,
    PaperExecutor,
    RulesetHolder,
    Runtime,
    TradingConfig,
)
from rulebook.trading._book import PaperLeg, PaperPosition

EXCHANGES = ("binance", "bybit", "okx")
TABLES = ("positions", "marks", "balances", "events", "cycles")


def _tables(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the in-place tables and of what a cycle appends, as another process
    reads them (committed rows only)."""
    con = sqlite3.connect(db)
    try:
        return {t: con.execute(f"select * from {t} order by rowid").fetchall() for t in TABLES}
    finally:
        con.close()


def _leg(rng: random.Random, exchange: str, market: str, side: str) -> PaperLeg:
    return PaperLeg(
        exchange=exchange, market=market, side=side, borrowed=market == "spot" and side == "short",
        size=rng.uniform(0.1, 10), entry_price=rng.uniform(10, 100), entry_fee=rng.uniform(0, 1),
        mark=rng.uniform(10, 100), accrued_to=0,
    )  # fmt: skip


class _World:
    """Random cycles applied alike to every ledger: positions open, move (payments,
    marks, next settlements), close; cash moves; some cycles fail after writing."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.open: dict[int, PaperPosition] = {}
        self.next_id = 1

    def plan(self, t: int) -> list[tuple[str, Any]]:
        """One cycle's calls, decided before any ledger sees them."""
        rng = self.rng
        calls: list[tuple[str, Any]] = []
        if rng.random() < 0.5 or not self.open:
            ex = rng.sample(EXCHANGES, 2)
            p = PaperPosition(
                id=self.next_id, rule_name="r", bindings={"coin": "SOL", "hi": ex[0]},
                ruleset_sha="x", subject=Subject("spread", "SOL", tuple(ex)),
                legs=[_leg(rng, ex[0], "perp", "short"), _leg(rng, ex[1], "perp", "long")],
                notional=1000.0, opened_at=t,
            )  # fmt: skip
            self.next_id += 1
            calls.append(("open", p))
        for p in list(self.open.values()):
            roll = rng.random()
            if roll < 0.05:  # its row written, then closed, in one cycle
                calls.extend([("write", p), ("close", p)])
            elif roll < 0.15:
                calls.append(("close", p))
            elif roll < 0.7:
                calls.append(("move", p))
        calls.append(("marks", {(e, "SOL", "perp"): rng.uniform(10, 100) for e in EXCHANGES}))
        calls.append(("cash", {e: rng.uniform(1e3, 1e4) for e in rng.sample(EXCHANGES, 2)}))
        calls.append(("event", f"cycle {t}"))
        if rng.random() < 0.1:
            calls.append(("fail", None))
        return calls


def _apply(ledger: Ledger, calls: list[tuple[str, Any]], t: int) -> None:
    """One cycle's calls on `ledger`, inside its cycle; positions are copied in the
    state each call gives them, so both ledgers see the same objects' states."""
    moved: list[PaperPosition] = []
    for kind, arg in calls:
        if kind == "open":
            assert ledger.record_opening(arg, t) == arg.id
        elif kind == "move":
            moved.append(arg)
        elif kind == "write":
            ledger.record_positions([arg], t)
        elif kind == "close":
            ledger.record_position(arg, t)
        elif kind == "marks":
            ledger.record_marks(arg, t)
        elif kind == "cash":
            for exchange, cash in arg.items():
                ledger.record_cash(exchange, cash)
        elif kind == "event":
            ledger.record_events([("note", arg)], t)
            if t % (7 * 3_600_000) == 0:  # now and then, a read in the middle of a cycle
                _ = ledger.read.open_position_rows()
        elif kind == "fail":
            raise RuntimeError("boom")
    ledger.record_positions(moved, t)


def _move(world: _World, calls: list[tuple[str, Any]], t: int) -> list[tuple[str, Any]]:
    """What the cycle does to the positions before the ledgers write them; a row
    written before its close is the state it had then."""
    rng = world.rng
    out = []
    for kind, p in calls:
        out.append((kind, p))
        if kind == "write":
            p.legs[0].funding += 1.0
            out[-1] = (kind, _snapshot(p))
        elif kind == "move":
            for leg in p.legs:
                leg.funding += rng.uniform(-1, 1)
                leg.next_funding_ts = t + 3_600_000
                leg.funding_rate = rng.uniform(-1e-3, 1e-3)
                leg.mark = rng.uniform(10, 100)
        elif kind == "close":
            p.status, p.closed_at, p.close_reason = "closed", t, "exit"
            for leg in p.legs:
                leg.exit_price = leg.mark
    return out


def _snapshot(p: PaperPosition) -> PaperPosition:
    legs = [PaperLeg(**{f: getattr(leg, f) for f in leg.__slots__}) for leg in p.legs]  # type: ignore[attr-defined]
    return PaperPosition(
        id=p.id, rule_name=p.rule_name, bindings=dict(p.bindings), ruleset_sha=p.ruleset_sha,
        subject=p.subject, legs=legs, notional=p.notional, opened_at=p.opened_at,
        status=p.status, closed_at=p.closed_at, close_reason=p.close_reason,
    )  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
def test_a_group_commits_the_rows_a_cycle_by_cycle_writer_commits(tmp_path, seed) -> None:
    world = _World(seed)
    each = Ledger(tmp_path / "each.db")
    grouped = Ledger(tmp_path / "grouped.db")
    group = 1 + seed % 5  # groups of 1 to 5 cycles
    grouped.group_cycles(CommitGroups(seconds=3600.0, cycles=group))
    for ledger in (each, grouped):
        with ledger.cycle():
            for e in EXCHANGES:
                ledger.record_account(e, 1e4)
    commits = 0
    for n in range(1, 120):
        t = n * 3_600_000
        before = copy.deepcopy((world.open, world.next_id))
        calls = world.plan(t)
        calls = _move(world, calls, t)
        states = [(k, _snapshot(a) if isinstance(a, PaperPosition) else a) for k, a in calls]
        failed = False
        for ledger in (each, grouped):
            try:
                with ledger.cycle():
                    _apply(ledger, [(k, _snapshot(a) if isinstance(a, PaperPosition) else a)
                                    for k, a in states], t)  # fmt: skip
                    ledger.record_events([("cycle", "done")], t)
            except RuntimeError:
                failed = True
        if failed:  # a failed cycle: the world forgets it too; the group goes on
            world.open, world.next_id = before
            for ledger in (each, grouped):
                ledger.commit()
        else:
            for kind, p in calls:
                if kind == "open":
                    world.open[p.id] = p
                elif kind == "close":
                    del world.open[p.id]
        if not grouped.uncommitted_cycles:  # a commit: another process sees the same
            commits += 1
            assert _tables(tmp_path / "grouped.db") == _tables(tmp_path / "each.db"), n
        if n % 11 == 0:  # the writer's own reads, at any moment, are a cycle-by-cycle
            # writer's (they write what the group kept: not at every cycle, then)
            assert grouped.read.open_position_rows() == each.read.open_position_rows()
            assert grouped.read.marks() == each.read.marks()
    grouped.group_cycles(None)
    assert _tables(tmp_path / "grouped.db") == _tables(tmp_path / "each.db")
    assert commits > 10
    each.close()
    grouped.close()


def test_a_refusal_comes_in_the_cycle_that_wrote_it(tmp_path) -> None:
    """A non-finite position, mark or cash is refused by the call, not at the group's
    commit: the cycle fails and nothing of it is kept."""
    ledger = Ledger(tmp_path / "p.db")
    ledger.group_cycles(CommitGroups(seconds=3600.0, cycles=1000))
    rng = random.Random(1)
    p = PaperPosition(
        id=1, rule_name="r", bindings={"coin": "SOL"}, ruleset_sha="x",
        subject=Subject("spread", "SOL", ("okx", "bybit")),
        legs=[_leg(rng, "okx", "perp", "short"), _leg(rng, "bybit", "perp", "long")],
        notional=1000.0, opened_at=1,
    )  # fmt: skip
    with ledger.cycle():
        ledger.record_account("okx", 10.0)
        ledger.record_opening(p, 1)
    good = ledger.read.open_position_rows()
    p.legs[0].funding = math.inf
    with pytest.raises(LedgerError, match="non-finite number inside positions.legs"):
        with ledger.cycle():
            ledger.record_positions([p], 2)
    p.legs[0].funding = 0.0
    p.notional = math.nan
    with pytest.raises(LedgerError, match="refused to write nan into positions.notional"):
        with ledger.cycle():
            ledger.record_positions([p], 3)
    with pytest.raises(LedgerError, match="refused to write inf into marks.mark"):
        with ledger.cycle():
            ledger.record_marks({("okx", "SOL", "perp"): math.inf}, 4)
    with pytest.raises(LedgerError, match="refused to write -inf into balances.cash"):
        with ledger.cycle():
            ledger.record_cash("okx", -math.inf)
    ledger.group_cycles(None)
    assert ledger.read.open_position_rows() == good
    assert ledger.read.marks() == {}
    assert ledger.balances() == {"okx": (10.0, 10.0)}
    ledger.close()


def _replay(tmp_path: Path, name: str, views: list[Any], fail_at: int | None) -> Path:
    ruleset = load_ruleset([tmp_path / "pairs.rules"]).ruleset
    assert ruleset is not None
    db = tmp_path / f"{name}.db"
    config = TradingConfig(ledger=str(db))
    ledger = Ledger(db)
    ex = PaperExecutor(config, ledger)
    runtime = Runtime(RulesetHolder(ruleset), config, ledger, None, "replay", executor=ex)
    persist = ex.persist

    def persist_or_fail(t: int) -> None:
        persist(t)
        if t == fail_at:  # after the cycle's writes, before its cycle row
            raise RuntimeError("boom")

    ex.persist = persist_or_fail  # type: ignore[method-assign]
    runtime.run(views, commits=CommitGroups(seconds=3600.0, cycles=25))
    ledger.close()
    return db


def test_a_failed_cycle_leaves_the_in_place_rows_of_the_cycle_before(tmp_path) -> None:
    """A replay's cycle 58 fails after its positions, marks and cash were kept, in the
    middle of a group (cycles 51-57 not yet committed): the ledger is exactly that of
    a replay of the first 57 cycles, every in-place row included."""
    (tmp_path / "pairs.rules").write_text(RULES)
    views = list(ReplaySource(write_jsonl(tmp_path / "rec.jsonl", wavy_rows(80))))
    failed = _tables(_replay(tmp_path, "failed", views, fail_at=views[57].at))
    first = _tables(_replay(tmp_path, "first57", views[:57], fail_at=None))
    assert len(first["cycles"]) == 57 and len(first["positions"]) > 3
    assert len(first["marks"]) > 0 and first["balances"]
    for table in ("positions", "marks", "balances"):
        assert failed[table] == first[table], table
    cycles = [row[:2] + row[3:] for row in failed["cycles"]]  # wall-clock time aside
    assert cycles == [row[:2] + row[3:] for row in first["cycles"]]
