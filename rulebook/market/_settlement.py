"""The settlement record: what an exchange actually paid at one settlement (spec section 9).

    {"ts": 1753113600000, "exchange": "binance", "coin": "SOL", "market": "settlement",
     "funding_rate": 0.000093, "funding_interval_h": 8, "mark": 182.40}

A perp observation's ``funding_rate`` is a forecast shown at its ``ts``; a
settlement record is the rate that settled at its ``ts`` for the interval it
covered. Rules never see these records: they are not observations, a
:class:`SnapshotView` holds none, and only the runtime's settlement step reads
them (``docs/settlement.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final, Literal

import msgspec

from ._checks import (
    COIN_MAX_CHARS,
    SETTLEMENT_FUNDING_RATE,
    SETTLEMENT_PRICE,
    SYMBOL_MAX_CHARS,
    FieldCheck,
    check_coin,
    check_exchange,
    check_fields,
    check_interval,
    check_milliseconds,
)
from ._model import Coin, Exchange, FundingRate, IntervalH, Milliseconds, Price, Symbol

__all__ = ["Settlement", "SETTLEMENT_FIELDS"]

# Spec 9's bounds, the same as an observation's (`_checks.LIMITS`, docs/limits.md):
# rates within +-10% per interval, intervals from 1 minute to 24 hours, prices
# finite and positive.


class Settlement(
    msgspec.Struct, tag_field="market", tag="settlement", frozen=True, kw_only=True,
    forbid_unknown_fields=True, gc=False,
):  # fmt: skip
    """One settlement of one perpetual on one exchange: the rate that settled at ``ts``.

    Built in Python with `Settlement.checked(...)` (the checks of a recording's line)."""

    # strict JSON types (`true` is not 1.0, "0.0001" is not a rate): docs/limits.md
    ts: Milliseconds
    exchange: Exchange
    coin: Coin
    # the tag: the decode of a line picks this class by it (a line without it is none)
    market: ClassVar[Literal["settlement"]] = "settlement"
    # no book: read as None, like an observation's absent fields (the reader's `holds`)
    bid: ClassVar[None] = None
    ask: ClassVar[None] = None
    symbol: Symbol | None = None
    funding_rate: FundingRate
    funding_interval_h: IntervalH | None = None
    mark: Price | None = None

    @classmethod
    def checked(cls, **fields: Any) -> Settlement:
        """A settlement record built in Python, checked as a recording's line is: raises
        ``msgspec.ValidationError`` with a bad line's message, ``TypeError`` for a field
        that does not exist."""
        unknown = fields.keys() - SETTLEMENT_FIELDS - _OBSERVATION_ONLY
        if unknown:
            raise TypeError(f"Settlement has no field {', '.join(sorted(unknown))}")
        return settlement_from({"market": "settlement", **fields})

    @property
    def key(self) -> tuple[str, str]:
        return (self.exchange, self.coin)

    def to_json(self) -> str:
        """One JSON line, without the null fields."""
        return _encode({k: v for k in _ORDER if (v := getattr(self, k)) is not None}).decode()


_encode = msgspec.json.Encoder().encode
_ORDER: Final = (
    "ts", "exchange", "coin", "market", "symbol", "funding_rate", "funding_interval_h", "mark",
)  # fmt: skip
#: every key a settlement line may carry
SETTLEMENT_FIELDS: Final = frozenset(_ORDER)
_OBSERVATION_ONLY: Final = frozenset(
    {"next_funding_ts", "index", "bid", "ask", "volume_24h", "taker_fee", "borrow_rate_daily"}
)
_CHECKS: Final = (
    FieldCheck("ts", "integer", required=True, check=check_milliseconds),
    FieldCheck("exchange", "string", required=True, check=check_exchange),
    FieldCheck("coin", "string", required=True, max_chars=COIN_MAX_CHARS, check=check_coin),
    FieldCheck("market", "literal", required=True, choices=("settlement",)),
    FieldCheck("symbol", "string", max_chars=SYMBOL_MAX_CHARS),
    FieldCheck("funding_rate", "number", required=True, check=SETTLEMENT_FUNDING_RATE),
    FieldCheck("funding_interval_h", "number", check=check_interval),
    FieldCheck("mark", "number", check=SETTLEMENT_PRICE),
)


def settlement_from(data: Mapping[str, object]) -> Settlement:
    """The settlement record of a decoded line (unknown keys ignored), checked field by
    field; raises ``msgspec.ValidationError`` with every problem (as `observation_from`)."""
    # A perp field on a settlement line is a writer's mistake, not an extension.
    stray = sorted(k for k in data if k in _OBSERVATION_ONLY and data[k] is not None)
    if stray:
        raise msgspec.ValidationError(
            f"line: {', '.join(stray)} do(es) not belong to a settlement record"
        )
    values, problems = check_fields(_CHECKS, data)
    if problems:
        raise msgspec.ValidationError("; ".join(problems))
    del values["market"]
    return Settlement(**values)
