"""A ledger keeps working while something holds on to its cursors.

A sampling profiler (Dask's worker profiler samples a task's thread every
10 ms) takes the thread's frames; a function that returns while its frame is
held keeps its locals, and so a cursor returned by `sqlite_utils.Database.execute`
stays alive until the profiler lets go. A cursor whose write statement is not
run to the end keeps that statement in progress, and SQLite then refuses every
savepoint on the connection ("cannot open savepoint - SQL statements in
progress"): a sweep on a Dask cluster failed so now and then, under load.

Here the profiler is the worst one possible: it keeps every frame that held a
cursor, for the whole test, so the race is decided every time, not by load.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from rulebook.trading import Ledger


@contextmanager
def frames_held_forever() -> Iterator[list[FrameType]]:
    """Keep every returning frame that has a cursor among its locals."""
    held: list[FrameType] = []

    def hook(frame: FrameType, event: str, _arg: Any) -> None:
        if event == "return" and any(
            isinstance(v, sqlite3.Cursor) for v in frame.f_locals.values()
        ):
            held.append(frame)

    sys.setprofile(hook)
    try:
        yield held
    finally:
        sys.setprofile(None)


def test_a_new_ledger_takes_savepoints_while_its_cursors_are_held(tmp_path: Path) -> None:
    with frames_held_forever() as held:
        ledger = Ledger(tmp_path / "paper.db")  # its schema is written in a savepoint
        with ledger.cycle():
            ledger.record_event("test", "a cycle's transaction")
            ledger.record_event("test", "and a savepoint inside it")
        ledger.close()
    assert held  # the profiler did hold cursors, else this test proves nothing
    reopened = Ledger(tmp_path / "paper.db")
    assert [e.detail for e in reopened.read.events()][-2:] == [
        "a cycle's transaction",
        "and a savepoint inside it",
    ]
    reopened.close()


def test_a_backtest_runs_while_its_cursors_are_held() -> None:
    """Every write the paper runtime makes in a backtest (the sweep's unit of work),
    under the same profiler: none leaves a statement in progress."""
    from rulebook.backtest import BacktestSpec, run_backtest

    root = Path(__file__).resolve().parents[1]
    spec = BacktestSpec(
        rule_paths=[root / "strategies"],
        data=[root / "examples" / "history" / "binance-bybit-okx-btc-eth-2023-2024.jsonl.gz"],
        start=1_707_696_000_000,  # 2024-02-12
        end=1_707_696_000_000 + 10 * 86_400_000,  # ten days: 3 positions, 2 closed, 40 payments
    )
    expected = run_backtest(spec).run
    with frames_held_forever() as held:
        result = run_backtest(spec)
    assert held
    assert not result.summary.failed
    assert len(expected.positions) == 3 and len(expected.payments) == 40
    assert result.run.equity == expected.equity
    assert result.run.payments == expected.payments
