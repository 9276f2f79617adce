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

    @property
    def funding(self) -> float:
        return sum(leg.funding for leg in self.legs)

    @property
    def fees(self) -> float:
        return -sum(leg.entry_fee + leg.exit_fee for leg in self.legs)

    @property
    def price(self) -> float:
        return sum(leg.price_pnl for leg in self.legs)

    @property
    def borrow(self) -> float:
        return -sum(leg.borrow for leg in self.legs)

    @property
    def pnl(self) -> float:
        return self.funding + self.fees + self.price + self.borrow

    def held_s(self, now_ms: int) -> float:
        return (now_ms - self.opened_at) / 1000.0
