#!/usr/bin/env python3
"""A year of hourly data, 6 exchanges x 50 coins, rules on every coin: rulebook against a hand-written backtest.

Both sides are whole processes over the same synthetic, seeded recording
(bench_paper_runtime's generator: clearly not market data):

- rulebook: `rulebook run benchmarks/year.rules --paper --replay REC --db NEW
  --config benchmarks/year.toml --no-watch`, the paper runtime with its
  SQLite ledger, as an operator runs a replay;
- the baseline: benchmarks/year_reference.py, the same rules written with
  orjson and numpy (the implementation a good engineer would write).

Rounds are interleaved, in alternating order. Every round checks that both
made the same decisions: the same positions, by rule, bindings, opening and
closing cycle, and the same fees per position (to 1e-9): otherwise the ratio
would compare different work, and the script fails. Prints the medians, the
ratio and the target (at most 2x), with the machine's load.

    python benchmarks/bench_year.py                  # 8760 hours: the figure
    python benchmarks/bench_year.py --hours 720      # a month, quicker
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from bench_paper_runtime import generate  # noqa: E402

RULES = HERE / "year.rules"
CONFIG = HERE / "year.toml"
REFERENCE = HERE / "year_reference.py"
TARGET = 2.0

Position = tuple[str, tuple[tuple[str, str], ...], int, int | None]


def rulebook_command(data: Path, db: Path) -> list[str]:
    exe = shutil.which("rulebook", path=str(Path(sys.executable).parent)) or "rulebook"
    return [exe, "run", str(RULES), "--paper", "--replay", str(data), "--db", str(db),
            "--config", str(CONFIG), "--no-watch"]  # fmt: skip


def reference_command(data: Path, out: Path) -> list[str]:
    return [sys.executable, str(REFERENCE), str(data), "--out", str(out)]


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=HERE.parent)
    took = time.perf_counter() - t
    if done.returncode != 0:
        sys.stderr.write(done.stderr.decode(errors="replace"))
        raise SystemExit(f"{cmd[0]} failed (exit {done.returncode})")
    return took


def ledger_positions(db: Path) -> dict[Position, float]:
    """Each position of a ledger and the fees its fills paid (positive)."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "select rule, bindings, opened_at, closed_at, pnl_fees from positions"
        ).fetchall()
    finally:
        con.close()
    out: dict[Position, float] = {}
    for rule, bindings, opened, closed, fees in rows:
        key = (rule, tuple(sorted(json.loads(bindings).items())), opened, closed)
        out[key] = -fees
    return out


def reference_positions(path: Path) -> dict[Position, float]:
    got = json.loads(path.read_text())
    out: dict[Position, float] = {}
    for p in got["positions"]:
        key = (p["rule"], tuple(sorted(p["bindings"].items())), p["opened_at"], p["closed_at"])
        out[key] = p["fees"]
    return out


def disagreements(ours: dict[Position, float], theirs: dict[Position, float]) -> list[str]:
    """What differs between rulebook's positions and the reference's; [] when they agree."""
    out = [f"only rulebook: {k}" for k in sorted(ours.keys() - theirs.keys(), key=str)]
    out += [f"only the reference: {k}" for k in sorted(theirs.keys() - ours.keys(), key=str)]
    for k in sorted(ours.keys() & theirs.keys(), key=str):
        if abs(ours[k] - theirs[k]) > 1e-9:
            out.append(f"fees differ for {k}: {ours[k]!r} against {theirs[k]!r}")
    return out


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=int, default=8760)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data", type=Path, default=None, help="recording to write or reuse")
    args = ap.parse_args()
    data = args.data or Path(tempfile.gettempdir()) / f"rulebook-bench-{args.hours}h-50c.jsonl"
    if not data.exists():
        t = time.perf_counter()
        n = generate(data, args.hours, 50)
        print(f"wrote {n:,} synthetic observations to {data} in {time.perf_counter() - t:.1f}s")
    lines = sum(1 for _ in data.open("rb"))
    print(f"{lines:,} observations, {args.hours} hours; {load()}")
    times: dict[str, list[float]] = {"rulebook": [], "reference": []}
    positions: dict[Position, Any] = {}
    with tempfile.TemporaryDirectory(prefix="rulebook-bench-year-") as tmp:
        for r in range(args.rounds):
            db, out = Path(tmp) / f"year-{r}.db", Path(tmp) / f"reference-{r}.json"
            sides = [("rulebook", rulebook_command(data, db)), ("reference", reference_command(data, out))]
            if r % 2:
                sides.reverse()
            for name, cmd in sides:
                times[name].append(timed(cmd))
            ours, theirs = ledger_positions(db), reference_positions(out)
            wrong = disagreements(ours, theirs)
            if wrong:
                print(f"round {r + 1}: the two sides made different decisions "
                      f"({len(wrong)} differences); the ratio would be meaningless:")  # fmt: skip
                for w in wrong[:20]:
                    print("  " + w)
                return 2
            positions = ours
            print(
                f"round {r + 1}: rulebook {times['rulebook'][-1]:.2f}s, "
                f"reference {times['reference'][-1]:.2f}s; same {len(ours)} positions; {load()}"
            )
    closed = sum(1 for k in positions if k[3] is not None)
    fees = sum(positions.values())
    ours_s, theirs_s = statistics.median(times["rulebook"]), statistics.median(times["reference"])
    ratio = ours_s / theirs_s
    print(f"both sides: {len(positions)} positions opened, {closed} closed, fees {fees:.6f}")
    print(f"rulebook run --paper --replay  median {ours_s:8.2f}s  {lines / ours_s:12,.0f} obs/s")
    print(f"orjson + numpy reference       median {theirs_s:8.2f}s  {lines / theirs_s:12,.0f} obs/s")
    met = ratio <= TARGET
    print(f"ratio {ratio:.2f}x (target <= {TARGET:g}x): {'met' if met else 'NOT MET'}; {load()}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
