"""PriceGuard's numpy screen changes no verdict: the same rejections and views as the
checks one by one, on views of observations and on columnar views alike.

The oracle is the guard with its screen turned off (every changed market goes
through the one-by-one checks that tests/test_harden_prices.py pins); the
sequences are random walks with jumps, outlier venues, new levels that
persist, and markets left unchanged from one cycle to the next."""

from __future__ import annotations

import random
import statistics

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rulebook.market import Observation, PriceBand, PriceGuard, Rejection, Settlement, SnapshotView
from rulebook.market._plausible import _off, _prices, _reference

EXCHANGES = ("backpack", "binance", "bybit", "okx")
COINS = ("BTC", "ETH", "SOL")


class _OneByOne(PriceGuard):
    def _screen(self, cols, keys, ref, priced):  # type: ignore[no-untyped-def]
        return np.zeros(len(cols), dtype=bool)


def _views(seed: int, cycles: int) -> list[SnapshotView]:
    rng = random.Random(seed)
    price = {c: rng.uniform(1, 1000) for c in COINS}
    state: dict[tuple[str, str, str], Observation] = {}
    out = []
    for k in range(cycles):
        ts = 1_704_067_200_000 + k * 60_000
        for c in COINS:
            if rng.random() < 0.05:
                price[c] *= rng.choice((3.0, 0.3))  # a new level: persists
            else:
                price[c] *= 1 + rng.gauss(0, 0.01)
            for e in EXCHANGES:
                if rng.random() < 0.2:
                    continue  # unchanged: the same observation as the last cycle
                p = price[c] * (1 + rng.gauss(0, 0.002))
                if rng.random() < 0.04:
                    p *= rng.choice((1.6, 0.6, 1.3, 0.76))  # one venue off, near the bands too
                if rng.random() < 0.03:
                    p *= 1.25 + rng.uniform(-1e-12, 1e-12)  # right at the venue band
                mark = None if rng.random() < 0.05 else p
                state[(e, c, "perp")] = Observation.checked(
                    ts=ts, exchange=e, coin=c, market="perp", mark=mark, index=p,
                    funding_rate=0.0001, funding_interval_h=8,
                    bid=None if rng.random() < 0.3 else p * 0.999, ask=p * 1.001,
                )  # fmt: skip
                if rng.random() < 0.8:
                    state[(e, c, "spot")] = Observation.checked(
                        ts=ts, exchange=e, coin=c, market="spot",
                        bid=p * 0.998, ask=None if rng.random() < 0.1 else p * 1.002,
                    )  # fmt: skip
                if e != "backpack":
                    state[(e, c, "borrow")] = Observation.checked(
                        ts=ts, exchange=e, coin=c, market="borrow", borrow_rate_daily=0.0003
                    )
        out.append(SnapshotView(ts, state, recorded=True))
    return out


def _outcome(view: SnapshotView, rejections: list) -> tuple[list[str], list[tuple]]:
    return (
        [r.text() for r in rejections],
        sorted((o.key, o.ts, o.mark, o.bid, o.ask, o.index) for o in view.observations()),
    )


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("columnar", [False, True])
def test_the_screen_gives_the_verdicts_of_the_checks_one_by_one(seed: int, columnar: bool) -> None:
    band = PriceBand(confirm=2 + seed % 3)
    fast, slow = PriceGuard(band), _OneByOne(band)
    rejected = 0
    for view in _views(seed, 60):
        given = SnapshotView.from_columns(view.columns()) if columnar else view
        got = _outcome(*fast.check(given))
        want = _outcome(*slow.check(view))
        assert got == want
        rejected += len(want[0])
    assert rejected > 5  # the sequences do exercise the bands


# -- against the checks as first written ---------------------------------------------------
#
# `_Reference` is the guard as it was before any screen (rulebook 299d04b): every changed
# observation checked one by one, its state in dicts by key, observations compared by
# identity. The guard must give exactly its rejections (texts included) and views, on
# views of observations and on the same views as columns.
#
# One change since 299d04b, on purpose: an unchanged observation stays replaced when it
# was rejected by either band (`_stuck`), where 299d04b kept only a held-back new level
# replaced and used an observation rejected by the venue band from the next cycle on.


class _Reference:
    def __init__(self, band: PriceBand) -> None:
        self.band = band
        self._accepted: dict = {}
        self._seen: dict = {}
        self._rejected: dict = {}
        self._streak: dict = {}
        self._stuck: dict = {}  # key -> its last observation, if that was rejected

    def check(self, view: SnapshotView):  # type: ignore[no-untyped-def]
        observations = view.observations()
        refs: dict = {}
        for o in observations:
            if o.market != "borrow" and (r := _reference(o)) is not None:
                refs.setdefault(o.coin, {}).setdefault(o.exchange, []).append(r)
        rejections: list = []
        replaced: dict = {}
        for o in observations:
            if o.market == "borrow":
                continue
            key = o.key
            if self._seen.get(key) is o:
                if self._stuck.get(key) is o:  # 299d04b: `self._rejected.get(key) is o`
                    replaced[key] = self._accepted.get(key)
                continue
            self._seen[key] = o
            why = self._implausible(o, refs)
            if why is None:
                self._accepted[key] = o
                self._rejected.pop(key, None)
                self._streak.pop(key, None)
                self._stuck.pop(key, None)
                continue
            self._stuck[key] = o
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
        out = SnapshotView(view.at, latest, view.failures,
                           view.settlements if settlements is None else settlements,
                           recorded=view.recorded)  # fmt: skip
        return out, rejections

    def _implausible(self, o, refs):  # type: ignore[no-untyped-def]
        band = self.band
        by_venue = refs.get(o.coin, {})
        if len(by_venue) - (o.exchange in by_venue) >= band.min_venues:
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
                key = o.key
                held = self._rejected.get(key)
                held_ref = _reference(held) if held is not None else None
                if held_ref is not None and _off(value, held_ref) <= band.jump:
                    self._streak[key] = self._streak.get(key, 1) + 1
                else:
                    self._streak[key] = 1
                self._rejected[key] = o
                if self._streak[key] >= band.confirm:
                    return None
                return (
                    f"{name} {value:g} jumped {_off(value, ref):.0%} from {ref:g} "
                    f"(band {band.jump:.0%})"
                )
        return None

    def _check_settlements(self, view, replaced, rejections):  # type: ignore[no-untyped-def]
        if not view.settlements:
            return None
        out, changed = [], False
        for s in view.settlements:
            key = (s.exchange, s.coin, "perp")
            perp = replaced.get(key, self._accepted.get(key))
            ref = _reference(perp) if perp is not None else None
            if s.mark is not None and ref is not None and _off(s.mark, ref) > self.band.jump:
                rejections.append(Rejection(
                    s.exchange, s.coin, "settlement",
                    f"mark {s.mark:g} is {_off(s.mark, ref):.0%} from the perp's {ref:g} "
                    f"(band {self.band.jump:.0%}); paid at the perp's mark instead",
                ))  # fmt: skip
                out.append(msgspec.structs.replace(s, mark=None))
                changed = True
            else:
                out.append(s)
        return tuple(out) if changed else None


def _full(given: SnapshotView, got: SnapshotView, rejections: list) -> tuple:
    return (
        got is given,
        [r.text() for r in rejections],
        sorted((o.key, o.to_json()) for o in got.observations()),
        [s.to_json() for s in got.settlements],
    )


def _compare(band: PriceBand, views: list[SnapshotView]) -> int:
    """Run the guard on each view (as observations and as columns) and the reference."""
    held, columnar, reference = PriceGuard(band), PriceGuard(band), _Reference(band)
    rejected = 0
    for view in views:
        want = _full(view, *reference.check(view))
        assert _full(view, *held.check(view)) == want
        as_columns = SnapshotView.from_columns(view.columns(), settlements=view.settlements)
        assert _full(as_columns, *columnar.check(as_columns)) == want
        rejected += len(want[1])
    return rejected


@pytest.mark.parametrize("seed", range(6))
def test_the_guard_gives_the_verdicts_of_the_checks_as_first_written(seed: int) -> None:
    assert _compare(PriceBand(confirm=2 + seed % 3), _views(seed, 60)) > 5


T0 = 1_704_067_200_000
_PRICES = (100.0, 100.4, 99.7, 125.0, 124.99999999, 125.00000001, 75.0, 150.0, 150.0000001,
           50.0, 49.99999999, 300.0, 33.3, 1e-3)  # fmt: skip


@st.composite
def _cycles(draw: st.DrawFn) -> tuple[PriceBand, list[SnapshotView]]:
    """Cycles over a few markets: each market's prices drawn from levels at and around
    both bands' edges, left unchanged, or (sometimes) missing from a view."""
    band = PriceBand(jump=draw(st.sampled_from((0.5, 0.25))),
                     venues=draw(st.sampled_from((0.25, 0.5))),
                     min_venues=draw(st.integers(1, 3)),
                     confirm=draw(st.integers(1, 3)))  # fmt: skip
    exchanges = draw(st.lists(st.sampled_from(EXCHANGES), min_size=1, max_size=4, unique=True))
    coins = draw(st.lists(st.sampled_from(COINS), min_size=1, max_size=2, unique=True))
    price = st.sampled_from(_PRICES)
    maybe = st.one_of(st.none(), price)
    state: dict = {}
    views = []
    for k in range(draw(st.integers(1, 8))):
        ts = T0 + k * 60_000
        for e in exchanges:
            for c in coins:
                if draw(st.booleans()):  # a new perp observation
                    state[(e, c, "perp")] = Observation.checked(
                        ts=ts, exchange=e, coin=c, market="perp", mark=draw(maybe),
                        index=draw(maybe), funding_rate=0.0001, funding_interval_h=8,
                    )  # fmt: skip
                if draw(st.integers(0, 3)) == 0:  # a new spot observation
                    bid = draw(maybe)
                    ask = draw(st.one_of(st.none(), st.sampled_from(
                        [p for p in _PRICES if bid is None or p >= bid])))  # fmt: skip
                    state[(e, c, "spot")] = Observation.checked(
                        ts=ts, exchange=e, coin=c, market="spot", bid=bid, ask=ask
                    )
                if draw(st.integers(0, 5)) == 0:
                    state[(e, c, "borrow")] = Observation.checked(
                        ts=ts, exchange=e, coin=c, market="borrow", borrow_rate_daily=0.0003
                    )
        shown = {key: o for key, o in state.items() if draw(st.integers(0, 9)) > 0}
        settlements = tuple(
            Settlement.checked(ts=ts, exchange=e, coin=c, funding_rate=0.0001, mark=draw(maybe))
            for e in exchanges for c in coins if draw(st.integers(0, 4)) == 0
        )  # fmt: skip
        views.append(SnapshotView(ts, shown, settlements=settlements, recorded=True))
    return band, views


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cycles())
def test_the_guard_gives_the_verdicts_of_the_checks_as_first_written_on_any_views(
    case: tuple[PriceBand, list[SnapshotView]],
) -> None:
    _compare(*case)
