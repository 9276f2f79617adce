"""A ledger's records as report input: any ledger, a backtest's or a paper run's."""

from __future__ import annotations

import json
from typing import Any

from rulebook.trading import Ledger

from ._model import EquityPoint, FillRecord, LegRecord, PaymentRecord, PositionRecord, ReportInput

__all__ = ["read_ledger"]


def _leg(d: dict[str, Any]) -> LegRecord:
    sign = 1.0 if d["side"] == "long" else -1.0
    exit_price = d.get("exit_price")
    px = exit_price if exit_price is not None else d["mark"]
    return LegRecord(
        exchange=d["exchange"],
        market=d["market"],
        side=d["side"],
        notional=d["size"] * d["entry_price"],
        funding=float(d.get("funding", 0.0)),
        fees=-(float(d.get("entry_fee", 0.0)) + float(d.get("exit_fee", 0.0))),
        price=sign * d["size"] * (px - d["entry_price"]),
        borrow=-float(d.get("borrow", 0.0)),
    )


def read_ledger(
    ledger: Ledger, *, leverage: float = 1.0, lookahead: str | None = None, source: str = ""
) -> ReportInput:
    """Everything a report needs, through the ledger's typed reads."""
    rows = ledger.report_rows()
    positions = [
        PositionRecord(
            id=int(r["id"]),
            rule=r["rule"],
            coin=r["coin"],
            bindings=json.loads(r["bindings"]),
            legs=tuple(_leg(d) for d in json.loads(r["legs"])),
            notional=float(r["notional"]),
            opened_at=int(r["opened_at"]),
            closed_at=None if r["closed_at"] is None else int(r["closed_at"]),
            close_reason=r["close_reason"],
        )
        for r in rows["positions"]
    ]
    fills = [
        FillRecord(
            ts=int(r["ts"]),
            position_id=int(r["position_id"]),
            exchange=r["exchange"],
            market=r["market"],
            side=r["side"],
            price=float(r["price"]),
            size=float(r["size"]),
            fee=float(r["fee"]),
        )
        for r in rows["fills"]
    ]
    payments = [
        PaymentRecord(
            ts=int(r["ts"]),
            position_id=int(r["position_id"]),
            exchange=r["exchange"],
            rate=float(r["rate"]),
            mark=float(r["mark"]),
            size=float(r["size"]),
            amount=float(r["amount"]),
            source=r.get("source"),
        )
        for r in rows["funding_payments"]
    ]
    equity = [EquityPoint(int(r["ts"]), float(r["equity"])) for r in rows["cycles"]]
    return ReportInput(
        positions=positions,
        fills=fills,
        payments=payments,
        equity=equity,
        initial_balance=float(rows["initial_balance"]),
        leverage=leverage,
        lookahead=lookahead,
        source=source,
    )
