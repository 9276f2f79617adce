"""Reports of a run: figures, JSON, CSV and a self-contained HTML page with plots.

    from rulebook.report import read_ledger, build_report, write_html, write_csv
    run = read_ledger(Ledger("paper.db"))
    report = build_report(run)            # the figures, JSON-ready (docs/backtest.md)
    write_html(report, "report.html")     # plots embedded as PNG: one file
    write_csv(report, "out/")             # trades.csv, daily_equity.csv

    with LedgerReader.open("paper.db") as reader, reader.snapshot():
        report = ledger_report(reader)    # the same figures, read in passes (a Report)
        for piece in iter_json(report):   # the same bytes as _json.dumps(build_report(...))
            ...

Every figure is a pure function of the run's records (`_figures`); the
outputs only format them. `build_report` holds every record in memory;
`ledger_report` (`_stream`) reads a ledger's rows in passes and keeps only
what does not grow with the ledger, and the writers take either.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._build import REPORT_VERSION, build_report, finite
from ._figures import (
    DAY_MS,
    Breakdown,
    Drawdown,
    Totals,
    breakdown,
    breakdown_by_position,
    breakdown_by_venue,
    capital_used,
    cumulative,
    daily_equity,
    daily_returns,
    exposure_series,
    max_drawdown,
    sharpe,
    sortino,
    totals,
)
from ._model import (
    EquityPoint,
    FillRecord,
    LegRecord,
    PaymentRecord,
    PositionRecord,
    ReportInput,
)
from ._stream import ListSource, RunSource, stream_report
from ._streamed import Report, iter_json

if TYPE_CHECKING:
    from ._csv import write_csv
    from ._html import iter_html, render_html, write_html
    from ._inputs import LedgerSource, ledger_report, read_ledger

# The ledger reader pulls in sqlite-utils and the trading stage, the HTML
# writer matplotlib: loaded on first use.
_LAZY = {
    "write_csv": "._csv",
    "iter_html": "._html",
    "render_html": "._html",
    "write_html": "._html",
    "LedgerSource": "._inputs",
    "ledger_report": "._inputs",
    "read_ledger": "._inputs",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "DAY_MS",
    "REPORT_VERSION",
    "Breakdown",
    "Drawdown",
    "EquityPoint",
    "FillRecord",
    "LedgerSource",
    "LegRecord",
    "ListSource",
    "PaymentRecord",
    "PositionRecord",
    "Report",
    "ReportInput",
    "RunSource",
    "Totals",
    "breakdown",
    "breakdown_by_position",
    "breakdown_by_venue",
    "build_report",
    "capital_used",
    "cumulative",
    "daily_equity",
    "daily_returns",
    "exposure_series",
    "finite",
    "iter_html",
    "iter_json",
    "ledger_report",
    "max_drawdown",
    "read_ledger",
    "render_html",
    "sharpe",
    "sortino",
    "stream_report",
    "totals",
    "write_csv",
    "write_html",
]
