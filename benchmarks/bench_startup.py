"""Start-up time of the command line, as whole processes (issue 9, item 7).

Three commands, run in turn round after round (so a busy neighbour on the
machine slows all three alike), each a fresh `python` process:

- baseline: `python -c "import typer, rich.console"`, the least any typer + rich
  command line pays before it does anything (the fair floor: rulebook's own
  work is everything above it);
- a one-command typer app given a `list[Path]` argument, as `validate` is: what
  typer itself costs when a command runs (typer >= 0.2x coerces parameters
  through pydantic, which it imports then; `--help` does not);
- `rulebook --help`;
- `rulebook validate strategies/` (the shipped strategies, clean: exit 0);
- the libraries a replay cannot do without (typer and rich, lark for the
  rules, numpy for the engine, msgspec for the recording, sqlite_utils for the
  ledger), imported and nothing done: the fair floor of the next one;
- `rulebook run strategies/ --paper --replay REC --db DB --no-watch` over a
  recording of the first 60 lines of the bundled example (five cycles), into a
  fresh ledger each time: start-up, the ruleset, the ledger's creation and
  the final statistics, with next to no replay.

Prints the median wall time of each (and its median CPU time, user + system:
on a loaded machine the wall clock also holds the waits for a core), its
ratio to the baseline (and for the replay, to its floor), and the target. Targets, on a 2-core machine:
`--help` at most 0.25 s, `validate strategies/` at most 0.4 s; the replay
has none (it is what docs/performance.md records). Exit status 1 when a
median misses its target.

    python benchmarks/bench_startup.py [--rounds 21]

Where the time goes: `python -X importtime -m rulebook.cli validate strategies/`
(or the replay's command line).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


# The least a typer command taking paths pays to run (parse and coerce its argument).
TYPER_APP = """
from pathlib import Path
from typing import Annotated
import typer
from rich.console import Console

app = typer.Typer()

@app.command()
def check(paths: Annotated[list[Path], typer.Argument()]) -> None:
    Console(stderr=True).print(len(paths))

app()
"""


# The libraries a paper replay needs whatever it is made of (its fair floor).
REPLAY_FLOOR = "import typer, rich.console, rich.progress, lark, numpy, msgspec, sqlite_utils"
EXAMPLE = ROOT / "examples" / "binance-bybit-okx-btc-eth-2023-2024.jsonl"


def commands(scratch: Path) -> list[tuple[str, list[str], float | None, str | None]]:
    """(name, argv, target in seconds, the name of its floor) of each process to time."""
    # The installed console script is what an operator runs; fall back to -m.
    script = Path(PYTHON).with_name("rulebook")
    rulebook = [str(script)] if script.is_file() else [PYTHON, "-m", "rulebook.cli"]
    rec = scratch / "rec.jsonl"
    rec.write_text("".join(EXAMPLE.read_text().splitlines(keepends=True)[:60]))
    floor = "libraries a replay needs"
    return [
        ("python -c 'import typer, rich.console'", [PYTHON, "-c", "import typer, rich.console"], None, None),
        ("typer app with a list[Path] argument", [PYTHON, "-c", TYPER_APP, "strategies/"], None, None),
        ("rulebook --help", [*rulebook, "--help"], 0.25, None),
        ("rulebook validate strategies/", [*rulebook, "validate", "strategies/"], 0.40, None),
        (floor, [PYTHON, "-c", REPLAY_FLOOR], None, None),
        (
            "rulebook run --paper --replay (5 cycles)",
            [*rulebook, "run", "strategies/", "--paper", "--replay", str(rec),
             "--db", str(scratch / "paper.db"), "--no-watch"],
            None,
            floor,
        ),
    ]  # fmt: skip


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_once(argv: list[str]) -> tuple[float, float]:
    """The wall time and the CPU time (user + system) of one process."""
    if "--db" in argv:  # a fresh ledger every time: a replay resumes a ledger it finds
        db = argv[argv.index("--db") + 1]
        for end in ("", "-wal", "-shm"):
            Path(db + end).unlink(missing_ok=True)
    cpu = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed, _children_cpu() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-startup-") as scratch:
        cmds = commands(Path(scratch))
        for _, argv, _, _ in cmds:  # warm the file cache and the .pyc files first
            run_once(argv)
        times: dict[str, list[float]] = {name: [] for name, _, _, _ in cmds}
        cpus: dict[str, list[float]] = {name: [] for name, _, _, _ in cmds}
        for _ in range(args.rounds):
            for name, argv, _, _ in cmds:
                wall, cpu = run_once(argv)
                times[name].append(wall)
                cpus[name].append(cpu)

    base = statistics.median(times[cmds[0][0]])
    print(f"{args.rounds} interleaved rounds, {os.cpu_count()} CPUs, {PYTHON}")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"{'command':42} {'median':>8} {'min':>8} {'CPU':>8} {'x base':>7} {'x floor':>8}"
        f" {'target':>8}"
    )
    missed = []
    for name, _, target, floor in cmds:
        med = statistics.median(times[name])
        ok = "" if target is None else ("  ok" if med <= target else "  MISSED")
        shown_target = "-" if target is None else f"{target:.2f} s"
        over = "-" if floor is None else f"{med / statistics.median(times[floor]):.2f}x"
        print(
            f"{name:42} {med:6.3f} s {min(times[name]):6.3f} s"
            f" {statistics.median(cpus[name]):6.3f} s {med / base:6.2f}x"
            f" {over:>8} {shown_target:>8}{ok}"
        )
        if target is not None and med > target:
            missed.append(name)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
