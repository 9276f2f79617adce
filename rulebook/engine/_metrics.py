"""The opportunity metrics of spec section 6, as pure functions of plain numbers.

Every rate here is a fraction per 8 hours (0.001 is 0.1% per 8h), every
duration is in seconds. Nothing in this module knows about snapshots: the
environment (`_env.py`) looks the numbers up and calls these, so each formula
is written once and tested against hand computation once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

# spec 5's normalisation lives with the snapshots; re-exported for the engine's callers
from rulebook.market import normalise_funding

__all__ = [
    "EIGHT_HOURS_S",
    "FULL_FRESH_S",
    "STALE_S",
    "MAX_PRICE_DEVIATION",
    "RISK_LEVELS",
    "Leg",
    "normalise_funding",
    "apr",
    "spread_legs",
    "carry_legs",
    "carry_edge",
    "borrow_legs",
    "borrow_edge",
    "round_trip_fees",
    "net_rate",
    "breakeven_s",
    "pair_deviation",
    "index_deviation",
    "price_score",
    "fresh_score",
    "risk_level",
]

EIGHT_HOURS_S = 8 * 3600.0
#: fresh_score is 1 up to this age (seconds) ...
FULL_FRESH_S = 60.0
#: ... and falls linearly to 0 at this age.
STALE_S = 300.0
#: price_score reaches 0 at this deviation (0.5%).
MAX_PRICE_DEVIATION = 0.005
#: Level names in order; the language compares levels as 0 < 1 < 2.
RISK_LEVELS = ("low", "medium", "high")

Side = Literal["long", "short"]
MarketKind = Literal["perp", "spot"]


@dataclass(frozen=True, slots=True)
class Leg:
    """One leg of a position: a side of one market on one exchange."""

    exchange: str
    market: MarketKind
    side: Side

    def to_dict(self) -> dict[str, str]:
        return {"exchange": self.exchange, "market": self.market, "side": self.side}

    def describe(self) -> str:
        return f"{self.side} {self.market} {self.exchange}"


def apr(rate_8h: float) -> float:
    """A per-8h rate as a simple annual rate: three settlements a day, 365 days."""
    return rate_8h * 3 * 365


def spread_legs(
    a: str, b: str, funding_a: float, funding_b: float
) -> tuple[tuple[Leg, Leg], float]:
    """Legs and edge of `spread(c, a, b)`: short the perp that is paid more.

    The short perp receives funding when the rate is positive, so the position
    collects `funding_high - funding_low` per 8h whatever the signs. On a tie
    (edge 0) the first exchange is the short one, so the result is stable.
    """
    if funding_a >= funding_b:
        legs = (Leg(a, "perp", "short"), Leg(b, "perp", "long"))
    else:
        legs = (Leg(b, "perp", "short"), Leg(a, "perp", "long"))
    return legs, abs(funding_a - funding_b)


def carry_legs(exchange: str, funding_8h: float) -> tuple[Leg, Leg]:
    """Legs of a `funding(c, x)` or `basis(c, x)` subject.

    Funding >= 0: the short perp is paid, hedged by long spot. Funding < 0:
    the long perp is paid, hedged by short (borrowed) spot.
    """
    if funding_8h >= 0:
        return (Leg(exchange, "perp", "short"), Leg(exchange, "spot", "long"))
    return (Leg(exchange, "perp", "long"), Leg(exchange, "spot", "short"))


def carry_edge(funding_8h: float, borrow_8h: float | None) -> float:
    """Edge of a `funding`/`basis` subject; `borrow_8h` is needed only when funding < 0."""
    if funding_8h >= 0:
        return funding_8h
    if borrow_8h is None:
        raise ValueError("negative funding needs a borrow rate (the spot leg is borrowed)")
    return abs(funding_8h) - borrow_8h


def borrow_legs(exchange: str) -> tuple[Leg, Leg]:
    """Legs of a `borrow(c, x)` subject: long perp, short borrowed spot, always."""
    return (Leg(exchange, "perp", "long"), Leg(exchange, "spot", "short"))


def borrow_edge(funding_8h: float, borrow_8h: float) -> float:
    """Edge of a `borrow` subject: the long perp receives `-funding` and pays the borrow."""
    return -funding_8h - borrow_8h


def round_trip_fees(taker_leg1: float, taker_leg2: float) -> float:
    """Fees as a rate of leg notional: both legs opened and closed, `2 * (t1 + t2)`.

    Four taker trades in all. The commonest bug in peers' tools is charging
    one of them.
    """
    return 2.0 * (taker_leg1 + taker_leg2)


def net_rate(edge: float, fees: float, duration_s: float) -> float:
    """`net(d) = edge * (d / 8h) - fees`."""
    return edge * (duration_s / EIGHT_HOURS_S) - fees


def breakeven_s(edge: float, fees: float) -> float:
    """Seconds to earn the fees back, `fees / edge * 8h`; infinite when edge <= 0.

    Infinity makes `breakeven < 24h` false and `breakeven > 72h` true, which
    is what "never breaks even" should do in a rule.
    """
    if edge <= 0:
        return math.inf
    return fees / edge * EIGHT_HOURS_S


def pair_deviation(mark_a: float, mark_b: float) -> float:
    """Spread subjects: `abs(mark_a - mark_b) / mean(mark_a, mark_b)`."""
    return abs(mark_a - mark_b) / ((mark_a + mark_b) / 2.0)


def index_deviation(mark: float, index: float) -> float:
    """Other subjects: `abs(mark - index) / index` of the perp."""
    return abs(mark - index) / index


def price_score(deviation: float) -> float:
    """`max(0, 1 - dev / 0.5%)`: 1 for equal prices, 0 at 0.5% apart or more."""
    return max(0.0, 1.0 - deviation / MAX_PRICE_DEVIATION)


def fresh_score(oldest_age_s: float) -> float:
    """1 up to 60 s old, linearly down to 0 at 300 s, 0 beyond.

    A negative age (an observation stamped after "now", i.e. clock skew when
    live) counts as fresh rather than as better than fresh.
    """
    if oldest_age_s <= FULL_FRESH_S:
        return 1.0
    if oldest_age_s >= STALE_S:
        return 0.0
    return (STALE_S - oldest_age_s) / (STALE_S - FULL_FRESH_S)


def risk_level(confidence: float, breakeven: float) -> int:
    """0 low, 1 medium, 2 high (spec 6). `breakeven` in seconds.

    low: confidence >= 0.8 and breakeven <= 24h; high: confidence < 0.5 or
    breakeven > 72h; medium otherwise. The two tests cannot both hold.
    """
    if confidence < 0.5 or breakeven > 72 * 3600.0:
        return 2
    if confidence >= 0.8 and breakeven <= 24 * 3600.0:
        return 0
    return 1
