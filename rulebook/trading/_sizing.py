"""Hedge sizing: the same coin quantity on both legs, on both markets' grids.

    size = size_hedge(1000.0, [leg_a, leg_b], [price_a, price_b])
    size.qty, size.amounts, size.blocked

Pure and small, so that the paper and live executors size alike. The
quantity is the leg notional divided by the higher of the legs' prices (so
no leg exceeds the notional the risk limits allowed), rounded *down* to a
multiple of both markets' amount steps, then checked against each market's
minimum amount and cost. A hedge that rounding makes too small is blocked
with the reason, never rounded up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = ["HedgeSize", "LegMarket", "common_step", "size_hedge"]

# ccxt's precision modes (ccxt.base.decimal_to_precision): 2 decimal places, 3 significant
# digits, 4 tick size. Spelled out so this module stays importable without ccxt.
_DECIMAL_PLACES, _SIGNIFICANT_DIGITS, _TICK_SIZE = 2, 3, 4


@dataclass(frozen=True, slots=True)
class LegMarket:
    """What sizing needs to know of one leg's market, in coins of the rule's coin.

    `coins_per_unit`: coins per unit of the exchange's order amount (a contract
    of 0.01 BTC: 0.01; a 1000PEPE market: 1000). `step`, `min_qty` are in coins,
    `min_cost` in the quote currency. None: no constraint (paper, an unknown market).
    """

    exchange: str
    market: str  # perp | spot
    symbol: str | None = None
    coins_per_unit: float = 1.0
    #: exchange price per unit of its base -> price per coin (1/1000 on 1000PEPE)
    price_scale: float = 1.0
    step: float | None = None
    min_qty: float | None = None
    max_qty: float | None = None
    min_cost: float | None = None

    @classmethod
    def from_ccxt(
        cls,
        exchange: str,
        market_kind: str,
        market: Mapping[str, Any],
        precision_mode: int = _TICK_SIZE,
        scale: float = 1.0,
    ) -> LegMarket:
        """From a ccxt market dict; `scale` is the coin's price scale (1/1000 on 1000PEPE)."""
        contract = _num(market.get("contractSize")) if market.get("contract") else None
        per_unit = (contract or 1.0) / (scale or 1.0)
        prec = _num((market.get("precision") or {}).get("amount"))
        step_units: float | None
        if prec is None:
            step_units = None
        elif precision_mode == _DECIMAL_PLACES:
            step_units = 10.0 ** (-int(prec))
        elif precision_mode == _SIGNIFICANT_DIGITS:
            step_units = None  # no fixed grid; ccxt rounds per value (no exchange of ours)
        else:
            step_units = prec
        limits = market.get("limits") or {}
        amount = limits.get("amount") or {}
        cost = limits.get("cost") or {}
        min_units = _num(amount.get("min"))
        max_units = _num(amount.get("max"))
        return cls(
            exchange=exchange,
            market=market_kind,
            symbol=market.get("symbol"),
            coins_per_unit=per_unit,
            price_scale=scale or 1.0,
            step=None if step_units is None else _mul(step_units, per_unit),
            min_qty=None if min_units is None else min_units * per_unit,
            max_qty=None if max_units is None else max_units * per_unit,
            min_cost=_num(cost.get("min")),
        )

    def units(self, qty: float) -> float:
        """Coins to the exchange's order amount (contracts, or 1000s of a coin)."""
        units = qty / self.coins_per_unit
        return float(round(units, 12))  # 0.30000000000000004 contracts is 0.3


@dataclass(frozen=True, slots=True)
class HedgeSize:
    qty: float  # coins on every leg; 0 when blocked
    amounts: tuple[float, ...]  # per leg, in the exchange's order amount
    step: float | None  # the common grid the quantity sits on
    blocked: str | None = None

    @property
    def ok(self) -> bool:
        return self.blocked is None


def _num(x: Any) -> float | None:
    if x is None or isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def _mul(a: float, b: float) -> float:
    return float(Decimal(repr(a)) * Decimal(repr(b)))


def common_step(steps: Sequence[float | None]) -> float | None:
    """The least common multiple of decimal steps (0.001 and 0.01 give 0.01; 0.1 and
    0.25 give 0.5), exact in decimal arithmetic; None when no leg has a step."""
    given = [Decimal(repr(s)).normalize() for s in steps if s]
    if not given:
        return None
    places = max(max(0, -d.as_tuple().exponent) for d in given)  # type: ignore[operator]
    scale = Decimal(10) ** places
    ints = [int((d * scale).to_integral_value()) for d in given]
    lcm = ints[0]
    for i in ints[1:]:
        lcm = lcm * i // math.gcd(lcm, i)
    return float(Decimal(lcm) / scale)


def size_hedge(notional: float, legs: Sequence[LegMarket], prices: Sequence[float]) -> HedgeSize:
    """The coin quantity for a hedge of `notional` per leg, or the reason it is blocked."""
    if not (math.isfinite(notional) and notional > 0):
        return HedgeSize(0.0, (), None, f"notional {notional!r} is not a positive amount")
    for leg, price in zip(legs, prices, strict=True):
        if not (math.isfinite(price) and price > 0):
            return HedgeSize(0.0, (), None, f"no usable price for {leg.market} on {leg.exchange}")
    raw = notional / max(prices)
    step = common_step([leg.step for leg in legs])
    if step is None:
        qty = raw
    else:
        # floor to the grid; the epsilon keeps 0.3/0.1 = 2.9999999999999996 at 3 steps
        qty = math.floor(raw / step + 1e-9) * step
        qty = float(Decimal(repr(qty)).quantize(Decimal(repr(step)).normalize()))
    if qty <= 0:
        grids = ", ".join(f"{lg.market} on {lg.exchange} {lg.step:g}" for lg in legs if lg.step)
        return HedgeSize(
            0.0, (), step,
            f"too small: {notional:.2f} per leg is {raw:.8g} coins, under one step "
            f"({step:g}) of the legs' common grid ({grids})",
        )  # fmt: skip
    for leg, price in zip(legs, prices, strict=True):
        where = f"{leg.market} on {leg.exchange}"
        if leg.min_qty is not None and qty < leg.min_qty * (1 - 1e-9):
            return HedgeSize(
                0.0, (), step,
                f"too small after rounding: {qty:.8g} coins is under the minimum amount "
                f"{leg.min_qty:g} of {where}",
            )  # fmt: skip
        if leg.min_cost is not None and qty * price < leg.min_cost * (1 - 1e-9):
            return HedgeSize(
                0.0, (), step,
                f"too small after rounding: {qty:.8g} coins at {price:g} is "
                f"{qty * price:.2f}, under the minimum cost {leg.min_cost:g} of {where}",
            )  # fmt: skip
        if leg.max_qty is not None and qty > leg.max_qty * (1 + 1e-9):
            return HedgeSize(
                0.0, (), step,
                f"too large: {qty:.8g} coins is above the maximum amount {leg.max_qty:g} "
                f"of {where}",
            )  # fmt: skip
    return HedgeSize(qty, tuple(leg.units(qty) for leg in legs), step)
