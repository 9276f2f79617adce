"""A ledger's records as report input: any ledger, a backtest's or a paper run's.

`read_ledger` reads every record into a `ReportInput` (a backtest's report, and
sweeps); `ledger_report` reads the same records in passes, a row at a time, for
`rulebook report` (memory that does not grow with the ledger). Both build each
record with the same functions below, so they see the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from rulebook.trading import FillRecord as TradingFill
from rulebook.trading import FundingRecord, Ledger, LedgerReader
from rulebook.trading import LegRecord as TradingLeg
from rulebook.trading import PositionRecord as TradingPosition

from ._model import (
    EquityPoint,
    FillRecord,
    LegRecord,
    PaymentRecord,
    PositionRecord,
    ReportInput,
    gross_notional,
)
from ._stream import stream_report
from ._streamed import Report

__all__ = ["LedgerSource", "ledger_report", "read_ledger"]


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


def _position(p: TradingPosition) -> PositionRecord:
    return PositionRecord(
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


def _gross(sizes: Iterable[tuple[float, float]]) -> float:
    """`PositionRecord.gross` of legs given as (size, entry price): each leg's
    notional is `_leg`'s size x entry price, summed as `gross` sums them."""
    return gross_notional(size * entry for size, entry in sizes)


def _fill(f: TradingFill) -> FillRecord:
    return FillRecord(
        ts=f.ts,
        position_id=f.position_id,
        exchange=f.exchange,
        market=f.market,
        side=f.side,
        price=f.price,
        size=f.size,
        fee=f.fee,
    )


def _payment(r: FundingRecord) -> PaymentRecord:
    return PaymentRecord(
        ts=r.ts,
        position_id=r.position_id,
        exchange=r.exchange,
        rate=r.rate,
        mark=r.mark,
        size=r.size,
        amount=r.amount,
        source=r.rate_source,
    )


def _reader(ledger: Ledger | LedgerReader) -> LedgerReader:
    return ledger.read if isinstance(ledger, Ledger) else ledger


def read_ledger(
    ledger: Ledger | LedgerReader,
    *,
    leverage: float = 1.0,
    lookahead: str | None = None,
    source: str = "",
) -> ReportInput:
    """Everything a report needs, through the ledger's typed reads (a writer's
    `.read`, or a read-only `LedgerReader`)."""
    read = _reader(ledger)
    return ReportInput(
        positions=[_position(p) for p in read.positions()],
        fills=[_fill(f) for f in read.fills()],
        payments=[_payment(r) for r in read.funding_payments()],
        equity=[EquityPoint(c.ts, c.equity) for c in read.cycles()],
        initial_balance=sum(b.initial for b in read.balances()),
        leverage=leverage,
        lookahead=lookahead,
        source=source,
    )


class LedgerSource:
    """A ledger as a report's `RunSource`: each pass a fresh cursor, a row at a time."""

    def __init__(
        self,
        ledger: Ledger | LedgerReader,
        *,
        leverage: float = 1.0,
        lookahead: str | None = None,
        source: str = "",
    ) -> None:
        self.read = _reader(ledger)
        self.initial_balance: float = sum(b.initial for b in self.read.balances())
        self.leverage = leverage
        self.lookahead = lookahead
        self.source = source
        self.notes: list[str] = []

    def positions(self) -> Iterator[PositionRecord]:
        return (_position(p) for p in self.read.iter_positions())

    def positions_with_payments(self) -> Iterator[tuple[PositionRecord, list[PaymentRecord]]]:
        # both by position id: a merge, one position's payments in memory
        pays = self.read.iter_funding_payments(by_position=True)
        pending = next(pays, None)
        for p in self.read.iter_positions():
            while pending is not None and (
                pending.position_id is None or pending.position_id < p.id
            ):
                pending = next(pays, None)
            mine = []
            while pending is not None and pending.position_id == p.id:
                mine.append(_payment(pending))
                pending = next(pays, None)
            yield _position(p), mine

    def openings(self) -> Iterator[tuple[int, float]]:
        return ((t, _gross(sizes)) for t, sizes in self.read.iter_leg_sizes("opened"))

    def closings(self) -> Iterator[tuple[int, float]]:
        return ((t, _gross(sizes)) for t, sizes in self.read.iter_leg_sizes("closed"))

    def payment_amounts(self) -> Iterator[tuple[int, float]]:
        return self.read.iter_funding_amounts()

    def fill_amounts(self) -> Iterator[tuple[int, float, float]]:
        # FillRecord.notional: abs(price x size)
        return ((ts, abs(price * size), fee) for ts, price, size, fee in self.read.iter_fill_amounts())

    def equity(self) -> Iterator[EquityPoint]:
        return (EquityPoint(ts, equity) for ts, equity in self.read.iter_equity())

    def cycle_times(self) -> Iterator[int]:
        return (ts for ts, _ in self.read.iter_equity())


def ledger_report(
    ledger: Ledger | LedgerReader,
    *,
    leverage: float = 1.0,
    lookahead: str | None = None,
    source: str = "",
) -> Report:
    """The report of `read_ledger`'s run, the same bytes, read in passes over the
    ledger (each long list again when it is written). Read it inside
    `reader.snapshot()` so that every pass sees the same ledger."""
    return stream_report(
        LedgerSource(ledger, leverage=leverage, lookahead=lookahead, source=source)
    )
