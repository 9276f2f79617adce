"""A ledger's records as report input: any ledger, a backtest's or a paper run's."""

from __future__ import annotations

from rulebook.trading import Ledger, LedgerReader
from rulebook.trading import LegRecord as TradingLeg

from ._model import EquityPoint, FillRecord, LegRecord, PaymentRecord, PositionRecord, ReportInput

__all__ = ["read_ledger"]


def _leg(d: TradingLeg) -> LegRecord:
    sign = 1.0 if d.side == "long" else -1.0
    px = d.exit_price if d.exit_price is not None else d.mark
    return LegRecord(
        exchange=d.exchange,
        market=d.market,
        side=d.side,
        notional=d.size * d.entry_price,
        funding=d.funding,
        fees=-(d.entry_fee + d.exit_fee),
        price=sign * d.size * ((px if px is not None else d.entry_price) - d.entry_price),
        borrow=-d.borrow,
    )


def read_ledger(
    ledger: Ledger | LedgerReader,
    *,
    leverage: float = 1.0,
    lookahead: str | None = None,
    source: str = "",
) -> ReportInput:
    """Everything a report needs, through the ledger's typed reads (a writer's
    `.read`, or a read-only `LedgerReader`)."""
    read = ledger.read if isinstance(ledger, Ledger) else ledger
    positions = [
        PositionRecord(
            id=p.id,
            rule=p.rule,
            coin=p.coin,
            bindings=dict(p.bindings),
            legs=tuple(_leg(d) for d in p.legs),
            notional=p.notional,
            opened_at=p.opened_at,
            closed_at=p.closed_at,
            close_reason=p.close_reason,
        )
        for p in read.positions()
    ]
    fills = [
        FillRecord(
            ts=f.ts,
            position_id=f.position_id,
            exchange=f.exchange,
            market=f.market,
            side=f.side,
            price=f.price,
            size=f.size,
            fee=f.fee,
        )
        for f in read.fills()
    ]
    payments = [
        PaymentRecord(
            ts=r.ts,
            position_id=r.position_id,
            exchange=r.exchange,
            rate=r.rate,
            mark=r.mark,
            size=r.size,
            amount=r.amount,
            source=r.rate_source,
        )
        for r in read.funding_payments()
    ]
    equity = [EquityPoint(c.ts, c.equity) for c in read.cycles()]
    initial_balance = sum(b.initial for b in read.balances())
    return ReportInput(
        positions=positions,
        fills=fills,
        payments=payments,
        equity=equity,
        initial_balance=initial_balance,
        leverage=leverage,
        lookahead=lookahead,
        source=source,
    )
