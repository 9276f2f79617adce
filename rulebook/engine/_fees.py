"""Taker fees: the observation's own, else the configuration, else a published default.

Spec section 6 orders the sources. The last resort is the market stage's
table of each exchange's base-tier (no VIP, no token discount) taker fee
(`rulebook.market.DEFAULT_TAKER_FEES`, sources in docs/market.md), because a
missing fee must never silently become 0, which would make every trade look
free. Fees change, so an operator with a better tier sets them in the
configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from rulebook.market import DEFAULT_TAKER_FEES

__all__ = ["DEFAULT_TAKER_FEES", "EngineConfig", "FeeSource", "resolve_taker_fee"]

FeeSource = Literal["observation", "config", "default"]

_MARKETS = ("perp", "spot")


class EngineConfig(BaseModel):
    """What the engine needs besides rules and market data.

    `taker_fees` overrides the defaults per exchange and market, e.g.
    `{"binance": {"perp": 0.0004}}` for a VIP tier; an observation's own
    `taker_fee` still wins, since it is what the exchange reported.
    """

    model_config = ConfigDict(frozen=True)

    taker_fees: dict[str, dict[str, float]] = {}

    @field_validator("taker_fees")
    @classmethod
    def _known(cls, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for exchange, by_market in v.items():
            if exchange not in DEFAULT_TAKER_FEES:
                known = ", ".join(DEFAULT_TAKER_FEES)
                raise ValueError(f"taker_fees: unknown exchange {exchange!r} (one of {known})")
            for market, fee in by_market.items():
                if market not in _MARKETS:
                    raise ValueError(f"taker_fees.{exchange}: market {market!r} is not perp or spot")
                if not 0 <= fee < 0.05:
                    raise ValueError(
                        f"taker_fees.{exchange}.{market}: {fee} is not a fraction in [0, 0.05)"
                        " (0.0005 is 0.05%)"
                    )
        return v


def resolve_taker_fee(
    exchange: str,
    market: str,
    observed: float | None,
    configured: Mapping[str, Mapping[str, float]] | None = None,
) -> tuple[float, FeeSource]:
    """The taker fee for one leg and where it came from."""
    if observed is not None:
        return observed, "observation"
    if configured:
        fee = configured.get(exchange, {}).get(market)
        if fee is not None:
            return fee, "config"
    return DEFAULT_TAKER_FEES[exchange][market], "default"
