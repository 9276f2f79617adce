"""`rulebook report` on a long ledger: memory that does not grow with it.

The ledgers are synthetic (tests/report_ledgers.py): ten times the positions,
fills, payments and cycles over the same thirty days. The streamed report keeps
the breakdowns (rules, coins, venues), the daily equity, one position's payments
and at most `MAX_POINTS` points of a plot's series, so its peak (tracemalloc:
Python's allocations) is the same within noise; the report that holds every
record grows about tenfold. (SQLite's own page cache and sorter are bounded by
its cache size; docs/performance.md has a whole process's peak RSS.) The
figures are checked against the in-memory report in tests/test_report_stream.py.

Under tracemalloc the encoders are slow, so the ledgers are small and the plots'
reduction starts at 300 points (its code is the same; only the constant differs).

Each peak is measured in a fresh process (tests/report_peak.py) after the same
warm-up, with the cyclic collector off: measured inside the suite's process it
depended on what earlier tests had left (it failed landings under load with
(2478672, 3788709) while passing alone).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from report_ledgers import build

PEAK = Path(__file__).with_name("report_peak.py")
SIZES = {"small": (200, 600), "large": (2_000, 6_000)}  # positions, cycles


@pytest.fixture(scope="module")
def ledgers(tmp_path_factory) -> dict[str, Path]:
    out = {}
    for name, (positions, cycles) in SIZES.items():
        db = tmp_path_factory.mktemp(name) / "paper.db"
        out[name] = build(db, positions=positions, cycles=cycles, days=30, seed=5)
    return out


def _peak(kind: str, db: Path, warm: Path, out: Path) -> int:
    """tracemalloc's peak over one report of `db`, in a fresh process that first made
    one of `warm` (tests/report_peak.py): what earlier tests in this process left
    behind, and the order the suite runs in, cannot move it."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run([sys.executable, str(PEAK), kind, str(db), str(warm), str(out)],
                          capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return int(json.loads(done.stdout)["peak"])


def test_report_memory_does_not_grow_with_the_ledger(ledgers, tmp_path) -> None:
    warm = ledgers["small"]
    small, large = (_peak("streamed", ledgers[n], warm, tmp_path / n) for n in ("small", "large"))
    assert large < small * 1.2 + 200_000, (small, large)
    assert large < 12_000_000, large  # matplotlib drawing the four plots is most of it
    rows = [(tmp_path / n / "csv" / "trades.csv").read_text().count("\n") for n in SIZES]
    assert rows == [201, 2_001]  # every position was written
    # the in-memory records of the same ledgers do grow: this test would see it
    whole = [_peak("records", ledgers[n], warm, tmp_path / f"{n}-records") for n in SIZES]
    assert whole[1] > 5 * whole[0], whole
