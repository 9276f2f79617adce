"""Replay a snapshot file as a sequence of views in time order."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from itertools import compress, islice, repeat
from operator import attrgetter, le, ne
from typing import cast

from ._filetype import is_columnar
from ._jsonl import MAX_LINE_BYTES, Item, LineError, decoded_pieces
from ._model import Observation
from ._settlement import Settlement
from ._view import SnapshotView

__all__ = ["ReplaySource"]

_TS = attrgetter("ts")
_KEY = attrgetter("exchange", "coin", "market")  # an observation's key, made in C


class ReplaySource:
    """Streams a recording and yields the snapshot at each distinct timestamp.

    The file is read once, line by line: memory holds only the latest
    observation per (exchange, coin, market), so a year of hourly data for
    hundreds of coins replays without loading the file. Each yielded view owns
    a copy of that state, so a view stays valid after the replay moves on.

    A recording is expected in time order (``rulebook snapshot`` writes it so).
    A line older than the current time is applied only if it is newer than
    what its key holds, and reported as a warning: the views already yielded
    cannot be changed. Invalid lines are reported in ``errors`` and skipped.

    Settlement records (spec 9) make no cycle of their own and are not part
    of any view's observations: each rides on the first view, from where it
    was read on, whose time is at or after its settlement time, in
    ``view.settlements``. A record is written once the exchange's history
    has it, so it may follow observations newer than itself: that is not out
    of order, and the runtime learns of it when a live run did.

    A ``.parquet`` file (the columnar format, docs/columnar.md) gives the same
    views, read a row group at a time into columns (``iter_columns``), with
    its bad rows reported by row number.
    """

    #: problems kept per severity: a file of a billion bad lines must not fill memory;
    #: ``counts`` has them all
    KEPT = 1000

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path
        self.errors: list[LineError] = []
        self.counts: dict[str, int] = {"error": 0, "warning": 0}

    def _problem(self, e: LineError) -> None:
        self.counts[e.severity] = self.counts.get(e.severity, 0) + 1
        if self.counts[e.severity] <= self.KEPT:
            self.errors.append(e)

    def __iter__(self) -> Iterator[SnapshotView]:
        self.errors = []
        self.counts = {"error": 0, "warning": 0}
        if is_columnar(self.path):
            yield from self._columns()
            return
        yield from self._views(by_piece=True)

    def _views(
        self, *, by_piece: bool, limit: int = MAX_LINE_BYTES
    ) -> Iterator[SnapshotView]:
        """A JSONL recording's views. A piece of the file whose lines are all valid
        observations in time order, none older than the current view, is applied at
        once (``by_piece``: the keys made and the state updated in C, a view per
        distinct time); any other piece, line by line (the general path, which
        `tests/test_replay_pieces.py` holds the piece path to, view for view)."""
        state: dict[tuple[str, str, str], Observation] = {}
        current: int | None = None
        pending: list[Settlement] = []

        def due(at: int) -> list[Settlement]:
            nonlocal pending
            now = [s for s in pending if s.ts <= at]
            if now:
                pending = [s for s in pending if s.ts > at]
            return now

        try:
            for piece in decoded_pieces(self.path, limit):
                if isinstance(piece, list):
                    items: Iterable[Item] = piece
                else:
                    n, records = piece
                    ts = list(map(_TS, records))
                    if (
                        by_piece
                        and (current is None or ts[0] >= current)
                        and Settlement not in set(map(type, records))
                        and all(map(le, ts, islice(ts, 1, None)))
                    ):
                        # a view at each change of time, then the piece's observations
                        # of that time: what the general path does line by line
                        start = 0
                        changes = compress(range(1, len(ts)), map(ne, ts, islice(ts, 1, None)))
                        for end in (*changes, len(ts)):
                            t = ts[start]
                            if current is not None and t > current:
                                yield SnapshotView(
                                    current, state, settlements=due(current), recorded=True
                                )
                            current = t
                            group = cast(list[Observation], records[start:end])  # none settles
                            state.update(zip(map(_KEY, group), group, strict=True))
                            start = end
                        continue
                    items = zip(range(n + 1, n + 1 + len(records)), records, repeat(None))
                for n, obs, err in items:
                    if err is not None:
                        self._problem(err)
                        continue
                    assert obs is not None
                    if isinstance(obs, Settlement):
                        pending.append(obs)
                        continue
                    if current is not None and obs.ts > current:
                        yield SnapshotView(current, state, settlements=due(current), recorded=True)
                        current = obs.ts
                    elif current is None:
                        current = obs.ts
                    elif obs.ts < current:
                        self._problem(
                            LineError(
                                str(self.path),
                                n,
                                f"out of time order: ts {obs.ts} after {current}; "
                                "applied to later snapshots only",
                                "warning",
                            )
                        )
                        held = state.get(obs.key)
                        if held is not None and held.ts > obs.ts:
                            continue
                    state[obs.key] = obs
        except OSError as e:
            self._problem(LineError(str(self.path), 0, f"cannot read file: {e.strerror or e}"))
        if current is not None:
            yield SnapshotView(current, state, settlements=due(current), recorded=True)

    def _columns(self) -> Iterator[SnapshotView]:
        from ._columnar import iter_columns

        try:
            for cols in iter_columns(self.path, self._problem):
                yield SnapshotView.from_columns(cols)
        except OSError as e:
            self._problem(LineError(str(self.path), 0, f"cannot read file: {e.strerror or e}"))
