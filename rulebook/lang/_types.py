"""The language's types, built-in names and function signatures (spec 4 to 7)."""

from __future__ import annotations

from dataclasses import dataclass

from rulebook._exchanges import EXCHANGES

__all__ = [
    "NUMBER",
    "RATE",
    "MONEY",
    "DURATION",
    "BOOL",
    "LEVEL",
    "COIN",
    "EXCHANGE",
    "SCALABLE",
    "ORDERED",
    "EXCHANGES",
    "LEVELS",
    "MARKET_FUNCTIONS",
    "SUBJECT_FUNCTIONS",
    "METRICS",
    "POSITION_VALUES",
    "RiskKey",
    "RISK_KEYS",
    "format_value",
]

NUMBER = "Number"
RATE = "Rate"
MONEY = "Money"
DURATION = "Duration"
BOOL = "Bool"
LEVEL = "Level"
COIN = "Coin"
EXCHANGE = "Exchange"

# Types that `* /` scale by a Number and that `+ -` add.
SCALABLE = frozenset({NUMBER, RATE, MONEY, DURATION})
# Types with an order (`< <= > >=`).
ORDERED = SCALABLE | {LEVEL}

# Levels compare in this order: low < medium < high.
LEVELS = {"low": 0, "medium": 1, "high": 2}

# name -> (parameter types, result type). The first parameter is the coin.
MARKET_FUNCTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "funding": ((COIN, EXCHANGE), RATE),
    "spread": ((COIN, EXCHANGE, EXCHANGE), RATE),
    "basis": ((COIN, EXCHANGE), RATE),
    "borrow": ((COIN, EXCHANGE), RATE),
    "price": ((COIN, EXCHANGE), NUMBER),
    "volume": ((COIN, EXCHANGE), NUMBER),
    "next_funding": ((COIN, EXCHANGE), DURATION),
}
# The calls that can be a rule's subject (spec 6), in no particular order.
SUBJECT_FUNCTIONS = frozenset({"spread", "funding", "basis", "borrow"})

# Metrics of a rule's subject: name -> type. `net(d)` is a function, below.
METRICS: dict[str, str] = {
    "edge": RATE,
    "fees": RATE,
    "breakeven": DURATION,
    "confidence": NUMBER,
    "risk": LEVEL,
}

# Values of an open position, only inside `exit when`.
POSITION_VALUES: dict[str, str] = {"held": DURATION, "pnl": MONEY, "collected": MONEY}


@dataclass(frozen=True, slots=True)
class RiskKey:
    type: str
    meaning: str


RISK_KEYS: dict[str, RiskKey] = {
    "max_total_exposure": RiskKey(MONEY, "sum of leg notional over open positions"),
    "max_single_position": RiskKey(MONEY, "largest leg notional of one position"),
    "max_open_positions": RiskKey(NUMBER, "count of open positions"),
    "max_hold": RiskKey(DURATION, "close any position older than this"),
    "stop_loss": RiskKey(RATE, "close when pnl <= -stop_loss * notional"),
    "min_confidence": RiskKey(NUMBER, "no entry below this confidence"),
}


def _trim(x: float) -> str:
    text = f"{x:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def format_value(type_: str, value: object) -> str:
    """A value as an operator would write it: 0.001 Rate is `0.1%`."""
    if isinstance(value, bool) or type_ == BOOL:
        return "true" if value else "false"
    if type_ == RATE and isinstance(value, (int, float)):
        return f"{_trim(value * 100)}%"
    if type_ == MONEY and isinstance(value, (int, float)):
        return f"{_trim(value)} USDT"
    if type_ == DURATION and isinstance(value, (int, float)):
        if value == float("inf"):
            return "never"
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if abs(value) >= size and (value / size) == int(value / size):
                return f"{int(value / size)}{unit}"
        return f"{_trim(value / 3600)}h" if abs(value) >= 3600 else f"{_trim(value)}s"
    if type_ == LEVEL and isinstance(value, int):
        return {v: k for k, v in LEVELS.items()}.get(value, str(value))
    if isinstance(value, float):
        return _trim(value) if abs(value) >= 1e-6 or value == 0 else f"{value:g}"
    return str(value)
