"""A 16-combination sweep against one backtest of the same history (issue 11).

Both are whole CLI processes, as an operator runs them: `rulebook backtest`
of the shipped strategies over the shipped 18-month history, and the same
with `--sweep` of two constants at four values each (16 combinations) on
`--workers 2`. The runs interleave (single, sweep, single, sweep, ...) so
that load from elsewhere on the machine falls on both sides alike; the
script prints each side's median wall time and their ratio.

Target: the sweep within 10x one backtest on 2 cores (16 runs on 2 cores
cannot beat 8x; the history is read and what the rules see is written once).

    python benchmarks/bench_sweep.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HISTORY = ROOT / "examples" / "history" / "binance-bybit-okx-btc-eth-2023-2024.jsonl.gz"
RULEBOOK = [sys.executable, "-m", "rulebook.cli"]
SINGLE = [*RULEBOOK, "backtest", str(ROOT / "strategies"), "--data", str(HISTORY), "--json"]
SWEEP = [
    *SINGLE,
    "--sweep", "carry_min_rate=0.01%,0.02%,0.03%,0.04%",
    "--sweep", "cross_min_spread=0.03%,0.05%,0.07%,0.09%",
    "--workers", "2",
]  # fmt: skip
TARGET = 10.0


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    single: list[float] = []
    sweep: list[float] = []
    for i in range(args.rounds):
        single.append(timed(SINGLE))
        sweep.append(timed(SWEEP))
        print(f"round {i + 1}: one backtest {single[-1]:.2f} s, 16-combination sweep {sweep[-1]:.2f} s")
    a, b = statistics.median(single), statistics.median(sweep)
    ratio = b / a
    print(f"median one backtest        {a:.2f} s")
    print(f"median sweep of 16, 2 cores {b:.2f} s")
    print(f"ratio {ratio:.2f}x (target <= {TARGET:g}x): {'met' if ratio <= TARGET else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
