"""Where a dry-run's snapshot comes from: a recorded file at a time, or the exchanges now."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rulebook.errors import RulebookError
from rulebook.lang import Ruleset
from rulebook.market import Observation, SnapshotView, iter_records

from ._render import utc_time

__all__ = ["SnapshotError", "LoadedSnapshot", "parse_time", "snapshot_from_file", "snapshot_live"]


class SnapshotError(RulebookError):
    """A snapshot cannot be had: the message says why, for the operator."""


@dataclass(slots=True)
class LoadedSnapshot:
    view: SnapshotView
    source: str  # the file, or "live"
    problems: list[str] = field(default_factory=list)  # bad lines, failed exchanges


def parse_time(text: str) -> int:
    """A time as milliseconds since the epoch: `1719791940000` or ISO-8601 (UTC if no zone)."""
    t = text.strip()
    if t.isdigit():
        ms = int(t)
        if ms < 1_000_000_000_000:
            raise SnapshotError(f"--at {text}: looks like seconds; give milliseconds or an ISO time")
        return ms
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise SnapshotError(
            f"--at {text!r}: not a time; use milliseconds or ISO-8601 like 2024-06-30T16:00Z"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


#: problems kept per file for the operator; the rest are counted
KEPT_PROBLEMS = 100
# `--at` a little after the last observation still means the last cycle (a
# recording's cycle is stamped when it started: `--at 08:00Z` for one at 07:59).
_AT_GRACE_MS = 5 * 60_000


def snapshot_from_file(path: str | os.PathLike[str], at: int | None = None) -> LoadedSnapshot:
    """The snapshot at `at` (default: the end of the file) from a recording.

    "Now" is the latest timestamp among the observations the snapshot holds,
    not `at` itself: a dry-run of a file then gives the same answer every time,
    and `--at` between two recorded cycles does not age every observation.

    The file is streamed: memory holds the latest observation per market at
    or before `at`, never the whole file.
    """
    if not os.path.exists(path):
        raise SnapshotError(f"{path}: no such snapshot file")
    latest: dict[tuple[str, str, str], Observation] = {}
    problems: list[str] = []
    bad = 0
    first: int | None = None
    newest: int | None = None
    late: tuple[int, int] | None = None  # lines out of time order: count, first line
    try:
        for n, o, e in iter_records(path):  # JSONL or Parquet, by the suffix
            if e is not None:
                bad += 1
                if len(problems) < KEPT_PROBLEMS:
                    problems.append(str(e))  # unknown keys are warnings, said too
                continue
            if not isinstance(o, Observation):
                continue  # a settlement record: what was paid, not what rules see
            first = o.ts if first is None else min(first, o.ts)
            if newest is not None and o.ts < newest:
                late = (late[0] + 1, late[1]) if late else (1, n)
            newest = o.ts if newest is None else max(newest, o.ts)
            if at is not None and o.ts > at:
                continue
            held = latest.get(o.key)
            # ">=": of two observations with one timestamp, the later line wins
            if held is None or o.ts >= held.ts:
                latest[o.key] = o
    except OSError as e:
        raise SnapshotError(f"{path}: cannot read: {e.strerror or e}") from None
    if bad > len(problems):
        problems.append(f"{path}: ... {bad - len(problems):,} more problem lines")
    if late is not None:
        problems.append(
            f"{path}:{late[1]}: warning: {late[0]:,} line(s) out of time order (the first "
            "here); the latest observation per market is used"
        )
    if first is None:
        raise SnapshotError(f"{path}: no valid observations" + (f" ({problems[0]})" if problems else ""))
    last = newest
    assert last is not None
    if at is not None and not first <= at <= last + _AT_GRACE_MS:
        # Past the end the "snapshot at" would silently be the last one, however old.
        raise SnapshotError(
            f"{path}: --at {utc_time(at)} is outside the recording, which runs from "
            f"{utc_time(first)} to {utc_time(last)}"
        )
    now = max(o.ts for o in latest.values())
    return LoadedSnapshot(SnapshotView(now, latest, recorded=True), str(path), problems)


def ruleset_markets(ruleset: Ruleset) -> tuple[list[str], list[str]]:
    """The exchanges and coins the ruleset's market calls read, to fetch no more than needed."""
    markets = ruleset.markets()
    return list(markets.exchanges), list(markets.coins)


def snapshot_live(ruleset: Ruleset, deadline_s: float = 10.0) -> LoadedSnapshot:
    """One cycle from the exchanges the ruleset uses; "now" is the wall clock."""
    from rulebook.market import LiveSource  # imports ccxt: only when live

    exchanges, coins = ruleset_markets(ruleset)
    if not coins:
        raise SnapshotError("the ruleset reads no market (no funding, spread, price... call); nothing to fetch")

    async def one_cycle() -> tuple[SnapshotView, list[str]]:
        async with LiveSource(exchanges, coins, deadline_s=deadline_s) as source:
            cycle = await source.fetch_cycle()
            view = source.view(at=int(time.time() * 1000))
        problems = [f"{ex} unreachable: {why}" for ex, why in sorted(cycle.failures.items())]
        if len(cycle.failures) == len(exchanges):
            raise SnapshotError(
                "no exchange answered, nothing to evaluate:\n  " + "\n  ".join(problems)
            )
        return view, problems

    view, problems = asyncio.run(one_cycle())
    return LoadedSnapshot(view, "live", problems)
