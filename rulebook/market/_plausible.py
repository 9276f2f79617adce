"""Price plausibility: implausible jumps are rejected for the cycle, not traded.

Every observation's prices have passed the line checks (finite, positive,
within 1e-12..1e12). That still admits a price a hundred times the last one,
a unit error or a broken feed. Before a cycle uses a view, :class:`PriceGuard`
compares each new observation with

- the same market's previous accepted observation: a move of more than
  ``band.jump`` (default 50%) is implausible;
- the other venues: a price more than ``band.venues`` (default 25%) away from
  the median of the same coin's prices over the venues (one price per venue,
  the observation's own among them), when at least ``band.min_venues`` other
  venues show the coin, is implausible.

An implausible observation is rejected for that cycle: the view the cycle
uses holds the market's previous accepted observation instead (or nothing, if
there is none), so no fill, mark or payment is made at its price, and a
:class:`Rejection` says why (the runtime records it as a `price_rejected`
event). A settlement record whose mark is implausible against the accepted
perp loses its mark, so the payment takes the accepted one.

A real move persists: a market whose new level holds for ``band.confirm``
consecutive observations (each within the jump band of the one before, and
plausible against the other venues) is accepted at that level.

Each observation is judged when it is new. While it stays unchanged, a
rejected observation stays replaced, whichever band rejected it (a new level
held back, or a price far from the other venues), with no second rejection;
a changed observation is judged afresh (docs/limits.md). So a feed that stops
at an implausible price is never used by staying stuck there.

The band is configurable (`[price_band]` in rulebook.toml; docs/limits.md).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, cast

import msgspec
import numpy as np

from ._model import Observation
from ._settlement import Settlement
from ._view import SnapshotView, ViewColumns

__all__ = ["PriceBand", "PriceGuard", "Rejection"]

Key = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class PriceBand:
    #: the largest plausible move from the previous accepted observation (0.5 = 50%)
    jump: float = 0.5
    #: the largest plausible distance from the other venues' median (0.25 = 25%)
    venues: float = 0.25
    #: how many other venues a cross-venue check needs (with fewer, it is not made)
    min_venues: int = 2
    #: consecutive observations at a new level that make it accepted
    confirm: int = 3


@dataclass(frozen=True, slots=True)
class Rejection:
    exchange: str
    coin: str
    market: str
    why: str

    def text(self) -> str:
        return f"{self.exchange} {self.coin} {self.market}: {self.why}; not used this cycle"


def _prices(o: Observation) -> list[tuple[str, float]]:
    return [(n, v) for n in ("mark", "index", "bid", "ask") if (v := getattr(o, n)) is not None]


def _reference(o: Observation) -> float | None:
    """One price per observation: the mark of a perp, the mid (or a side) of a spot."""
    if o.mark is not None:
        return o.mark
    if o.bid is not None and o.ask is not None:
        return (o.bid + o.ask) / 2.0
    return o.bid if o.bid is not None else o.ask


def _off(price: float, ref: float) -> float:
    return abs(price / ref - 1.0)


def _references(cols: ViewColumns) -> np.ndarray:
    """`_reference` of every row: the mark, else the mid, else the one side (NaN: none).
    (`x == x` is `~isnan(x)` in one call; NaN arithmetic and comparisons do not warn.)"""
    bid, ask, mark = cols.bid, cols.ask, cols.mark
    mid = (bid + ask) / 2.0
    side = np.where(bid == bid, bid, ask)
    ref: np.ndarray = np.where(mark == mark, mark, np.where(mid == mid, mid, side))
    return ref


def _coin_refs(
    cols: ViewColumns, ref: np.ndarray, priced: np.ndarray, coin: str
) -> dict[str, dict[str, list[float]]]:
    """The references of one coin's markets by venue, in row order, as _implausible reads them."""
    code = cols.coins.index(coin)
    by_venue: dict[str, list[float]] = {}
    rows = np.flatnonzero((cols.coin == code) & priced & ~np.isnan(ref)).tolist()
    for i in rows:
        by_venue.setdefault(cols.exchanges[int(cols.exchange[i])], []).append(float(ref[i]))
    return {coin: by_venue}


def _median_rows(grid: np.ndarray, k: np.ndarray | None = None) -> np.ndarray:
    """The median of each row's non-NaN values (NaN for none), as statistics.median
    takes it: the middle value, or the mean of the two middle ones. `k`, when given,
    is each row's count of non-NaN values (the screen has it already)."""
    if not grid.shape[1]:
        return np.full(grid.shape[0], np.nan)
    s = np.sort(grid, axis=1).ravel()  # NaN last in each row
    if k is None:
        k = (grid == grid).sum(axis=1)
    first = np.arange(0, s.size, grid.shape[1])  # each row's first cell in `s`
    hi = s[first + k // 2]  # a row without values: its first cell, NaN
    lo = s[first + np.maximum(k - 1, 0) // 2]
    with np.errstate(all="ignore"):
        # an even k takes the mean of the two middle ones (NaN + NaN for k == 0)
        median: np.ndarray = np.where(k & 1, hi, (lo + hi) / 2.0)
    return median


def _grown(a: np.ndarray, size: int, fill: Any) -> np.ndarray:
    out = np.full((size, *a.shape[1:]), fill, dtype=a.dtype)
    out[: len(a)] = a
    return out


def _judged(cols: ViewColumns) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The prices the guard judges (mark, index, bid, ask; NaN: none), a column each:
    with its time, what stamps a columnar view's observation."""
    return cols.mark, cols.index, cols.bid, cols.ask


def _row_prices(judged: tuple[np.ndarray, ...], i: int) -> np.ndarray:
    """Row `i`'s judged prices, as a (4,) array."""
    return np.array([c[i] for c in judged], dtype=np.float64)


def _same_prices(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise, whether two price arrays hold the same figure (NaN equal to NaN)."""
    same: np.ndarray = (a == b) | ((a != a) & (b != b))
    return same


class _Codes:
    """The guard's own codes for a category (exchange, coin or market names), stable
    across views, and the translation of a view's codes into them (kept while the
    view's categories stay the same: a columnar recording's are one tuple)."""

    __slots__ = ("names", "code", "_last", "_map")

    def __init__(self) -> None:
        self.names: list[str] = []
        self.code: dict[str, int] = {}
        self._last: tuple[str, ...] | None = None
        self._map = np.zeros(0, dtype=np.intp)

    def of(self, names: tuple[str, ...]) -> np.ndarray:
        if names is not self._last and names != self._last:
            code = self.code
            for n in names:
                if n not in code:
                    code[n] = len(self.names)
                    self.names.append(n)
            self._map = np.array([code[n] for n in names], dtype=np.intp)
            self._last = names
        return self._map


class PriceGuard:
    """Checks each cycle's view against the previous accepted prices and the other venues.

    Every market of a view is screened at once, with numpy over the view's
    columns: a changed observation whose every price is well inside both
    bands is accepted there. Only the others (a price near or past a band, a
    market whose new level is held back) go through the checks one by one,
    which word the rejections; so the verdicts are those of the checks alone
    (tests/test_price_guard_screen.py holds the checks as first written, one
    observation at a time, and compares).

    What the guard keeps per market lives in arrays indexed by a slot per
    (exchange, coin, market), found from the view's codes with numpy: the
    reference price of the accepted observation, the accepted observation
    itself (or the view that holds it, made into an Observation only when a
    rejection needs it), and a stamp of the last observation checked (its
    identity in a view of observations; in a columnar view, which has no
    objects, its time and the prices judged: a late line with the time its
    market already holds replaces that market's figures, and must be judged
    again). So a cycle in which nothing is near a band does no Python work
    per market.
    """

    #: how far inside a band the screen must find a price to accept it without
    #: the one-by-one check (the medians may differ from it in the last bit)
    MARGIN = 1e-9

    _NONE, _BY_TIME, _BY_IDENTITY = 0, 1, 2  # what a market's stamp is

    def __init__(self, band: PriceBand | None = None) -> None:
        self.band = band or PriceBand()
        self._exchange, self._coin, self._market = _Codes(), _Codes(), _Codes()
        self._table = np.full((0, 0, 0), -1, dtype=np.intp)  # (coin, exchange, market) -> slot
        self._keys: list[Key] = []  # slot -> key
        self._slot: dict[Key, int] = {}  # key -> slot
        # per slot:
        self._accepted_ref = np.zeros(0)  # _reference of the accepted one (NaN: none)
        self._accepted = np.zeros(0, dtype=object)  # the accepted one, or the view holding it
        self._seen_kind = np.zeros(0, dtype=np.int8)  # _NONE, _BY_TIME or _BY_IDENTITY
        self._seen_ts = np.zeros(0, dtype=np.int64)  # the stamp _BY_TIME: the time ...
        # ... and the prices judged (_judged): one array per price, mark, index, bid, ask
        self._seen_px = [np.zeros(0) for _ in range(4)]
        self._seen_id = np.zeros(0, dtype=np.int64)  # the stamp _BY_IDENTITY: id() of ...
        self._seen_obj = np.zeros(0, dtype=object)  # ... this observation, kept alive
        # held-back new levels, by market (few)
        self._rejected: dict[Key, Observation] = {}
        # the stamp of each market's last observation if it was rejected (by either
        # band): while the market's observation is unchanged, it stays replaced
        self._rejected_stamp: dict[Key, object] = {}
        self._streak: dict[Key, int] = {}
        # the last view's code arrays and tuples, and its rows' slots: a view whose
        # (read-only) code arrays are the same objects has the same slots
        self._last_codes: tuple[object, ...] = ()
        self._last_slots = np.zeros(0, dtype=np.intp)
        # the same slots as an index: slice(0, n) when they are 0..n-1 in row order (a
        # replay's markets get their slots in the order they first appear), which reads
        # and writes the per-slot arrays without gathering or scattering
        self._last_sel: np.ndarray | slice = self._last_slots
        self._last_cell: np.ndarray | None = None  # the screen's (coin, venue) cell per row
        self._last_priced: np.ndarray | None = None  # per row: a priced market (not borrow)
        # whether an observation (a view of observations') was ever kept in _seen_obj:
        # until then a columnar view's stamps have nothing there to release
        self._objects_seen = False

    # -- the slots ---------------------------------------------------------------
    def _slots(self, cols: ViewColumns) -> tuple[np.ndarray, np.ndarray | slice]:
        """Each row's slot (new markets get one), and the same as an index of the
        per-slot arrays (`_last_sel`)."""
        codes = (cols.exchange, cols.coin, cols.market, cols.exchanges, cols.coins, cols.markets)
        last = self._last_codes
        if (
            last and last[0] is codes[0] and last[1] is codes[1] and last[2] is codes[2]
            and last[3] == codes[3] and last[4] == codes[4] and last[5] == codes[5]
        ):  # fmt: skip
            return self._last_slots, self._last_sel
        self._last_cell = self._last_priced = None
        slots = self._new_slots(cols)
        n = slots.size
        sel: np.ndarray | slice = slots
        if n and slots[0] == 0 and slots[-1] == n - 1 and bool((np.diff(slots) == 1).all()):
            sel = slice(0, n)
        if not any(a.flags.writeable for a in codes[:3]):  # they cannot change
            slots.setflags(write=False)
            self._last_codes, self._last_slots, self._last_sel = codes, slots, sel
        else:
            self._last_codes = ()
        return slots, sel

    def _new_slots(self, cols: ViewColumns) -> np.ndarray:
        ge = self._exchange.of(cols.exchanges)[cols.exchange]
        gc = self._coin.of(cols.coins)[cols.coin]
        gm = self._market.of(cols.markets)[cols.market]
        shape = (len(self._coin.names), len(self._exchange.names), len(self._market.names))
        if shape != self._table.shape:
            table = np.full(shape, -1, dtype=np.intp)
            old = self._table.shape
            table[: old[0], : old[1], : old[2]] = self._table
            self._table = table
        slots: np.ndarray = self._table[gc, ge, gm]
        new = np.flatnonzero(slots < 0)
        if new.size:
            fresh = np.arange(len(self._keys), len(self._keys) + new.size)
            self._table[gc[new], ge[new], gm[new]] = fresh
            slots[new] = fresh
            ex, co, mk = self._exchange.names, self._coin.names, self._market.names
            for e, c, m in zip(ge[new].tolist(), gc[new].tolist(), gm[new].tolist(), strict=True):
                self._slot[(ex[e], co[c], mk[m])] = len(self._keys)
                self._keys.append((ex[e], co[c], mk[m]))
            self._grow(len(self._keys))
        return slots

    def _grow(self, size: int) -> None:
        if size <= self._accepted_ref.size:
            return
        size = max(size, 2 * self._accepted_ref.size)
        self._accepted_ref = _grown(self._accepted_ref, size, np.nan)
        self._accepted = _grown(self._accepted, size, None)
        self._seen_kind = _grown(self._seen_kind, size, self._NONE)
        self._seen_ts = _grown(self._seen_ts, size, 0)
        self._seen_px = [_grown(a, size, np.nan) for a in self._seen_px]
        self._seen_id = _grown(self._seen_id, size, 0)
        self._seen_obj = _grown(self._seen_obj, size, None)

    def _ref_of(self, key: Key) -> float | None:
        """The reference price of the market's accepted observation (None: none)."""
        slot = self._slot.get(key)
        if slot is None:
            return None
        ref = float(self._accepted_ref[slot])
        return None if math.isnan(ref) else ref

    def _held(self, key: Key) -> Observation | None:
        slot = self._slot.get(key)
        h = self._accepted[slot] if slot is not None else None
        if isinstance(h, SnapshotView):
            return h.get(*key)
        return cast("Observation | None", h)

    # -- a cycle -------------------------------------------------------------------
    def check(self, view: SnapshotView) -> tuple[SnapshotView, list[Rejection]]:
        """The view to use this cycle (implausible observations replaced) and the rejections."""
        # one errstate for the whole array work (0/0 of an empty cell in the screen)
        with np.errstate(all="ignore"):
            return self._check(view)

    def _check(self, view: SnapshotView) -> tuple[SnapshotView, list[Rejection]]:
        cols = view.columns()
        held = view.held()
        n = len(cols)
        slots, sel = self._slots(cols)  # `sel`: `slots` as an index (perhaps a slice)
        judged = _judged(cols)
        # a stamp per market that changes when its observation does: the observation
        # itself (its id, while the guard keeps it alive), or (a columnar view, no
        # objects) its own time and the prices judged; a market last stamped the other
        # way has changed
        if held is not None:
            objs = np.fromiter(held, dtype=object, count=n)
            ids = np.fromiter(map(id, held), dtype=np.int64, count=n)
            changed = (self._seen_kind[sel] != self._BY_IDENTITY) | (self._seen_id[sel] != ids)
        else:
            same = (self._seen_kind[sel] == self._BY_TIME) & (self._seen_ts[sel] == cols.ts)
            at = same.nonzero()[0]
            if at.size:  # the same time: the same observation only if its prices are too
                at_slots = slots[at]
                kept = _same_prices(self._seen_px[0][at_slots], judged[0][at])
                for seen, now in zip(self._seen_px[1:], judged[1:], strict=True):
                    kept &= _same_prices(seen[at_slots], now[at])
                same[at] = kept
            changed = ~same
        priced = self._priced(cols)
        ref = _references(cols)
        candidates = changed & priced
        fast = candidates & self._screen(cols, sel, ref, priced)
        rejected = self._rejected
        row_of: np.ndarray | None = None
        if rejected or self._rejected_stamp:  # checked one by one: a held-back new
            # level, and a market whose last observation was rejected
            row_of = np.full(len(self._keys), -1, dtype=np.intp)
            row_of[slots] = np.arange(n)
            back = row_of[[self._slot[k] for k in rejected.keys() | self._rejected_stamp.keys()]]
            fast[back[back >= 0]] = False
        rejections: list[Rejection] = []
        replaced: dict[Key, Observation | None] = {}
        refs: dict[str, dict[str, dict[str, list[float]]]] = {}  # per coin, when needed
        for i in (candidates & ~fast).nonzero()[0].tolist():
            slot = int(slots[i])
            key = self._keys[slot]
            o = held[i] if held is not None else view.get(*key)
            assert o is not None
            self._seen_obj[slot] = o if held is not None else None
            if held is not None:
                self._seen_kind[slot], self._seen_id[slot] = self._BY_IDENTITY, id(o)
                self._objects_seen = True
            else:
                self._seen_kind[slot], self._seen_ts[slot] = self._BY_TIME, cols.ts[i]
                for seen, now in zip(self._seen_px, judged, strict=True):
                    seen[slot] = now[i]
            coin = key[1]
            if coin not in refs:
                refs[coin] = _coin_refs(cols, ref, priced, coin)
            why = self._implausible(o, refs[coin], self._ref_of(key))
            if why is None:
                self._accept(key, o)
                continue
            # rejected (a new level held back, or far from the other venues): it stays
            # replaced while it is unchanged
            self._rejected_stamp[key] = (
                o if held is not None else (int(cols.ts[i]), _row_prices(judged, i))
            )
            rejections.append(Rejection(o.exchange, o.coin, o.market, why))
            replaced[key] = self._held(key)
        rows = fast.nonzero()[0]
        if rows.size:  # accepted by the screen, all at once
            whole = rows.size == n  # every row (a cycle in which nothing is near a band)
            at_slots = sel if whole else slots[rows]
            if held is not None:
                self._seen_kind[at_slots] = self._BY_IDENTITY
                self._seen_id[at_slots] = ids if whole else ids[rows]
                self._seen_obj[at_slots] = self._accepted[at_slots] = objs if whole else objs[rows]
                self._objects_seen = True
            else:
                self._seen_kind[at_slots] = self._BY_TIME
                self._seen_ts[at_slots] = cols.ts if whole else cols.ts[rows]
                for seen, now in zip(self._seen_px, judged, strict=True):
                    seen[at_slots] = now if whole else now[rows]
                if self._objects_seen:  # release the observations kept there
                    self._seen_obj[at_slots] = None
                self._accepted[at_slots] = view
            self._accepted_ref[at_slots] = ref if whole else ref[rows]
        if self._rejected_stamp:  # unchanged since the last cycle: the same verdict
            if row_of is None:
                row_of = np.full(len(self._keys), -1, dtype=np.intp)
                row_of[slots] = np.arange(n)
            for key, stamp in self._rejected_stamp.items():
                if key in replaced:
                    continue
                at_row = int(row_of[self._slot[key]])
                if at_row < 0 or changed[at_row]:
                    continue
                if held is not None:
                    same_one = held[at_row] is stamp
                else:
                    ts, prices = cast("tuple[int, np.ndarray]", stamp)
                    same_one = int(cols.ts[at_row]) == ts and bool(
                        _same_prices(_row_prices(judged, at_row), prices).all()
                    )
                if same_one:
                    replaced[key] = self._held(key)
        settlements = self._check_settlements(view, replaced, rejections)
        if not replaced and settlements is None:
            return view, rejections
        latest = {o.key: o for o in view.observations()}
        for key, kept_o in replaced.items():
            if kept_o is None:
                latest.pop(key, None)
            else:
                latest[key] = kept_o
        return (
            SnapshotView(
                view.at,
                latest,
                view.failures,
                view.settlements if settlements is None else settlements,
                recorded=view.recorded,
            ),
            rejections,
        )

    def _priced(self, cols: ViewColumns) -> np.ndarray:
        """Per row: a priced market (every market but borrow), kept with the slots."""
        priced = self._last_priced if self._last_codes else None
        if priced is None:
            borrow = cols.markets.index("borrow") if "borrow" in cols.markets else -1
            priced = cols.market != borrow
            if self._last_codes:
                self._last_priced = priced
        return priced

    def _screen(
        self, cols: ViewColumns, sel: np.ndarray | slice, ref: np.ndarray, priced: np.ndarray
    ) -> np.ndarray:
        """Per row: every price well inside the venue band and the jump band.

        (Called under `check`'s errstate. "Every price within" is written as "no price
        past": `~(x > limit)` is `isnan(x) | (x <= limit)`.)"""
        band = self.band
        n = len(cols)
        if n == 0:
            return np.zeros(0, dtype=bool)
        has_ref = priced & (ref == ref)
        # one price per venue (the mean of its markets' references: their median, as
        # a venue has at most a perp and a spot priced; a cell with more is left to
        # the checks), then the median over the coin's venues, as in _implausible
        shape = (len(cols.coins), len(cols.exchanges))
        cell = self._last_cell if self._last_codes else None  # the codes of `slots`' view
        if cell is None:
            cell = cols.coin.astype(np.intp) * shape[1] + cols.exchange.astype(np.intp)
            if self._last_codes:
                self._last_cell = cell
        cells = cell[has_ref]
        total = np.bincount(cells, weights=ref[has_ref], minlength=shape[0] * shape[1])
        count = np.bincount(cells, minlength=shape[0] * shape[1])
        venue = (total / count).reshape(shape)  # NaN (0 / 0) where a venue has none
        venues = (count > 0).reshape(shape).sum(axis=1)
        median = _median_rows(venue, venues)[cols.coin]  # per row, its coin's
        in_cell = count[cell]
        checked = venues[cols.coin] - (in_cell > 0) >= band.min_venues
        # A price is past a band when |price / ref - 1| > limit. Division by a positive
        # ref and the subtraction are monotone, so of a row's prices the highest and
        # the lowest give the largest and smallest `price / ref - 1`: the band is
        # passed by one of them exactly when it is by one of the four prices
        # (and |y| > limit is y > limit or y < -limit). NaN: no price, or no ref.
        mark, index, bid, ask = _judged(cols)
        high = np.fmax(np.fmax(mark, index), np.fmax(bid, ask))  # NaN only if none
        low = np.fmin(np.fmin(mark, index), np.fmin(bid, ask))
        lim = band.venues - self.MARGIN
        ok_venue = ~(checked & ((high / median - 1.0 > lim) | (low / median - 1.0 < -lim)))
        prev = self._accepted_ref[sel]  # NaN: none accepted
        lim = band.jump - self.MARGIN
        ok_jump = ~((high / prev - 1.0 > lim) | (low / prev - 1.0 < -lim))
        screened: np.ndarray = ok_venue & ok_jump & ~((median != median) & checked) & (in_cell <= 2)
        return screened

    def _accept(self, key: Key, o: Observation) -> None:
        slot = self._slot[key]
        self._accepted[slot] = o
        ref = _reference(o)
        self._accepted_ref[slot] = np.nan if ref is None else ref
        self._rejected.pop(key, None)
        self._rejected_stamp.pop(key, None)
        self._streak.pop(key, None)

    def _implausible(
        self, o: Observation, refs: dict[str, dict[str, list[float]]], ref: float | None
    ) -> str | None:
        """Why `o` is implausible (None: it is not); `ref` is the reference price of
        the market's accepted observation."""
        band = self.band
        by_venue = refs.get(o.coin, {})
        if len(by_venue) - (o.exchange in by_venue) >= band.min_venues:
            # one price per venue, and the venue itself among them: the median of
            # three or more is not moved by one bad venue
            median = statistics.median(statistics.median(p) for p in by_venue.values())
            for name, value in _prices(o):
                if _off(value, median) > band.venues:
                    return (
                        f"{name} {value:g} is {_off(value, median):.0%} from the median "
                        f"{median:g} of {len(by_venue)} venues (band {band.venues:.0%})"
                    )
        if ref is None:
            return None
        for name, value in _prices(o):
            if _off(value, ref) > band.jump:
                if self._confirms(o, value):
                    return None
                return (
                    f"{name} {value:g} jumped {_off(value, ref):.0%} from {ref:g} "
                    f"(band {band.jump:.0%})"
                )
        return None

    def _confirms(self, o: Observation, value: float) -> bool:
        """Whether `o` continues a held-back new level long enough to be accepted."""
        key = o.key
        held = self._rejected.get(key)
        held_ref = _reference(held) if held is not None else None
        if held_ref is not None and _off(value, held_ref) <= self.band.jump:
            self._streak[key] = self._streak.get(key, 1) + 1
        else:
            self._streak[key] = 1
        self._rejected[key] = o
        return self._streak[key] >= self.band.confirm

    def _check_settlements(
        self,
        view: SnapshotView,
        replaced: dict[Key, Observation | None],
        rejections: list[Rejection],
    ) -> tuple[Settlement, ...] | None:
        """Settlements whose mark is implausible against the accepted perp lose their mark."""
        if not view.settlements:
            return None
        out: list[Settlement] = []
        changed = False
        for s in view.settlements:
            key = (s.exchange, s.coin, "perp")
            if key in replaced:
                perp = replaced[key]
                ref = _reference(perp) if perp is not None else None
            else:
                ref = self._ref_of(key)
            if s.mark is not None and ref is not None and _off(s.mark, ref) > self.band.jump:
                rejections.append(
                    Rejection(
                        s.exchange,
                        s.coin,
                        "settlement",
                        f"mark {s.mark:g} is {_off(s.mark, ref):.0%} from the perp's {ref:g} "
                        f"(band {self.band.jump:.0%}); paid at the perp's mark instead",
                    )
                )
                out.append(msgspec.structs.replace(s, mark=None))
                changed = True
            else:
                out.append(s)
        return tuple(out) if changed else None
