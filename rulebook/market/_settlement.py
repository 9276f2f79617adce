"""The settlement record: what an exchange actually paid at one settlement (spec section 9).

    {"ts": 1753113600000, "exchange": "binance", "coin": "SOL", "market": "settlement",
     "funding_rate": 0.000093, "funding_interval_h": 8, "mark": 182.40}

A perp observation's ``funding_rate`` is a forecast shown at its ``ts``; a
settlement record is the rate that settled at its ``ts`` for the interval it
covered. Rules never see these records: they are not observations, a
:class:`SnapshotView` holds none, and only the runtime's settlement step reads
them (``docs/settlement.md``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ._model import (
    INTERVAL_RANGE_H,
    MAX_FUNDING_RATE,
    PRICE_RANGE,
    Integer,
    Number,
    Text,
    check_coin,
    check_exchange,
    check_milliseconds,
)

__all__ = ["Settlement", "SETTLEMENT_FIELDS"]

# Spec 9's bounds, the same as an observation's (docs/limits.md): rates within
# +-10% per interval, intervals from 1 minute to 24 hours, prices finite and positive.


class Settlement(BaseModel):
    """One settlement of one perpetual on one exchange: the rate that settled at ``ts``."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    # strict JSON types (`true` is not 1.0, "0.0001" is not a rate): docs/limits.md
    ts: Integer
    exchange: Text
    coin: Annotated[Text, Field(max_length=32)]
    market: Literal["settlement"] = "settlement"
    symbol: Annotated[Text, Field(max_length=100)] | None = None
    funding_rate: Number
    funding_interval_h: Number | None = None
    mark: Number | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_observation_fields(cls, data: Any) -> Any:
        # A perp field on a settlement line is a writer's mistake, not an extension.
        if isinstance(data, dict):
            stray = sorted(k for k in data if k in _OBSERVATION_ONLY and data[k] is not None)
            if stray:
                raise ValueError(f"{', '.join(stray)} do(es) not belong to a settlement record")
        return data

    @field_validator("ts")
    @classmethod
    def _milliseconds(cls, v: int) -> int:
        return check_milliseconds(v)

    @field_validator("exchange")
    @classmethod
    def _known_exchange(cls, v: str) -> str:
        return check_exchange(v)

    @field_validator("coin")
    @classmethod
    def _coin_form(cls, v: str) -> str:
        return check_coin(v)

    @field_validator("funding_rate")
    @classmethod
    def _rate(cls, v: float) -> float:
        if not abs(v) <= MAX_FUNDING_RATE:
            raise ValueError(f"funding rate {v} is outside +-10% per interval (0.0001 is 0.01%)")
        return v

    @field_validator("funding_interval_h")
    @classmethod
    def _interval(cls, v: float | None) -> float | None:
        low, high = INTERVAL_RANGE_H
        if v is not None and not low <= v <= high:
            raise ValueError(f"funding interval must be between 1 minute and 24 hours, got {v}h")
        return v

    @field_validator("mark")
    @classmethod
    def _price(cls, v: float | None) -> float | None:
        if v is not None and not v > 0:
            raise ValueError(f"price must be finite and positive, got {v}")
        if v is not None and not PRICE_RANGE[0] <= v <= PRICE_RANGE[1]:
            raise ValueError(f"price {v} is outside {PRICE_RANGE[0]:g}..{PRICE_RANGE[1]:g}")
        return v

    @property
    def key(self) -> tuple[str, str]:
        return (self.exchange, self.coin)

    def to_json(self) -> str:
        """One JSON line, without the null fields."""
        return self.model_dump_json(exclude_none=True)


#: every key a settlement line may carry
SETTLEMENT_FIELDS = frozenset(Settlement.model_fields)
_OBSERVATION_ONLY = frozenset(
    {"next_funding_ts", "index", "bid", "ask", "volume_24h", "taker_fee", "borrow_rate_daily"}
)
