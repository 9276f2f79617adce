"""The six exchanges rulebook knows, in the order the spec lists them.

One list for the stages that must not import each other: the language
(an `Exchange` value must be one of these) and the market stage (which
fetches them). `rulebook.lang.EXCHANGES` and `rulebook.market.EXCHANGES`
are this tuple.
"""

from __future__ import annotations

__all__ = ["EXCHANGES"]

EXCHANGES: tuple[str, ...] = ("backpack", "binance", "bybit", "okx", "gate", "bitget")
