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
- `rulebook validate strategies/` (the shipped strategies, clean: exit 0).

Prints the median wall time of each, its ratio to the baseline, and the
target. Targets, on a 2-core machine: `--help` at most 0.25 s, `validate
strategies/` at most 0.4 s. Exit status 1 when a median misses its target.

    python benchmarks/bench_startup.py [--rounds 21]

Where the time goes: `python -X importtime -m rulebook.cli validate strategies/`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
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


def commands() -> list[tuple[str, list[str], float | None]]:
    """(name, argv, target in seconds) of each process to time."""
    # The installed console script is what an operator runs; fall back to -m.
    script = Path(PYTHON).with_name("rulebook")
    rulebook = [str(script)] if script.is_file() else [PYTHON, "-m", "rulebook.cli"]
    return [
        ("python -c 'import typer, rich.console'", [PYTHON, "-c", "import typer, rich.console"], None),
        ("typer app with a list[Path] argument", [PYTHON, "-c", TYPER_APP, "strategies/"], None),
        ("rulebook --help", [*rulebook, "--help"], 0.25),
        ("rulebook validate strategies/", [*rulebook, "validate", "strategies/"], 0.40),
    ]


def run_once(argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()

    cmds = commands()
    for _, argv, _ in cmds:  # warm the file cache and the .pyc files first
        run_once(argv)
    times: dict[str, list[float]] = {name: [] for name, _, _ in cmds}
    for _ in range(args.rounds):
        for name, argv, _ in cmds:
            times[name].append(run_once(argv))

    base = statistics.median(times[cmds[0][0]])
    print(f"{args.rounds} interleaved rounds, {os.cpu_count()} CPUs, {PYTHON}")
    print(f"{'command':42} {'median':>8} {'min':>8} {'x base':>7} {'target':>8}")
    missed = []
    for name, _, target in cmds:
        med = statistics.median(times[name])
        ok = "" if target is None else ("  ok" if med <= target else "  MISSED")
        shown_target = "-" if target is None else f"{target:.2f} s"
        print(
            f"{name:42} {med:6.3f} s {min(times[name]):6.3f} s {med / base:6.2f}x"
            f" {shown_target:>8}{ok}"
        )
        if target is not None and med > target:
            missed.append(name)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
