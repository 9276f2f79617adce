"""The observation model: one line of a snapshot file (spec section 9).

`Observation` is a frozen `msgspec.Struct`, one subclass per market: a
recording's line is decoded straight into the one its ``market`` names, and
the bounds of docs/limits.md (`_checks.LIMITS`) are constraints of its field
types, so they are checked in C while the line is parsed; what a spot or
borrow observation may carry is its class's fields. The two checks left, the
coin's form and a crossed book, are `holds`, which the reader runs over each
piece of the file at once (a `__post_init__` per record cost a fifth of the
read). A line that fails is checked again by `_checks.check_fields` for the
message.

Build observations in Python with `Observation.checked(...)`, which runs
every check (and turns 8 into 8.0 as the decode does). The bare constructors
check nothing; `tests/test_market_decode.py` keeps them out of the code.
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import attrgetter
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Final, Literal

import msgspec

from rulebook._exchanges import EXCHANGES

from ._checks import (
    _KNOWN_COINS,  # the fast path's set lookup (see coin_known)
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
Coin = Annotated[str, msgspec.Meta(max_length=COIN_MAX_CHARS)]  # its form: `holds`
Symbol = Annotated[str, msgspec.Meta(max_length=SYMBOL_MAX_CHARS)]
if TYPE_CHECKING:
    from ._settlement import Settlement

    Exchange = str
else:
    Exchange = Literal[EXCHANGES]  # one of the six, checked in C

_PERP_ONLY: Final = ("funding_rate", "funding_interval_h", "next_funding_ts", "mark", "index")
_BOOK: Final = ("bid", "ask", "volume_24h", "taker_fee")
#: every field of an observation, in the order of a line (docs/market.md)
FIELD_ORDER: Final = (
    "ts", "exchange", "coin", "market", "symbol", *_PERP_ONLY, *_BOOK, "borrow_rate_daily",
)  # fmt: skip
_encode = msgspec.json.Encoder().encode


class Observation(
    msgspec.Struct, tag_field="market", frozen=True, forbid_unknown_fields=True, gc=False
):  # fmt: skip
    """One observation of one market of one coin on one exchange at time ``ts``.

    One class per market (`PerpObservation`, `SpotObservation`,
    `BorrowObservation`), chosen by the line's ``market`` while it is decoded,
    each with the fields its market may carry: so what a spot or borrow line
    may hold is checked by the decode itself (a perp field on a spot line is
    an unknown field there). The fields a market does not carry read None on
    it, so every observation has every attribute.

    Unknown keys are ignored by the reader (a newer writer may add fields);
    ``read_jsonl`` reports each once per file as a warning so that typos do
    not go unnoticed. (The decoder forbids them so that such a line takes the
    detailed path, which reports them.)
    """

    ts: Milliseconds
    exchange: Exchange
    coin: Coin
    symbol: Symbol | None = None

    if TYPE_CHECKING:  # every market's fields, as every observation reads them
        market: ClassVar[Market]
        funding_rate: float | None = None
        funding_interval_h: float | None = None
        next_funding_ts: int | None = None
        mark: float | None = None
        index: float | None = None
        bid: float | None = None
        ask: float | None = None
        volume_24h: float | None = None
        taker_fee: float | None = None
        borrow_rate_daily: float | None = None

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
        """One JSON line, without the null fields (the spec lets them be absent), in the
        order of FIELD_ORDER."""
        return _encode(
            {k: v for k in FIELD_ORDER if (v := getattr(self, k)) is not None}
        ).decode()


def holds(o: Observation | Settlement) -> bool:
    """The two checks the typed decode cannot make: the coin's form (one set lookup
    once a coin was seen valid) and a book that is not crossed."""
    bid = o.bid
    return (o.coin in _KNOWN_COINS or coin_known(o.coin)) and (
        bid is None or (ask := o.ask) is None or bid <= ask
    )


_coin_of = attrgetter("coin")


def all_hold(records: list[Observation | Settlement]) -> bool:
    """`holds` for every record of a piece of a file, in a few C loops and one
    comprehension (no Python call per record)."""
    coins = map(_coin_of, records)
    if not _KNOWN_COINS.issuperset(coins) and not all(
        map(coin_known, set(map(_coin_of, records)))
    ):
        return False
    crossed = [r for r in records if (b := r.bid) is not None and (a := r.ask) is not None and b > a]
    return not crossed


def _crossed(bid: float | None, ask: float | None) -> str | None:
    if bid is not None and ask is not None and bid > ask:
        return f"crossed book: bid {bid} > ask {ask}"
    return None


# The per-market classes declare their fields in the order a line has them
# (FIELD_ORDER): the decode looks a key up from the field after the last one it
# found, so a line in that order finds each key at the first try (the perp's
# funding fields before its book: about 5 % of the decode).


class PerpObservation(Observation, tag="perp", frozen=True):
    """A perpetual's funding, prices and book."""

    market: ClassVar[Literal["perp"]] = "perp"
    funding_rate: FundingRate | None = None
    funding_interval_h: IntervalH | None = None
    next_funding_ts: Milliseconds | None = None
    mark: Price | None = None
    index: Price | None = None
    bid: Price | None = None
    ask: Price | None = None
    volume_24h: Volume | None = None
    taker_fee: TakerFee | None = None
    borrow_rate_daily = None


class SpotObservation(Observation, tag="spot", frozen=True):
    """A spot market's book."""

    market: ClassVar[Literal["spot"]] = "spot"
    bid: Price | None = None
    ask: Price | None = None
    volume_24h: Volume | None = None
    taker_fee: TakerFee | None = None
    funding_rate = None
    funding_interval_h = None
    next_funding_ts = None
    mark = None
    index = None
    borrow_rate_daily = None


class BorrowObservation(Observation, tag="borrow", frozen=True, kw_only=True):
    """A margin borrow rate."""

    market: ClassVar[Literal["borrow"]] = "borrow"
    borrow_rate_daily: BorrowRate
    funding_rate = None
    funding_interval_h = None
    next_funding_ts = None
    mark = None
    index = None
    bid = None
    ask = None
    volume_24h = None
    taker_fee = None


# -- a line as the columnar replay reads it ----------------------------------------
#
# One class for every line, with the fields, types and bounds of the classes
# above (a settlement record's too: `_settlement.Settlement` has the same types),
# in line order, the market a plain field. An absent number reads NaN (an absent
# `next_funding_ts` reads 0, which no valid timestamp is), not None, and an
# explicit `null` is refused. So a piece of lines goes into float columns in a few
# C loops (`msgspec.structs.astuple`, `zip`: no None to convert, no class per
# market to group by, no tag to look for first), and a line the two decodes could
# read differently (a `null`) goes to the general path. What the per-market
# classes check by their fields (a perp field on a spot line, a borrow line
# without its rate, a settlement record's fields) the replay checks on the
# columns (market/_replay.py). These are never observations: the replay only
# copies their values into its columns (tests/test_replay_columns.py).

_NAN: Final = float("nan")
#: what an absent `next_funding_ts` of a `Line` reads (below every valid timestamp)
NO_NEXT_FUNDING: Final = 0
#: the markets a `Line` may name, in the order of the replay's market codes
LINE_MARKETS: Final = ("perp", "spot", "borrow", "settlement")


class Line(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """A line's fields, NaN where a number is absent (see above)."""

    ts: Milliseconds
    exchange: Exchange
    coin: Coin
    market: Literal["perp", "spot", "borrow", "settlement"]
    symbol: Symbol | None = None
    funding_rate: FundingRate = _NAN
    funding_interval_h: IntervalH = _NAN
    next_funding_ts: Milliseconds = NO_NEXT_FUNDING
    mark: Price = _NAN
    index: Price = _NAN
    bid: Price = _NAN
    ask: Price = _NAN
    volume_24h: Volume = _NAN
    taker_fee: TakerFee = _NAN
    borrow_rate_daily: BorrowRate = _NAN


#: the type a line of an observation decodes to (`msgspec.json.decode(line, type=...)`)
AnyObservation = PerpObservation | SpotObservation | BorrowObservation
_CLASSES: Final[Mapping[str, type[Observation]]] = {
    "perp": PerpObservation,
    "spot": SpotObservation,
    "borrow": BorrowObservation,
}
#: every field of an observation
OBSERVATION_FIELDS: Final = frozenset(FIELD_ORDER)


def _market_problem(v: Mapping[str, Any]) -> str | None:
    """What a market may carry, and the book: the first problem, or None."""
    market = v["market"]
    if market != "perp":
        for name in _PERP_ONLY:
            if v.get(name) is not None:
                return f"{name} belongs to a perp observation, not {market}"
    if market == "borrow":
        for name in _BOOK:
            if v.get(name) is not None:
                return f"{name} does not belong to a borrow observation"
        if v.get("borrow_rate_daily") is None:
            return "a borrow observation needs borrow_rate_daily"
    elif v.get("borrow_rate_daily") is not None:
        return f"borrow_rate_daily belongs to a borrow observation, not {market}"
    return _crossed(v.get("bid"), v.get("ask"))


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
    why = _market_problem(values)
    if why is not None:
        raise msgspec.ValidationError(f"line: {why}")
    cls = _CLASSES[values.pop("market")]
    return cls(**{k: v for k, v in values.items() if v is not None})
