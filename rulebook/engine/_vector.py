"""One snapshot as arrays, and a subject's figures over many bindings at once.

`MarketArrays` holds every market datum of the snapshot as an (exchange x
coin) array, NaN where missing; `lookup` reads a market function for a batch
of bindings (codes), `figures_of` a subject's legs and metrics with the
formulas of `_metrics`. Both are memoised per snapshot, so rules over the
same variables share their lookups and figures. The evaluator
(`_evaluator.py`) is built on these.

Missing data is a value: a `V` carries a mask of the bindings whose data is
missing and a reason code per binding (the first missing datum in evaluation
order), worded only for the bindings an operator is shown.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from rulebook.lang import EXCHANGES
from rulebook.market import SnapshotView

from . import _metrics as M
from ._fees import EngineConfig, resolve_taker_fee

__all__ = [
    "V", "MarketArrays", "Subjects", "Figures", "figures_of", "figures_at", "EX_INDEX", "N_EX",
    "some", "every", "where_true", "spread_over",
]  # fmt: skip

EX_INDEX = {e: i for i, e in enumerate(EXCHANGES)}
N_EX = len(EXCHANGES)

# reason codes: 0 none; > 0 a market datum (kind, exchange, coin); < 0 a
# division by zero (see _evaluator.DIV_ZERO)

# market-call kinds, in the order used to encode reasons
KINDS = ("funding", "basis", "borrow", "price", "volume", "next_funding", "spot_mid")
KIND_INDEX = {k: i for i, k in enumerate(KINDS)}


def some(a: Any) -> bool:
    """Whether any element of `a` (an array or a scalar) is true: `np.any`'s answer
    in one C call (`np.any` and `ndarray.any` go through numpy's Python-level
    reductions, a few microseconds each; the engine asks dozens of times a cycle)."""
    return bool(np.count_nonzero(a))


def every(a: np.ndarray) -> bool:
    """Whether every element of the boolean array `a` is true (`a.all()`), in one C call."""
    return int(np.count_nonzero(a)) == a.size


def where_true(a: np.ndarray) -> np.ndarray:
    """`np.flatnonzero(a)` of a 1-D array, in one C call."""
    out: np.ndarray = a.nonzero()[0]
    return out


def spread_over(x: Any, shape: tuple[int, ...]) -> np.ndarray:
    """`np.broadcast_to(x, shape)`, but an array of that very shape as it is (numpy's
    broadcast_to is a Python function of several microseconds). Read it only."""
    if type(x) is np.ndarray and x.shape == shape:
        return x
    return np.broadcast_to(x, shape)


@dataclass(slots=True)
class V:
    """A value over a batch: `v` (array or scalar), `m` missing mask or None,
    `r` reason codes where missing; `aux` a second mask some traces keep."""

    v: Any
    m: Any = None
    r: Any = None
    aux: Any = None


class MarketArrays:
    """One snapshot as (exchange x coin) arrays; NaN where data is missing."""

    def __init__(self, view: SnapshotView, coins: dict[str, int], config: EngineConfig):
        self.view = view
        self.coins = coins
        #: coin names by code
        self.coin_names = list(coins)
        shape = (N_EX, max(len(coins), 1))
        self.n_coins = n = shape[1]
        at = view.at
        # The view's columns (one row per market, NaN where missing) are
        # remapped to this snapshot's exchange and coin codes; the formulas then
        # run once per column on arrays (the same float operations as on one
        # value, so the figures agree bit for bit with SnapshotView's), and each
        # column is written into its (exchange x coin) grid with one fancy
        # assignment. No Python loop runs per observation.
        cols = view.columns()
        lay = _layout_of(cols, coins, config, n)
        if lay.gather is not None:
            block = _gathered_grids(cols, lay, at, shape)
        else:
            block = _column_grids(cols, lay, at, shape)
        #: the grids raveled (rows of one block), read with one flat index per leg
        self.flat_block = block
        grids = list(block.reshape(len(GRIDS), *shape))
        funding, mark, index, volume, next_s, perp_age, perp_fee = grids[:7]
        mid, spot_age, spot_fee = grids[7:10]
        borrow, borrow_age = grids[10:]
        with np.errstate(all="ignore"):
            basis = np.where(np.isnan(mark), np.nan, M.basis_rate(mark, mid))
        self.by_kind = {
            "funding": funding,
            "basis": basis,
            "borrow": borrow,
            "price": mark,
            "volume": volume,
            "next_funding": next_s,
            "spot_mid": mid,
        }
        self.mark, self.index, self.mid = mark, index, mid
        self.perp_age, self.spot_age, self.borrow_age = perp_age, spot_age, borrow_age
        self.perp_fee, self.spot_fee = perp_fee, spot_fee
        #: results shared across rules within this snapshot: market lookups by
        #: (kind, coin array, exchange array) and figures by subject arrays
        self.memo: dict[tuple[object, ...], object] = {}

    def coin_code(self, coin: str) -> int:
        return self.coins[coin]

    def lookup(self, kind: str, c: np.ndarray | int, x: np.ndarray | int, key: Hashable) -> V:
        """Market function `kind` at coin codes `c` on exchange codes `x`;
        `key` names those codes (see Subjects.key), to share the result."""
        key = (kind, key)
        got = self.memo.get(key)
        if got is not None:
            return got  # type: ignore[return-value]
        values = self.by_kind[kind][x, c]
        missing = np.isnan(values)
        if not some(missing):
            got = V(values)
        else:
            got = V(values, missing, np.where(missing, self.code(kind, x, c), 0))
        self.memo[key] = got
        return got

    def code(self, kind: str, e: np.ndarray | int, c: np.ndarray | int) -> np.ndarray | int:
        return 1 + (KIND_INDEX[kind] * N_EX + e) * self.n_coins + c

    def decode(self, code: int) -> tuple[str, str, int]:
        """(kind, exchange, coin index) of a positive reason code."""
        k, rest = divmod(code - 1, N_EX * self.n_coins)
        e, c = divmod(rest, self.n_coins)
        return KINDS[k], EXCHANGES[e], c


_DEFAULT_FEES: dict[tuple[tuple[str, tuple[tuple[str, float], ...]], ...], tuple[np.ndarray, np.ndarray]] = {}


def _default_fees(config: EngineConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per exchange code: the taker fee of a perp and of a spot without one of its own."""
    key = tuple(sorted((x, tuple(sorted(m.items()))) for x, m in config.taker_fees.items()))
    got = _DEFAULT_FEES.get(key)
    if got is None:
        fees = config.taker_fees
        got = _DEFAULT_FEES[key] = (
            np.array([resolve_taker_fee(x, "perp", None, fees)[0] for x in EXCHANGES]),
            np.array([resolve_taker_fee(x, "spot", None, fees)[0] for x in EXCHANGES]),
        )
    return got


def _column_grids(cols: Any, lay: _Layout, at: int, shape: tuple[int, int]) -> np.ndarray:
    """The twelve (exchange x coin) grids `MarketArrays` reads (see `GRIDS`), raveled,
    as the rows of one block: each column's formula run on the rows of its market
    kind, then written into its cells (`_grids`). The general path: any view."""
    perp, spot = lay.perp, lay.spot
    borrow = lay.borrow
    if borrow.size:
        borrow = borrow[~np.isnan(cols.borrow_rate_daily[borrow])]
    borrow_cells = lay.cell[borrow]
    ts = cols.ts
    with np.errstate(all="ignore"):
        rate, hours = cols.funding_rate[perp], cols.funding_interval_h[perp]
        # no interval (or a zero one) is no normalised funding
        funding = np.where(hours != 0, M.normalise_funding(rate, hours), np.nan)
        fee = cols.taker_fee[perp]
        perp_fee = np.where(np.isnan(fee), lay.perp_default_fee, fee)
        perp_cols = (
            funding, cols.mark[perp], cols.index[perp], cols.volume_24h[perp],
            (cols.next_funding_ts[perp] - at) / 1000.0, (at - ts[perp]) / 1000.0, perp_fee,
        )  # fmt: skip
        fee = cols.taker_fee[spot]
        spot_fee = np.where(np.isnan(fee), lay.spot_default_fee, fee)
        spot_cols = (
            M.mid_price(cols.bid[spot], cols.ask[spot]), (at - ts[spot]) / 1000.0, spot_fee
        )
        borrow_cols = (
            M.borrow_per_8h(cols.borrow_rate_daily[borrow]), (at - ts[borrow]) / 1000.0
        )
    return _grids((*perp_cols, *spot_cols, *borrow_cols), lay.cells(borrow_cells), shape)


#: the grids `MarketArrays` is made of, in order: (name, market kind, per-row column
#: of `_gathered_grids`)
GRIDS = (
    ("funding", "perp", 0), ("mark", "perp", 1), ("index", "perp", 2), ("volume", "perp", 3),
    ("next_funding", "perp", 4), ("perp_age", "perp", 5), ("perp_fee", "perp", 6),
    ("mid", "spot", 7), ("spot_age", "spot", 5), ("spot_fee", "spot", 6),
    ("borrow", "borrow", 8), ("borrow_age", "borrow", 9),
)  # fmt: skip
_ROW_COLUMNS = 10


def _gathered_grids(cols: Any, lay: _Layout, at: int, shape: tuple[int, int]) -> np.ndarray:
    """`_column_grids`, with each formula run once over every row of the view and the
    twelve grids gathered from them with one take (`_Layout.gather`: per cell of each
    grid, its row's place in the rows' columns end to end, or the NaN at their end).

    The same floats, bit for bit: every formula is elementwise, so a row's value does
    not depend on which rows it is computed with, and a perp's, a spot's or a borrow
    market's columns are read only at that kind's cells (a borrow market without a
    rate has no cell: its age is NaN with its rate). For a view whose code arrays are
    shared and read-only (a replay's cycles), whose layout, and so `gather`, is kept:
    some 20 numpy calls in place of 60 (tests/test_engine_grids.py)."""
    ts = cols.ts
    daily = cols.borrow_rate_daily
    with np.errstate(all="ignore"):
        hours = cols.funding_interval_h
        funding = np.where(hours != 0, M.normalise_funding(cols.funding_rate, hours), np.nan)
        fee = cols.taker_fee
        age = (at - ts) / 1000.0
        rows = np.concatenate((
            funding, cols.mark, cols.index, cols.volume_24h,
            (cols.next_funding_ts - at) / 1000.0, age,
            np.where(np.isnan(fee), lay.row_default_fee, fee),
            M.mid_price(cols.bid, cols.ask), M.borrow_per_8h(daily),
            np.where(np.isnan(daily), np.nan, age), _NAN,
        ))  # fmt: skip
    assert lay.gather is not None
    out: np.ndarray = rows[lay.gather]
    return out


_NAN = np.array([np.nan])


def _grids(
    columns: tuple[np.ndarray, ...], cells: list[np.ndarray], shape: tuple[int, int]
) -> np.ndarray:
    """Raveled (exchange x coin) grids as the rows of one block, NaN but where a cell
    has a row's value: column i goes to `cells[i]`."""
    flat = np.full((len(columns), shape[0] * shape[1]), np.nan)
    for i, (col, at) in enumerate(zip(columns, cells, strict=True)):
        if at.size:
            flat[i, at] = col
    return flat


@dataclass(slots=True)
class _Layout:
    """Where a view's rows go in the (exchange x coin) grids, for one coin coding:
    the rows of each market kind the grids hold, and their cells. It depends only
    on the view's codes, so a view whose code arrays are the very (read-only)
    arrays of the previous one (a Parquet replay's cycles, while no market is
    added) reuses it."""

    #: what it was made from, kept so that the identities stay theirs
    source: tuple[object, ...]
    coins: dict[str, int]
    cell: np.ndarray  # per row: exchange * n + coin, in this coding
    perp: np.ndarray  # rows (indices) of the perps of known exchanges and coins
    spot: np.ndarray
    borrow: np.ndarray  # rows of borrow markets (those without a rate are dropped per view)
    perp_cells: np.ndarray
    spot_cells: np.ndarray
    #: the default taker fee of each of those perps and spots (used where a row has none)
    perp_default_fee: np.ndarray
    spot_default_fee: np.ndarray
    #: per row: its perp's or spot's default taker fee (NaN for other rows)
    row_default_fee: np.ndarray
    #: `_gathered_grids`' index (kept layouts only), else None
    gather: np.ndarray | None = None

    def cells(self, borrow_cells: np.ndarray) -> list[np.ndarray]:
        """The cells of every column `_grids` is given, in its order."""
        return [self.perp_cells] * 7 + [self.spot_cells] * 3 + [borrow_cells] * 2


#: the last few layouts made from read-only code arrays (see `_Layout`)
_LAYOUTS: list[_Layout] = []
_KEPT_LAYOUTS = 4


def _layout_of(cols: Any, coins: dict[str, int], config: EngineConfig, n: int) -> _Layout:
    fees = _default_fees(config)
    codes = (cols.exchange, cols.coin, cols.market)
    frozen = not any(a.flags.writeable for a in codes)
    if frozen:
        for lay in _LAYOUTS:
            src = lay.source
            if (
                src[0] is codes[0] and src[1] is codes[1] and src[2] is codes[2]
                and src[6] is fees and src[3] == cols.exchanges and src[4] == cols.coins
                and src[5] == cols.markets and lay.coins == coins
            ):  # fmt: skip
                return lay
    ex_map = np.array([EX_INDEX.get(e, -1) for e in cols.exchanges] or [-1], dtype=np.intp)
    coin_map = np.array([coins.get(c, -1) for c in cols.coins] or [-1], dtype=np.intp)
    e = ex_map[cols.exchange]
    c = coin_map[cols.coin]
    cell = e * n + c
    known = (e >= 0) & (c >= 0)
    markets = cols.markets
    market = cols.market

    def rows_of(kind: str) -> np.ndarray:
        if kind not in markets:
            return np.zeros(0, dtype=np.intp)
        return np.flatnonzero(known & (market == markets.index(kind)))

    perp, spot, borrow = rows_of("perp"), rows_of("spot"), rows_of("borrow")
    perp_default, spot_default = fees
    row_fee = np.full(len(market), np.nan)
    row_fee[perp] = perp_default[e[perp]]
    row_fee[spot] = spot_default[e[spot]]
    lay = _Layout(
        (*codes, cols.exchanges, cols.coins, cols.markets, fees), dict(coins), cell,
        perp, spot, borrow, cell[perp], cell[spot], perp_default[e[perp]], spot_default[e[spot]],
        row_fee,
    )  # fmt: skip
    if frozen:
        lay.gather = _gather_index(lay, len(market), N_EX * n)
        _LAYOUTS.insert(0, lay)
        del _LAYOUTS[_KEPT_LAYOUTS:]
    return lay


def _gather_index(lay: _Layout, n_rows: int, n_cells: int) -> np.ndarray:
    """Per grid of `GRIDS` and cell: where `_gathered_grids`' rows hold its value
    (column * n_rows + row), or the NaN after them where no row of the grid's kind
    has that cell. A cell written twice keeps the later row, as `_grids` does."""
    nan_at = _ROW_COLUMNS * n_rows
    row_of: dict[str, np.ndarray] = {}
    for kind, rows in (("perp", lay.perp), ("spot", lay.spot), ("borrow", lay.borrow)):
        at = np.full(n_cells, -1, dtype=np.intp)
        for r, c in zip(rows.tolist(), lay.cell[rows].tolist(), strict=True):
            at[c] = r  # in row order: the later row of a cell wins
        row_of[kind] = at
    index = np.empty((len(GRIDS), n_cells), dtype=np.intp)
    for g, (_name, kind, column) in enumerate(GRIDS):
        at = row_of[kind]
        index[g] = np.where(at >= 0, column * n_rows + at, nan_at)
    index.setflags(write=False)
    return index


@dataclass(slots=True)
class Subjects:
    """The subject of each binding in a batch, as codes (arrays, or ints for one).

    `key` names the codes' contents (the plan numbers each distinct code
    array; a single binding's codes are their own key): lookups and figures
    are memoised under it, so rules over the same variables share them."""

    kind: str
    coin: np.ndarray | int
    a: np.ndarray | int
    b: np.ndarray | int | None
    key: Hashable


@dataclass(slots=True)
class Figures:
    """A subject's figures per binding (spec 6); names as the language's metrics."""

    edge: np.ndarray
    fees: np.ndarray
    breakeven: np.ndarray
    confidence: np.ndarray
    risk: np.ndarray
    missing: np.ndarray | None
    reason: np.ndarray | None  # where missing: the first missing datum, in reading order
    deviation: np.ndarray
    price_score: np.ndarray
    age: np.ndarray
    fresh: np.ndarray
    #: which way round the legs go: spread, the first exchange is the short
    #: one; funding/basis, funding >= 0 (short perp, long spot)
    first_short: np.ndarray


def figures_of(mk: MarketArrays, s: Subjects) -> Figures:
    """The figures of these subjects, computed once per snapshot.

    funding and basis subjects have the same legs and figures; rules over the
    same variables share their subject arrays (deduplicated in the plan)."""
    return figures_at(mk, s, None)


_FIELDS: tuple[str, ...] = Figures.__slots__


def figures_at(mk: MarketArrays, s: Subjects, positions: np.ndarray | None) -> Figures:
    """The figures of these subjects, computed at least at `positions` (every
    binding when None), once per snapshot and binding.

    The arrays always span the whole batch; where not yet computed, `missing`
    is False and the figures are zeros, so read only the positions asked for.
    Every formula is elementwise, so a figure computed for a few bindings is
    the same float as computed for all: the short-circuit of the evaluator
    (and of a rule's fired bindings) computes only the bindings it reads."""
    family = "carry" if s.kind == "basis" else s.kind
    key = ("figures", family, s.key)
    done_key = ("figures done", family, s.key)
    got = cast("Figures | None", mk.memo.get(key))
    done = cast("np.ndarray | None", mk.memo.get(done_key))
    if got is None and (positions is None or not isinstance(s.coin, np.ndarray)):
        got = mk.memo[key] = _compute_figures(mk, s)
        return got
    if got is not None and done is None:
        return got  # complete
    assert isinstance(s.coin, np.ndarray) and isinstance(s.a, np.ndarray)
    n = len(s.coin)
    if done is None:
        done = np.zeros(n, dtype=bool)
        mk.memo[done_key] = done
    todo = where_true(~done) if positions is None else positions[~done[positions]]
    if len(todo) or got is None:
        b = s.b[todo] if isinstance(s.b, np.ndarray) else s.b
        part = _compute_figures(mk, Subjects(s.kind, s.coin[todo], s.a[todo], b, None))
        if got is None:
            got = Figures(*(
                np.zeros(n, dtype=bool) if name == "missing"
                else np.zeros(n, dtype=np.int64) if name == "reason"
                else np.zeros(n, dtype=np.asarray(getattr(part, name)).dtype)
                for name in _FIELDS
            ))
            mk.memo[key] = got
        for name in _FIELDS:
            value = getattr(part, name)
            if value is not None:
                getattr(got, name)[todo] = value
        done[todo] = True
        if every(done):
            del mk.memo[done_key]
    return got


_FLAT = {name: g for g, (name, _kind, _col) in enumerate(GRIDS)}


def _flat(mk: MarketArrays) -> dict[str, np.ndarray]:
    """The snapshot's (exchange x coin) grids raveled (rows of `flat_block`), read
    with one flat index per leg: cheaper than a 2-D fancy index per grid."""
    got = mk.memo.get(("flat grids",))
    if got is None:
        block = mk.flat_block
        got = mk.memo[("flat grids",)] = {name: block[g] for name, g in _FLAT.items()}
    return got  # type: ignore[return-value]


def _compute_figures(mk: MarketArrays, s: Subjects) -> Figures:
    c, a = s.coin, s.a
    g = _flat(mk)
    ia = a * mk.n_coins + c  # the first leg's cells
    fa = g["funding"][ia]
    ma = g["mark"][ia]
    if s.kind == "spread":
        assert s.b is not None
        b = s.b
        ib = b * mk.n_coins + c
        fb = g["funding"][ib]
        mb = g["mark"][ib]
        gaps = [np.isnan(fa), np.isnan(ma), np.isnan(fb), np.isnan(mb)]
        missing = gaps[0] | gaps[1] | gaps[2] | gaps[3]
        order = [("funding", a, fa), ("price", a, ma), ("funding", b, fb), ("price", b, mb)]
        cells = [ia, ia, ib, ib]
        no_borrow = None
        edge = M.spread_edge(fa, fb)
        first_short = M.spread_first_short(fa, fb)
        fees = M.round_trip_fees(g["perp_fee"][ia], g["perp_fee"][ib])
        dev = M.pair_deviation(ma, mb)
        age = np.maximum(g["perp_age"][ia], g["perp_age"][ib])
    else:
        mid = g["mid"][ia]
        bor = g["borrow"][ia]
        if s.kind == "borrow":
            needs_borrow = np.ones(np.shape(fa), dtype=bool)
        else:
            needs_borrow = M.carry_needs_borrow(fa)
        no_borrow = needs_borrow & np.isnan(bor)
        gaps = [np.isnan(fa), np.isnan(ma), np.isnan(mid), no_borrow]
        missing = gaps[0] | gaps[1] | gaps[2] | gaps[3]
        order = [("funding", a, fa), ("price", a, ma), ("spot_mid", a, mid), ("borrow", a, bor)]
        cells = [ia, ia, ia, ia]
        first_short = M.carry_first_short(fa)
        if s.kind == "borrow":
            edge = M.borrow_edge(fa, bor)
        else:
            edge = M.carry_edge(fa, bor)
        fees = M.round_trip_fees(g["perp_fee"][ia], g["spot_fee"][ia])
        idx = g["index"][ia]
        # No index reported: the spot mid on the same exchange is the nearest
        # stand-in, and this subject trades that spot anyway.
        ref = np.where(np.isnan(idx), mid, idx)
        dev = M.index_deviation(ma, ref)
        age = np.maximum(g["perp_age"][ia], g["spot_age"][ia])
        age = np.where(needs_borrow, np.maximum(age, g["borrow_age"][ia]), age)
    price_score = M.price_score(dev)
    fresh = M.fresh_score(age)
    confidence = M.confidence(price_score, fresh)
    breakeven = M.breakeven_s(edge, fees)
    risk = M.risk_level(confidence, breakeven)
    reason = None
    if some(missing):
        # the first missing datum, in the order the figures read them: funding
        # and mark of the first leg, (spot mid, borrow,) then the second leg;
        # worked out only where something is missing
        reason = np.zeros(missing.shape, dtype=np.int64)
        if np.ndim(missing):
            # a datum's code is its kind's base plus its leg's cell (`MarketArrays.code`:
            # 1 + (kind * N_EX + e) * n + c == 1 + kind * N_EX * n + (e * n + c)),
            # so the legs' cells and gaps (made above) give every code at once
            for (kind, _ex, _values), at, gap in zip(reversed(order), reversed(cells), reversed(gaps), strict=True):
                reason = np.where(gap, (1 + KIND_INDEX[kind] * N_EX * mk.n_coins) + at, reason)
        else:  # one binding
            for kind, ex, values in reversed(order):
                gap = no_borrow if kind == "borrow" and no_borrow is not None else np.isnan(values)
                reason = np.where(gap, mk.code(kind, ex, c), reason)
    figs = Figures(
        edge,
        fees,
        breakeven,
        confidence,
        risk,
        missing if reason is not None else None,
        reason,
        dev,
        price_score,
        age,
        fresh,
        first_short,
    )
    return figs


