"""Record live snapshots to a JSON Lines file, or a Parquet one (``rulebook snapshot``)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable

from ._filetype import is_columnar, require_parquet
from ._jsonl import JsonlRecorder
from ._live import CycleResult, LiveSource
from ._model import EXCHANGES
from ._settled_live import SettlementFetcher

__all__ = ["record_snapshots", "parse_list", "parse_markets", "cycle_reporter"]


def parse_list(values: Iterable[str] | None, *, known: Iterable[str] | None = None,
               what: str = "item") -> list[str]:
    """Split ``["binance,bybit", "okx"]`` into names; ValueError naming any unknown one."""
    out: list[str] = []
    for v in values or []:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    if known is not None:
        allowed = set(known)
        bad = [x for x in out if x not in allowed]
        if bad:
            raise ValueError(f"unknown {what} {', '.join(map(repr, bad))}; "
                             f"expected some of {', '.join(known)}")
    return list(dict.fromkeys(out))



def parse_markets(exchanges: Iterable[str] | None,
                  coins: Iterable[str] | None) -> tuple[list[str], list[str]]:
    """``--exchanges`` and ``--coins`` as lists (default: every exchange; BTC, ETH, SOL).

    ValueError says what is wrong with either.
    """
    ex_list = parse_list(exchanges, known=EXCHANGES, what="exchange") or list(EXCHANGES)
    coin_list = parse_list(coins) or ["BTC", "ETH", "SOL"]
    for c in coin_list:
        if not (c.isascii() and c.isalnum() and c.upper() == c):
            raise ValueError(f"coin {c!r} must be upper-case letters and digits, like SOL")
    return ex_list, coin_list


def cycle_reporter(echo: Callable[[str], None],
                   warn: Callable[[str], None]) -> Callable[[int, CycleResult], None]:
    """An ``on_cycle`` for record_snapshots: a line per cycle to ``echo``, and each
    exchange skipped or warned about to ``warn``."""

    def report(n: int, res: CycleResult) -> None:
        line = f"cycle {n}: {len(res.observations)} observations"
        if res.settlements:
            line += f", {res.settlements} settlement record(s)"
        line += f" in {res.elapsed_s:.2f}s"
        echo(line)
        for ex, why in sorted(res.failures.items()):
            warn(f"warning: {ex} unreachable, skipped this cycle: {why}")
        for ex, warns in sorted(res.warnings.items()):
            for w in warns:
                warn(f"  {ex} warning: {w}")

    return report

def _end_torn_line(path: str | os.PathLike[str]) -> None:
    """End a last line without its newline, so the next line starts one of its own (the
    torn one is then reported and skipped, not glued to a good one)."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return
    with open(path, "rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) != b"\n":
            fh.write(b"\n")


async def record_snapshots(
    path: str | os.PathLike[str],
    exchanges: Iterable[str] = EXCHANGES,
    coins: Iterable[str] = ("BTC", "ETH", "SOL"),
    *,
    every_s: float = 30.0,
    count: int | None = None,
    deadline_s: float | None = None,
    source: LiveSource | None = None,
    on_cycle: Callable[[int, CycleResult], None] | None = None,
) -> int:
    """Fetch a cycle every ``every_s`` seconds (``count`` times, or until cancelled)
    and append its observations to ``path``. Returns the number of lines written.

    After each cycle, the settlements that have passed since a perp observation
    showed them are asked of the exchange's funding-rate history, and each
    one found is appended as a settlement record (spec 9) after the cycle's
    observations; one not published yet is asked again next cycle.

    Cycles start on a fixed schedule: a slow cycle delays the next one rather than
    piling up, and each exchange's deadline stays below the interval.

    A ``.parquet`` path (docs/columnar.md) is appended to through a JSON Lines
    spool beside it (``OUT.parquet.partial.jsonl``, flushed every cycle like
    any recording), folded into the Parquet file when the run ends, however
    it ends; a spool left by a killed run is folded in by the next one.
    """
    columnar = is_columnar(path)
    if columnar:
        require_parquet()  # now, not when a long run ends
        from ._columnar import spool_path

        target: str | os.PathLike[str] = spool_path(path)
        _end_torn_line(target)  # a killed run's spool: its last line may be cut
    else:
        target = path
    if source is None:
        deadline = deadline_s if deadline_s is not None else max(1.0, min(10.0, every_s * 0.8))
        source = LiveSource(exchanges, coins, deadline_s=deadline)
    loop = asyncio.get_running_loop()
    settled = SettlementFetcher(source)
    n = 0
    try:
        with JsonlRecorder(target) as rec:
            next_at = loop.time()
            while count is None or n < count:
                res = await source.fetch_cycle()
                rec.write(res.observations)
                settled.note(res.observations)
                got = await settled.fetch(res.ts)
                # after the cycle's lines: a replay learns of a record when this run did
                rec.write(got.records)
                for (ex, coin), why in got.failures.items():
                    res.warnings.setdefault(ex, []).append(f"{coin} settled rate: {why}")
                res.settlements = len(got.records)
                n += 1
                if on_cycle is not None:
                    on_cycle(n, res)
                if count is not None and n >= count:
                    break
                next_at += every_s
                await asyncio.sleep(max(0.0, next_at - loop.time()))
            return rec.written
    finally:
        try:
            await source.close()
        finally:
            if columnar:
                from ._columnar import fold_into_columnar

                fold_into_columnar(path, target)
