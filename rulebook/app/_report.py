"""A ledger's statistics and positions for an operator's terminal (what `rulebook status` prints)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.text import Text

from ._tables import Col, fit_table, print_fitted

__all__ = ["SHOWN_CLOSED", "print_status", "print_venues"]

# The positions table shows every open position and this many of the latest closed ones.
SHOWN_CLOSED = 20


def _money(x: float | None) -> str:
    return "-" if x is None else f"{x:,.2f}"


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


VENUE_COLS = [
    Col("venue", "left"),
    Col("cash"),
    Col("margin"),
    Col("free"),
    Col("long", keep=1),
    Col("short", keep=1),
    Col("legs", keep=2),
    Col("initial", keep=3),
]
COIN_COLS = [
    Col("coin", "left"),
    Col("long"),
    Col("short"),
    Col("net"),
    Col("venues", "left", keep=1, wrap=True),
]
POSITION_COLS = [
    Col("id"),
    Col("rule", "left", wrap=True),
    Col("coin", "left"),
    Col("legs", "left"),
    Col("notional", keep=1),
    Col("status", "left"),
    Col("opened", "left", keep=5),
    Col("funding", keep=2),
    Col("fees", keep=3),
    Col("price", keep=4),
    Col("borrow", keep=6),
    Col("pnl"),
    Col("closed because", "left", keep=7, wrap=True),
]


def _legs(legs: list[dict[str, Any]]) -> str:
    """`bybit: -perp +spot` on one exchange, `-bybit +okx` across two (- short, + long)."""
    sign = {"short": "-", "long": "+"}
    if len({lg["exchange"] for lg in legs}) == 1 and legs:
        return f"{legs[0]['exchange']}: " + " ".join(sign[lg["side"]] + lg["market"] for lg in legs)
    return " ".join(sign[lg["side"]] + lg["exchange"] for lg in legs)


def print_venues(console: Console, data: dict[str, Any], wide: bool = False) -> None:
    """Cash, margin in use and free balance per venue; exposure by venue and by coin."""
    venues = data.get("venues") or []
    if venues:
        rows = [
            [v["exchange"], _money(v["cash"]), _money(v["margin"]), _money(v["free"]),
             _money(v["long"]), _money(v["short"]), str(v["legs"]), _money(v["initial"])]
            for v in venues
        ]
        console.print(Text("venues", style="bold"))
        print_fitted(console, fit_table(VENUE_COLS, rows, console.width, wide=wide), wide)
    coins = data.get("coins") or []
    if coins:
        rows = [
            [c["coin"], _money(c["long"]), _money(c["short"]), _money(c["net"]),
             ", ".join(c["venues"])]
            for c in coins
        ]
        console.print(Text("exposure by coin (open legs at their last marks)", style="bold"))
        print_fitted(console, fit_table(COIN_COLS, rows, console.width, wide=wide), wide)


def print_status(
    console: Console, data: dict[str, Any], positions: bool = True, wide: bool = False
) -> None:
    """Print `ledger_status` data: the statistics, then (with `positions`) the positions table."""
    s = data["stats"]
    console.print(
        f"cycles {s['cycles']} ({_when(s['first_cycle'])} .. {_when(s['last_cycle'])} UTC)\n"
        f"opportunities found  {s['opportunities_found']} over all cycles "
        f"({s['opportunities_distinct']} distinct rule bindings)\n"
        f"trades executed      {s['trades_executed']} fills, {s['positions_opened']} positions "
        f"opened, {s['positions_closed']} closed\n"
        f"active positions     {s['active_positions']} (exposure {_money(s['exposure'])})\n"
        f"cumulative profit    {_money(s['cumulative_profit'])} "
        f"(realised {_money(s['realised_pnl'])}, open {_money(s['unrealised_pnl'])})\n"
        f"  funding {_money(s['funding'])}, fees {_money(s['fees'])}, "
        f"price {_money(s['price'])}, borrow {_money(s['borrow'])}\n"
        f"paper balance        {_money(s['cash'])} of {_money(s['initial_balance'])} "
        f"(halts {s['halts']}, errors {s['errors']}, outages {s['outages']}, "
        f"notifications failed {s.get('notify_failed', 0)})",
        markup=False,
    )
    if s.get("mode") == "live":
        console.print(
            f"live ledger          funding computed {_money(s['funding'])}, reported by the "
            f"exchanges {_money(s['funding_reported'] or 0.0)}",
            markup=False,
        )
    if s["runner_pid"] is not None:
        console.print(f"running              pid {s['runner_pid']}", markup=False)
    if positions:
        print_venues(console, data, wide)
    rows = data["positions"]
    if not positions or not rows:
        return
    # Every open position and the latest closed ones; --json lists them all.
    closed = [p for p in rows if p["status"] != "open"]
    older = closed[:-SHOWN_CLOSED] if len(closed) > SHOWN_CLOSED else []
    rows = [p for p in rows if p["status"] == "open"] + closed[len(older) :]
    cells = []
    for p in rows:
        rule = p["rule"]
        if p.get("rule_state") in ("changed", "removed"):
            rule = f"{rule} * rule {p['rule_state']}"
        cells.append([
            str(p["id"]),
            rule,
            p["coin"],
            _legs(p["legs"]),
            _money(p["notional"]),
            p["status"],
            _when(p["opened_at"]),
            _money(p["pnl_funding"]),
            _money(p["pnl_fees"]),
            _money(p["pnl_price"]),
            _money(p["pnl_borrow"]),
            _money(p["pnl"]),
            p["close_reason"] or "",
        ])
    console.print(Text("positions", style="bold"))
    fitted = fit_table(POSITION_COLS, cells, console.width, wide=wide)
    print_fitted(console, fitted, wide)
    if fitted.hidden:
        console.print(
            f"hidden at this width: {', '.join(fitted.hidden)} (--wide, or --json)",
            markup=False, style="dim",
        )
    # ledger_status lists only the latest closed ones: it counts the rest
    omitted = len(older) + int(data.get("closed_omitted") or 0)
    if omitted:
        console.print(
            f"... and {omitted} older closed positions (--json lists all)", markup=False
        )
    if s.get("positions_on_old_rules"):
        console.print(
            "* rule changed or removed by a reload since the position opened: it keeps the "
            "exit clause it was opened with, and the risk limits apply",
            markup=False,
        )
