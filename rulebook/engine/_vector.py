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

__all__ = ["V", "MarketArrays", "Subjects", "Figures", "figures_of", "figures_at", "EX_INDEX", "N_EX"]

EX_INDEX = {e: i for i, e in enumerate(EXCHANGES)}
N_EX = len(EXCHANGES)

# reason codes: 0 none; > 0 a market datum (kind, exchange, coin); < 0 a
# division by zero (see _evaluator.DIV_ZERO)

# market-call kinds, in the order used to encode reasons
KINDS = ("funding", "basis", "borrow", "price", "volume", "next_funding", "spot_mid")
KIND_INDEX = {k: i for i, k in enumerate(KINDS)}


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
        fees = config.taker_fees
        # One row of raw fields per observation; the formulas then run once
        # per column on arrays (the same float operations as on one value, so
        # the figures agree bit for bit with SnapshotView's), and each column
        # is written into its (exchange x coin) grid with one fancy
        # assignment. None becomes NaN in a float array: missing, as elsewhere.
        perp: list[tuple[object, ...]] = []
        spot: list[tuple[object, ...]] = []
        borrow_rows: list[tuple[object, ...]] = []
        perp_cells: list[int] = []
        spot_cells: list[int] = []
        borrow_cells: list[int] = []
        # the taker fee, when the observation has none, depends only on the exchange
        perp_fees: dict[str, float] = {}
        spot_fees: dict[str, float] = {}
        for o in view.observations():
            c = coins.get(o.coin)
            e = EX_INDEX.get(o.exchange)
            if c is None or e is None:
                continue
            market = o.market
            if market == "perp":
                fee = o.taker_fee
                if fee is None:
                    fee = perp_fees.get(o.exchange)
                    if fee is None:
                        fee = resolve_taker_fee(o.exchange, "perp", None, fees)[0]
                        perp_fees[o.exchange] = fee
                perp_cells.append(e * n + c)
                perp.append((
                    o.funding_rate, o.funding_interval_h, o.mark, o.index, o.volume_24h,
                    o.next_funding_ts, o.ts, fee,
                ))
            elif market == "spot":
                fee = o.taker_fee
                if fee is None:
                    fee = spot_fees.get(o.exchange)
                    if fee is None:
                        fee = resolve_taker_fee(o.exchange, "spot", None, fees)[0]
                        spot_fees[o.exchange] = fee
                spot_cells.append(e * n + c)
                spot.append((o.bid, o.ask, o.ts, fee))
            elif o.borrow_rate_daily is not None:
                borrow_cells.append(e * n + c)
                borrow_rows.append((o.borrow_rate_daily, o.ts))
        with np.errstate(all="ignore"):
            rate, hours, mark, index, volume, nxt, ts, perp_fee = _table(perp, 8)
            # no interval (or a zero one) is no normalised funding
            funding = np.where(hours != 0, M.normalise_funding(rate, hours), np.nan)
            perp_cols = (funding, mark, index, volume, (nxt - at) / 1000.0, (at - ts) / 1000.0, perp_fee)
            bid, ask, ts, spot_fee = _table(spot, 4)
            spot_cols = (M.mid_price(bid, ask), (at - ts) / 1000.0, spot_fee)
            daily, ts = _table(borrow_rows, 2)
            borrow_cols = (M.borrow_per_8h(daily), (at - ts) / 1000.0)
        funding, mark, index, volume, next_s, perp_age, perp_fee = _grids(perp_cols, perp_cells, shape)
        mid, spot_age, spot_fee = _grids(spot_cols, spot_cells, shape)
        borrow, borrow_age = _grids(borrow_cols, borrow_cells, shape)
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
        if not missing.any():
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


def _table(rows: list[tuple[object, ...]], width: int) -> list[np.ndarray]:
    """The columns of `rows` as float arrays (None -> NaN); empty ones for no rows."""
    if not rows:
        return [np.empty(0) for _ in range(width)]
    table = np.array(rows, dtype=float)
    return [table[:, k] for k in range(width)]


def _grids(
    columns: tuple[np.ndarray, ...], cells: list[int], shape: tuple[int, int]
) -> list[np.ndarray]:
    """(exchange x coin) arrays, NaN but where a cell has a row's value."""
    out = [np.full(shape, np.nan) for _ in columns]
    if cells:
        flat = np.array(cells, dtype=np.intp)
        for arr, col in zip(out, columns, strict=True):
            arr.reshape(-1)[flat] = col
    return out


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
    todo = np.flatnonzero(~done) if positions is None else positions[~done[positions]]
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
        if done.all():
            del mk.memo[done_key]
    return got


def _compute_figures(mk: MarketArrays, s: Subjects) -> Figures:
    c, a = s.coin, s.a
    fa = mk.by_kind["funding"][a, c]
    ma = mk.mark[a, c]
    if s.kind == "spread":
        assert s.b is not None
        b = s.b
        fb = mk.by_kind["funding"][b, c]
        mb = mk.mark[b, c]
        missing = np.isnan(fa) | np.isnan(ma) | np.isnan(fb) | np.isnan(mb)
        order = [("funding", a, fa), ("price", a, ma), ("funding", b, fb), ("price", b, mb)]
        edge = M.spread_edge(fa, fb)
        first_short = M.spread_first_short(fa, fb)
        fees = M.round_trip_fees(mk.perp_fee[a, c], mk.perp_fee[b, c])
        dev = M.pair_deviation(ma, mb)
        age = np.maximum(mk.perp_age[a, c], mk.perp_age[b, c])
    else:
        mid = mk.mid[a, c]
        bor = mk.by_kind["borrow"][a, c]
        if s.kind == "borrow":
            needs_borrow = np.ones(np.shape(fa), dtype=bool)
        else:
            needs_borrow = M.carry_needs_borrow(fa)
        no_borrow = needs_borrow & np.isnan(bor)
        missing = np.isnan(fa) | np.isnan(ma) | np.isnan(mid) | no_borrow
        order = [("funding", a, fa), ("price", a, ma), ("spot_mid", a, mid), ("borrow", a, bor)]
        first_short = M.carry_first_short(fa)
        if s.kind == "borrow":
            edge = M.borrow_edge(fa, bor)
        else:
            edge = M.carry_edge(fa, bor)
        fees = M.round_trip_fees(mk.perp_fee[a, c], mk.spot_fee[a, c])
        idx = mk.index[a, c]
        # No index reported: the spot mid on the same exchange is the nearest
        # stand-in, and this subject trades that spot anyway.
        ref = np.where(np.isnan(idx), mid, idx)
        dev = M.index_deviation(ma, ref)
        age = np.maximum(mk.perp_age[a, c], mk.spot_age[a, c])
        age = np.where(needs_borrow, np.maximum(age, mk.borrow_age[a, c]), age)
    price_score = M.price_score(dev)
    fresh = M.fresh_score(age)
    confidence = M.confidence(price_score, fresh)
    breakeven = M.breakeven_s(edge, fees)
    risk = M.risk_level(confidence, breakeven)
    reason = None
    if missing.any():
        # the first missing datum, in the order the figures read them: funding
        # and mark of the first leg, (spot mid, borrow,) then the second leg
        reason = np.zeros(missing.shape, dtype=np.int64)
        for kind, ex, values in reversed(order):
            gap = np.isnan(values)
            if kind == "borrow" and s.kind != "spread":
                gap = no_borrow
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


