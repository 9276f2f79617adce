"""Where the runtime's snapshots come from: a recording (paced) or the live exchanges."""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from rulebook.lang import Ruleset
from rulebook.market import SnapshotView, is_columnar, iter_jsonl, open_recording
from rulebook.trading import Runtime

if TYPE_CHECKING:
    from rulebook.market import LiveSource

__all__ = ["live_views", "recording_span", "replay_pacer", "watched_markets"]


def recording_span(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """First and last `ts` of a recording in time order, from its first and last lines only
    (for a progress bar over a file too large to scan twice)."""

    def ts_of(line: bytes) -> int | None:
        try:
            value = json.loads(line).get("ts")
        except (ValueError, AttributeError, RecursionError):
            return None
        return value if isinstance(value, int) else None

    if is_columnar(path):  # the ts column of a Parquet file
        from rulebook.market import time_span

        try:
            return time_span(path)
        except OSError:
            return None
    try:
        # the first valid line, read as the replay reads it (bounded lines, .gz too)
        first = next((rec.ts for _, rec, _ in iter_jsonl(path) if rec is not None), None)
        if str(path).endswith(".gz"):  # no seeking from the end: read it through
            with open_recording(path) as fh:
                kept: deque[bytes] = deque(maxlen=64)
                # pieces of at most 64 KiB: a huge line is never held whole
                while chunk := fh.readline(65536):
                    if chunk.strip():
                        kept.append(chunk)
                tail = list(kept)
        else:
            with open(path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 65536))
                tail = [ln for ln in fh.read().splitlines() if ln.strip()]
    except OSError:
        return None
    last = next((t for ln in reversed(tail) if (t := ts_of(ln)) is not None), None)
    if first is None or last is None:
        return None
    return first, last


def replay_pacer(runtime: Runtime, speed: float | None) -> Callable[[int | None, int], None] | None:
    """Sleep between replayed cycles for `speed` times real time; None (max) does not sleep."""
    if speed is None:
        return None

    def pace(prev: int | None, at: int) -> None:
        if prev is not None and at > prev:
            runtime.wait((at - prev) / 1000.0 / speed)

    return pace


def watched_markets(ruleset: Ruleset, runtime: Runtime) -> tuple[list[str], list[str]]:
    """Exchanges and coins the rules and the open positions need, to fetch nothing else."""
    # The same markets a live dry-run fetches, plus those of open positions
    # (whose rule may have been removed by a reload).
    markets = ruleset.markets()
    exchanges = set(markets.exchanges)
    coins = set(markets.coins)
    for p in runtime.executor.positions.values():
        coins.add(p.coin)
        exchanges.update(leg.exchange for leg in p.legs)
    return sorted(exchanges), sorted(coins)


def live_views(runtime: Runtime, source: LiveSource, every_s: float) -> Iterator[SnapshotView]:
    """A view every `every_s` seconds from the live exchanges, until a halt.

    After each cycle, the settlements of held perp legs that have passed are asked
    of the exchanges' funding-rate history; the records found ride on the view
    (`view.settlements`) for the runtime to pay at the settled rate (spec 11).
    At start-up each held leg's history is asked once from its last paid
    settlement, so what settled while nothing ran is paid at its settled rate.
    """
    import asyncio  # live only: a replay does not load it

    from rulebook.market import SettlementFetcher

    settled = SettlementFetcher(source)
    for p in runtime.executor.positions.values():
        for leg in p.legs:
            if leg.market == "perp":
                settled.catch_up((leg.exchange, p.coin), runtime.funding.after(p, leg))
    loop = asyncio.new_event_loop()

    def fresh() -> SnapshotView:
        loop.run_until_complete(source.fetch_cycle())
        view = source.view()
        settled.note(view.observations())
        held = {
            (leg.exchange, p.coin)
            for p in runtime.executor.positions.values()
            for leg in p.legs
            if leg.market == "perp"
        }
        got = loop.run_until_complete(settled.fetch(view.at, held))
        view.settlements = tuple(got.records)
        return view

    try:
        while True:
            started = time.monotonic()
            yield fresh()
            if runtime.wait(max(0.0, every_s - (time.monotonic() - started))):
                # A halt: one more fresh view, on which --close-all closes (a plain
                # halt stops before using it).
                yield fresh()
                return
    finally:
        loop.run_until_complete(source.close())
        loop.close()
