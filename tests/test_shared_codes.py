"""Consecutive cycles of a Parquet replay share their code arrays, and what is
derived from the codes alone is kept while they are the same objects.

The columnar reader hands every cycle the same read-only `exchange`, `coin` and
`market` arrays until a market is added (a market's key never changes). The
engine's market arrays keep where each row goes in their grids, and the price
guard keeps each row's slot, for as long as a view's code arrays are those very
objects. These tests hold both to what they give for the same views with fresh,
writeable code arrays (where nothing is kept): the same arrays bit for bit, the
same verdicts, texts and views."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from test_price_guard_screen import _cycles, _full, _views

from rulebook.engine import EngineConfig
from rulebook.engine._vector import MarketArrays
from rulebook.market import (
    PriceBand,
    PriceGuard,
    ReplaySource,
    SnapshotView,
    iter_columns,
    write_columnar,
)

pytest.importorskip("pyarrow")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "binance-bybit-okx-btc-eth-2023-2024.jsonl"
CODES = ("exchange", "coin", "market")


def _frozen(a: np.ndarray) -> np.ndarray:
    out = a.copy()
    out.setflags(write=False)
    return out


def _shared(views: list[SnapshotView]) -> list[SnapshotView]:
    """The views as the columnar reader hands them on: code arrays shared (read-only)
    with the previous view while they hold the same codes and categories."""
    out: list[SnapshotView] = []
    prev = None
    for v in views:
        cols = v.columns()
        same = prev is not None and all(
            np.array_equal(getattr(prev, k), getattr(cols, k)) for k in CODES
        ) and (prev.exchanges, prev.coins, prev.markets) == (cols.exchanges, cols.coins, cols.markets)
        codes = {k: getattr(prev, k) if same else _frozen(getattr(cols, k)) for k in CODES}
        prev = dataclasses.replace(cols, **codes)  # type: ignore[type-var]
        out.append(SnapshotView.from_columns(prev, settlements=v.settlements))
    return out


def _fresh(view: SnapshotView) -> SnapshotView:
    """The same view with writeable copies of its code arrays: nothing is kept for it."""
    cols = view.columns()
    copies = {k: np.array(getattr(cols, k)) for k in CODES}
    return SnapshotView.from_columns(
        dataclasses.replace(cols, **copies), settlements=view.settlements  # type: ignore[type-var]
    )


def test_the_reader_shares_read_only_codes_until_a_market_is_added(tmp_path: Path) -> None:
    rows = [json.loads(ln) for ln in EXAMPLE.read_text().splitlines()[:4000]]
    small = tmp_path / "small.parquet"
    write_columnar(small, rows, row_group_rows=500)
    cycles = list(iter_columns(small))
    shared = 0
    for a, b in zip(cycles, cycles[1:], strict=False):
        for k in CODES:
            assert not getattr(b, k).flags.writeable
        if len(a.exchange) == len(b.exchange):
            assert all(getattr(a, k) is getattr(b, k) for k in CODES)
            shared += 1
        else:  # a market was added: new arrays, the old ones unchanged
            assert all(getattr(a, k) is not getattr(b, k) for k in CODES)
            assert all(np.array_equal(getattr(b, k)[: len(a.exchange)], getattr(a, k)) for k in CODES)
    assert shared > 0.9 * len(cycles)


def _arrays_equal(a: MarketArrays, b: MarketArrays) -> None:
    names = ["mark", "index", "mid", "perp_age", "spot_age", "borrow_age", "perp_fee", "spot_fee"]
    for name in names:
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape and x.tobytes() == y.tobytes(), name
    assert a.by_kind.keys() == b.by_kind.keys()
    for kind in a.by_kind:
        assert a.by_kind[kind].tobytes() == b.by_kind[kind].tobytes(), kind
    assert (a.coins, a.coin_names, a.n_coins) == (b.coins, b.coin_names, b.n_coins)


CODINGS = [
    {"BTC": 0, "ETH": 1},
    {"ETH": 0, "BTC": 1, "SOL": 2},
    {"SOL": 0},
    {"BTC": 0, "ETH": 1, "SOL": 2, "XRP": 3},
]


def test_market_arrays_of_shared_codes_equal_those_of_fresh_ones(tmp_path: Path) -> None:
    rows = [json.loads(ln) for ln in EXAMPLE.read_text().splitlines()[:6000]]
    path = tmp_path / "r.parquet"
    write_columnar(path, rows, row_group_rows=700)
    configs = [EngineConfig(), EngineConfig(taker_fees={"binance": {"perp": 0.0001, "spot": 0.0002}})]
    views = list(ReplaySource(path))
    assert len(views) > 50
    for i, view in enumerate(views):
        # several codings and configs of one view, in turn, as a runtime's exit checks
        # and evaluation (and a reload) may ask for them
        for coins in (CODINGS[i % 4], CODINGS[(i + 1) % 4]):
            config = configs[i % 2]
            _arrays_equal(MarketArrays(view, coins, config), MarketArrays(_fresh(view), coins, config))


@pytest.mark.parametrize("seed", range(4))
def test_market_arrays_of_the_guard_sequences_equal_those_of_fresh_codes(seed: int) -> None:
    coins = {"BTC": 0, "ETH": 1, "SOL": 2}
    for view in _shared(_views(seed, 40)):
        _arrays_equal(
            MarketArrays(view, coins, EngineConfig()), MarketArrays(_fresh(view), coins, EngineConfig())
        )


def _compare_guards(band: PriceBand, views: list[SnapshotView]) -> int:
    kept, fresh = PriceGuard(band), PriceGuard(band)
    rejected = 0
    for view in _shared(views):
        other = _fresh(view)
        want = _full(other, *fresh.check(other))
        got = _full(view, *kept.check(view))
        assert got[1:] == want[1:] and got[0] == want[0]
        rejected += len(want[1])
    return rejected


@pytest.mark.parametrize("seed", range(6))
def test_the_guard_on_shared_codes_gives_the_verdicts_of_fresh_ones(seed: int) -> None:
    assert _compare_guards(PriceBand(confirm=2 + seed % 3), _views(seed, 60)) > 5


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cycles())
def test_the_guard_on_shared_codes_gives_the_verdicts_of_fresh_ones_on_any_views(
    case: tuple[PriceBand, list[SnapshotView]],
) -> None:
    _compare_guards(*case)


def test_a_replay_of_markets_in_varying_order_keeps_the_last_row_of_each(tmp_path: Path) -> None:
    # the reader's one-row-per-key fast path (keys in slot order) and its general
    # path (repeated keys, keys out of slot order) give the JSONL replay's views
    rng = random.Random(7)
    t0 = 1_704_067_200_000
    rows = []
    for k in range(30):
        keys = [(e, c) for e in ("binance", "okx", "bybit") for c in ("BTC", "ETH", "SOL")]
        if k % 3 == 1:
            rng.shuffle(keys)
        if k % 5 == 2:
            keys = keys + keys[:3]  # a key twice in one cycle: the later row wins
        for e, c in keys:
            rows.append({"ts": t0 + 60_000 * k, "exchange": e, "coin": c, "market": "perp",
                         "funding_rate": 0.0001, "funding_interval_h": 8.0,
                         "mark": round(rng.uniform(90, 110), 6)})  # fmt: skip
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pq = tmp_path / "r.parquet"
    write_columnar(pq, rows, row_group_rows=13)
    a, b = list(ReplaySource(jsonl)), list(ReplaySource(pq))
    assert [v.at for v in a] == [v.at for v in b]
    for x, y in zip(a, b, strict=True):
        assert x.observations() == y.observations()
