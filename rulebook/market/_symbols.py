"""Map a coin (the base asset, spec 5) to an exchange's linear perp and spot market."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MarketRef", "MarketIndex"]

# Exchanges list low-priced coins per 1000 (or 10,000, a million) units:
# 1000PEPE on Binance and Bybit, plain PEPE on OKX and Gate.
_PREFIX = re.compile(r"^(1000000|100000|10000|1000|100|10|1M|1K)([A-Z][A-Z0-9]*)$")
_MULT = {"1M": 1_000_000, "1K": 1000}


def _split(base: str) -> tuple[int, str]:
    m = _PREFIX.match(base)
    if not m:
        return 1, base
    p = m.group(1)
    return _MULT.get(p) or int(p), m.group(2)


@dataclass(frozen=True)
class MarketRef:
    """A market chosen for a coin. Prices read from it are multiplied by ``scale``
    so that they are per unit of the coin as the operator named it."""

    symbol: str
    settle: str | None
    scale: float
    market: Mapping[str, Any]


class MarketIndex:
    """Markets of one exchange, indexed by their coin with any 1000x prefix removed."""

    def __init__(self, markets: Iterable[Mapping[str, Any]], quote_preference: tuple[str, ...]):
        self.quote_preference = quote_preference
        self._perps: dict[str, list[tuple[int, Mapping[str, Any]]]] = {}
        self._spots: dict[str, list[tuple[int, Mapping[str, Any]]]] = {}
        for m in markets:
            if m.get("active") is False or not m.get("base"):
                continue
            mult, bare = _split(str(m["base"]).upper())
            if m.get("swap") and m.get("linear") and m.get("settle") in quote_preference:
                self._perps.setdefault(bare, []).append((mult, m))
            elif m.get("spot") and m.get("quote") in quote_preference:
                self._spots.setdefault(bare, []).append((mult, m))

    def _pick(self, table: dict[str, list[tuple[int, Mapping[str, Any]]]], coin: str,
              quote_key: str) -> MarketRef | None:
        want_mult, bare = _split(coin)
        cands = table.get(bare)
        if not cands:
            return None

        def rank(c: tuple[int, Mapping[str, Any]]) -> tuple[int, int]:
            mult, m = c
            q = m.get(quote_key)
            qrank = (self.quote_preference.index(q) if q in self.quote_preference
                     else len(self.quote_preference))
            # Prefer the listing whose multiplier matches the name asked for.
            return (qrank, 0 if mult == want_mult else 1)

        mult, m = min(cands, key=rank)
        return MarketRef(symbol=m["symbol"], settle=m.get(quote_key), scale=want_mult / mult,
                         market=m)

    def perp(self, coin: str) -> MarketRef | None:
        return self._pick(self._perps, coin, "settle")

    def spot(self, coin: str) -> MarketRef | None:
        return self._pick(self._spots, coin, "quote")
