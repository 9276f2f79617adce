"""The observation model: one line of a snapshot file (spec section 9).

`Observation` is a frozen `msgspec.Struct`: a recording's line is decoded
straight into it, and the bounds of spec 9 (`_checks.LIMITS`) are constraints
of its field types, so they are checked in C while the line is parsed. The
rules across fields (what a spot or borrow observation may carry, a crossed
book) and the coin's form are one cheap check after it (`__post_init__`). A
line that fails is checked again by `_checks.check_fields` for the message.

Build observations in Python with `Observation.checked(...)`, which runs the
same checks (and turns 8 into 8.0 as the decode does); the bare constructor
checks the rules across fields only (`tests/test_market_decode.py` keeps it out
of the code).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import msgspec

from rulebook._exchanges import EXCHANGES

from ._checks import (
    COIN_MAX_CHARS,
    LIMITS,
    OBSERVATION_FUNDING_RATE,
    OBSERVATION_PRICE,
    SYMBOL_MAX_CHARS,
    FieldCheck,
    check_borrow,
    check_coin,
    check_exchange,
    check_fee,
    check_fields,
    check_interval,
    check_milliseconds,
    check_volume,
    coin_known,
)

__all__ = [
    "EXCHANGES",
    "MARKETS",
    "Observation",
    "Market",
    "normalise_funding",
    "mid_price",
    "basis_rate",
    "borrow_per_8h",
]

MARKETS: tuple[str, ...] = ("perp", "spot", "borrow")

Market = Literal["perp", "spot", "borrow"]

F = Any  # a float, or a numpy array of floats


# Spec 5's formulas over market data, each written once: snapshot views,
# observations and the engine's metrics (which re-exports them, see
# `rulebook.engine._metrics`) all call these, so the figures cannot disagree.
# Plain arithmetic: each works on floats and on numpy arrays alike.


def normalise_funding(rate: F, interval_h: F) -> F:
    """One interval's funding rate as a rate per 8h (spec 5): `r * 8 / I`."""
    return rate * 8.0 / interval_h


def mid_price(bid: F, ask: F) -> F:
    """The spot mid: `(bid + ask) / 2`."""
    return (bid + ask) / 2.0


def basis_rate(mark: F, mid: F) -> F:
    """`basis(coin, ex)` (spec 5): `(perp mark - spot mid) / spot mid`."""
    return (mark - mid) / mid


def borrow_per_8h(daily: F) -> F:
    """A daily margin borrow rate per 8h (spec 5): `daily / 3`."""
    return daily / 3.0


# The field types of the typed decode: each bound of LIMITS as a constraint.
Milliseconds = Annotated[int, LIMITS["timestamp_ms"].meta()]
Price = Annotated[float, LIMITS["price"].meta()]
FundingRate = Annotated[float, LIMITS["funding_rate"].meta()]
IntervalH = Annotated[float, LIMITS["funding_interval_h"].meta()]
Volume = Annotated[float, LIMITS["volume_24h"].meta()]
TakerFee = Annotated[float, LIMITS["taker_fee"].meta()]
BorrowRate = Annotated[float, LIMITS["borrow_rate_daily"].meta()]
Coin = Annotated[str, msgspec.Meta(max_length=COIN_MAX_CHARS)]  # its form: __post_init__
Symbol = Annotated[str, msgspec.Meta(max_length=SYMBOL_MAX_CHARS)]
if TYPE_CHECKING:
    Exchange = str
else:
    Exchange = Literal[EXCHANGES]  # one of the six, checked in C

_PERP_ONLY: Final = ("funding_rate", "funding_interval_h", "next_funding_ts", "mark", "index")
_BOOK: Final = ("bid", "ask", "volume_24h", "taker_fee")


class Observation(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True,
    gc=False,
):  # fmt: skip
    """One observation of one market of one coin on one exchange at time ``ts``.

    Unknown keys are ignored by the reader (a newer writer may add fields);
    ``read_jsonl`` reports each once per file as a warning so that typos do
    not go unnoticed. (The decoder forbids them so that such a line takes the
    detailed path, which reports them.)
    """

    ts: Milliseconds
    exchange: Exchange
    coin: Coin
    market: Market
    symbol: Symbol | None = None
    funding_rate: FundingRate | None = None
    funding_interval_h: IntervalH | None = None
    next_funding_ts: Milliseconds | None = None
    mark: Price | None = None
    index: Price | None = None
    bid: Price | None = None
    ask: Price | None = None
    volume_24h: Volume | None = None
    taker_fee: TakerFee | None = None
    borrow_rate_daily: BorrowRate | None = None

    def __post_init__(self) -> None:
        # Runs after every decode and construction: keep the good case to a few
        # comparisons (it is on the read path of every line).
        market = self.market
        if market == "perp":
            ok = self.borrow_rate_daily is None
        elif market == "spot":
            ok = (
                self.borrow_rate_daily is None
                and self.funding_rate is None
                and self.mark is None
                and self.index is None
                and self.funding_interval_h is None
                and self.next_funding_ts is None
            )
        else:
            ok = False  # borrow lines are few: the full check below
        bid, ask = self.bid, self.ask
        if not ok or (bid is not None and ask is not None and bid > ask) or not coin_known(
            self.coin
        ):
            why = _market_problem(self) or check_coin(self.coin)
            if why is not None:
                raise ValueError(why)

    @classmethod
    def checked(cls, **fields: Any) -> Observation:
        """An observation built in Python (live data, importers, tests), checked as a
        recording's line is: raises ``msgspec.ValidationError`` with the same message a
        bad line gets, and ``TypeError`` for a field that does not exist."""
        unknown = fields.keys() - OBSERVATION_FIELDS
        if unknown:
            raise TypeError(f"Observation has no field {', '.join(sorted(unknown))}")
        return observation_from(fields)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.exchange, self.coin, self.market)

    def funding_8h(self) -> float | None:
        """Funding per 8 hours, normalised by this observation's own interval (spec 5)."""
        if self.funding_rate is None or self.funding_interval_h is None:
            return None
        per_8h: float = normalise_funding(self.funding_rate, self.funding_interval_h)
        return per_8h

    def mid(self) -> float | None:
        if self.bid is None or self.ask is None:
            return None
        mid: float = mid_price(self.bid, self.ask)
        return mid

    def to_json(self) -> str:
        """One JSON line, without the null fields (the spec lets them be absent)."""
        return msgspec.json.encode(self).decode()


def _market_problem(o: Observation) -> str | None:
    """What a market may carry, and the book: the first problem, or None."""
    if o.market != "perp":
        for name in _PERP_ONLY:
            if getattr(o, name) is not None:
                return f"{name} belongs to a perp observation, not {o.market}"
    if o.market == "borrow":
        for name in _BOOK:
            if getattr(o, name) is not None:
                return f"{name} does not belong to a borrow observation"
        if o.borrow_rate_daily is None:
            return "a borrow observation needs borrow_rate_daily"
    elif o.borrow_rate_daily is not None:
        return f"borrow_rate_daily belongs to a borrow observation, not {o.market}"
    if o.bid is not None and o.ask is not None and o.bid > o.ask:
        return f"crossed book: bid {o.bid} > ask {o.ask}"
    return None


#: every field of an observation, in order
OBSERVATION_FIELDS: Final = frozenset(Observation.__struct_fields__)

_CHECKS: Final = (
    FieldCheck("ts", "integer", required=True, check=check_milliseconds),
    FieldCheck("exchange", "string", required=True, check=check_exchange),
    FieldCheck("coin", "string", required=True, max_chars=COIN_MAX_CHARS, check=check_coin),
    FieldCheck("market", "literal", required=True, choices=MARKETS),
    FieldCheck("symbol", "string", max_chars=SYMBOL_MAX_CHARS),
    FieldCheck("funding_rate", "number", check=OBSERVATION_FUNDING_RATE),
    FieldCheck("funding_interval_h", "number", check=check_interval),
    FieldCheck("next_funding_ts", "integer", check=check_milliseconds),
    FieldCheck("mark", "number", check=OBSERVATION_PRICE),
    FieldCheck("index", "number", check=OBSERVATION_PRICE),
    FieldCheck("bid", "number", check=OBSERVATION_PRICE),
    FieldCheck("ask", "number", check=OBSERVATION_PRICE),
    FieldCheck("volume_24h", "number", check=check_volume),
    FieldCheck("taker_fee", "number", check=check_fee),
    FieldCheck("borrow_rate_daily", "number", check=check_borrow),
)


def observation_from(data: Mapping[str, object]) -> Observation:
    """The observation of a decoded line (unknown keys ignored), checked field by field.

    Raises ``msgspec.ValidationError`` whose message is every problem, ``"field:
    message"`` joined by ``"; "`` (``"line: ..."`` for the rules across fields)."""
    values, problems = check_fields(_CHECKS, data)
    if problems:
        raise msgspec.ValidationError("; ".join(problems))
    try:
        return Observation(**values)
    except ValueError as e:  # the rules across fields (__post_init__)
        raise msgspec.ValidationError(f"line: {e}") from None
