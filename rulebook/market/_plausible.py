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

The band is configurable (`[price_band]` in rulebook.toml; docs/limits.md).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

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
    """`_reference` of every row: the mark, else the mid, else the one side (NaN: none)."""
    with np.errstate(all="ignore"):
        mid = (cols.bid + cols.ask) / 2.0
    side = np.where(np.isnan(cols.bid), cols.ask, cols.bid)
    return np.where(~np.isnan(cols.mark), cols.mark, np.where(np.isnan(mid), side, mid))


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


def _floats(a: np.ndarray) -> list[float | None]:
    return [None if math.isnan(x) else x for x in a.tolist()]


def _median_rows(grid: np.ndarray) -> np.ndarray:
    """The median of each row's non-NaN values (NaN for none), as statistics.median
    takes it: the middle value, or the mean of the two middle ones."""
    s = np.sort(grid, axis=1)  # NaN last
    k = (~np.isnan(grid)).sum(axis=1)
    rows = np.arange(grid.shape[0])
    hi = s[rows, np.maximum(k // 2, 0) if grid.shape[1] else 0]
    lo = s[rows, np.maximum((k - 1) // 2, 0)]
    with np.errstate(all="ignore"):
        return np.where(k == 0, np.nan, np.where(k % 2 == 1, hi, (lo + hi) / 2.0))


class PriceGuard:
    """Checks each cycle's view against the previous accepted prices and the other venues.

    Every market of a view is screened at once, with numpy over the view's
    columns: a changed observation whose every price is well inside both
    bands is accepted there. Only the others (a price near or past a band, a
    market whose new level is held back) go through the checks one by one,
    which word the rejections; so the verdicts are those of the checks alone.
    """

    #: how far inside a band the screen must find a price to accept it without
    #: the one-by-one check (the medians may differ from it in the last bit)
    MARGIN = 1e-9

    def __init__(self, band: PriceBand | None = None) -> None:
        self.band = band or PriceBand()
        #: the market's previous accepted observation: itself, or the view that holds it
        self._accepted: dict[Key, Observation | SnapshotView] = {}
        self._accepted_ref: dict[Key, float | None] = {}  # _reference of the accepted one
        self._seen: dict[Key, object] = {}  # the last observation checked per market (a stamp)
        self._rejected: dict[Key, Observation] = {}  # held-back new levels, by market
        self._rejected_stamp: dict[Key, object] = {}
        self._streak: dict[Key, int] = {}

    def _held(self, key: Key) -> Observation | None:
        h = self._accepted.get(key)
        if isinstance(h, SnapshotView):
            return h.get(*key)
        return h

    def check(self, view: SnapshotView) -> tuple[SnapshotView, list[Rejection]]:
        """The view to use this cycle (implausible observations replaced) and the rejections."""
        cols = view.columns()
        keys = view.keys()
        held = view.held()
        # a stamp per market that changes when its observation does: the observation
        # itself, or (columnar view, no objects) its own time
        stamps: list[Any] = list(held) if held is not None else cols.ts.tolist()
        seen = self._seen
        if held is not None:
            changed = [seen.get(k) is not s for k, s in zip(keys, stamps, strict=True)]
        else:
            changed = [seen.get(k) != s for k, s in zip(keys, stamps, strict=True)]
        priced = cols.market != (cols.markets.index("borrow") if "borrow" in cols.markets else -1)
        ref = _references(cols)
        plausible = self._screen(cols, keys, ref, priced)
        rejections: list[Rejection] = []
        replaced: dict[Key, Observation | None] = {}
        refs: dict[str, dict[str, dict[str, list[float]]]] = {}  # per coin, when needed
        rejected = self._rejected
        candidates = np.asarray(changed, dtype=bool) & priced
        fast = candidates & plausible
        index = {k: i for i, k in enumerate(keys)} if rejected else {}
        for key in rejected:  # a held-back new level is always checked one by one
            at = index.get(key)
            if at is not None:
                fast[at] = False
        accepted = np.flatnonzero(fast).tolist()
        for i in np.flatnonzero(candidates & ~fast).tolist():
            key = keys[i]
            o = held[i] if held is not None else view.get(*key)
            assert o is not None
            seen[key] = stamps[i]
            coin = key[1]
            if coin not in refs:
                refs[coin] = _coin_refs(cols, ref, priced, coin)
            why = self._implausible(o, refs[coin])
            if rejected.get(key) is o:  # a new level held back (_confirms)
                self._rejected_stamp[key] = stamps[i]
            if why is None:
                self._accept(key, o)
                continue
            rejections.append(Rejection(o.exchange, o.coin, o.market, why))
            replaced[key] = self._held(key)
        if accepted:
            ks = [keys[i] for i in accepted]
            seen.update(zip(ks, (stamps[i] for i in accepted), strict=True))
            self._accepted.update(
                zip(ks, (held[i] for i in accepted) if held is not None else [view] * len(ks),
                    strict=True)
            )  # fmt: skip
            self._accepted_ref.update(zip(ks, _floats(ref[accepted]), strict=True))
        if rejected:  # unchanged since the last cycle: the same verdict
            for key, stamp in self._rejected_stamp.items():
                if key in replaced:
                    continue
                at = index.get(key)
                if at is None or changed[at]:
                    continue
                if stamps[at] is stamp if held is not None else stamps[at] == stamp:
                    replaced[key] = self._held(key)
        settlements = self._check_settlements(view, replaced, rejections)
        if not replaced and settlements is None:
            return view, rejections
        latest = {o.key: o for o in view.observations()}
        for key, kept in replaced.items():
            if kept is None:
                latest.pop(key, None)
            else:
                latest[key] = kept
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

    def _screen(
        self, cols: ViewColumns, keys: list[Key], ref: np.ndarray, priced: np.ndarray
    ) -> np.ndarray:
        """Per row: every price well inside the venue band and the jump band."""
        band = self.band
        n = len(cols)
        if n == 0:
            return np.zeros(0, dtype=bool)
        prices = np.stack([cols.mark, cols.index, cols.bid, cols.ask])
        has_ref = priced & ~np.isnan(ref)
        # one price per venue (the median of its markets' references), then the
        # median over the coin's venues, as in _implausible
        shape = (len(cols.coins), len(cols.exchanges))
        cell = cols.coin.astype(np.intp) * shape[1] + cols.exchange.astype(np.intp)
        total = np.zeros(shape[0] * shape[1])
        count = np.zeros(shape[0] * shape[1])
        np.add.at(total, cell[has_ref], ref[has_ref])
        np.add.at(count, cell[has_ref], 1.0)
        with np.errstate(all="ignore"):
            venue = np.where(count > 0, total / count, np.nan).reshape(shape)
            venues = (count.reshape(shape) > 0).sum(axis=1)
            median = _median_rows(venue)
            own = count[cell] > 0
            checked = venues[cols.coin] - own >= band.min_venues
            off = np.abs(prices / median[cols.coin] - 1.0)
            ok_venue = ~checked | np.all(np.isnan(off) | (off <= band.venues - self.MARGIN), axis=0)
        prev = self._previous(keys)
        with np.errstate(all="ignore"):
            jump = np.abs(prices / prev - 1.0)
            within = np.isnan(jump) | (jump <= band.jump - self.MARGIN)
            ok_jump = np.isnan(prev) | np.all(within, axis=0)
        screened: np.ndarray = ok_venue & ok_jump & ~(np.isnan(median[cols.coin]) & checked)
        return screened

    def _previous(self, keys: list[Key]) -> np.ndarray:
        """The reference price of each row's previous accepted observation (NaN: none)."""
        acc = self._accepted_ref
        if not acc:
            return np.full(len(keys), np.nan)
        return np.array([acc.get(k) for k in keys], dtype=float)

    def _accept(self, key: Key, o: Observation) -> None:
        self._accepted[key] = o
        self._accepted_ref[key] = _reference(o)
        self._rejected.pop(key, None)
        self._rejected_stamp.pop(key, None)
        self._streak.pop(key, None)

    def _implausible(self, o: Observation, refs: dict[str, dict[str, list[float]]]) -> str | None:
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
        ref = self._accepted_ref.get(o.key)
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
                ref = self._accepted_ref.get(key)
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
