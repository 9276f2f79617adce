"""The price guard's fast paths give what its general paths give.

- `_median_rows` is `statistics.median` of each row's values (NaN: none), with
  or without the count of values given.
- A replay's views share read-only code arrays from one cycle to the next, and
  its markets get their slots in row order: the guard then reads and writes its
  per-market arrays through a slice (`_last_sel`) instead of gathering by slot.
  On the random walks of tests/test_price_guard_screen.py the guard gives the
  verdicts and views of the guard as first written (`_Reference` there) on such
  views, on the same views with their rows in another order (slots that are not
  0..n-1: the gathering path, kept between cycles), and on views whose code
  arrays are fresh and writeable (nothing kept)."""

from __future__ import annotations

import dataclasses
import random
import statistics

import numpy as np
import pytest
from test_price_guard_screen import _full, _Reference, _views

from rulebook.market import PriceBand, PriceGuard, SnapshotView
from rulebook.market._plausible import _median_rows


@pytest.mark.parametrize("seed", range(20))
def test_median_rows_is_the_median_of_each_rows_values(seed: int) -> None:
    rng = random.Random(seed)
    rows, cols = rng.randint(1, 12), rng.randint(1, 8)
    grid = np.array(
        [[rng.uniform(0.5, 2.0) if rng.random() < 0.6 else np.nan for _ in range(cols)]
         for _ in range(rows)]
    )  # fmt: skip
    grid[0, :] = np.nan  # a row without values
    want = [
        statistics.median(v) if (v := [x for x in row.tolist() if x == x]) else None for row in grid
    ]
    k = (~np.isnan(grid)).sum(axis=1)
    for got in (_median_rows(grid), _median_rows(grid, k)):
        assert [None if x != x else x for x in got.tolist()] == want


def test_median_rows_of_no_columns_is_nan() -> None:
    assert np.isnan(_median_rows(np.zeros((3, 0)))).all()


def _shared(views: list[SnapshotView], order: str) -> list[SnapshotView]:
    """The views as columns whose code arrays are read-only and the same objects from
    one cycle to the next while the rows are the same markets (as a replay's are);
    `order`: the rows as the view has them, or reversed (slots not in row order), or
    with fresh writeable code arrays every cycle."""
    out = []
    last: tuple[np.ndarray, ...] | None = None
    for view in views:
        cols = view.columns()
        arrays = {
            f.name: getattr(cols, f.name)
            for f in dataclasses.fields(cols)  # type: ignore[arg-type]
            if isinstance(getattr(cols, f.name), np.ndarray)
        }
        if order == "reversed":
            arrays = {name: a[::-1].copy() for name, a in arrays.items()}
        codes = (arrays["exchange"], arrays["coin"], arrays["market"])
        if order == "writeable":
            codes = tuple(a.copy() for a in codes)
        elif last is not None and all(
            a.shape == b.shape and (a == b).all() for a, b in zip(codes, last, strict=True)
        ):
            codes = last
        else:
            codes = tuple(a.copy() for a in codes)
            for a in codes:
                a.setflags(write=False)
            last = codes
        arrays.update(exchange=codes[0], coin=codes[1], market=codes[2])
        given = dataclasses.replace(cols, **arrays)  # type: ignore[type-var]
        out.append(SnapshotView.from_columns(given, settlements=view.settlements))
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("order", ["as_is", "reversed", "writeable"])
def test_the_guard_on_shared_codes_gives_the_verdicts_as_first_written(
    seed: int, order: str
) -> None:
    band = PriceBand(confirm=2 + seed % 3)
    views = _views(seed, 60)
    guard, reference = PriceGuard(band), _Reference(band)
    rejected, sliced, kept = 0, 0, 0
    for view, given in zip(views, _shared(views, order), strict=True):
        want = _full(view, *reference.check(view))
        got = _full(given, *guard.check(given))
        # the view itself differs (columns, not observations): compare the rest; the
        # rejections come in row order, which "reversed" reverses
        assert sorted(got[1]) == sorted(want[1])
        assert got[2:] == want[2:]
        if order != "reversed":
            assert got[1] == want[1]
        rejected += len(want[1])
        sliced += isinstance(guard._last_sel, slice) and bool(guard._last_codes)
        kept += bool(guard._last_codes)
    assert rejected > 5  # the walks do reach the bands
    if order == "as_is":
        assert sliced > 10  # the slice path was taken
    elif order == "reversed":
        # kept slots, mostly gathered (a cycle whose new markets are all the markets
        # gets its slots in its own order)
        assert kept > 10 and sliced < kept // 4
    else:
        assert kept == 0  # nothing kept for writeable codes
