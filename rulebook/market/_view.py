"""The snapshot at t: the latest observation per (exchange, coin, market) at or before t.

A view holds its observations one of two ways, and gives both forms on demand:

- as `Observation`s by key (live data, a JSONL replay, `from_observations`);
- as columns (`from_columns`: a columnar recording's cycle, numpy arrays with
  no Python object per observation); an `Observation` is made only for a key
  an accessor asks for.

`columns()` is the columnar form of either (built once per view), what the
engine's market arrays and the price guard read with numpy alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple, Protocol

import numpy as np

from rulebook._exchanges import EXCHANGES

from ._model import (
    BorrowObservation,
    Observation,
    PerpObservation,
    SpotObservation,
    basis_rate,
    borrow_per_8h,
    mid_price,
    normalise_funding,
)
from ._settlement import Settlement

__all__ = ["SnapshotView", "ViewColumns", "PerpRow", "MARKETS", "NUMBER_FIELDS"]

Key = tuple[str, str, str]

#: the markets, in the order of their codes in `ViewColumns.market`
MARKETS = ("perp", "spot", "borrow")
#: the number fields of an observation, as columns (NaN where the observation has None)
NUMBER_FIELDS = (
    "next_funding_ts", "funding_rate", "funding_interval_h", "mark", "index", "bid", "ask",
    "volume_24h", "taker_fee", "borrow_rate_daily",
)  # fmt: skip


class ViewColumns(Protocol):
    """One row per (exchange, coin, market): what `columns()` gives and `from_columns` takes.

    Strings are integer codes into the category tuples; every number is a
    float64 array, NaN where the observation has none (`next_funding_ts` too:
    milliseconds are exact in a float64); `ts` is int64 ms. The columnar
    reader's `ObservationColumns` (market/_columnar.py) is one; the arrays
    belong to the object and are never changed after it is made."""

    @property
    def at(self) -> int: ...
    @property
    def exchanges(self) -> tuple[str, ...]: ...
    @property
    def coins(self) -> tuple[str, ...]: ...
    @property
    def markets(self) -> tuple[str, ...]: ...
    @property
    def exchange(self) -> np.ndarray: ...
    @property
    def coin(self) -> np.ndarray: ...
    @property
    def market(self) -> np.ndarray: ...
    @property
    def ts(self) -> np.ndarray: ...
    @property
    def next_funding_ts(self) -> np.ndarray: ...
    @property
    def funding_rate(self) -> np.ndarray: ...
    @property
    def funding_interval_h(self) -> np.ndarray: ...
    @property
    def mark(self) -> np.ndarray: ...
    @property
    def index(self) -> np.ndarray: ...
    @property
    def bid(self) -> np.ndarray: ...
    @property
    def ask(self) -> np.ndarray: ...
    @property
    def volume_24h(self) -> np.ndarray: ...
    @property
    def taker_fee(self) -> np.ndarray: ...
    @property
    def borrow_rate_daily(self) -> np.ndarray: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True, slots=True, eq=False)
class _Columns:
    """`ViewColumns` of a view of observations (see SnapshotView.columns)."""

    at: int
    exchanges: tuple[str, ...]
    coins: tuple[str, ...]
    markets: tuple[str, ...]
    exchange: np.ndarray
    coin: np.ndarray
    market: np.ndarray
    ts: np.ndarray
    next_funding_ts: np.ndarray
    funding_rate: np.ndarray
    funding_interval_h: np.ndarray
    mark: np.ndarray
    index: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    volume_24h: np.ndarray
    taker_fee: np.ndarray
    borrow_rate_daily: np.ndarray
    symbols: tuple[str, ...] = ()
    symbol: np.ndarray | None = None  # codes into `symbols`, -1 = none

    def __len__(self) -> int:
        return int(self.ts.size)


_EXCHANGE_CODE = {e: i for i, e in enumerate(EXCHANGES)}
_MARKET_CODE = {m: i for i, m in enumerate(MARKETS)}
_MARKET_FIELDS = {
    "perp": tuple(f for f in NUMBER_FIELDS if f != "borrow_rate_daily"),
    "spot": ("bid", "ask", "volume_24h", "taker_fee"),
    "borrow": ("borrow_rate_daily",),
}
_BY_MARKET = [
    (_MARKET_CODE[m], attrgetter("ts", *names), names) for m, names in _MARKET_FIELDS.items()
]
_SYMBOL = attrgetter("symbol")
_TS = attrgetter("ts")
_FIELD = {name: attrgetter(name) for name in NUMBER_FIELDS}
#: a market's class and the number fields it carries: what `SnapshotView._make` builds
_ROW_CLASSES: dict[str, tuple[type[Observation], tuple[str, ...]]] = {
    "perp": (PerpObservation, _MARKET_FIELDS["perp"]),
    "spot": (SpotObservation, _MARKET_FIELDS["spot"]),
    "borrow": (BorrowObservation, _MARKET_FIELDS["borrow"]),
}


def _codes(names: list[Any]) -> tuple[tuple[Any, ...], list[int]]:
    """Categories in order of first appearance, and each name's code."""
    cats = tuple(dict.fromkeys(names))
    code = {c: i for i, c in enumerate(cats)}
    return cats, [code[x] for x in names]


def _columns_of(at: int, obs: Mapping[Key, Observation]) -> _Columns:
    """The columns of a view's observations, one row per key in the mapping's order.

    The hot path of every cycle of a JSONL replay, a live run and a dry-run
    (the engine's market arrays, the price guard and the settlement log read
    the columns): per market, each number field of the market's observations
    goes straight into a float array in one C loop (`np.fromiter` over an
    attribute getter; a field no observation has stays NaN, one that some
    lack is converted with None as NaN). No object is made per observation:
    a tuple each (`msgspec.structs.astuple`, or the field getter of
    `_columns_by_attributes`) cost a third more, much of it the garbage
    collector they set off. The same arrays as `_columns_by_attributes`, bit
    for bit (tests/test_view_columns_fast.py); objects other than the model's
    own Structs are converted that general way."""
    n = len(obs)
    if not n:
        return _columns_by_attributes(at, obs)
    keys = list(obs)
    values = list(obs.values())
    try:
        codes = _key_codes(keys)
    except KeyError:  # a market or an exchange not of ours (a test's view)
        return _columns_by_attributes(at, obs)
    ex = (codes & _EX_MASK).astype(np.int16)
    market = ((codes >> _EX_BITS) & _MARKET_MASK).astype(np.int8)
    # the coins in order of first appearance, as the general conversion codes them
    ids, first, inverse = np.unique(codes >> _COIN_SHIFT, return_index=True, return_inverse=True)
    by_first = np.argsort(first, kind="stable")
    rank = np.empty(len(ids), dtype=np.int32)
    rank[by_first] = np.arange(len(ids), dtype=np.int32)
    coin = rank[inverse.reshape(-1)]
    cat = tuple(map(_COIN_NAMES.__getitem__, ids[by_first].tolist()))
    groups = []
    for name, code in _MARKET_CODE.items():
        rows = np.flatnonzero(market == code)
        if not rows.size:
            continue
        group = [values[i] for i in rows.tolist()] if rows.size == 1 else list(
            itemgetter(*rows.tolist())(values)
        )
        kinds = set(map(type, group))
        cls = kinds.pop()
        if kinds or not _struct_of(cls, name):  # not one model class for its market
            return _columns_by_attributes(at, obs)
        groups.append((rows, name, group))
    numbers = {name: np.full(n, np.nan) for name in NUMBER_FIELDS}
    ts = np.zeros(n, dtype=np.int64)
    symbol_of: list[Any] | None = None
    for rows, name, group in groups:
        m = len(group)
        ts[rows] = np.fromiter(map(_TS, group), np.int64, m)
        symbols_here = list(map(_SYMBOL, group))
        if symbols_here.count(None) != m:
            if symbol_of is None:
                symbol_of = [None] * n
            for i, s in zip(rows.tolist(), symbols_here, strict=True):
                symbol_of[i] = s
        for field in _MARKET_FIELDS[name]:
            values_of = _floats(_FIELD[field], group)
            if values_of is not None:  # else NaN as it is
                numbers[field][rows] = values_of
    symbols: tuple[str, ...] = ()
    symbol = np.full(n, -1, dtype=np.int32)
    if symbol_of is not None:  # codes in order of first appearance, -1 for none
        named = dict.fromkeys(symbol_of)
        named.pop(None, None)
        symbols = tuple(named)
        symbol_code: dict[str | None, int] = dict(zip(symbols, range(len(symbols)), strict=True))
        symbol_code[None] = -1
        symbol = np.fromiter(map(symbol_code.__getitem__, symbol_of), np.int32, n)
    return _Columns(
        at=at,
        exchanges=EXCHANGES,
        coins=cat,
        markets=MARKETS,
        exchange=ex,
        coin=coin,
        market=market,
        ts=ts,
        symbols=symbols,
        symbol=symbol,
        **numbers,
    )


#: (exchange, coin, market) -> one int: coin id, market code, exchange code, in
#: bit fields (the widths below). Every cycle has the same keys, so each is
#: coded once per process; coin ids index _COIN_NAMES, in the order the process
#: first met them.
_EX_BITS = max((len(EXCHANGES) - 1).bit_length(), 1)
_MARKET_BITS = max((len(MARKETS) - 1).bit_length(), 1)
_COIN_SHIFT = _EX_BITS + _MARKET_BITS
_EX_MASK = (1 << _EX_BITS) - 1
_MARKET_MASK = (1 << _MARKET_BITS) - 1
_KEY_CODE: dict[Key, int] = {}
_COIN_ID: dict[str, int] = {}
_COIN_NAMES: list[str] = []


def _key_codes(keys: list[Key]) -> np.ndarray:
    """The keys' codes (see `_KEY_CODE`); KeyError for an exchange or a market
    that is not one of ours."""
    try:
        return np.fromiter(map(_KEY_CODE.__getitem__, keys), np.int64, len(keys))
    except KeyError:
        for key in keys:
            if key not in _KEY_CODE:
                exchange, coin, market = key
                e, m = _EXCHANGE_CODE[exchange], _MARKET_CODE[market]
                c = _COIN_ID.get(coin)
                if c is None:
                    c = _COIN_ID[coin] = len(_COIN_NAMES)
                    _COIN_NAMES.append(coin)
                _KEY_CODE[key] = (c << _COIN_SHIFT) | (m << _EX_BITS) | e
        return np.fromiter(map(_KEY_CODE.__getitem__, keys), np.int64, len(keys))


_STRUCTS: dict[tuple[type, str], bool] = {}


def _struct_of(cls: type, market: str) -> bool:
    """Whether `cls` is one of the model's observation Structs for `market`, with
    every number field the market carries: its values are then floats, ints or
    None, which `_columns_of` converts in C."""
    got = _STRUCTS.get((cls, market))
    if got is None:
        got = _STRUCTS[(cls, market)] = (
            issubclass(cls, Observation)
            and getattr(cls, "market", None) == market
            and set(_MARKET_FIELDS[market]) <= set(cls.__struct_fields__)
        )
    return got


def _floats(field: Callable[[Observation], Any], group: list[Observation]) -> np.ndarray | None:
    """A field of each observation as floats, None as NaN; None when every one is None.

    No Python object is made per observation (a tuple each, say): besides the
    work, they set off the garbage collector every few hundred."""
    try:  # the common case, no None: one C loop over the observations
        return np.fromiter(map(field, group), np.float64, len(group))
    except TypeError:
        values = list(map(field, group))
        if values.count(None) == len(values):
            return None
        return np.array(values, dtype=np.float64)


def _columns_by_attributes(at: int, obs: Mapping[Key, Observation]) -> _Columns:
    """`_columns_of` the general way: per market, one pass of C-level attribute
    reads of the fields it can carry and one conversion to float (None becomes
    NaN); codes for the strings. Any objects with an observation's attributes
    will do (the fast path needs the model's own classes); it is also what
    tests/test_view_columns.py holds the fast path to, bit for bit."""
    keys = list(obs)
    values = list(obs.values())
    n = len(keys)
    exchanges = list(EXCHANGES)
    exchange_codes = dict(_EXCHANGE_CODE)
    ex = [exchange_codes.get(k[0]) for k in keys]
    if None in ex:  # not one of ours (a test's view): a code of its own
        for i, k in enumerate(keys):
            if ex[i] is None:
                ex[i] = exchange_codes.setdefault(k[0], len(exchanges))
                if ex[i] == len(exchanges):
                    exchanges.append(k[0])
    coins, coin = _codes([k[1] for k in keys])
    market = np.array([_MARKET_CODE[k[2]] for k in keys], dtype=np.int8)
    # Per market, only the fields its observations can carry (a spot has no funding, a
    # borrow no book): about half the conversions of every field for every row.
    numbers = {name: np.full(n, np.nan) for name in NUMBER_FIELDS}
    ts = np.zeros(n, dtype=np.int64)
    for code, getter, names in _BY_MARKET:
        rows = np.flatnonzero(market == code)
        if not rows.size:
            continue
        group = [values[i] for i in rows.tolist()]
        table = np.array(list(map(getter, group)), dtype=float)
        ts[rows] = table[:, 0]
        for j, name in enumerate(names, start=1):
            numbers[name][rows] = table[:, j]
    symbols, symbol = _codes(list(map(_SYMBOL, values)))
    if None in symbols:  # no symbol: code -1
        gap = symbols.index(None)
        symbols = symbols[:gap] + symbols[gap + 1 :]
        symbol = [-1 if s == gap else s - (s > gap) for s in symbol]
    return _Columns(
        at=at,
        exchanges=tuple(exchanges),
        coins=coins,
        markets=MARKETS,
        exchange=np.array(ex, dtype=np.int16),
        coin=np.array(coin, dtype=np.int32),
        market=market,
        ts=ts,
        symbols=symbols,
        symbol=np.array(symbol, dtype=np.int32),
        **numbers,
    )


# The key -> row index of the last columns asked (views never change one). A
# recording's cycles keep their rows in the order the keys first appeared, so
# from one cycle to the next the keys are mostly the very same rows: the index is
# made again only when the categories or the codes differ.
_last_index: tuple[tuple[Any, ...], dict[Key, int], tuple[np.ndarray, ...] | None] | None = None


def _row_index_of(cols: ViewColumns) -> dict[Key, int]:
    global _last_index
    ex, co, mk = cols.exchanges, cols.coins, cols.markets
    last = _last_index
    codes = (cols.exchange, cols.coin, cols.market)
    if (
        last is not None and last[2] is not None
        and all(a is b and not a.flags.writeable for a, b in zip(codes, last[2], strict=True))
        and last[0][:3] == (ex, co, mk)
    ):  # fmt: skip
        return last[1]  # the very read-only code arrays of the last view (a replay's cycles)
    signature = (
        ex, co, mk, cols.exchange.dtype.str, cols.coin.dtype.str, cols.market.dtype.str,
        cols.exchange.tobytes(), cols.coin.tobytes(), cols.market.tobytes(),
    )  # fmt: skip
    if last is not None and last[0] == signature:
        _last_index = (signature, last[1], codes if _read_only(codes) else None)
        return last[1]
    rows = {
        (ex[e], co[c], mk[m]): i
        for i, (e, c, m) in enumerate(
            zip(cols.exchange.tolist(), cols.coin.tolist(), cols.market.tolist(), strict=True)
        )
    }
    _last_index = (signature, rows, codes if _read_only(codes) else None)
    return rows


def _read_only(codes: tuple[np.ndarray, ...]) -> bool:
    return not any(a.flags.writeable for a in codes)


def _opt(x: float) -> float | None:
    return None if x != x else x  # NaN is no value


_MARKET_WORDS = {"perp": "perpetual", "spot": "spot market", "borrow": "borrow market"}


class PerpRow(NamedTuple):
    """A perp's fields as a columnar view gives them without making an Observation."""

    ts: int
    exchange: str
    coin: str
    funding_rate: float | None
    funding_interval_h: float | None
    next_funding_ts: int | None
    mark: float | None
    market: str = "perp"


class SnapshotView:
    """Read-only figures for the engine, looked up by plain dict access.

    The engine evaluates thousands of bindings per cycle against one view, so
    every accessor is a dict lookup plus a little arithmetic; nothing scans.
    """

    __slots__ = (
        "at", "_latest", "_exchanges", "_coins", "failures", "settlements", "recorded",
        "_cols", "_rows", "_made",
    )  # fmt: skip

    def __init__(
        self,
        at: int,
        latest: Mapping[Key, Observation],
        failures: Mapping[str, str] | None = None,
        settlements: Iterable[Settlement] = (),
        *,
        recorded: bool = False,
    ) -> None:
        self.at = at
        # Owned by the view: callers hand over a dict they no longer mutate.
        self._latest: dict[Key, Observation] | None = dict(latest)
        #: the columnar form (columns()), given or built on first use
        self._cols: ViewColumns | None = None
        #: a columnar view's key -> row, built when an accessor first asks for a key
        self._rows: dict[Key, int] | None = None
        #: a columnar view's observations made so far, by key
        self._made: dict[Key, Observation] = {}
        self._exchanges: set[str] | None = None
        self._coins: set[str] | None = None
        #: exchange -> why its last fetch failed (live only); used in missing reasons.
        self.failures: dict[str, str] = dict(failures or {})
        #: settlement records that arrived with this view (since the previous one), for
        #: the runtime's settlement step only: no figure of the view reads them, so
        #: rules never see what settled (spec 9).
        self.settlements: tuple[Settlement, ...] = tuple(settlements)
        #: True for a view of a recording: what it lacks was not recorded, which
        #: says nothing of what the exchange lists (the reasons say so).
        self.recorded = recorded

    @classmethod
    def from_observations(
        cls,
        obs: Iterable[Observation],
        at: int | None = None,
        failures: Mapping[str, str] | None = None,
        *,
        recorded: bool = False,
    ) -> SnapshotView:
        latest: dict[Key, Observation] = {}
        newest = None
        for o in obs:
            if at is not None and o.ts > at:
                continue
            k = (o.exchange, o.coin, o.market)
            cur = latest.get(k)
            # ">=": of two observations with one timestamp, the later line wins,
            # as a writer that corrects itself would expect.
            if cur is None or o.ts >= cur.ts:
                latest[k] = o
            if newest is None or o.ts > newest:
                newest = o.ts
        if at is None:
            at = newest if newest is not None else 0
        return cls(at, latest, failures, recorded=recorded)

    @classmethod
    def from_columns(
        cls,
        cols: ViewColumns,
        *,
        settlements: Iterable[Settlement] | None = None,
        recorded: bool = True,
    ) -> SnapshotView:
        """The view of one cycle of a columnar recording (`cols.at` is its time).

        Lazy: the columns are what the engine and the price guard read; an
        `Observation` is made only for a key that an accessor asks for (the
        executor's quotes of the few markets it trades), never one per row.
        `settlements` defaults to the columns' own (`cols.settlements`)."""
        view = cls(cols.at, {}, None, (), recorded=recorded)
        view._latest = None
        view._cols = cols
        if settlements is None:
            settlements = getattr(cols, "settlements", ())
        view.settlements = tuple(settlements)
        return view

    # -- the two forms -------------------------------------------------------------
    def columns(self) -> ViewColumns:
        """The view as columns, one row per (exchange, coin, market); built once."""
        if self._cols is None:
            assert self._latest is not None
            self._cols = _columns_of(self.at, self._latest)
        return self._cols

    @property
    def _obs(self) -> dict[Key, Observation]:
        """Every observation by key (a columnar view makes them all, once)."""
        if self._latest is None:
            cols = self.columns()
            made = self._made
            self._latest = {
                k: made.get(k) or self._make(cols, i) for k, i in self._row_index().items()
            }
        return self._latest

    def keys(self) -> list[Key]:
        """Every (exchange, coin, market) of the view, in the row order of `columns()`."""
        if self._cols is None or self._latest is not None and self._rows is None:
            assert self._latest is not None
            self.columns()
            return list(self._latest)  # _columns_of's row order
        return list(self._row_index())

    def held(self) -> list[Observation] | None:
        """The observations in the row order of `columns()`, if the view holds them
        (None for a columnar view, which makes them only on demand)."""
        return None if self._latest is None else list(self._latest.values())

    def _row_index(self) -> dict[Key, int]:
        if self._rows is None:
            self._rows = _row_index_of(self.columns())
        return self._rows

    @staticmethod
    def _make(cols: ViewColumns, i: int) -> Observation:
        """Row `i` as an Observation, built without the checks: trusted, because a
        view's columns hold only checked values (the columnar reader checks every
        row as it reads it, docs/limits.md; `columns()` of a view comes from its
        observations). `Observation.checked` of the same fields gives an equal
        record (tests/test_view_columns.py); this is the one place that builds an
        observation without it (tests/test_market_decode.py)."""
        cls, names = _ROW_CLASSES[cols.markets[cols.market.item(i)]]
        fields: dict[str, Any] = {
            "ts": cols.ts.item(i),
            "exchange": cols.exchanges[cols.exchange.item(i)],
            "coin": cols.coins[cols.coin.item(i)],
        }
        symbols = getattr(cols, "symbols", None)
        symbol = getattr(cols, "symbol", None)
        if symbols is not None and symbol is not None and (code := symbol.item(i)) >= 0:
            fields["symbol"] = symbols[code]
        for name in names:
            v = getattr(cols, name).item(i)
            if v == v:  # NaN is no value
                fields[name] = v
        nxt = fields.get("next_funding_ts")
        if nxt is not None:
            fields["next_funding_ts"] = int(nxt)
        return cls(**fields)

    def _one(self, key: Key) -> Observation | None:
        if self._latest is not None:
            return self._latest.get(key)
        o = self._made.get(key)
        if o is None:
            i = self._row_index().get(key)
            if i is None:
                return None
            o = self._made[key] = self._make(self.columns(), i)
        return o

    def prices(self, keys: Iterable[Key]) -> list[tuple[float | None, float | None, float | None]]:
        """Each key's (mark, bid, ask), None where the view has no such figure or no such
        market: what `get(*key)`'s observation holds, read without making one (a
        columnar view's rows are read in place). What marking every held leg reads."""
        if self._latest is not None:
            latest = self._latest
            return [
                (None, None, None) if (o := latest.get(k)) is None else (o.mark, o.bid, o.ask)
                for k in keys
            ]
        rows = self._row_index()
        cols = self.columns()
        mark, bid, ask = cols.mark, cols.bid, cols.ask
        out: list[tuple[float | None, float | None, float | None]] = []
        for k in keys:
            i = rows.get(k)
            if i is None:
                out.append((None, None, None))
            else:
                out.append((_opt(mark.item(i)), _opt(bid.item(i)), _opt(ask.item(i))))
        return out

    def quote_figures(
        self, key: Key
    ) -> tuple[float | None, float | None, float | None, float | None] | None:
        """`get(*key)`'s (mark, bid, ask, taker_fee), or None without such a market: read
        without making an observation (a columnar view's row is read in place, with
        the fields `_make` would give it). What the paper executor's fills read."""
        if self._latest is not None:
            o = self._latest.get(key)
            return None if o is None else (o.mark, o.bid, o.ask, o.taker_fee)
        o = self._made.get(key)
        if o is not None:
            return o.mark, o.bid, o.ask, o.taker_fee
        i = self._row_index().get(key)
        if i is None:
            return None
        cols = self.columns()
        names = _MARKET_FIELDS[cols.markets[cols.market.item(i)]]  # what _make reads
        return (
            _opt(cols.mark.item(i)) if "mark" in names else None,
            _opt(cols.bid.item(i)) if "bid" in names else None,
            _opt(cols.ask.item(i)) if "ask" in names else None,
            _opt(cols.taker_fee.item(i)) if "taker_fee" in names else None,
        )

    # -- raw observations -------------------------------------------------
    def get(self, exchange: str, coin: str, market: str) -> Observation | None:
        return self._one((exchange, coin, market))

    def perp(self, exchange: str, coin: str) -> Observation | None:
        return self._one((exchange, coin, "perp"))

    def spot(self, exchange: str, coin: str) -> Observation | None:
        return self._one((exchange, coin, "spot"))

    def borrow_obs(self, exchange: str, coin: str) -> Observation | None:
        return self._one((exchange, coin, "borrow"))

    def perps(self) -> list[Observation] | list[PerpRow]:
        """Every perp of the view: its observations, or (a columnar view) rows of the
        fields a settlement log reads, made from the columns without an Observation."""
        if self._latest is not None:
            return [o for o in self._latest.values() if o.market == "perp"]
        cols = self.columns()
        if "perp" not in cols.markets:
            return []
        rows = np.flatnonzero(cols.market == cols.markets.index("perp"))
        ex, co = cols.exchanges, cols.coins
        nxt = cols.next_funding_ts[rows]
        return [
            PerpRow(t, ex[e], co[c], _opt(r), _opt(h), None if n != n else int(n), _opt(m))
            for t, e, c, r, h, n, m in zip(
                cols.ts[rows].tolist(), cols.exchange[rows].tolist(), cols.coin[rows].tolist(),
                cols.funding_rate[rows].tolist(), cols.funding_interval_h[rows].tolist(),
                nxt.tolist(), cols.mark[rows].tolist(), strict=True,
            )
        ]  # fmt: skip

    def observations(self) -> list[Observation]:
        return list(self._obs.values())

    def __len__(self) -> int:
        if self._latest is None:
            return len(self.columns())
        return len(self._latest)

    # -- figures (None when data is missing) ---------------------------------
    def funding_8h(self, exchange: str, coin: str) -> float | None:
        o = self._one((exchange, coin, "perp"))
        if o is None or o.funding_rate is None or not o.funding_interval_h:
            return None
        return normalise_funding(o.funding_rate, o.funding_interval_h)

    def spot_mid(self, exchange: str, coin: str) -> float | None:
        o = self._one((exchange, coin, "spot"))
        if o is None or o.bid is None or o.ask is None:
            return None
        return mid_price(o.bid, o.ask)

    def mark(self, exchange: str, coin: str) -> float | None:
        o = self._one((exchange, coin, "perp"))
        return None if o is None else o.mark

    def index(self, exchange: str, coin: str) -> float | None:
        o = self._one((exchange, coin, "perp"))
        return None if o is None else o.index

    def volume(self, exchange: str, coin: str) -> float | None:
        o = self._one((exchange, coin, "perp"))
        return None if o is None else o.volume_24h

    def basis(self, exchange: str, coin: str) -> float | None:
        p = self._one((exchange, coin, "perp"))
        mid = self.spot_mid(exchange, coin)
        if p is None or p.mark is None or mid is None:
            return None
        return basis_rate(p.mark, mid)

    def borrow_8h(self, exchange: str, coin: str) -> float | None:
        o = self._one((exchange, coin, "borrow"))
        if o is None or o.borrow_rate_daily is None:
            return None
        return borrow_per_8h(o.borrow_rate_daily)

    def next_funding_s(self, exchange: str, coin: str) -> float | None:
        o = self._one((exchange, coin, "perp"))
        if o is None or o.next_funding_ts is None:
            return None
        return (o.next_funding_ts - self.at) / 1000.0

    def age_s(self, obs: Observation) -> float:
        return (self.at - obs.ts) / 1000.0

    def taker_fee(self, exchange: str, coin: str, market: str) -> float | None:
        """The observation's own fee; the engine falls back to config, then defaults."""
        o = self._one((exchange, coin, market))
        return None if o is None else o.taker_fee

    # -- why something is missing ------------------------------------------
    def missing_reason(self, exchange: str, coin: str, market: str) -> str:
        """A short operator-facing reason why (exchange, coin, market) has no usable data.

        Returns "" when nothing is missing for that market's main figure. A
        recorded view says "not in this recording" where a live one, whose
        exchanges answered with their market lists, says "not listed".
        """
        o = self._one((exchange, coin, market))
        if o is None and self.recorded:
            # A recording holds what its writer chose to record: an absent
            # market may well be listed on the exchange.
            if exchange not in self.exchanges():
                return f"{exchange} not in this recording"
            if market == "perp":
                return f"{coin} on {exchange} not in this recording"
            return f"no {_MARKET_WORDS.get(market, market)} for {coin} on {exchange} in this recording"
        if o is None:
            if exchange in self.failures and exchange not in self.exchanges():
                return f"no data from {exchange}: {self.failures[exchange]}"
            if exchange not in self.exchanges():
                return f"no data from {exchange}"
            if market == "perp":
                return f"{coin} not listed on {exchange}"
            return f"no {_MARKET_WORDS.get(market, market)} for {coin} on {exchange}"
        if market == "perp":
            if o.funding_rate is None:
                return f"no funding rate for {coin} on {exchange}"
            if not o.funding_interval_h:
                return f"no funding interval for {coin} on {exchange}"
            if o.mark is None:
                return f"no mark price for {coin} on {exchange}"
        elif market == "spot":
            if o.bid is None or o.ask is None:
                return f"no spot bid/ask for {coin} on {exchange}"
        elif market == "borrow" and o.borrow_rate_daily is None:
            return f"no borrow rate for {coin} on {exchange}"
        return ""

    # -- what is in the view -------------------------------------------------
    def exchanges(self) -> set[str]:
        if self._exchanges is None:
            if self._latest is None:
                cols = self.columns()
                self._exchanges = {cols.exchanges[i] for i in np.unique(cols.exchange).tolist()}
            else:
                self._exchanges = {k[0] for k in self._latest}
        return self._exchanges

    def coins(self) -> set[str]:
        if self._coins is None:
            if self._latest is None:
                cols = self.columns()
                self._coins = {cols.coins[i] for i in np.unique(cols.coin).tolist()}
            else:
                self._coins = {k[1] for k in self._latest}
        return self._coins

    def __repr__(self) -> str:
        return f"SnapshotView(at={self.at}, observations={len(self)})"
