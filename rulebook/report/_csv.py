"""`--csv DIR`: the trades and the daily equity as CSV, for spreadsheets and pandas."""

from __future__ import annotations

import csv
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._streamed import Report

__all__ = ["write_csv"]

TRADE_COLUMNS = (
    "id", "rule", "coin", "bindings", "legs", "notional", "opened_at", "closed_at", "hold_h",
    "close_reason", "pnl", "funding", "fees", "price", "borrow", "funding_payments",
)  # fmt: skip


def _cell(v: Any) -> Any:
    return "" if v is None else v


def write_csv(report: dict[str, Any] | Report, directory: str | os.PathLike[str]) -> list[Path]:
    """Write trades.csv (one row per position, written as read) and daily_equity.csv;
    returns the paths."""
    r = Report.of(report)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    trades = out / "trades.csv"
    with open(trades, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(TRADE_COLUMNS)
        for p in r.items("positions"):
            legs = "; ".join(f"{lg['side']} {lg['market']} {lg['exchange']}" for lg in p["legs"])
            row = dict(p)
            row["bindings"] = json.dumps(p["bindings"], sort_keys=True)
            row["legs"] = legs
            row["funding_payments"] = len(p["funding_payments"])
            w.writerow([_cell(row[c]) for c in TRADE_COLUMNS])
    daily = out / "daily_equity.csv"
    with open(daily, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(("day", "date", "equity"))
        for d in r.head["daily_equity"]:
            date = datetime.fromtimestamp(d["day"] / 1000, tz=UTC).strftime("%Y-%m-%d")
            w.writerow((d["day"], date, _cell(d["equity"])))
    return [trades, daily]
