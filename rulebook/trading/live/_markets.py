"""What a ruleset can trade, and each market's rules on each exchange.

    needs = tradable(ruleset)         # TradeNeeds: (exchange, coin, market) and borrows
    venue.leg_market("SOL", "perp")   # LegMarket for sizing, with the ccxt symbol
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rulebook.lang import HedgeAction, Ruleset

__all__ = ["TradeNeeds", "tradable"]


@dataclass(slots=True)
class TradeNeeds:
    """Every market a ruleset's hedges can open, and where they may need a borrow."""

    markets: set[tuple[str, str, str]] = field(default_factory=set)  # exchange, coin, market
    borrow_always: set[tuple[str, str]] = field(default_factory=set)  # `borrow` subjects
    borrow_maybe: set[tuple[str, str]] = field(default_factory=set)  # carry under negative funding
    rules: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (exchange, coin) -> rules

    @property
    def exchanges(self) -> list[str]:
        return sorted({e for e, _, _ in self.markets})

    def add_positions(self, legs: Iterable[tuple[str, str, str]]) -> None:
        """Open positions' markets (their rule may be gone after a reload) must trade too."""
        self.markets.update(legs)


def tradable(ruleset: Ruleset) -> TradeNeeds:
    needs = TradeNeeds()
    for rule in ruleset.rules:
        if not any(isinstance(a, HedgeAction) for a in rule.actions):
            continue
        for b in rule.bindings:
            s = b.subject
            if s is None:
                continue
            for x in s.exchanges:
                needs.rules.setdefault((x, s.coin), set()).add(rule.name)
                needs.markets.add((x, s.coin, "perp"))
            if s.kind in ("funding", "basis", "borrow"):
                x = s.exchanges[0]
                needs.markets.add((x, s.coin, "spot"))
                (needs.borrow_always if s.kind == "borrow" else needs.borrow_maybe).add((x, s.coin))
    return needs
