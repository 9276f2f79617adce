"""Published default (lowest tier, no discounts) taker fees per exchange and market.

The spec's order is: the observation's ``taker_fee``, else the configuration,
else these. Observations only carry a fee when the exchange payload states
one (Gate's contract objects do); ccxt's own ``market['taker']`` values are
library defaults, not the exchange's schedule, so they are not used.
Figures as published on each exchange's fee page (regular user / VIP 0) at
the time of writing; see docs/market.md.
"""

from __future__ import annotations

__all__ = ["DEFAULT_TAKER_FEES", "default_taker_fee"]

DEFAULT_TAKER_FEES: dict[str, dict[str, float]] = {
    "backpack": {"perp": 0.0005, "spot": 0.001},
    "binance": {"perp": 0.0005, "spot": 0.001},
    "bybit": {"perp": 0.00055, "spot": 0.001},
    "okx": {"perp": 0.0005, "spot": 0.001},
    "gate": {"perp": 0.0005, "spot": 0.002},
    "bitget": {"perp": 0.0006, "spot": 0.001},
}


def default_taker_fee(exchange: str, market: str) -> float | None:
    """The published default taker fee, or None for an unknown exchange/market."""
    return DEFAULT_TAKER_FEES.get(exchange, {}).get(market)
