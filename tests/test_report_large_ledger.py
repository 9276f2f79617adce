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
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from report_ledgers import build

from rulebook.report import _plots as plots
from rulebook.report import (
    iter_json,
    ledger_report,
    read_ledger,
    write_csv,
    write_html,
)
from rulebook.trading import LedgerReader

SIZES = {"small": (200, 600), "large": (2_000, 6_000)}  # positions, cycles


@pytest.fixture(scope="module")
def ledgers(tmp_path_factory) -> dict[str, Path]:
    out = {}
    for name, (positions, cycles) in SIZES.items():
        db = tmp_path_factory.mktemp(name) / "paper.db"
        out[name] = build(db, positions=positions, cycles=cycles, days=30, seed=5)
    return out


def _peak(fn: Callable[[], object]) -> int:
    """tracemalloc's peak over `fn`, the cyclic collector off: what the earlier tests
    left does not matter, and garbage in cycles (matplotlib's figures, or anything
    made per item) stays counted, so garbage that grew with the ledger would show."""
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        gc.enable()


def _streamed(db: Path, out: Path) -> int:
    """JSON, CSV and HTML of the ledger, the way `rulebook report` writes them."""
    with LedgerReader.open(db) as reader, reader.snapshot():
        report = ledger_report(reader, source=str(db))
        size = sum(len(piece) for piece in iter_json(report))
        write_csv(report, out / "csv")
        write_html(report, out / "report.html")
    return size


def test_report_memory_does_not_grow_with_the_ledger(ledgers, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(plots, "MAX_POINTS", 300)
    monkeypatch.setattr(plots, "BUCKETS", 75)
    _streamed(ledgers["small"], tmp_path / "warm")  # imports, matplotlib's font cache
    small, large = (
        _peak(lambda n=n: _streamed(ledgers[n], tmp_path / n)) for n in ("small", "large")
    )
    assert large < small * 1.2 + 200_000, (small, large)
    assert large < 12_000_000, large  # matplotlib drawing the four plots is most of it
    rows = [(tmp_path / n / "csv" / "trades.csv").read_text().count("\n") for n in SIZES]
    assert rows == [201, 2_001]  # every position was written
    # the in-memory records of the same ledgers do grow: this test would see it
    whole = [_peak(lambda n=n: read_ledger(LedgerReader.open(ledgers[n]))) for n in SIZES]
    assert whole[1] > 5 * whole[0], whole
