"""What a report is computed from: a run's positions, fills, funding payments and equity.

Plain frozen records, read from a ledger by `_inputs.read_ledger` (or built
by hand in tests), so every figure in `_figures` is a pure function of them.
Signs follow the ledger: each pnl part is a contribution to pnl (fees and
borrow interest negative, funding positive when received).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "EquityPoint",
    "FillRecord",
    "LegRecord",
    "PaymentRecord",
    "PositionRecord",
    "ReportInput",
    "gross_notional",
]


@dataclass(frozen=True, slots=True)
class LegRecord:
    exchange: str
    market: str  # perp | spot
    side: str  # long | short
    notional: float  # money at entry: size x entry price
    funding: float
    fees: float  # <= 0
    price: float
    borrow: float  # <= 0

    @property
    def pnl(self) -> float:
        return self.funding + self.fees + self.price + self.borrow


def gross_notional(notionals: Iterable[float]) -> float:
    """The sum of the legs' entry notionals, each counted positive."""
    return sum(abs(n) for n in notionals)


@dataclass(frozen=True, slots=True)
class PositionRecord:
    id: int
    rule: str
    coin: str
    bindings: dict[str, str]
    legs: tuple[LegRecord, ...]
    notional: float  # per leg, as the rule asked (after a cut)
    opened_at: int  # ms
    closed_at: int | None
    close_reason: str | None

    @property
    def funding(self) -> float:
        return sum(leg.funding for leg in self.legs)

    @property
    def fees(self) -> float:
        return sum(leg.fees for leg in self.legs)

    @property
    def price(self) -> float:
        return sum(leg.price for leg in self.legs)

    @property
    def borrow(self) -> float:
        return sum(leg.borrow for leg in self.legs)

    @property
    def pnl(self) -> float:
        return self.funding + self.fees + self.price + self.borrow

    @property
    def gross(self) -> float:
        """Money in all legs at entry (what 1x margin reserves)."""
        return gross_notional(leg.notional for leg in self.legs)

    def open_at(self, t: int) -> bool:
        """Held after the cycle at t: opened at or before t, not closed by then."""
        return self.opened_at <= t and (self.closed_at is None or self.closed_at > t)


@dataclass(frozen=True, slots=True)
class FillRecord:
    ts: int
    position_id: int
    exchange: str
    market: str
    side: str
    price: float
    size: float
    fee: float  # money paid, >= 0

    @property
    def notional(self) -> float:
        return abs(self.price * self.size)


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    ts: int  # the settlement time
    position_id: int
    exchange: str
    rate: float
    mark: float
    size: float
    amount: float  # received (+) or paid (-)
    source: str | None = None  # where its rate and mark came from, when the ledger says


@dataclass(frozen=True, slots=True)
class EquityPoint:
    ts: int  # a cycle time
    equity: float  # cash on every exchange plus the open legs' price pnl


@dataclass(slots=True)
class ReportInput:
    positions: list[PositionRecord]
    fills: list[FillRecord]
    payments: list[PaymentRecord]
    equity: list[EquityPoint]  # one per cycle, in time order
    initial_balance: float  # the balances the run started with, all exchanges
    leverage: float = 1.0
    # What the rules saw at each cycle (the look-ahead choice), said in words.
    lookahead: str | None = None
    source: str = ""  # where the run came from: "backtest ..." or a ledger path
    notes: list[str] = field(default_factory=list)  # refused rules, data problems
