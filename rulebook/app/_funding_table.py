"""One position's funding payments as a table (what `rulebook status --position ID` prints).

Each row is one settlement of one perp leg (spec 11 step 1): when it settled,
on which exchange, the interval that settled, the rate and the mark it was paid
at, the amount, and where the rate and the mark came from.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from ._report import _when  # times as every table shows them
from ._tables import Col, fit_table, print_fitted

__all__ = ["print_position_funding"]

_COLS = [
    Col("settled at (UTC)", "left"),
    Col("exchange", "left"),
    Col("interval", "right"),
    Col("rate", "right"),
    Col("mark", "right"),
    Col("size", "right", keep=2),
    Col("amount", "right"),
    Col("source", "left"),
    Col("mark from", "left", keep=1),
]


def _hours(h: float | None) -> str:
    if h is None:
        return "-"
    if h >= 1 and float(h).is_integer():
        return f"{int(h)}h"
    return f"{h * 60:g}min" if h < 1 else f"{h:g}h"


def print_position_funding(console: Console, position: dict[str, Any], wide: bool = False) -> None:
    """The position's head line, then a row per funding payment and their total."""
    legs = ", ".join(f"{lg['side']} {lg['market']} {lg['exchange']}" for lg in position["legs"])
    opened = _when(position["opened_at"])
    closed = _when(position["closed_at"]) if position["closed_at"] is not None else "open"
    console.print(
        f"position #{position['id']} {position['rule']} {position['coin']}: {legs}, "
        f"{position['notional']:,.2f} per leg, {opened} .. {closed} UTC",
        markup=False,
    )
    pays = position.get("funding_payments") or []
    if not pays:
        console.print("no funding payments", markup=False)
        return
    rows = [
        [
            _when(p["ts"]),
            p["exchange"],
            _hours(p["interval_h"]),
            f"{p['rate']:.4%}",
            f"{p['mark']:,.2f}",
            f"{p['size']:,.6g}",
            f"{p['amount']:+,.4f}",
            p["source"] or "-",
            p["mark_source"] or "-",
        ]
        for p in pays
    ]
    fitted = fit_table(_COLS, rows, width=console.width, wide=wide)
    print_fitted(console, fitted, wide)
    total = sum(p["amount"] for p in pays)
    estimated = sum(1 for p in pays if p["source"] == "estimated")
    tail = f", {estimated} at the estimate" if estimated else ""
    console.print(
        f"{len(pays)} payments, funding {total:+,.4f}{tail} "
        "(+ received, - paid; rate per interval, not per 8h)",
        markup=False,
    )
