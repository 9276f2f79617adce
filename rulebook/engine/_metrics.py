"""Every formula of spec sections 5 and 6, each written once.

Every rate here is a fraction per 8 hours (0.001 is 0.1% per 8h), every
duration is in seconds. Each function works on plain floats and on numpy
arrays alike: the evaluator calls them on arrays over all of a rule's
bindings, and the figures of one opportunity (its JSON, its alert text, the
sort key) on floats, so a threshold changed here changes both at once.
Nothing in this module knows about snapshots.

Spec 5's formulas over raw market data (normalisation `r * 8 / I`, the spot
mid, basis, borrow per 8h) live with the market stage, which computes them
for its views too; they are re-exported here so that the engine reads every
formula from this one module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

# spec 5: written once in the market stage (which the engine builds on)
from rulebook.market import basis_rate, borrow_per_8h, mid_price, normalise_funding

__all__ = [
    "EIGHT_HOURS_S",
    "FULL_FRESH_S",
    "STALE_S",
    "MAX_PRICE_DEVIATION",
    "LOW_RISK_CONFIDENCE",
    "LOW_RISK_BREAKEVEN_S",
    "HIGH_RISK_CONFIDENCE",
    "HIGH_RISK_BREAKEVEN_S",
    "RISK_LEVELS",
    "Leg",
    "normalise_funding",
    "mid_price",
    "basis_rate",
    "borrow_per_8h",
    "spread",
    "apr",
    "spread_first_short",
    "spread_edge",
    "spread_legs",
    "carry_first_short",
    "carry_needs_borrow",
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
    "confidence",
    "risk_level",
]

EIGHT_HOURS_S = 8 * 3600.0
#: fresh_score is 1 up to this age (seconds) ...
FULL_FRESH_S = 60.0
#: ... and falls linearly to 0 at this age.
STALE_S = 300.0
#: price_score reaches 0 at this deviation (0.5%).
MAX_PRICE_DEVIATION = 0.005
#: risk is low when confidence >= 0.8 and breakeven <= 24h ...
LOW_RISK_CONFIDENCE = 0.8
LOW_RISK_BREAKEVEN_S = 24 * 3600.0
#: ... high when confidence < 0.5 or breakeven > 72h, medium otherwise.
HIGH_RISK_CONFIDENCE = 0.5
HIGH_RISK_BREAKEVEN_S = 72 * 3600.0
#: Level names in order; the language compares levels as 0 < 1 < 2.
RISK_LEVELS = ("low", "medium", "high")

Side = Literal["long", "short"]
MarketKind = Literal["perp", "spot"]

#: a float, or a numpy array of floats (one per binding)
F = Any


def _like(result: Any, *inputs: object) -> F:
    """`result` as a plain Python number when no input was an array.

    numpy's where/maximum turn floats into 0-d arrays or numpy scalars; the
    figures of one opportunity stay plain floats (JSON, formatting)."""
    for x in inputs:  # (a loop, not any() over a generator: called ~20 times a cycle)
        if isinstance(x, np.ndarray):
            return result
    return result.item() if isinstance(result, (np.ndarray, np.generic)) else result


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


# -- spec 5: market functions over normalised rates -----------------------------------


def spread(funding_a: F, funding_b: F) -> F:
    """`spread(c, a, b) = funding(c, a) - funding(c, b)`."""
    return funding_a - funding_b


def apr(rate_8h: F) -> F:
    """A per-8h rate as a simple annual rate: three settlements a day, 365 days."""
    return rate_8h * 3 * 365


# -- spec 6: legs and edge per subject -------------------------------------------------


def spread_first_short(funding_a: F, funding_b: F) -> F:
    """Whether `spread(c, a, b)` shorts a's perp: the perp that is paid more is
    short. On a tie (edge 0) the first exchange is the short one, so the
    result is stable."""
    return funding_a >= funding_b


def spread_edge(funding_a: F, funding_b: F) -> F:
    """Edge of a spread subject: the short perp collects `high - low` whatever the signs."""
    return _like(np.abs(spread(funding_a, funding_b)), funding_a, funding_b)


def spread_legs(
    a: str, b: str, funding_a: float, funding_b: float
) -> tuple[tuple[Leg, Leg], float]:
    """Legs and edge of `spread(c, a, b)`: short the perp that is paid more."""
    if spread_first_short(funding_a, funding_b):
        legs = (Leg(a, "perp", "short"), Leg(b, "perp", "long"))
    else:
        legs = (Leg(b, "perp", "short"), Leg(a, "perp", "long"))
    return legs, spread_edge(funding_a, funding_b)


def carry_first_short(funding_8h: F) -> F:
    """Whether a `funding`/`basis` subject shorts the perp (funding >= 0, long
    spot) rather than longs it (funding < 0, short borrowed spot)."""
    return funding_8h >= 0


def carry_needs_borrow(funding_8h: F) -> F:
    """Whether a `funding`/`basis` subject borrows its spot leg (funding < 0)."""
    return funding_8h < 0


def carry_legs(exchange: str, funding_8h: float) -> tuple[Leg, Leg]:
    """Legs of a `funding(c, x)` or `basis(c, x)` subject.

    Funding >= 0: the short perp is paid, hedged by long spot. Funding < 0:
    the long perp is paid, hedged by short (borrowed) spot.
    """
    if carry_first_short(funding_8h):
        return (Leg(exchange, "perp", "short"), Leg(exchange, "spot", "long"))
    return (Leg(exchange, "perp", "long"), Leg(exchange, "spot", "short"))


def carry_edge(funding_8h: F, borrow_8h: F | None) -> F:
    """Edge of a `funding`/`basis` subject: `funding` when >= 0, else
    `abs(funding) - borrow`; `borrow_8h` is needed only when funding < 0."""
    if borrow_8h is None:
        if np.any(carry_needs_borrow(funding_8h)):
            raise ValueError("negative funding needs a borrow rate (the spot leg is borrowed)")
        return funding_8h
    edge = np.where(carry_first_short(funding_8h), funding_8h, np.abs(funding_8h) - borrow_8h)
    return _like(edge, funding_8h, borrow_8h)


def borrow_legs(exchange: str) -> tuple[Leg, Leg]:
    """Legs of a `borrow(c, x)` subject: long perp, short borrowed spot, always."""
    return (Leg(exchange, "perp", "long"), Leg(exchange, "spot", "short"))


def borrow_edge(funding_8h: F, borrow_8h: F) -> F:
    """Edge of a `borrow` subject: the long perp receives `-funding` and pays the borrow."""
    return -funding_8h - borrow_8h


# -- spec 6: the metrics ------------------------------------------------------------


def round_trip_fees(taker_leg1: F, taker_leg2: F) -> F:
    """Fees as a rate of leg notional: both legs opened and closed, `2 * (t1 + t2)`.

    Four taker trades in all. The commonest bug in peers' tools is charging
    one of them.
    """
    return 2.0 * (taker_leg1 + taker_leg2)


def net_rate(edge: F, fees: F, duration_s: F) -> F:
    """`net(d) = edge * (d / 8h) - fees`."""
    return edge * (duration_s / EIGHT_HOURS_S) - fees


def breakeven_s(edge: F, fees: F) -> F:
    """Seconds to earn the fees back, `fees / edge * 8h`; infinite when edge <= 0.

    Infinity makes `breakeven < 24h` false and `breakeven > 72h` true, which
    is what "never breaks even" should do in a rule.
    """
    if type(edge) is float and type(fees) is float:
        # one opportunity's figure (the runtime records thousands): the same
        # IEEE operations as the arrays' below, without a numpy call
        return fees / edge * EIGHT_HOURS_S if edge > 0 else math.inf
    # an overflow is the figure too: fees / edge * 8h past the largest float is inf
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        value = np.where(edge > 0, np.divide(fees, edge) * EIGHT_HOURS_S, np.inf)
    return _like(value, edge, fees)


def pair_deviation(mark_a: F, mark_b: F) -> F:
    """Spread subjects: `abs(mark_a - mark_b) / mean(mark_a, mark_b)`."""
    return _like(np.abs(mark_a - mark_b) / ((mark_a + mark_b) / 2.0), mark_a, mark_b)


def index_deviation(mark: F, index: F) -> F:
    """Other subjects: `abs(mark - index) / index` of the perp."""
    return _like(np.abs(mark - index) / index, mark, index)


def price_score(deviation: F) -> F:
    """`max(0, 1 - dev / 0.5%)`: 1 for equal prices, 0 at 0.5% apart or more."""
    return _like(np.maximum(0.0, 1.0 - deviation / MAX_PRICE_DEVIATION), deviation)


def fresh_score(oldest_age_s: F) -> F:
    """1 up to 60 s old, linearly down to 0 at 300 s, 0 beyond.

    A negative age (an observation stamped after "now", i.e. clock skew when
    live) counts as fresh rather than as better than fresh.
    """
    falling = (STALE_S - oldest_age_s) / (STALE_S - FULL_FRESH_S)
    value = np.where(
        oldest_age_s <= FULL_FRESH_S, 1.0, np.where(oldest_age_s >= STALE_S, 0.0, falling)
    )
    return _like(value, oldest_age_s)


def confidence(price_score_: F, fresh_score_: F) -> F:
    """`confidence = price_score * fresh_score`."""
    return price_score_ * fresh_score_


def risk_level(confidence_: F, breakeven: F) -> F:
    """0 low, 1 medium, 2 high (spec 6). `breakeven` in seconds.

    low: confidence >= 0.8 and breakeven <= 24h; high: confidence < 0.5 or
    breakeven > 72h; medium otherwise. The two tests cannot both hold.
    """
    if type(confidence_) is float and type(breakeven) is float:  # one opportunity's
        if confidence_ < HIGH_RISK_CONFIDENCE or breakeven > HIGH_RISK_BREAKEVEN_S:
            return 2
        return 0 if confidence_ >= LOW_RISK_CONFIDENCE and breakeven <= LOW_RISK_BREAKEVEN_S else 1
    high = (confidence_ < HIGH_RISK_CONFIDENCE) | (breakeven > HIGH_RISK_BREAKEVEN_S)
    low = (confidence_ >= LOW_RISK_CONFIDENCE) & (breakeven <= LOW_RISK_BREAKEVEN_S)
    return _like(np.where(high, 2, np.where(low, 0, 1)), confidence_, breakeven)
