"""The report as one JSON-ready dict: `rulebook backtest --json` and `report --json`.

The shape is stable and documented in docs/backtest.md ("The JSON report");
fields are only ever added. Every float is finite or null.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from rulebook._json import finite_or_none

from . import _figures as F
from ._model import PaymentRecord, PositionRecord, ReportInput

__all__ = ["REPORT_VERSION", "STREAMED", "build_report", "finite", "payment_dict", "position_dict"]

REPORT_VERSION = 1
#: the report's lists that grow with the run: a streamed report writes them as it reads
STREAMED = ("positions", "exposure", "equity", "cumulative_funding", "cumulative_fees")


#: the value with every non-finite float (at any depth) replaced by None: strict
#: JSON's one rule, written once for every JSON rulebook writes (rulebook._json)
finite = finite_or_none


def payment_dict(pay: PaymentRecord) -> dict[str, Any]:
    """One funding payment as a position's `funding_payments` lists it."""
    return {
        "ts": pay.ts,
        "exchange": pay.exchange,
        "rate": pay.rate,
        "mark": pay.mark,
        "size": pay.size,
        "amount": pay.amount,
        "source": pay.source,
    }


def position_dict(p: PositionRecord, payments: list[dict[str, Any]]) -> dict[str, Any]:
    """One position as the report lists it, with its payments (`payment_dict`s)."""
    return {
        "id": p.id,
        "rule": p.rule,
        "coin": p.coin,
        "bindings": p.bindings,
        "legs": [
            {
                "exchange": leg.exchange,
                "market": leg.market,
                "side": leg.side,
                "notional": leg.notional,
                "funding": leg.funding,
                "fees": leg.fees,
                "price": leg.price,
                "borrow": leg.borrow,
            }
            for leg in p.legs
        ],
        "notional": p.notional,
        "opened_at": p.opened_at,
        "closed_at": p.closed_at,
        "close_reason": p.close_reason,
        "hold_h": None if p.closed_at is None else (p.closed_at - p.opened_at) / 3_600_000,
        "pnl": p.pnl,
        "funding": p.funding,
        "fees": p.fees,
        "price": p.price,
        "borrow": p.borrow,
        "funding_payments": payments,
    }


def build_report(run: ReportInput, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every figure of the report, from the run's records."""
    ps = run.positions
    times = [p.ts for p in run.equity]
    t = F.totals(run)
    payments_by_position: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for pay in sorted(run.payments, key=lambda x: (x.position_id, x.ts, x.exchange)):
        payments_by_position[pay.position_id].append(payment_dict(pay))
    positions = [position_dict(p, payments_by_position.get(p.id, [])) for p in ps]
    daily = F.daily_equity(run.equity, run.initial_balance)
    exposure = F.exposure_series(ps, times)
    funding_steps = F.cumulative((pay.ts, pay.amount) for pay in run.payments)
    fee_steps = F.fees_over_time(run.fills)
    report: dict[str, Any] = {
        "version": REPORT_VERSION,
        "source": run.source,
        "lookahead": run.lookahead,
        "leverage": run.leverage,
        "from": times[0] if times else None,
        "to": times[-1] if times else None,
        "cycles": len(times),
        "notes": list(run.notes),
        "totals": t.to_dict(),
        "per_rule": [b.to_dict() for b in F.breakdown(ps, lambda p: p.rule)],
        "per_coin": [b.to_dict() for b in F.breakdown(ps, lambda p: p.coin)],
        "per_venue": [b.to_dict() for b in F.breakdown_by_venue(ps)],
        "positions": positions,
        "daily_equity": [{"day": d, "equity": e} for d, e in daily],
        "exposure": [{"ts": ts, "gross": g, "positions": n} for ts, g, n in exposure],
        "equity": [{"ts": e.ts, "equity": e.equity} for e in run.equity],
        "cumulative_funding": [{"ts": ts, "amount": a} for ts, a in funding_steps],
        "cumulative_fees": [{"ts": ts, "amount": a} for ts, a in fee_steps],
    }
    if extra:
        report.update(extra)
    return finite(report)
