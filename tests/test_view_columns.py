"""A view's two forms agree: observations and columns, and the market arrays built from either.

`SnapshotView.columns()` is what the engine's market arrays and the price
guard read; `SnapshotView.from_columns` is a columnar recording's view, which
makes an Observation only for a key an accessor asks for."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from rulebook.engine import EngineConfig, evaluate
from rulebook.engine._vector import MarketArrays
from rulebook.lang import load_ruleset
from rulebook.market import Observation, ReplaySource, SnapshotView
from rulebook.market._view import NUMBER_FIELDS

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "examples" / "binance-bybit-okx-btc-eth-2023-2024.jsonl"


def _views(n: int = 6) -> list[SnapshotView]:
    """Views of observations (a replay's views are column views: each is made again from
    its observations, so that the tests compare the two forms)."""
    out = []
    for v in ReplaySource(EXAMPLE):
        latest = {o.key: o for o in v.observations()}
        out.append(SnapshotView(v.at, latest, settlements=v.settlements, recorded=v.recorded))
        if len(out) == n:
            break
    return out


def _odd_view() -> SnapshotView:
    """Missing fields, no interval, an observation's own fee."""
    obs = [
        Observation.checked(ts=1_000_000_000_000, exchange="binance", coin="BTC", market="perp",
                    funding_rate=0.0001, mark=60_000.0, taker_fee=0.0002),
        Observation.checked(ts=1_000_000_000_500, exchange="okx", coin="BTC", market="perp",
                    funding_rate=-0.0002, funding_interval_h=4, mark=60_010.0, index=60_000.0,
                    next_funding_ts=1_000_000_360_000, volume_24h=5e7),
        Observation.checked(ts=1_000_000_000_000, exchange="okx", coin="BTC", market="spot", bid=59_990.0),
        Observation.checked(ts=1_000_000_000_000, exchange="okx", coin="ETH", market="spot",
                    bid=3_000.0, ask=3_001.0, taker_fee=0.0008),
        Observation.checked(ts=1_000_000_000_000, exchange="bybit", coin="ETH", market="borrow",
                    borrow_rate_daily=0.0003),
    ]  # fmt: skip
    return SnapshotView.from_observations(obs, at=1_000_000_001_000)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def test_the_columnar_view_gives_every_figure_of_the_observation_view() -> None:
    for view in [*_views(), _odd_view()]:
        lazy = SnapshotView.from_columns(
            view.columns(), settlements=view.settlements, recorded=view.recorded
        )
        assert lazy.at == view.at and len(lazy) == len(view)
        assert lazy.exchanges() == view.exchanges() and lazy.coins() == view.coins()
        for e in view.exchanges() | {"gate"}:
            for c in view.coins() | {"SOL"}:
                for m in ("perp", "spot", "borrow"):
                    assert lazy.get(e, c, m) == view.get(e, c, m)
                    assert lazy.missing_reason(e, c, m) == view.missing_reason(e, c, m)
                for f in ("funding_8h", "spot_mid", "mark", "basis", "borrow_8h",
                          "next_funding_s", "volume", "index"):  # fmt: skip
                    assert getattr(lazy, f)(e, c) == getattr(view, f)(e, c)
        assert sorted(lazy.observations(), key=lambda o: o.key) == sorted(
            view.observations(), key=lambda o: o.key
        )


def test_market_arrays_from_columns_are_those_of_the_observations_bit_for_bit() -> None:
    config = EngineConfig(taker_fees={"okx": {"perp": 0.0003}})
    for view in [*_views(), _odd_view()]:
        coins = {c: i for i, c in enumerate(sorted(view.coins() | {"SOL"}))}
        a = MarketArrays(view, coins, config)
        b = MarketArrays(SnapshotView.from_columns(view.columns()), coins, config)
        for name in ("mark", "index", "mid", "perp_age", "spot_age", "borrow_age",
                     "perp_fee", "spot_fee"):  # fmt: skip
            assert _same(getattr(a, name), getattr(b, name)), name
        for kind, grid in a.by_kind.items():
            assert _same(grid, b.by_kind[kind]), kind


def test_odd_fields_reach_the_arrays_as_the_view_reads_them() -> None:
    view = _odd_view()
    mk = MarketArrays(view, {"BTC": 0, "ETH": 1}, EngineConfig())
    ex = {e: i for i, e in enumerate(("backpack", "binance", "bybit", "okx", "gate", "bitget"))}
    assert np.isnan(mk.by_kind["funding"][ex["binance"], 0])  # no interval: no funding
    assert mk.by_kind["funding"][ex["okx"], 0] == view.funding_8h("okx", "BTC")
    assert mk.perp_fee[ex["binance"], 0] == 0.0002  # the observation's own fee
    assert mk.spot_fee[ex["okx"], 1] == 0.0008
    assert mk.by_kind["next_funding"][ex["okx"], 0] == view.next_funding_s("okx", "BTC")
    assert mk.perp_age[ex["okx"], 0] == 0.5
    assert np.isnan(mk.mid[ex["okx"], 0])  # one side only: no mid
    assert np.isnan(mk.borrow_age[ex["okx"], 0])  # no borrow observed
    assert mk.by_kind["borrow"][ex["bybit"], 1] == view.borrow_8h("bybit", "ETH")


def test_a_columnar_view_makes_observations_only_when_asked() -> None:
    (view,) = _views(1)
    lazy = SnapshotView.from_columns(view.columns())
    ruleset = load_ruleset([ROOT / "strategies"]).ruleset
    assert ruleset is not None
    got = evaluate(ruleset, lazy)
    want = evaluate(ruleset, view)
    assert [o.to_dict() for o in got.opportunities] == [o.to_dict() for o in want.opportunities]
    assert lazy._latest is None  # never every observation
    assert len(lazy._made) < len(view)
    o = lazy.perp("binance", "BTC")
    assert o is not None and o == view.perp("binance", "BTC")
    assert lazy.perp("binance", "BTC") is o  # made once


def test_perps_of_a_columnar_view_carry_the_fields_of_the_observations() -> None:
    fields = ("ts", "exchange", "coin", "market", "funding_rate", "funding_interval_h",
              "next_funding_ts", "mark")  # fmt: skip
    for view in [*_views(), _odd_view()]:
        lazy = SnapshotView.from_columns(view.columns())
        want = sorted(tuple(getattr(o, f) for f in fields) for o in view.perps())
        got = sorted(tuple(getattr(o, f) for f in fields) for o in lazy.perps())
        assert got == want and want
        assert lazy._latest is None and not lazy._made


def _checked_row(cols: object, i: int) -> Observation:
    """The general path: row `i`'s fields through `Observation.checked` (every check)."""
    c: Any = cols
    fields: dict[str, Any] = {
        "ts": int(c.ts[i]),
        "exchange": c.exchanges[int(c.exchange[i])],
        "coin": c.coins[int(c.coin[i])],
        "market": c.markets[int(c.market[i])],
    }
    if c.symbol is not None and int(c.symbol[i]) >= 0:
        fields["symbol"] = c.symbols[int(c.symbol[i])]
    for name in NUMBER_FIELDS:
        v = float(getattr(c, name)[i])
        if not math.isnan(v):
            fields[name] = int(v) if name == "next_funding_ts" else v
    return Observation.checked(**fields)


def _every_row_trusted_equals_checked(cols: object) -> int:
    n = len(cols)  # type: ignore[arg-type]
    for i in range(n):
        fast = SnapshotView._make(cols, i)  # type: ignore[arg-type]
        slow = _checked_row(cols, i)
        assert type(fast) is type(slow) and fast == slow, i
        assert fast.to_json() == slow.to_json()
        assert type(fast.ts) is int and (fast.next_funding_ts is None or type(fast.next_funding_ts) is int)
    return n


def test_the_trusted_row_constructor_gives_what_the_checked_one_gives() -> None:
    """A column-built view makes its observations without the checks (the columns
    were checked when read): every row, of observation views, an odd view, and
    Parquet columns as the columnar reader gives them, equals `Observation.checked`."""
    rows = 0
    for view in [*_views(), _odd_view()]:
        rows += _every_row_trusted_equals_checked(view.columns())
    assert rows > 6


def test_the_trusted_row_constructor_over_parquet_columns(tmp_path: Path) -> None:
    from rulebook.market import convert, iter_columns

    pq = tmp_path / "example.parquet"
    convert(EXAMPLE, pq)
    seen = 0
    for cols in iter_columns(pq):
        seen += _every_row_trusted_equals_checked(cols)
        if seen > 2_000:
            break
    assert seen > 100


def test_a_row_index_is_reused_only_for_the_same_rows() -> None:
    """Column views of consecutive cycles share their key -> row index when their keys
    are the same rows; any change of rows or categories gets an index of its own."""
    from rulebook.market._view import _row_index_of

    views = _views(3)
    a, b = (SnapshotView.from_columns(v.columns()) for v in views[1:3])
    ia, ib = _row_index_of(a.columns()), _row_index_of(b.columns())
    assert a.columns() is not b.columns() and a.keys() == b.keys()
    assert ia is ib  # made once for both cycles
    odd = _odd_view()
    cols = odd.columns()
    flipped = type(cols)(**{  # the same categories, the rows in the other order
        f: (getattr(cols, f)[::-1].copy() if isinstance(getattr(cols, f), np.ndarray)
            else getattr(cols, f))
        for f in cols.__dataclass_fields__
    })  # fmt: skip
    for c in (cols, flipped, cols):
        lazy = SnapshotView.from_columns(c)
        index = _row_index_of(c)
        assert len(index) == len(c)
        for key, i in index.items():
            o = lazy.get(*key)
            assert o is not None and o.key == key and o == odd.get(*key)
            assert (c.exchanges[c.exchange[i]], c.coins[c.coin[i]], c.markets[c.market[i]]) == key


def _ref_before(o: Observation | None, market: str) -> float | None:
    """What the paper executor marked a leg at before it read `prices`: from the
    observation (`quote(...).ref`)."""
    if o is None:
        return None
    if market == "perp":
        return o.mark if o.mark is not None else o.mid()
    ref = o.mid()
    if ref is None:
        ref = o.bid if o.bid is not None else o.ask
    return ref


def test_prices_are_the_observations_and_mark_legs_as_before() -> None:
    """`view.prices(keys)` reads each key's (mark, bid, ask) without an observation; a
    leg's mark made from them is the one made from `get`'s observation, for every key
    (and keys the view lacks) of observation views, column views and an odd view."""
    from rulebook.trading._paper import _ref_of

    spot_without_ask = Observation.checked(ts=1_000_000_000_000, exchange="gate", coin="BTC",
                                           market="spot", ask=60_001.0)  # fmt: skip
    perp_without_mark = Observation.checked(ts=1_000_000_000_000, exchange="gate", coin="BTC",
                                            market="perp", bid=59_990.0, ask=60_010.0)  # fmt: skip
    odd = _odd_view()
    odder = SnapshotView.from_observations(
        [*odd.observations(), spot_without_ask, perp_without_mark], at=odd.at
    )
    compared = 0
    for view in [*_views(), odd, odder]:
        for v in (view, SnapshotView.from_columns(view.columns())):
            keys = [(e, c, m) for e in view.exchanges() | {"gate", "bitget"}
                    for c in view.coins() | {"SOL"} for m in ("perp", "spot", "borrow")]  # fmt: skip
            got = v.prices(keys)
            for key, prices in zip(keys, got, strict=True):
                o = view.get(*key)
                assert prices == ((None, None, None) if o is None else (o.mark, o.bid, o.ask))
                if key[2] != "borrow":
                    assert _ref_of(key[2], *prices) == _ref_before(o, key[2])
                    compared += o is not None
            assert v._made == {} or v._latest is not None  # no observation made for it
    assert compared > 40
