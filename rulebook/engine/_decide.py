"""Entry decisions under the risk limits (spec section 7), given the open book.

The paper-trading executor passes its open positions as a `Book`; the engine
asks a `RiskBudget` about each entry a rule wants, in a stable order, and the
budget counts what it has already let through, so two entries in one
evaluation cannot together exceed a limit that each alone respects.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Literal

from rulebook.lang import RiskLimits, Subject, format_value

__all__ = [
    "MIN_TRADE",
    "Book",
    "Decision",
    "DecisionKind",
    "OpenPosition",
    "RiskBudget",
    "position_key",
]

#: A hedge cut below this many units of quote currency is not worth opening (spec 7).
MIN_TRADE = 10.0

DecisionKind = Literal["open", "already_open", "cut", "blocked"]


@functools.lru_cache(maxsize=65536)
def position_key(subject: Subject) -> tuple[str, ...]:
    """What makes two subjects "the same position": the markets they trade.

    `spread(SOL, a, b)` and `spread(SOL, b, a)` trade the same two perps, and
    `funding`, `basis` and `borrow` of one coin on one exchange all trade its
    perp against its spot; opening either twice would double one position.
    """
    if subject.kind == "spread":
        return ("spread", subject.coin, *sorted(subject.exchanges))
    return ("carry", subject.coin, subject.exchanges[0])


@dataclass(frozen=True, slots=True)
class OpenPosition:
    """One open position as the executor knows it."""

    rule: str
    bindings: dict[str, str]
    subject: Subject
    notional: float  # leg notional N, in the quote currency


@dataclass(slots=True)
class Book:
    """The open positions the risk limits count (empty for a dry-run from scratch)."""

    positions: list[OpenPosition] = field(default_factory=list)

    @property
    def exposure(self) -> float:
        return sum(p.notional for p in self.positions)


@dataclass(frozen=True, slots=True)
class Decision:
    kind: DecisionKind
    amount: float  # what to open: the cut size when cut; the request otherwise
    reason: str | None


def _money(x: float) -> str:
    return format_value("Money", x)


class RiskBudget:
    """Decides entries one at a time, remembering what it has let through.

    Order of checks: a position on the same subject (already_open), then
    `min_confidence`, `max_open_positions`, and last the room left under
    `max_single_position` and `max_total_exposure` (cut, or blocked under
    10 USDT).
    """

    def __init__(self, risk: RiskLimits, book: Book | None = None) -> None:
        self.risk = risk
        book = book or Book()
        self.exposure = book.exposure
        self.count = len(book.positions)
        # position key -> who holds it, for the already_open reason
        self._held: dict[tuple[str, ...], str] = {
            position_key(p.subject): f"opened by rule {p.rule}" for p in book.positions
        }

    def decide(
        self, subject: Subject, amount: float, confidence: float, rule: str = ""
    ) -> Decision:
        """The decision for one entry; an open or cut counts against later entries."""
        return Decision(*self.verdict(subject, amount, confidence, rule))

    def verdict(
        self, subject: Subject, amount: float, confidence: float, rule: str = ""
    ) -> tuple[DecisionKind, float, str | None]:
        """`decide` as a plain (kind, amount, reason) tuple.

        evaluate() decides thousands of entries per cycle and copies the three
        fields onto each opportunity; building a frozen Decision for each only
        to read it back took about a third of the decision time (benchmark).
        """
        risk = self.risk
        key = position_key(subject)
        if not amount > 0:  # an amount computed from market data can be 0, negative or NaN
            return "blocked", amount, f"the hedge amount {_money(amount)} is not positive"
        if key in self._held:
            return (
                "already_open",
                amount,
                f"a position on {subject.describe()} is already open ({self._held[key]})",
            )
        if risk.min_confidence is not None and confidence < risk.min_confidence:
            return (
                "blocked",
                amount,
                f"min_confidence: confidence {confidence:.2f} is below {risk.min_confidence:g}",
            )
        if risk.max_open_positions is not None and self.count >= risk.max_open_positions:
            return (
                "blocked",
                amount,
                f"max_open_positions: {self.count} of {risk.max_open_positions} already open",
            )
        room, limit = self._room()
        if amount <= room:
            self._take(key, rule, amount)
            return "open", amount, None
        if room < MIN_TRADE:
            left = _money(max(room, 0.0))
            return (
                "blocked",
                amount,
                f"{limit}: {left} left, under the {_money(MIN_TRADE)} minimum",
            )
        self._take(key, rule, room)
        return "cut", room, f"{limit}: cut from {_money(amount)} to {_money(room)}"

    def _room(self) -> tuple[float, str]:
        room, limit = float("inf"), ""
        if self.risk.max_single_position is not None:
            room, limit = self.risk.max_single_position, "max_single_position"
        if self.risk.max_total_exposure is not None:
            total_room = self.risk.max_total_exposure - self.exposure
            if total_room <= room:
                room, limit = total_room, "max_total_exposure"
        return room, limit

    def _take(self, key: tuple[str, ...], rule: str, amount: float) -> None:
        self._held[key] = f"opened earlier in this evaluation by rule {rule}"
        self.exposure += amount
        self.count += 1
