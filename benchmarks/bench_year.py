#!/usr/bin/env python3
"""A year of hourly data, 6 exchanges x 50 coins, rules on every coin: rulebook against a hand-written backtest.

Both sides are whole processes over the same synthetic, seeded recording
(bench_paper_runtime's generator: clearly not market data):

- rulebook: `rulebook run benchmarks/year.rules --paper --replay REC --db NEW
  --config benchmarks/year.toml --no-watch`, the paper runtime with its
  SQLite ledger, as an operator runs a replay; once over the JSONL recording
  itself (like for like: both sides read the same file) and once over its
  Parquet form (`rulebook convert`, done once before the rounds and timed
  apart: the columnar format backtests are meant to read);
- the baseline: benchmarks/year_reference.py, the same rules written with
  orjson and numpy (the implementation a good engineer would write).

Rounds are interleaved, in alternating order. The target is on the wall
clock (what an operator waits for); each side's CPU time (user + system) is
printed beside it, the steadier figure on a loaded machine. Every round
checks that both made the same decisions: the same positions, by rule, bindings, opening and
closing cycle, and the same fees and the same funding per position (to 1e-9;
the reference computes funding under the same settlement rule): otherwise the ratio
would compare different work, and the script fails. Prints the medians, the
ratio and the target (at most 2x), with the machine's load.

    python benchmarks/bench_year.py                  # 8760 hours: the figure
    python benchmarks/bench_year.py --hours 720      # a month, quicker
    python benchmarks/bench_year.py --formats jsonl  # without the Parquet side
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from bench_paper_runtime import generate  # noqa: E402

RULES = HERE / "year.rules"
CONFIG = HERE / "year.toml"
REFERENCE = HERE / "year_reference.py"
TARGET = 2.0

Position = tuple[str, tuple[tuple[str, str], ...], int, int | None]


class Money(NamedTuple):
    """What a position paid in fees (positive) and was paid in funding (received > 0)."""

    fees: float
    funding: float


def rulebook_command(data: Path, db: Path) -> list[str]:
    exe = shutil.which("rulebook", path=str(Path(sys.executable).parent)) or "rulebook"
    return [exe, "run", str(RULES), "--paper", "--replay", str(data), "--db", str(db),
            "--config", str(CONFIG), "--no-watch"]  # fmt: skip


def reference_command(data: Path, out: Path) -> list[str]:
    return [sys.executable, str(REFERENCE), str(data), "--out", str(out)]


class Took(NamedTuple):
    """A whole process's wall-clock time and the CPU time (user + system) it used."""

    wall: float
    cpu: float


#: Both sides run as an installed program runs: with its modules' bytecode. A shell
#: with PYTHONDONTWRITEBYTECODE set would make every rulebook process compile its own
#: modules from source (about 0.16 s of CPU a process on this machine; an installed
#: wheel has them compiled), which no operator's replay pays.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str]) -> Took:
    """Run `cmd` to its end: its wall-clock time, and its CPU time (user + system, from
    the children's resource usage): on a loaded machine the wall clock also counts
    the time a process waited for a core, the CPU time does not."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=HERE.parent, env=CHILD_ENV
    )
    took = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.stderr.write(done.stderr.decode(errors="replace"))
        raise SystemExit(f"{cmd[0]} failed (exit {done.returncode})")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Took(took, cpu)


def compile_modules() -> None:
    """Write the bytecode of rulebook's modules (what installing the wheel does)."""
    spec = importlib.util.find_spec("rulebook")
    if spec is not None and spec.origin is not None:
        package = str(Path(spec.origin).parent)
        subprocess.run([sys.executable, "-m", "compileall", "-q", package],
                       stdout=subprocess.DEVNULL, env=CHILD_ENV, check=False)  # fmt: skip


def ledger_positions(db: Path) -> dict[Position, Money]:
    """Each position of a ledger, the fees its fills paid and the funding it was paid."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "select rule, bindings, opened_at, closed_at, pnl_fees, id from positions"
        ).fetchall()
        paid = dict(con.execute(
            "select position_id, sum(amount) from funding_payments group by position_id"
        ).fetchall())  # fmt: skip
    finally:
        con.close()
    out: dict[Position, Money] = {}
    for rule, bindings, opened, closed, fees, pid in rows:
        key = (rule, tuple(sorted(json.loads(bindings).items())), opened, closed)
        out[key] = Money(-fees, paid.get(pid, 0.0))
    return out


def reference_positions(path: Path) -> dict[Position, Money]:
    got = json.loads(path.read_text())
    out: dict[Position, Money] = {}
    for p in got["positions"]:
        key = (p["rule"], tuple(sorted(p["bindings"].items())), p["opened_at"], p["closed_at"])
        out[key] = Money(p["fees"], p["funding"])
    return out


def disagreements(ours: dict[Position, Money], theirs: dict[Position, Money]) -> list[str]:
    """What differs between rulebook's positions and the reference's; [] when they agree."""
    out = [f"only rulebook: {k}" for k in sorted(ours.keys() - theirs.keys(), key=str)]
    out += [f"only the reference: {k}" for k in sorted(theirs.keys() - ours.keys(), key=str)]
    for k in sorted(ours.keys() & theirs.keys(), key=str):
        for name in Money._fields:
            a, b = getattr(ours[k], name), getattr(theirs[k], name)
            if not abs(a - b) <= 1e-9:  # NaN differs too
                verb = "differ" if name == "fees" else "differs"
                out.append(f"{name} {verb} for {k}: {a!r} against {b!r}")
    return out


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=int, default=8760)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data", type=Path, default=None, help="recording to write or reuse")
    ap.add_argument(
        "--formats", type=lambda s: s.split(","), default=["jsonl", "parquet"],
        help="what rulebook replays: jsonl, parquet or both (the default: jsonl,parquet)",
    )  # fmt: skip
    args = ap.parse_args()
    data = args.data or Path(tempfile.gettempdir()) / f"rulebook-bench-{args.hours}h-50c.jsonl"
    if not data.exists():
        t = time.perf_counter()
        n = generate(data, args.hours, 50)
        print(f"wrote {n:,} synthetic observations to {data} in {time.perf_counter() - t:.1f}s")
    lines = sum(1 for _ in data.open("rb"))
    print(f"{lines:,} observations, {args.hours} hours; {load()}")
    replays = {"jsonl": data}
    if "parquet" in args.formats:
        parquet = data.with_suffix(".parquet")
        if not parquet.exists():
            exe = rulebook_command(data, Path("unused"))[0]
            took = timed([exe, "convert", str(data), str(parquet)]).wall
            print(f"converted to {parquet} once, in {took:.1f}s (not part of the rounds)")
        replays["parquet"] = parquet
    if "jsonl" not in args.formats:
        del replays["jsonl"]
    names = {"jsonl": "rulebook, JSONL", "parquet": "rulebook, Parquet"}
    times: dict[str, list[Took]] = {k: [] for k in [*replays, "reference"]}
    compile_modules()  # as installed: the first round pays no compilation
    positions: dict[Position, Money] = {}
    with tempfile.TemporaryDirectory(prefix="rulebook-bench-year-") as tmp:
        for r in range(args.rounds):
            out = Path(tmp) / f"reference-{r}.json"
            sides = [(k, rulebook_command(rec, Path(tmp) / f"year-{k}-{r}.db"))
                     for k, rec in replays.items()]  # fmt: skip
            sides.append(("reference", reference_command(data, out)))
            k = r % len(sides)  # a rotating order
            for name, cmd in sides[k:] + sides[:k]:
                times[name].append(timed(cmd))
            theirs = reference_positions(out)
            for name in replays:
                ours = ledger_positions(Path(tmp) / f"year-{name}-{r}.db")
                wrong = disagreements(ours, theirs)
                if wrong:
                    print(f"round {r + 1}: {names[name]} and the reference made different "
                          f"decisions ({len(wrong)} differences); the ratio would be "
                          "meaningless:")  # fmt: skip
                    for w in wrong[:20]:
                        print("  " + w)
                    return 2
                positions = ours
            shown = ", ".join(
                f"{names.get(n, n)} {v[-1].wall:.2f}s (cpu {v[-1].cpu:.2f}s)"
                for n, v in times.items()
            )
            print(f"round {r + 1}: {shown}; the same {len(positions)} positions; {load()}")
    closed = sum(1 for k in positions if k[3] is not None)
    fees = sum(m.fees for m in positions.values())
    funding = sum(m.funding for m in positions.values())
    print(f"every side: {len(positions)} positions opened, {closed} closed, fees {fees:.6f}, "
          f"funding {funding:.6f}")  # fmt: skip
    theirs_s = statistics.median(t.wall for t in times["reference"])
    theirs_cpu = statistics.median(t.cpu for t in times["reference"])
    all_met = True
    for name in replays:
        ours_s = statistics.median(t.wall for t in times[name])
        ours_cpu = statistics.median(t.cpu for t in times[name])
        ratio = ours_s / theirs_s
        met = ratio <= TARGET
        all_met &= met
        print(f"{names[name] + ' (run --paper --replay)':34} median {ours_s:8.2f}s "
              f"{lines / ours_s:12,.0f} obs/s  ratio {ratio:.2f}x "
              f"(target <= {TARGET:g}x): {'met' if met else 'NOT MET'}; "
              f"cpu {ours_cpu:.2f}s, ratio {ours_cpu / theirs_cpu:.2f}x")  # fmt: skip
    print(f"{'orjson + numpy reference (JSONL)':34} median {theirs_s:8.2f}s "
          f"{lines / theirs_s:12,.0f} obs/s; cpu {theirs_cpu:.2f}s; {load()}")  # fmt: skip
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main())
