#!/usr/bin/env python3
"""Reading a recording into per-cycle views: JSON Lines against the columnar format.

The recording is the synthetic one of bench_paper_runtime.py (6 exchanges x N
coins, hourly; made here, seeded, clearly not market data), written once as
JSON Lines and converted once to Parquet (`rulebook convert`). Three sides,
run in interleaved rounds (a rotating order) over the same data, medians:

- jsonl views: `ReplaySource` over the .jsonl file, a SnapshotView per cycle
  (bounded lines, JSON, the checks, an Observation per line);
- parquet views: `ReplaySource` over the .parquet file, the same views, read a
  row group at a time into columns and made with `SnapshotView.from_columns`;
- parquet columns: `iter_columns` alone, the per-cycle `ObservationColumns`
  the views are made from (what MarketArrays can be built from directly).

Every side yields the same cycles (checked). Prints the file sizes, the
medians, observations per second and the ratios to the JSONL views. Issue 13
sets no target for this read; the columnar reader is there for the year
replay (bench_year*.py), whose target is 2x an orjson + numpy reference.

    .venv/bin/python benchmarks/bench_columnar.py                      # 720 hours x 50 coins
    .venv/bin/python benchmarks/bench_columnar.py --hours 120 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rulebook.market import ReplaySource, convert, iter_columns

sys.path.insert(0, str(Path(__file__).parent))
from bench_paper_runtime import generate  # noqa: E402


def views(path: Path) -> tuple[int, int]:
    n = rows = 0
    for v in ReplaySource(path):
        n += 1
        rows += len(v)
    return n, rows


def columns(path: Path) -> tuple[int, int]:
    n = rows = 0
    for c in iter_columns(path):
        n += 1
        rows += len(c)
    return n, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--hours", type=int, default=720)
    ap.add_argument("--coins", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.gettempdir())
    jsonl = tmp / f"rulebook-bench-{args.hours}h-{args.coins}c.jsonl"
    if not jsonl.exists():
        generate(jsonl, args.hours, args.coins)
    parquet = jsonl.with_suffix(".parquet")
    if not parquet.exists() or parquet.stat().st_mtime < jsonl.stat().st_mtime:
        t0 = time.perf_counter()
        convert(jsonl, parquet, force=True)
        print(f"converted to Parquet once in {time.perf_counter() - t0:.1f} s (not timed below)")
    lines = sum(1 for _ in jsonl.open("rb"))
    sides: dict[str, Callable[[], tuple[int, int]]] = {
        "jsonl views": lambda: views(jsonl),
        "parquet views": lambda: views(parquet),
        "parquet columns": lambda: columns(parquet),
    }
    names = list(sides)
    times: dict[str, list[float]] = {k: [] for k in names}
    seen: dict[str, tuple[int, int]] = {}
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            seen[name] = sides[name]()
            times[name].append(time.perf_counter() - t0)
    assert len(set(seen.values())) == 1, seen  # the same cycles and rows on every side
    cycles = seen["jsonl views"][0]
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"{lines:,} lines, {cycles:,} cycles; JSONL {jsonl.stat().st_size / 1e6:,.1f} MB, "
        f"Parquet {parquet.stat().st_size / 1e6:,.1f} MB "
        f"({jsonl.stat().st_size / parquet.stat().st_size:.1f}x smaller)"
    )
    print(f"{args.rounds} interleaved rounds, medians:")
    for k in names:
        print(f"  {k:<16} {med[k]:7.2f} s  {lines / med[k]:12,.0f} observations/s")
    base = med["jsonl views"]
    for k in names[1:]:
        print(f"  ratio {k} / jsonl views: {med[k] / base:.3f} (no target set by issue 13)")


if __name__ == "__main__":
    main()
