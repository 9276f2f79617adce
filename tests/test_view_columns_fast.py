"""A view's columns from its observations: the fast conversion is the general one, bit for bit.

`SnapshotView.columns()` of a view of observations (a JSONL replay's, a live
run's, a dry-run's) converts the model's own classes with one C-level tuple
per observation (`market/_view._columns_of`); `_columns_by_attributes` reads
each field by name, for any objects. On random views (every market, fields
present or absent, symbols or none, keys in any order) both give the same
arrays: same dtypes, same bits, NaN in the same places, the same categories.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rulebook.market import Observation, SnapshotView, _view

EXCHANGES = ("backpack", "binance", "bybit", "okx", "gate", "bitget")
COINS = ("BTC", "ETH", "SOL", "1000PEPE", "DOGE")
AT = 1_753_112_400_000

_price = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False)
_maybe = st.none() | _price


@st.composite
def observation(draw: Any) -> Observation:
    market = draw(st.sampled_from(("perp", "spot", "borrow")))
    fields: dict[str, Any] = {
        "ts": AT - draw(st.integers(0, 600_000)),
        "exchange": draw(st.sampled_from(EXCHANGES)),
        "coin": draw(st.sampled_from(COINS)),
        "market": market,
    }
    if draw(st.booleans()):
        fields["symbol"] = draw(st.sampled_from(("X/USDT", "X/USDT:USDT", "Y-PERP")))
    optional: dict[str, Any] = {}
    if market == "borrow":
        fields["borrow_rate_daily"] = draw(st.floats(0, 0.01))
    else:
        bid = draw(_maybe)
        optional = {
            "bid": bid,
            "ask": None if bid is None else bid * draw(st.floats(1, 1.01)),
            "volume_24h": draw(st.none() | st.floats(0, 1e10)),
            "taker_fee": draw(st.none() | st.floats(0, 0.01)),
        }
        if market == "perp":
            optional |= {
                "funding_rate": draw(st.none() | st.floats(-0.01, 0.01)),
                "funding_interval_h": draw(st.none() | st.sampled_from((1, 4, 8))),
                "next_funding_ts": draw(st.none() | st.integers(AT, AT + 8 * 3_600_000)),
                "mark": draw(_maybe),
                "index": draw(_maybe),
            }
    fields |= {k: v for k, v in optional.items() if v is not None}
    return Observation.checked(**fields)


def assert_same_columns(a: Any, b: Any) -> None:
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, np.ndarray):
            assert isinstance(y, np.ndarray), name
            assert x.dtype == y.dtype and x.shape == y.shape, name
            # bit for bit: NaN where the other has NaN, every other value identical
            assert x.tobytes() == y.tobytes(), name
        else:
            assert x == y and type(x) is type(y), name


@settings(max_examples=150, deadline=None)
@given(st.lists(observation(), max_size=40))
def test_the_fast_conversion_is_the_general_one(obs: list[Observation]) -> None:
    view = SnapshotView.from_observations(obs, at=AT)
    latest = view._latest
    assert latest is not None
    fast = _view._columns_of(view.at, latest)
    assert_same_columns(fast, _view._columns_by_attributes(view.at, latest))
    assert len(fast) == len(view)
    assert list(view.keys()) == list(latest)  # rows in the view's order


def test_the_fast_conversion_is_taken_for_the_models_classes(monkeypatch: Any) -> None:
    obs = [
        Observation.checked(ts=AT, exchange="okx", coin="BTC", market="perp", mark=1.0),
        Observation.checked(ts=AT, exchange="okx", coin="BTC", market="spot", bid=1.0, ask=1.0),
        Observation.checked(ts=AT, exchange="gate", coin="ETH", market="borrow",
                            borrow_rate_daily=0.001),
    ]  # fmt: skip
    general = []
    real = _view._columns_by_attributes
    monkeypatch.setattr(
        _view, "_columns_by_attributes", lambda *a: general.append(1) or real(*a)
    )
    SnapshotView.from_observations(obs, at=AT).columns()
    assert not general  # the fast conversion, not the general one


class _Duck:
    """Not one of the model's classes, with an observation's attributes."""

    def __init__(self, o: Observation) -> None:
        for name in ("ts", "exchange", "coin", "market", "symbol", *_view.NUMBER_FIELDS):
            setattr(self, name, getattr(o, name))


def test_other_objects_and_exchanges_take_the_general_conversion() -> None:
    o = Observation.checked(ts=AT, exchange="okx", coin="BTC", market="perp", mark=2.5,
                            funding_rate=0.0001, funding_interval_h=8)  # fmt: skip
    s = Observation.checked(ts=AT, exchange="okx", coin="BTC", market="spot", bid=2.0, ask=3.0)
    ducks = {o.key: _Duck(o), s.key: s}
    cols = _view._columns_of(AT, ducks)  # type: ignore[arg-type]
    assert_same_columns(cols, _view._columns_by_attributes(AT, ducks))  # type: ignore[arg-type]
    assert cols.mark[0] == 2.5 and np.isnan(cols.mark[1]) and cols.bid[1] == 2.0
    # an exchange that is not one of ours gets a code of its own
    odd = {("kraken", "BTC", "perp"): o, s.key: s}
    cols = _view._columns_of(AT, odd)
    assert cols.exchanges[int(cols.exchange[0])] == "kraken"
    assert cols.exchanges[int(cols.exchange[1])] == "okx"
    # and an empty view has no rows
    assert len(_view._columns_of(AT, {})) == 0
