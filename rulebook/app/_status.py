"""Run statistics and the positions table, read from a ledger (what `rulebook status` prints)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rulebook.reload import position_rule_states
from rulebook.trading import FundingRecord, Ledger

__all__ = ["ledger_status"]

_SHOWN_LEG = ("exchange", "market", "side", "size", "entry_price")


def _payment(f: FundingRecord) -> dict[str, Any]:
    """One funding payment as status shows it (docs/settlement.md): `source` is where
    the rate came from (settled | estimated), `mark_source` where the mark did."""
    return {
        "ts": f.ts,
        "exchange": f.exchange,
        "interval_h": f.interval_h,
        "rate": f.rate,
        "mark": f.mark,
        "size": f.size,
        "amount": f.amount,
        "source": f.rate_source,
        "mark_source": f.mark_source,
    }


def ledger_status(ledger: Ledger) -> dict[str, Any]:
    """Statistics operators expect, plus every position with its pnl parts.

    Cumulative profit is realised pnl of closed positions plus the open ones
    marked at the last complete cycle.
    """
    read = ledger.read
    stats: dict[str, Any] = asdict(read.stats())
    stats["mode"] = read.mode()
    live = stats["mode"] == "live"
    # live: the funding the exchanges reported, beside the ledger's computed payments
    reported = read.reported_funding()
    stats["funding_reported"] = sum(reported.values()) if live else None
    # open positions whose rule a reload changed or removed run on the exit
    # clause they were opened with (and the risk limits): status marks them
    rule_states = position_rule_states(ledger)
    stats["positions_on_old_rules"] = sum(s in ("changed", "removed") for s in rule_states.values())
    payments: dict[int, list[dict[str, Any]]] = {}
    for f in read.funding_payments():  # in settlement order
        payments.setdefault(f.position_id, []).append(_payment(f))
    positions = []
    for p in read.positions():
        row: dict[str, Any] = {
            "id": p.id,
            "rule": p.rule,
            # open positions only: current | changed | removed | unknown
            "rule_state": rule_states.get(p.id),
            "bindings": p.bindings,
            "coin": p.coin,
            "legs": [{k: getattr(leg, k) for k in _SHOWN_LEG} for leg in p.legs],
            "notional": p.notional,
            "status": p.status,
            "opened_at": p.opened_at,
            "closed_at": p.closed_at,
            "close_reason": p.close_reason,
            "pnl_funding": p.pnl_funding,
            "funding_reported": reported.get(p.id) if live else None,
            "pnl_fees": p.pnl_fees,
            "pnl_price": p.pnl_price,
            "pnl_borrow": p.pnl_borrow,
            "pnl": p.pnl,
            # every settlement paid on the position's perp legs (spec 11 step 1)
            "funding_payments": payments.get(p.id, []),
        }
        positions.append(row)
    return {"stats": stats, "positions": positions}
