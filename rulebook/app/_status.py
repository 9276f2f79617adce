"""Run statistics and the positions table, read from a ledger (what `rulebook status` prints)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rulebook.reload import position_rule_states
from rulebook.trading import Ledger

__all__ = ["ledger_status"]

_SHOWN_LEG = ("exchange", "market", "side", "size", "entry_price")


def ledger_status(ledger: Ledger) -> dict[str, Any]:
    """Statistics operators expect, plus every position with its pnl parts.

    Cumulative profit is realised pnl of closed positions plus the open ones
    marked at the last complete cycle.
    """
    read = ledger.read
    stats: dict[str, Any] = asdict(read.stats())
    # open positions whose rule a reload changed or removed run on the exit
    # clause they were opened with (and the risk limits): status marks them
    rule_states = position_rule_states(ledger)
    stats["positions_on_old_rules"] = sum(s in ("changed", "removed") for s in rule_states.values())
    positions = []
    for p in read.positions():
        row = asdict(p)
        row.pop("ruleset_sha")
        row.pop("updated_at")
        row["legs"] = [{k: leg[k] for k in _SHOWN_LEG} for leg in row["legs"]]
        # open positions only: current | changed | removed | unknown
        positions.append({"id": p.id, "rule": p.rule, "rule_state": rule_states.get(p.id), **row})
    return {"stats": stats, "positions": positions}
