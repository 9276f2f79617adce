"""Python's peak allocations while a report is made, measured in a fresh process.

    python tests/report_peak.py streamed|records LEDGER WARM_LEDGER OUT_DIR

prints one JSON object: {"peak": bytes}. tests/test_report_large_ledger.py runs
it once per ledger, so each measurement starts from the same state: the same
imports, the same warm-up (a whole report of WARM_LEDGER: matplotlib's font
cache, the encoders, every lazy import), the same hash seed (the test sets
PYTHONHASHSEED). Measured inside the test's own process, the peak depended on
what earlier tests had left behind (caches, garbage, matplotlib's state), so
the suite's order and timing could move it by more than the bound allows.

The cyclic collector is off during the measurement (after a collection):
garbage in cycles made per item stays counted, so garbage that grew with the
ledger would show. The plots' reduction starts at 300 points, as the test
documents (the code is the same; only the constant differs).
"""

from __future__ import annotations

import gc
import json
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from rulebook.report import _plots as plots
from rulebook.report import iter_json, ledger_report, read_ledger, write_csv, write_html
from rulebook.trading import LedgerReader


def streamed(db: Path, out: Path) -> int:
    """JSON, CSV and HTML of the ledger, the way `rulebook report` writes them."""
    with LedgerReader.open(db) as reader, reader.snapshot():
        report = ledger_report(reader, source=str(db))
        size = sum(len(piece) for piece in iter_json(report))
        write_csv(report, out / "csv")
        write_html(report, out / "report.html")
    return size


def records(db: Path, out: Path) -> int:
    """The report's records read whole into memory (the old way): this grows."""
    ledger = read_ledger(LedgerReader.open(db))
    return len(ledger.positions)


def peak(fn: Callable[[], object]) -> int:
    """tracemalloc's peak over `fn`, after a collection and with the cyclic collector
    off: garbage that earlier code left is gone first, and garbage `fn` makes stays
    counted (tests/test_status_large_ledger.py measures in its own process with it)."""
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        gc.enable()


def main(argv: list[str]) -> None:
    kind, db, warm, out = argv
    plots.MAX_POINTS, plots.BUCKETS = 300, 75
    make = {"streamed": streamed, "records": records}[kind]
    make(Path(warm), Path(out) / "warm")  # imports, matplotlib's font cache, the encoders
    print(json.dumps({"peak": peak(lambda: make(Path(db), Path(out)))}))


if __name__ == "__main__":
    main(sys.argv[1:])
