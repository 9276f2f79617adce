"""Funding intervals: parse every unit exchanges use, and pick one per symbol.

Exchanges state the interval in different units (Bybit minutes "480", Gate
seconds 28800, Bitget hours "8", Backpack milliseconds 28800000, ccxt "8h"),
and it changes per symbol and over time. Getting it wrong scales a rate by
2x to 8x, so the source of every interval is explicit and the fallback is a
documented per-exchange default, never a silent 8. Each exchange's sources and
default are in its profile (`rulebook/_exchanges.py`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rulebook._exchanges import PROFILES

__all__ = ["parse_interval_h", "interval_from_market_info", "DEFAULT_INTERVAL_H"]

#: Used only when neither the payload, a funding-interval call nor the market
#: data states an interval (each profile's `default_interval_h`).
DEFAULT_INTERVAL_H: dict[str, float] = {p.id: p.default_interval_h for p in PROFILES.values()}

# How many of each unit make an hour; dividing keeps 28800000 ms exactly 8.0.
_PER_H = {"ms": 3_600_000.0, "s": 3600.0, "m": 60.0, "min": 60.0, "h": 1.0, "d": 1 / 24}
_TEXT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|m|h|d)\s*$")


def parse_interval_h(value: Any, unit: str = "h") -> float | None:
    """Hours in ``value``: ``"8h"``, ``"30m"``, or a bare number in ``unit``.

    A bare number that ccxt passes through unchanged (OKX gives the millisecond
    difference when it is not one of its known intervals) is read in ``unit``.
    Returns None for anything unusable (None, empty, zero, negative, garbage).
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        m = _TEXT.match(value)
        if m:
            hours = round(float(m.group(1)) / _PER_H[m.group(2)], 9)
            return hours if hours > 0 else None
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, int | float):
        return None
    hours = round(float(value) / _PER_H[unit], 9)
    return hours if 0 < hours <= 24 * 7 else None


def interval_from_market_info(exchange: str, market: Mapping[str, Any] | None) -> float | None:
    """The interval stated by the exchange's own market (instrument) data, if any."""
    if not market:
        return None
    profile = PROFILES.get(exchange)
    spec = None if profile is None else profile.market_interval
    info = market.get("info") or {}
    if spec is None or not isinstance(info, Mapping):
        return None
    return parse_interval_h(info.get(spec.name), spec.unit)
