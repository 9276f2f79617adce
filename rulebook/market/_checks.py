"""Spec 9's checks of one record, written once: the bounds table and the detailed checker.

Two things read the table below. The models (`Observation`, `Settlement`) turn
each bound into a `msgspec.Meta` constraint, so that the typed decode of a line
checks it in C while it parses; that is the path every good line takes. A line
the decode rejects is rare, and is checked again here, field by field, to say
exactly what is wrong with it (the messages of docs/limits.md); the same
checker builds the records made in Python (`Observation.checked`), so nothing
reaches the engine unchecked.

The detailed checker reports, like the pydantic models it replaces did, every
field's first problem in field order (`"mark: price must be positive, got
0.0"`), and the rule across fields (`"line: crossed book: ..."`) only when
every field is valid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from rulebook._exchanges import EXCHANGES

__all__ = [
    "LIMITS",
    "Bounds",
    "COIN_MAX_CHARS",
    "SYMBOL_MAX_CHARS",
    "FieldCheck",
    "check_fields",
    "coin_known",
    "literal_message",
]


@dataclass(frozen=True, slots=True)
class Bounds:
    """The range a value must lie in: ``low <= v <= high`` (``< high`` when ``high_open``)."""

    low: float
    high: float
    high_open: bool = False

    def holds(self, v: float) -> bool:
        return self.low <= v < self.high if self.high_open else self.low <= v <= self.high

    def meta(self) -> Any:
        """The same range as a msgspec constraint (checked in C by the typed decode)."""
        import msgspec

        if self.high_open:
            return msgspec.Meta(ge=self.low, lt=self.high)
        return msgspec.Meta(ge=self.low, le=self.high)


# Values are checked, not trusted (spec 9); a value outside its bounds makes its
# line invalid. docs/limits.md lists them. Every number field has bounds, so no
# NaN or infinity can pass either path (a NaN fails every comparison).
LIMITS: Final[Mapping[str, Bounds]] = MappingProxyType(
    {
        # mark, index, bid, ask and a settlement's mark: far beyond any traded
        # coin, but it keeps 1e300 (and the inf it turns into) out
        "price": Bounds(1e-12, 1e12),
        # per interval: exchange caps are a few percent, spec 9 admits 10%
        "funding_rate": Bounds(-0.10, 0.10),
        # real intervals run from 1h to 8h; spec 9 admits 1 minute to 24 hours
        "funding_interval_h": Bounds(1.0 / 60.0, 24.0),
        # more than 100% a day is a unit error
        "borrow_rate_daily": Bounds(0.0, 1.0),
        # 24h volume in the quote currency
        "volume_24h": Bounds(0.0, 1e15),
        "taker_fee": Bounds(0.0, 0.05, high_open=True),
        # milliseconds: below is 2001-09-09 (most likely seconds, the commonest
        # unit mistake: Gate's funding_next_apply is in seconds), above is the
        # year 2286 (micro- or nanoseconds). Rejecting beats an "age" of 50 years.
        "timestamp_ms": Bounds(1_000_000_000_000, 10_000_000_000_000),
    }
)
COIN_MAX_CHARS: Final = 32
SYMBOL_MAX_CHARS: Final = 100


# -- JSON types: a number is a number (`true` is not 1.0, "100.5" is not a price) ----

#: a problem with a value, as the operator reads it (None: no problem)
Problem = str


class _Bad:
    """A value that failed its type check, and why."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why


def _json_type(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def _number(v: object) -> float | _Bad:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return _Bad(f"expected a number, got {_json_type(v)}")
    if isinstance(v, int):
        if abs(v) > 1e300:  # float(v) would overflow
            return _Bad("number too large")
        return float(v)
    if not math.isfinite(v):
        return _Bad("must be a finite number")
    return v


def _integer(v: object) -> int | _Bad:
    """A JSON integer (a float with an integral value is accepted: 1.7e12)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return _Bad(f"expected an integer, got {_json_type(v)}")
    if isinstance(v, float):
        if not (math.isfinite(v) and v.is_integer()):
            return _Bad(f"expected an integer, got {v!r}")
        return int(v)
    return v


def _string(v: object) -> str | _Bad:
    if not isinstance(v, str):
        return _Bad(f"expected a string, got {_json_type(v)}")
    return v


# -- the value checks, each reading its bounds from LIMITS --------------------------


def check_milliseconds(v: int) -> Problem | None:
    b = LIMITS["timestamp_ms"]
    if v < b.low:
        return f"{v} is not a millisecond timestamp (seconds? multiply by 1000)"
    if v > b.high:
        return f"{v} is not a millisecond timestamp (too large: micro/nanoseconds?)"
    return None


def check_exchange(v: str) -> Problem | None:
    if v not in EXCHANGES:
        return f"unknown exchange {v!r}; expected one of {', '.join(EXCHANGES)}"
    return None


def check_coin(v: str) -> Problem | None:
    if not v or not v.isascii() or not v.isalnum() or v.upper() != v:
        return f"coin {v!r} must be upper-case letters and digits, like SOL or 1000PEPE"
    return None


# Coins seen valid, so that the fast path checks a coin's form with one set
# lookup (a regex per line would double the cost of reading). Bounded: a file of
# a million made-up coins fills it once and then checks the rest in full.
_KNOWN_COINS: set[str] = set()
_KNOWN_COINS_MAX = 10_000


def coin_known(v: str) -> bool:
    """Whether ``v`` is a valid coin (remembering it if so)."""
    if v in _KNOWN_COINS:
        return True
    if check_coin(v) is not None:
        return False
    if len(_KNOWN_COINS) < _KNOWN_COINS_MAX:
        _KNOWN_COINS.add(v)
    return True


def _price(words: str) -> Callable[[float], Problem | None]:
    def check(v: float) -> Problem | None:
        b = LIMITS["price"]
        if not v > 0:
            return f"price must be {words}, got {v}"
        if not b.holds(v):
            return f"price {v} is outside {b.low:g}..{b.high:g}"
        return None

    return check


def _funding_rate(hint: str) -> Callable[[float], Problem | None]:
    def check(v: float) -> Problem | None:
        b = LIMITS["funding_rate"]
        if not b.holds(v):
            return f"funding rate {v} is outside +-{b.high:.0%} per interval ({hint}0.0001 is 0.01%)"
        return None

    return check


def check_interval(v: float) -> Problem | None:
    b = LIMITS["funding_interval_h"]
    if not b.holds(v):
        return (
            f"funding interval must be between {b.low * 60:g} minute and {b.high:g} hours,"
            f" got {v}h"
        )
    return None


def check_volume(v: float) -> Problem | None:
    b = LIMITS["volume_24h"]
    if v < b.low:
        return f"must not be negative, got {v}"
    if v > b.high:
        return f"24h volume {v} is beyond {b.high:g}"
    return None


def check_borrow(v: float) -> Problem | None:
    b = LIMITS["borrow_rate_daily"]
    if v < b.low:
        return f"must not be negative, got {v}"
    if v > b.high:
        return f"borrow rate {v} per day is not a fraction (0.0002 is 0.02%)"
    return None


def check_fee(v: float) -> Problem | None:
    b = LIMITS["taker_fee"]
    if not b.holds(v):
        return f"taker fee {v} is not a fraction in [{b.low:g}, {b.high:g}) (0.0005 is 0.05%)"
    return None


OBSERVATION_PRICE = _price("positive")
SETTLEMENT_PRICE = _price("finite and positive")
OBSERVATION_FUNDING_RATE = _funding_rate("a fraction: ")
SETTLEMENT_FUNDING_RATE = _funding_rate("")


# -- the detailed checker --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldCheck:
    """How one field of a record is checked, in the order of the steps."""

    name: str
    kind: str  # "integer", "number", "string" or "literal"
    required: bool = False  # no default: absent is "Field required"
    nullable: bool = True  # null (None) is the absent value
    max_chars: int | None = None
    check: Callable[[Any], Problem | None] | None = None
    choices: tuple[str, ...] = ()  # the values of a literal


def literal_message(choices: tuple[str, ...]) -> str:
    quoted = [repr(c) for c in choices]
    if len(quoted) == 1:
        return f"Input should be {quoted[0]}"
    return f"Input should be {', '.join(quoted[:-1])} or {quoted[-1]}"


_PARSE: Final = {"integer": _integer, "number": _number, "string": _string}


def check_fields(
    fields: tuple[FieldCheck, ...], data: Mapping[str, object]
) -> tuple[dict[str, Any], list[str]]:
    """The checked values of ``data`` (keys of ``fields`` only) and its problems,
    ``"field: message"`` each, in field order; the values are good when there are none."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for f in fields:
        if f.name not in data:
            if f.required:
                problems.append(f"{f.name}: Field required")
            continue
        v: Any = data[f.name]
        if v is None and f.nullable and not f.required:
            values[f.name] = None
            continue
        if f.kind == "literal":
            if not isinstance(v, str) or v not in f.choices:
                problems.append(f"{f.name}: {literal_message(f.choices)}")
                continue
        else:
            parsed = _PARSE[f.kind](v)
            if isinstance(parsed, _Bad):
                problems.append(f"{f.name}: {parsed.why}")
                continue
            v = parsed
        if f.max_chars is not None and len(v) > f.max_chars:
            problems.append(
                f"{f.name}: Value should have at most {f.max_chars} items after validation,"
                f" not {len(v)}"
            )
            continue
        if f.check is not None:
            why = f.check(v)
            if why is not None:
                problems.append(f"{f.name}: {why}")
                continue
        values[f.name] = v
    return values, problems
