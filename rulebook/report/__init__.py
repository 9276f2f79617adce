"""Reports of a run: figures, JSON, CSV and a self-contained HTML page with plots.

    from rulebook.report import read_ledger, build_report, write_html, write_csv
    run = read_ledger(Ledger("paper.db"))
    report = build_report(run)            # the figures, JSON-ready (docs/backtest.md)
    write_html(report, "report.html")     # plots embedded as PNG: one file
    write_csv(run, "out/")                # trades.csv, daily_equity.csv

Every figure is a pure function of the run's records (`_figures`); the
outputs only format them.
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

if TYPE_CHECKING:
    from ._csv import write_csv
    from ._html import render_html, write_html
    from ._inputs import read_ledger

# The ledger reader pulls in sqlite-utils and the trading stage, the HTML
# writer matplotlib: loaded on first use.
_LAZY = {
    "write_csv": "._csv",
    "render_html": "._html",
    "write_html": "._html",
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
    "LegRecord",
    "PaymentRecord",
    "PositionRecord",
    "ReportInput",
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
    "max_drawdown",
    "read_ledger",
    "render_html",
    "sharpe",
    "sortino",
    "totals",
    "write_csv",
    "write_html",
]
