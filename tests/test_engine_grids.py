"""The engine's market arrays of a replay's views (code arrays shared and read-only,
their layout kept) are gathered from the rows with one take (`_gathered_grids`); any
other view's are written column by column (`_column_grids`, the general path). On
random views with every kind of gap (markets not listed, no mark, no index, no fee,
no spot, borrow markets with and without a rate, coins and exchanges the coding does
not know), both give the same twelve grids (the rows of one block), bit for bit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_engine_vector import random_view

from rulebook.engine import EngineConfig
from rulebook.engine import _vector as V
from rulebook.market import SnapshotView

CODES = ("exchange", "coin", "market")


def _read_only(view: SnapshotView) -> SnapshotView:
    cols = view.columns()
    codes = {}
    for k in CODES:
        a = np.array(getattr(cols, k))
        a.setflags(write=False)
        codes[k] = a
    return SnapshotView.from_columns(dataclasses.replace(cols, **codes))  # type: ignore[type-var]


def _nan_rate_borrow(view: SnapshotView) -> SnapshotView:
    """The view with every other borrow market's rate gone (NaN): no borrow cell then."""
    cols = view.columns()
    daily = np.array(cols.borrow_rate_daily)
    rows = np.flatnonzero(cols.market == cols.markets.index("borrow"))
    daily[rows[::2]] = np.nan
    return SnapshotView.from_columns(dataclasses.replace(cols, borrow_rate_daily=daily))  # type: ignore[type-var]


CODINGS = [
    {"BTC": 0, "ETH": 1, "SOL": 2, "1000PEPE": 3},
    {"SOL": 0, "BTC": 1},  # coins the coding does not know are left out
    {"1000PEPE": 0, "XRP": 1, "ETH": 2, "DOGE": 3},  # and coins the view lacks are NaN
]
CONFIGS = [EngineConfig(), EngineConfig(taker_fees={"okx": {"perp": 0.0001, "spot": 0.0003}})]


@pytest.mark.parametrize("seed", range(40))
def test_gathered_grids_equal_the_column_by_column_grids(seed: int) -> None:
    base = random_view(seed)
    for view in (base, _nan_rate_borrow(base)):
        cols = view.columns()
        shared = _read_only(view)
        for coins in CODINGS:
            for config in CONFIGS:
                n = len(coins)
                general = V._layout_of(cols, coins, config, n)
                kept = V._layout_of(shared.columns(), coins, config, n)
                assert general.gather is None and kept.gather is not None
                want = V._column_grids(cols, general, view.at, (V.N_EX, n))
                got = V._gathered_grids(shared.columns(), kept, view.at, (V.N_EX, n))
                assert got.shape == want.shape == (len(V.GRIDS), V.N_EX * n)
                for (name, _kind, _col), g, w in zip(V.GRIDS, got, want, strict=True):
                    assert g.shape == w.shape and g.tobytes() == w.tobytes(), name
                a = V.MarketArrays(shared, coins, config)
                b = V.MarketArrays(view, coins, config)
                for kind in b.by_kind:
                    assert a.by_kind[kind].tobytes() == b.by_kind[kind].tobytes(), kind


def test_the_random_views_have_every_kind_of_gap() -> None:
    """Not vacuous: among the views, grids with NaN cells of each kind, and borrow
    markets without a rate whose age is NaN though their row has a time."""
    seen = set()
    for seed in range(40):
        view = _nan_rate_borrow(random_view(seed))
        coins = CODINGS[0]
        lay = V._layout_of(_read_only(view).columns(), coins, EngineConfig(), len(coins))
        grids = V._gathered_grids(view.columns(), lay, view.at, (V.N_EX, len(coins)))
        for (name, _kind, _col), g in zip(V.GRIDS, grids, strict=True):
            if np.isnan(g).any():
                seen.add(name)
        cols = view.columns()
        borrow = cols.market == cols.markets.index("borrow")
        if (borrow & np.isnan(cols.borrow_rate_daily)).any():
            seen.add("borrow without a rate")
    assert seen >= {"mark", "index", "mid", "borrow", "borrow_age", "funding", "borrow without a rate"}
