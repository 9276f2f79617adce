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

import statistics
from dataclasses import dataclass

import msgspec

from ._model import Observation
from ._settlement import Settlement
from ._view import SnapshotView

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


class PriceGuard:
    """Checks each cycle's view against the previous accepted prices and the other venues."""

    def __init__(self, band: PriceBand | None = None) -> None:
        self.band = band or PriceBand()
        self._accepted: dict[Key, Observation] = {}
        self._seen: dict[Key, Observation] = {}  # the last observation checked per market
        self._rejected: dict[Key, Observation] = {}  # held-back new levels, by market
        self._streak: dict[Key, int] = {}

    def check(self, view: SnapshotView) -> tuple[SnapshotView, list[Rejection]]:
        """The view to use this cycle (implausible observations replaced) and the rejections."""
        observations = view.observations()
        refs: dict[str, dict[str, list[float]]] = {}  # coin -> exchange -> prices
        for o in observations:
            if o.market != "borrow" and (r := _reference(o)) is not None:
                refs.setdefault(o.coin, {}).setdefault(o.exchange, []).append(r)
        rejections: list[Rejection] = []
        replaced: dict[Key, Observation | None] = {}
        for o in observations:
            if o.market == "borrow":
                continue
            key = o.key
            if self._seen.get(key) is o:  # unchanged since the last cycle: same verdict
                if key in self._rejected and self._rejected[key] is o:
                    replaced[key] = self._accepted.get(key)
                continue
            self._seen[key] = o
            why = self._implausible(o, refs)
            if why is None:
                self._accept(key, o)
                continue
            rejections.append(Rejection(o.exchange, o.coin, o.market, why))
            replaced[key] = self._accepted.get(key)
        settlements = self._check_settlements(view, replaced, rejections)
        if not replaced and settlements is None:
            return view, rejections
        latest = {o.key: o for o in observations}
        for key, held in replaced.items():
            if held is None:
                latest.pop(key, None)
            else:
                latest[key] = held
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

    def _accept(self, key: Key, o: Observation) -> None:
        self._accepted[key] = o
        self._rejected.pop(key, None)
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
        prev = self._accepted.get(o.key)
        ref = _reference(prev) if prev is not None else None
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
            perp = replaced.get(key, self._accepted.get(key))
            ref = _reference(perp) if perp is not None else None
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
