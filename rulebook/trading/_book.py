"""Positions and their legs: the state the ledger stores and an executor changes.

The paper executor and a live one hold the same types (the names are historical).

Signs: every pnl part is a contribution to pnl, so `pnl = funding + fees +
price + borrow`; fees and borrow interest are negative (costs), funding is
positive when received.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rulebook.engine import position_key
from rulebook.lang import CompiledRule, Subject

__all__ = ["PaperLeg", "PaperPosition"]


@dataclass(slots=True)
class PaperLeg:
    exchange: str
    market: str  # perp | spot
    side: str  # long | short
    borrowed: bool  # a short spot leg sells borrowed coins
    size: float  # coins: leg notional / entry price
    entry_price: float
    entry_fee: float  # money paid, >= 0
    mark: float  # last mark seen (perp mark, spot mid)
    funding: float = 0.0  # net received on this leg
    borrow: float = 0.0  # interest paid, >= 0
    exit_price: float | None = None
    exit_fee: float = 0.0
    # What the previous cycle saw: the next settlement and its rate (perp legs),
    # the borrow rate and how far interest has accrued (borrowed legs).
    next_funding_ts: int | None = None
    funding_rate: float | None = None
    borrow_rate_daily: float | None = None
    accrued_to: int = 0

    @property
    def sign(self) -> int:
        return 1 if self.side == "long" else -1

    @property
    def price_pnl(self) -> float:
        px = self.exit_price if self.exit_price is not None else self.mark
        return self.sign * self.size * (px - self.entry_price)


@dataclass(slots=True)
class PaperPosition:
    id: int
    rule_name: str
    bindings: dict[str, str]
    ruleset_sha: str
    subject: Subject
    legs: list[PaperLeg]
    notional: float  # leg notional N
    opened_at: int  # ms
    status: str = "open"
    closed_at: int | None = None
    close_reason: str | None = None
    # The rule it was opened under, kept so a reload cannot take its exit clause away.
    rule: CompiledRule | None = field(default=None, repr=False, compare=False)

    @property
    def coin(self) -> str:
        return self.subject.coin

    @property
    def key(self) -> tuple[str, ...]:
        return position_key(self.subject)

    # The pnl parts are summed with explicit loops (a position has two legs): the
    # runtime reads them for every open position every cycle (exit checks, equity,
    # the ledger row), and a generator per part cost more than the sum. The
    # additions are the same, in the same order, as `sum` over the legs.
    @property
    def funding(self) -> float:
        total = 0.0
        for leg in self.legs:
            total += leg.funding
        return total

    @property
    def fees(self) -> float:
        total = 0.0
        for leg in self.legs:
            total += leg.entry_fee + leg.exit_fee
        return -total

    @property
    def price(self) -> float:
        total = 0.0
        for leg in self.legs:
            px = leg.exit_price if leg.exit_price is not None else leg.mark
            total += (1 if leg.side == "long" else -1) * leg.size * (px - leg.entry_price)
        return total

    @property
    def borrow(self) -> float:
        total = 0.0
        for leg in self.legs:
            total += leg.borrow
        return -total

    @property
    def pnl(self) -> float:
        return sum(self.parts())

    def parts(self) -> tuple[float, float, float, float]:
        """(funding, fees, price, borrow) in one pass over the legs; their sum is `pnl`."""
        funding = fees = price = borrow = 0.0
        for leg in self.legs:
            funding += leg.funding
            fees += leg.entry_fee + leg.exit_fee
            px = leg.exit_price if leg.exit_price is not None else leg.mark
            price += (1 if leg.side == "long" else -1) * leg.size * (px - leg.entry_price)
            borrow += leg.borrow
        return funding, -fees, price, -borrow

    def held_s(self, now_ms: int) -> float:
        return (now_ms - self.opened_at) / 1000.0
