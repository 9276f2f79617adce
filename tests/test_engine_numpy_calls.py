"""The engine's one-call stand-ins for numpy's Python-level helpers (`_vector.some`,
`every`, `where_true`, `spread_over`) answer as `np.any`, `ndarray.all`,
`np.flatnonzero` and `np.broadcast_to` do, on every shape the engine hands them;
and an env's arrays for a rule's coins are coded as its ruleset's plan when the plan
has every coin, extended otherwise, as before."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_engine_vector import RS, random_view

from rulebook.engine import SnapshotEnv
from rulebook.engine._evaluator import plan
from rulebook.engine._vector import every, some, spread_over, where_true

_bools = hnp.arrays(bool, st.integers(0, 40))
_floats = hnp.arrays(float, st.integers(0, 40), elements=st.sampled_from([0.0, -0.0, 1.5, np.nan, np.inf]))


@given(_bools)
def test_bool_arrays(a: np.ndarray) -> None:
    assert some(a) == bool(np.any(a))
    assert every(a) == bool(a.all())
    assert np.array_equal(where_true(a), np.flatnonzero(a))
    assert where_true(a).dtype == np.flatnonzero(a).dtype


@given(_floats)
def test_float_arrays(a: np.ndarray) -> None:
    assert some(a) == bool(np.any(a))  # NaN is true, -0.0 is not


@pytest.mark.parametrize("x", [True, False, np.True_, np.False_, np.array(True), np.array(False), 0, 3])
def test_scalars(x: object) -> None:
    assert some(x) == bool(np.any(x))


@given(st.one_of(_bools, st.booleans(), st.integers(0, 3)), st.integers(1, 30))
def test_spread_over_gives_the_broadcast_values(x: object, n: int) -> None:
    if isinstance(x, np.ndarray) and x.shape not in ((n,), (1,), ()):
        x = np.resize(x, n) if x.size else np.zeros(n, bool)
    got, want = spread_over(x, (n,)), np.broadcast_to(x, (n,))
    assert got.shape == want.shape and got.dtype == want.dtype and np.array_equal(got, want)
    if isinstance(x, np.ndarray) and x.shape == (n,):
        assert got is x  # an array of that very shape is handed on as it is


def test_an_env_s_arrays_are_coded_as_the_plan_when_it_has_every_coin() -> None:
    view = random_view(5)
    coding = plan(RS).coins
    for rule in RS.rules:
        env = SnapshotEnv.for_ruleset(view, RS)
        mk = env.arrays(rule.markets.coins)
        assert mk.coins == coding
        assert env.arrays(tuple(RS.rules[0].markets.coins)) is mk  # covered: the same arrays
    env = SnapshotEnv.for_ruleset(view, RS)
    mk = env.arrays(("BTC",))
    wider = env.arrays(("DOGE", "BTC"))  # a coin the plan lacks: the arrays grow
    assert wider is not mk and wider.coins == {**coding, "DOGE": len(coding)}
    assert env.arrays(("BTC",)) is wider
