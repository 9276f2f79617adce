"""Run statistics and the positions table, read from a ledger (what `rulebook status` prints)."""

from __future__ import annotations

import json
from typing import Any

from rulebook.reload import position_rule_states
from rulebook.trading import Ledger, ledger_mode, reported_funding

__all__ = ["ledger_status"]


def _one(ledger: Ledger, sql: str) -> Any:
    row = ledger.execute(sql).fetchone()
    return None if row is None else row[0]


def ledger_status(ledger: Ledger) -> dict[str, Any]:
    """Statistics operators expect, plus every position with its pnl parts.

    Cumulative profit is realised pnl of closed positions plus the open ones
    marked at the last complete cycle.
    """
    initial = _one(ledger, "select coalesce(sum(initial), 0) from balances") or 0.0
    cash = _one(ledger, "select coalesce(sum(cash), 0) from balances") or 0.0
    realised = _one(ledger, "select coalesce(sum(pnl), 0) from positions where status='closed'")
    unrealised = _one(ledger, "select coalesce(sum(pnl), 0) from positions where status='open'")
    stats = {
        "cycles": _one(ledger, "select count(*) from cycles"),
        "first_cycle": _one(ledger, "select min(ts) from cycles"),
        "last_cycle": _one(ledger, "select max(ts) from cycles"),
        # every fired binding of every cycle, and how many distinct (rule, bindings) those were
        "opportunities_found": _one(ledger, "select count(*) from opportunities"),
        "opportunities_distinct": _one(
            ledger, "select count(*) from (select distinct rule, bindings from opportunities)"
        ),
        "positions_opened": _one(ledger, "select count(*) from positions"),
        "positions_closed": _one(ledger, "select count(*) from positions where status='closed'"),
        "active_positions": _one(ledger, "select count(*) from positions where status='open'"),
        "trades_executed": _one(ledger, "select count(*) from fills"),
        "funding_payments": _one(ledger, "select count(*) from funding_payments"),
        "funding": _one(ledger, "select coalesce(sum(pnl_funding), 0) from positions"),
        "fees": _one(ledger, "select coalesce(sum(pnl_fees), 0) from positions"),
        "price": _one(ledger, "select coalesce(sum(pnl_price), 0) from positions"),
        "borrow": _one(ledger, "select coalesce(sum(pnl_borrow), 0) from positions"),
        "realised_pnl": realised,
        "unrealised_pnl": unrealised,
        "cumulative_profit": (realised or 0.0) + (unrealised or 0.0),
        "initial_balance": initial,
        "cash": cash,
        "exposure": _one(
            ledger, "select coalesce(sum(notional), 0) from positions where status='open'"
        ),
        "halts": _one(ledger, "select count(*) from events where kind='halt'"),
        "errors": _one(ledger, "select count(*) from events where kind like '%error%'"),
        "outages": _one(ledger, "select count(*) from events where kind='outage'"),
        "runner_pid": ledger.runner_pid(),  # a runtime running on this ledger now, if any
    }
    # open positions whose rule a reload changed or removed run on the exit
    # clause they were opened with (and the risk limits): status marks them
    stats["mode"] = ledger_mode(ledger)
    # live: the funding the exchanges reported, beside the ledger's computed payments
    reported = reported_funding(ledger)
    stats["funding_reported"] = sum(reported.values()) if stats["mode"] == "live" else None
    rule_states = position_rule_states(ledger)
    stats["positions_on_old_rules"] = sum(s in ("changed", "removed") for s in rule_states.values())
    positions = []
    for r in ledger.query("select * from positions order by id"):
        legs = json.loads(r["legs"])
        positions.append(
            {
                "id": r["id"],
                "rule": r["rule"],
                # open positions only: current | changed | removed | unknown
                "rule_state": rule_states.get(r["id"]),
                "bindings": json.loads(r["bindings"]),
                "coin": r["coin"],
                "legs": [
                    {k: leg[k] for k in ("exchange", "market", "side", "size", "entry_price")}
                    for leg in legs
                ],
                "notional": r["notional"],
                "status": r["status"],
                "opened_at": r["opened_at"],
                "closed_at": r["closed_at"],
                "close_reason": r["close_reason"],
                "pnl_funding": r["pnl_funding"],
                "funding_reported": reported.get(r["id"]) if stats["mode"] == "live" else None,
                "pnl_fees": r["pnl_fees"],
                "pnl_price": r["pnl_price"],
                "pnl_borrow": r["pnl_borrow"],
                "pnl": r["pnl"],
            }
        )
    return {"stats": stats, "positions": positions}
