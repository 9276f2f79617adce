"""The observation model: one line of a snapshot file (spec section 9)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from rulebook._exchanges import EXCHANGES

__all__ = [
    "EXCHANGES",
    "MARKETS",
    "Observation",
    "Market",
    "normalise_funding",
    "mid_price",
    "basis_rate",
    "borrow_per_8h",
]

MARKETS: tuple[str, ...] = ("perp", "spot", "borrow")

Market = Literal["perp", "spot", "borrow"]

F = Any  # a float, or a numpy array of floats


# Spec 5's formulas over market data, each written once: snapshot views,
# observations and the engine's metrics (which re-exports them, see
# `rulebook.engine._metrics`) all call these, so the figures cannot disagree.
# Plain arithmetic: each works on floats and on numpy arrays alike.


def normalise_funding(rate: F, interval_h: F) -> F:
    """One interval's funding rate as a rate per 8h (spec 5): `r * 8 / I`."""
    return rate * 8.0 / interval_h


def mid_price(bid: F, ask: F) -> F:
    """The spot mid: `(bid + ask) / 2`."""
    return (bid + ask) / 2.0


def basis_rate(mark: F, mid: F) -> F:
    """`basis(coin, ex)` (spec 5): `(perp mark - spot mid) / spot mid`."""
    return (mark - mid) / mid


def borrow_per_8h(daily: F) -> F:
    """A daily margin borrow rate per 8h (spec 5): `daily / 3`."""
    return daily / 3.0

# Anything below this is not a millisecond timestamp after 2001-09-09: most likely
# seconds, the commonest unit mistake in exchange payloads (Gate's
# funding_next_apply is in seconds). Rejecting it beats an "age" of 50 years.
_MIN_MS = 1_000_000_000_000
# Year 2286 in ms: beyond is microseconds or nanoseconds.
_MAX_MS = 10_000_000_000_000


class Observation(BaseModel):
    """One observation of one market of one coin on one exchange at time ``ts``.

    Unknown keys are ignored (a newer writer may add fields); ``read_jsonl``
    reports them once per file as warnings so that typos do not go unnoticed.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    ts: int
    exchange: str
    coin: str
    market: Market
    symbol: str | None = None
    funding_rate: float | None = None
    funding_interval_h: float | None = None
    next_funding_ts: int | None = None
    mark: float | None = None
    index: float | None = None
    bid: float | None = None
    ask: float | None = None
    volume_24h: float | None = None
    taker_fee: float | None = None
    borrow_rate_daily: float | None = None

    @field_validator("ts", "next_funding_ts")
    @classmethod
    def _milliseconds(cls, v: int | None) -> int | None:
        if v is None:
            return v
        if v < _MIN_MS:
            raise ValueError(f"{v} is not a millisecond timestamp (seconds? multiply by 1000)")
        if v > _MAX_MS:
            raise ValueError(f"{v} is not a millisecond timestamp (too large: micro/nanoseconds?)")
        return v

    @field_validator("exchange")
    @classmethod
    def _known_exchange(cls, v: str) -> str:
        if v not in EXCHANGES:
            raise ValueError(f"unknown exchange {v!r}; expected one of {', '.join(EXCHANGES)}")
        return v

    @field_validator("coin")
    @classmethod
    def _coin_form(cls, v: str) -> str:
        if not v or not v.isascii() or not v.isalnum() or v.upper() != v:
            raise ValueError(f"coin {v!r} must be upper-case letters and digits, like SOL or 1000PEPE")
        return v

    @field_validator("mark", "index", "bid", "ask")
    @classmethod
    def _positive_price(cls, v: float | None) -> float | None:
        if v is not None and not v > 0:
            raise ValueError(f"price must be positive, got {v}")
        return v

    @field_validator("volume_24h", "borrow_rate_daily")
    @classmethod
    def _non_negative(cls, v: float | None) -> float | None:
        if v is not None and v < 0:
            raise ValueError(f"must not be negative, got {v}")
        return v

    @field_validator("funding_interval_h")
    @classmethod
    def _interval(cls, v: float | None) -> float | None:
        # Real intervals run from 1h to 8h; 24h is the longest any venue has used.
        if v is not None and not 0 < v <= 24:
            raise ValueError(f"funding interval must be in (0, 24] hours, got {v}")
        return v

    @field_validator("funding_rate")
    @classmethod
    def _funding(cls, v: float | None) -> float | None:
        # Exchange caps are a few percent per interval; 100% is a unit error.
        if v is not None and not abs(v) < 1:
            raise ValueError(f"funding rate {v} is not a fraction per interval (0.0001 is 0.01%)")
        return v

    @field_validator("taker_fee")
    @classmethod
    def _fee(cls, v: float | None) -> float | None:
        if v is not None and not 0 <= v < 0.05:
            raise ValueError(f"taker fee {v} is not a fraction in [0, 0.05) (0.0005 is 0.05%)")
        return v

    @model_validator(mode="after")
    def _market_fields(self) -> Observation:
        if self.market != "perp":
            for name in ("funding_rate", "funding_interval_h", "next_funding_ts", "mark", "index"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} belongs to a perp observation, not {self.market}")
        if self.market == "borrow":
            for name in ("bid", "ask", "volume_24h", "taker_fee"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} does not belong to a borrow observation")
            if self.borrow_rate_daily is None:
                raise ValueError("a borrow observation needs borrow_rate_daily")
        elif self.borrow_rate_daily is not None:
            raise ValueError(f"borrow_rate_daily belongs to a borrow observation, not {self.market}")
        if self.bid is not None and self.ask is not None and self.bid > self.ask:
            raise ValueError(f"crossed book: bid {self.bid} > ask {self.ask}")
        return self

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.exchange, self.coin, self.market)

    def funding_8h(self) -> float | None:
        """Funding per 8 hours, normalised by this observation's own interval (spec 5)."""
        if self.funding_rate is None or self.funding_interval_h is None:
            return None
        return normalise_funding(self.funding_rate, self.funding_interval_h)

    def mid(self) -> float | None:
        if self.bid is None or self.ask is None:
            return None
        return mid_price(self.bid, self.ask)

    def to_json(self) -> str:
        """One JSON line, without the null fields (the spec lets them be absent)."""
        return self.model_dump_json(exclude_none=True)


