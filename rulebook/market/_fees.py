"""Published default (lowest tier, no discounts) taker fees per exchange and market.

The spec's order is: the observation's ``taker_fee``, else the configuration,
else these. Observations only carry a fee when the exchange payload states
one (Gate's contract objects do); ccxt's own ``market['taker']`` values are
library defaults, not the exchange's schedule, so they are not used.
The figures live in each exchange's profile (`rulebook/_exchanges.py`); this
is the table view of them. Sources: docs/market.md.
"""

from __future__ import annotations

from rulebook._exchanges import PROFILES

__all__ = ["DEFAULT_TAKER_FEES", "default_taker_fee"]

DEFAULT_TAKER_FEES: dict[str, dict[str, float]] = {
    p.id: p.taker_fees.by_market() for p in PROFILES.values()
}


def default_taker_fee(exchange: str, market: str) -> float | None:
    """The published default taker fee, or None for an unknown exchange/market."""
    return DEFAULT_TAKER_FEES.get(exchange, {}).get(market)
