"""A ledger's statistics and positions for an operator's terminal (what `rulebook status` prints)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["SHOWN_CLOSED", "print_status"]

# The positions table shows every open position and this many of the latest closed ones.
SHOWN_CLOSED = 20


def _money(x: float | None) -> str:
    return "-" if x is None else f"{x:,.2f}"


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def print_status(console: Console, data: dict[str, Any], positions: bool = True) -> None:
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
        f"(halts {s['halts']}, errors {s['errors']}, outages {s['outages']})",
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
    rows = data["positions"]
    if not positions or not rows:
        return
    # Every open position and the latest closed ones; --json lists them all.
    closed = [p for p in rows if p["status"] != "open"]
    older = closed[:-SHOWN_CLOSED] if len(closed) > SHOWN_CLOSED else []
    rows = [p for p in rows if p["status"] == "open"] + closed[len(older) :]
    table = Table(title="positions", title_justify="left")
    for col in (
        "id",
        "rule",
        "coin",
        "legs",
        "notional",
        "status",
        "opened",
        "funding",
        "fees",
        "price",
        "borrow",
        "pnl",
        "closed because",
    ):
        table.add_column(
            col,
            justify="right"
            if col in ("notional", "funding", "fees", "price", "borrow", "pnl")
            else "left",
            no_wrap=col == "rule",  # keeps "name * rule changed" readable
        )
    for p in rows:
        legs = ", ".join(f"{lg['side']} {lg['market']} {lg['exchange']}" for lg in p["legs"])
        rule = p["rule"]
        if p.get("rule_state") in ("changed", "removed"):
            rule = f"{rule} * rule {p['rule_state']}"
        table.add_row(
            str(p["id"]),
            rule,
            p["coin"],
            legs,
            _money(p["notional"]),
            p["status"],
            _when(p["opened_at"]),
            _money(p["pnl_funding"]),
            _money(p["pnl_fees"]),
            _money(p["pnl_price"]),
            _money(p["pnl_borrow"]),
            _money(p["pnl"]),
            p["close_reason"] or "",
        )
    console.print(table)
    if older:
        console.print(
            f"... and {len(older)} older closed positions (--json lists all)", markup=False
        )
    if s.get("positions_on_old_rules"):
        console.print(
            "* rule changed or removed by a reload since the position opened: it keeps the "
            "exit clause it was opened with, and the risk limits apply",
            markup=False,
        )
