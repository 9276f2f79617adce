"""PriceGuard's numpy screen changes no verdict: the same rejections and views as the
checks one by one, on views of observations and on columnar views alike.

The oracle is the guard with its screen turned off (every changed market goes
through the one-by-one checks that tests/test_harden_prices.py pins); the
sequences are random walks with jumps, outlier venues, new levels that
persist, and markets left unchanged from one cycle to the next."""

from __future__ import annotations

import random

import numpy as np
import pytest

from rulebook.market import Observation, PriceBand, PriceGuard, SnapshotView

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
