"""A replay whose cycles are committed in groups, killed with SIGKILL mid-group.

Run by tests/test_trading_crash_grouped.py: replays RECORDING into LEDGER with the
paper runtime, committing every GROUP complete cycles (and never by time), and
kills itself with SIGKILL when it is asked for view number KILL_AT (after
KILL_AT - 1 cycles, in the middle of a group), so nothing after that runs. With
KILL_AT 0 it replays to the end (the uninterrupted run, or the restart).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from rulebook.lang import load_ruleset
from rulebook.market import ReplaySource, SnapshotView
from rulebook.trading import (
    CommitGroups,
    Ledger,
    PaperExecutor,
    RulesetHolder,
    Runtime,
    TradingConfig,
)


def views(recording: Path, kill_at: int, stop_at: int) -> Iterator[SnapshotView]:
    for n, view in enumerate(ReplaySource(recording), start=1):
        if n == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if stop_at and n > stop_at:
            return
        yield view


if __name__ == "__main__":
    rules, recording, db = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    group, kill_at, stop_at = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    ruleset = load_ruleset([rules]).ruleset
    assert ruleset is not None
    config = TradingConfig(ledger=str(db))
    ledger = Ledger(db)
    runtime = Runtime(
        RulesetHolder(ruleset), config, ledger, None, f"replay {recording}",
        executor=PaperExecutor(config, ledger),
    )  # fmt: skip
    summary = runtime.run(
        views(recording, kill_at, stop_at), commits=CommitGroups(seconds=3600.0, cycles=group)
    )
    ledger.close()
    print(f"cycles {summary.cycles} skipped {summary.skipped_cycles} failed {summary.failed}")
