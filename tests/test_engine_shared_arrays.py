"""A runtime cycle's exit checks and its evaluation share one set of market arrays.

`SnapshotEnv.for_ruleset(view, ruleset, config)` codes its arrays as
`evaluate` codes the ruleset's; `evaluate(..., env=env)` then reads them (or
makes them for the exit checks that follow). Either order gives what each
gives alone: the same evaluation, field for field, and the same exit answers.
An env of another view or configuration is not used.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_engine_exit_batch import RS as EXIT_RS
from test_engine_vector import RS, random_view

from rulebook.engine import (
    EngineConfig,
    PositionValues,
    SnapshotEnv,
    _env,
    _evaluate,
    check_exits,
    evaluate,
)


def _made(monkeypatch: Any) -> list[object]:
    """Every MarketArrays made from now on, by evaluate or by an env."""
    made: list[object] = []
    real = _evaluate.MarketArrays

    def counting(*a: Any) -> Any:
        made.append(a[1])
        return real(*a)

    monkeypatch.setattr(_evaluate, "MarketArrays", counting)
    monkeypatch.setattr(_env, "MarketArrays", counting)
    return made


def _exits(rs: Any, env: SnapshotEnv) -> list[list[object]]:
    out = []
    for rule in rs.rules:
        bindings = rule.bindings[::7]
        values = [PositionValues(3600.0 * i, i - 2.0, float(i % 2)) for i in range(len(bindings))]
        out.append(check_exits(rule, bindings, env, values))
    return out


def _dicts(ev: Any) -> dict:
    return ev.to_dict()


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.booleans(), st.booleans())
def test_shared_arrays_give_what_each_gives_alone(seed: int, exits_first: bool, wide: bool) -> None:
    view = random_view(seed)
    for rs in (RS, EXIT_RS):
        want_ev = _dicts(evaluate(rs, view, include_unfired=wide))
        want_exits = _exits(rs, SnapshotEnv(view))
        env = SnapshotEnv.for_ruleset(view, rs)
        if exits_first:
            assert _exits(rs, env) == want_exits
            assert _dicts(evaluate(rs, view, env=env, include_unfired=wide)) == want_ev
        else:
            assert _dicts(evaluate(rs, view, env=env, include_unfired=wide)) == want_ev
            assert _exits(rs, env) == want_exits


def test_one_set_of_arrays_per_cycle(monkeypatch: Any) -> None:
    view = random_view(7)
    made = _made(monkeypatch)
    env = SnapshotEnv.for_ruleset(view, EXIT_RS)
    _exits(EXIT_RS, env)  # the exit checks make the arrays
    evaluate(EXIT_RS, view, env=env)  # and the evaluation reads them
    assert len(made) == 1
    fresh = SnapshotEnv.for_ruleset(view, EXIT_RS)
    evaluate(EXIT_RS, view, env=fresh)  # the other order: made for the exit checks after
    _exits(EXIT_RS, fresh)
    assert len(made) == 2


def test_an_env_of_another_view_or_config_is_not_used(monkeypatch: Any) -> None:
    view, other = random_view(1), random_view(2)
    made = _made(monkeypatch)
    elsewhere = SnapshotEnv.for_ruleset(other, EXIT_RS)
    evaluate(EXIT_RS, view, env=elsewhere)
    assert len(made) == 1 and elsewhere._arrays is None
    cfg = EngineConfig(taker_fees={"okx": {"perp": 0.0003}})
    env = SnapshotEnv.for_ruleset(view, EXIT_RS)
    got = evaluate(EXIT_RS, view, config=cfg, env=env)
    assert len(made) == 2 and env._arrays is None
    assert got.to_dict() == evaluate(EXIT_RS, view, config=cfg).to_dict()
    plain = SnapshotEnv(view)  # not coded as the ruleset's: not used
    evaluate(EXIT_RS, view, env=plain)
    assert len(made) == 4 and plain._arrays is None
