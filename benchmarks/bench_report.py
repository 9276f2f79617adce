#!/usr/bin/env python3
"""`rulebook report` on a long ledger: time and peak memory, streamed against in memory.

Two synthetic ledgers (made here by tests/report_ledgers.py's `build`, seeded,
clearly invented figures: closed positions with their fills and funding
payments, a few open ones marked later, cycles over a year), SMALL and LARGE
with ten times the positions, fills, payments and cycles.

Two sides, each a whole process writing the whole report (JSON to /dev/null,
CSV and HTML to files), timed and measured by its peak resident set size
(`ru_maxrss` of the child: Python, SQLite and matplotlib together):

- streamed: `rulebook report --db LEDGER --json --csv DIR --html FILE`, which reads
  the ledger in passes (`ledger_report`);
- in memory: the same outputs from `build_report(read_ledger(...))`, every position,
  fill, payment and cycle in lists, as `rulebook report` did before (its JSON by one
  `json.dumps(indent=2)` of the whole report).

The runs are interleaved round by round (sides and sizes in a rotating order) and
each figure is the median over rounds. Target: the streamed report's peak RSS
does not grow with the ledger (LARGE / SMALL at most 1.2x), and it is not slower
than the in-memory report.

    .venv/bin/python benchmarks/bench_report.py                  # 5,000 and 50,000 positions
    .venv/bin/python benchmarks/bench_report.py --positions 2000 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

IN_MEMORY = """
import sys
from pathlib import Path
from rulebook import _json
from rulebook.report import build_report, read_ledger, write_csv, write_html
from rulebook.trading import LedgerReader
db, out = sys.argv[1], Path(sys.argv[2])
with LedgerReader.open(db) as reader:
    report = build_report(read_ledger(reader, source=f"ledger {db}"))
with open(out / "report.json", "w") as fh:
    fh.write(_json.dumps(report, indent=2) + "\\n")
write_csv(report, out / "csv")
write_html(report, out / "report.html")
"""


def _run(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one child process."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if status != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return wall, usage.ru_maxrss * 1024  # KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--positions", type=int, default=5_000, help="SMALL's positions (LARGE: 10x)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from report_ledgers import build

    py = sys.executable
    rulebook = str(Path(py).with_name("rulebook"))
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        work = Path(tmp)
        sizes = {"small": args.positions, "large": 10 * args.positions}
        dbs = {}
        for name, n in sizes.items():
            t = time.perf_counter()
            dbs[name] = build(work / f"{name}.db", positions=n, cycles=n * 5 // 2, days=365)
            print(f"{name}: {n:,} positions, {n * 5 // 2:,} cycles, "
                  f"{dbs[name].stat().st_size / 1e6:.1f} MB ledger (built in "
                  f"{time.perf_counter() - t:.1f} s)", flush=True)  # fmt: skip
        sides = {
            "streamed": lambda db, out: [rulebook, "report", "--db", str(db), "--json", "--csv",
                                         str(out / "csv"), "--html", str(out / "report.html")],
            "in memory": lambda db, out: [py, "-c", IN_MEMORY, str(db), str(out)],
        }  # fmt: skip
        runs = [(side, size) for side in sides for size in sizes]
        got: dict[tuple[str, str], list[tuple[float, int]]] = {r: [] for r in runs}
        for rnd in range(args.rounds):
            order = runs[rnd % len(runs) :] + runs[: rnd % len(runs)]
            for side, size in order:
                out = work / f"out-{side.replace(' ', '-')}-{size}"
                out.mkdir(exist_ok=True)
                got[(side, size)].append(_run(sides[side](dbs[size], out)))
            print(f"round {rnd + 1}: load {os.getloadavg()[0]:.1f}", flush=True)
    med = {
        r: (statistics.median(w for w, _ in v), statistics.median(m for _, m in v))
        for r, v in got.items()
    }
    print(f"\n{'side':<10} {'ledger':<6} {'wall s':>8} {'peak RSS MB':>12}")
    for (side, size), (wall, rss) in med.items():
        print(f"{side:<10} {size:<6} {wall:8.2f} {rss / 1e6:12.1f}")
    growth = med[("streamed", "large")][1] / med[("streamed", "small")][1]
    whole = med[("in memory", "large")][1] / med[("in memory", "small")][1]
    speed = med[("streamed", "large")][0] / med[("in memory", "large")][0]
    print(f"\nstreamed peak RSS, large / small: {growth:.2f}x (target <= 1.2x: "
          f"{'met' if growth <= 1.2 else 'NOT met'}); in memory: {whole:.2f}x")  # fmt: skip
    print(f"time, large ledger, streamed / in memory: {speed:.2f}x (target <= 1.0x: "
          f"{'met' if speed <= 1.0 else 'NOT met'})")  # fmt: skip


if __name__ == "__main__":
    main()
