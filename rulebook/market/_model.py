"""The observation model: one line of a snapshot file (spec section 9)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

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

# Values are checked, not trusted (spec 9). The bounds below are documented in
# docs/limits.md; a value outside them makes its line invalid.
#: prices (mark, index, bid, ask, settlement mark) must lie in this range: far
#: beyond any traded coin, but it keeps 1e300 (and the inf it turns into) out.
PRICE_RANGE = (1e-12, 1e12)
#: |funding rate| per interval (spec 9: within 10%)
MAX_FUNDING_RATE = 0.10
#: funding intervals from 1 minute to 24 hours (spec 9)
INTERVAL_RANGE_H = (1.0 / 60.0, 24.0)
#: a borrow rate of more than 100% a day is a unit error
MAX_BORROW_RATE_DAILY = 1.0
#: 24h volume in the quote currency
MAX_VOLUME = 1e15


def _number(v: object) -> object:
    """A JSON number and nothing else: `true` is not 1.0 and `"100.5"` is not a price."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"expected a number, got {_json_type(v)}")
    if isinstance(v, int):
        if abs(v) > 1e300:  # float(v) would overflow
            raise ValueError("number too large")
        return float(v)
    if not math.isfinite(v):
        raise ValueError("must be a finite number")
    return v


def _integer(v: object) -> object:
    """A JSON integer (a float with an integral value is accepted: 1.7e12)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"expected an integer, got {_json_type(v)}")
    if isinstance(v, float):
        if not (math.isfinite(v) and v.is_integer()):
            raise ValueError(f"expected an integer, got {v!r}")
        return int(v)
    return v


def _string(v: object) -> object:
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {_json_type(v)}")
    return v


def _json_type(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


Number = Annotated[float, BeforeValidator(_number)]
Integer = Annotated[int, BeforeValidator(_integer)]
Text = Annotated[str, BeforeValidator(_string)]


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


def check_milliseconds(v: int) -> int:
    """A millisecond timestamp (observations and settlement records alike)."""
    if v < _MIN_MS:
        raise ValueError(f"{v} is not a millisecond timestamp (seconds? multiply by 1000)")
    if v > _MAX_MS:
        raise ValueError(f"{v} is not a millisecond timestamp (too large: micro/nanoseconds?)")
    return v


def check_exchange(v: str) -> str:
    if v not in EXCHANGES:
        raise ValueError(f"unknown exchange {v!r}; expected one of {', '.join(EXCHANGES)}")
    return v


def check_coin(v: str) -> str:
    if not v or not v.isascii() or not v.isalnum() or v.upper() != v:
        raise ValueError(f"coin {v!r} must be upper-case letters and digits, like SOL or 1000PEPE")
    return v


class Observation(BaseModel):
    """One observation of one market of one coin on one exchange at time ``ts``.

    Unknown keys are ignored (a newer writer may add fields); ``read_jsonl``
    reports them once per file as warnings so that typos do not go unnoticed.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    ts: Integer
    exchange: Text
    coin: Annotated[Text, Field(max_length=32)]
    market: Market
    symbol: Annotated[Text, Field(max_length=100)] | None = None
    funding_rate: Number | None = None
    funding_interval_h: Number | None = None
    next_funding_ts: Integer | None = None
    mark: Number | None = None
    index: Number | None = None
    bid: Number | None = None
    ask: Number | None = None
    volume_24h: Number | None = None
    taker_fee: Number | None = None
    borrow_rate_daily: Number | None = None

    @field_validator("ts", "next_funding_ts")
    @classmethod
    def _milliseconds(cls, v: int | None) -> int | None:
        return None if v is None else check_milliseconds(v)

    @field_validator("exchange")
    @classmethod
    def _known_exchange(cls, v: str) -> str:
        return check_exchange(v)

    @field_validator("coin")
    @classmethod
    def _coin_form(cls, v: str) -> str:
        return check_coin(v)

    @field_validator("mark", "index", "bid", "ask")
    @classmethod
    def _positive_price(cls, v: float | None) -> float | None:
        if v is not None and not v > 0:
            raise ValueError(f"price must be positive, got {v}")
        if v is not None and not PRICE_RANGE[0] <= v <= PRICE_RANGE[1]:
            raise ValueError(f"price {v} is outside {PRICE_RANGE[0]:g}..{PRICE_RANGE[1]:g}")
        return v

    @field_validator("volume_24h", "borrow_rate_daily")
    @classmethod
    def _non_negative(cls, v: float | None) -> float | None:
        if v is not None and v < 0:
            raise ValueError(f"must not be negative, got {v}")
        return v

    @field_validator("volume_24h")
    @classmethod
    def _volume(cls, v: float | None) -> float | None:
        if v is not None and v > MAX_VOLUME:
            raise ValueError(f"24h volume {v} is beyond {MAX_VOLUME:g}")
        return v

    @field_validator("borrow_rate_daily")
    @classmethod
    def _borrow(cls, v: float | None) -> float | None:
        if v is not None and v > MAX_BORROW_RATE_DAILY:
            raise ValueError(f"borrow rate {v} per day is not a fraction (0.0002 is 0.02%)")
        return v

    @field_validator("funding_interval_h")
    @classmethod
    def _interval(cls, v: float | None) -> float | None:
        # Real intervals run from 1h to 8h; 24h is the longest any venue has used,
        # and spec 9 admits 1 minute to 24 hours.
        low, high = INTERVAL_RANGE_H
        if v is not None and not low <= v <= high:
            raise ValueError(f"funding interval must be between 1 minute and 24 hours, got {v}h")
        return v

    @field_validator("funding_rate")
    @classmethod
    def _funding(cls, v: float | None) -> float | None:
        # Exchange caps are a few percent per interval; spec 9 admits up to 10%.
        if v is not None and not abs(v) <= MAX_FUNDING_RATE:
            raise ValueError(
                f"funding rate {v} is outside +-10% per interval (a fraction: 0.0001 is 0.01%)"
            )
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


