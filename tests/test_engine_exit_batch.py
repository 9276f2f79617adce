"""`check_exits` (one run of a rule's exit clause over several open positions) answers
as `check_exit` does for each position alone.

On random views with data gaps, for random sets of held bindings (repeats
too) and random position values (a zero `collected` divides by zero), each
answer is the same `ExitCheck`: close or not, and the same no-data reason.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from engine_helpers import ruleset
from hypothesis import given, settings
from hypothesis import strategies as st
from test_engine_vector import random_view

from rulebook.engine import PositionValues, SnapshotEnv, check_exit, check_exits, evaluate
from rulebook.engine._evaluator import plan, plan_held_batch

EXITS = """
set coins = BTC, ETH, SOL, 1000PEPE
set venues = backpack, binance, bybit, okx, gate, bitget

rule cross:
    for c in coins, a in venues, b in venues
    when spread(c, a, b) > 0%
    then hedge 1000 USDT
    exit when spread(c, a, b) < 0.01% or held > 48h or confidence < 0.5 or pnl / collected > 2

rule carry:
    for c in coins, x in venues
    when funding(c, x) > 0%
    then hedge 500 USDT
    exit when funding(c, x) < 0% and (net(24h) < 0% or basis(c, x) > 0.1%) or pnl < -20 USDT

rule borrowed:
    for c in coins, x in venues
    when borrow(c, x) < 0.02%
    then hedge 300 USDT
    exit when borrow(c, x) > 0.03% or edge < 0.001% or risk == high or pnl / collected < -1

rule timed:
    for c in coins, x in venues
    when funding(c, x) > 0.05%
    then hedge 100 USDT
    exit when held > 12h

rule entry_only:
    for c in coins, x in venues
    when funding(c, x) > 0.05%
    then hedge 100 USDT
"""

RS = ruleset(EXITS)

_values = st.builds(
    PositionValues,
    held=st.sampled_from([0.0, 3600.0, 13 * 3600.0, 49 * 3600.0]),
    pnl=st.floats(-50, 50),
    collected=st.sampled_from([0.0, 0.5, 1.0, 30.0]),
)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.data())
def test_a_batch_of_exit_checks_answers_as_each_check(seed: int, data: st.DataObject) -> None:
    env = SnapshotEnv(random_view(seed))
    for rule in RS.rules:
        picks = data.draw(st.lists(st.integers(0, len(rule.bindings) - 1), max_size=12))
        bindings = [rule.bindings[i] for i in picks]
        values = data.draw(st.lists(_values, min_size=len(picks), max_size=len(picks)))
        want = [check_exit(rule, b, env, v) for b, v in zip(bindings, values, strict=True)]
        assert check_exits(rule, bindings, env, values) == want


def test_the_batches_see_every_kind_of_answer() -> None:
    """Not vacuous: the random views give closes, stays, missing data and divisions by zero."""
    kinds = set()
    for seed in range(30):
        env = SnapshotEnv(random_view(seed))
        for rule in RS.rules[:4]:
            bindings = rule.bindings
            values = [PositionValues(3600.0 * (i % 60), (i % 7) - 3.0, float(i % 3))
                      for i in range(len(bindings))]  # fmt: skip
            for got in check_exits(rule, bindings, env, values):
                kinds.add("close" if got.close else "stay" if got.no_data is None
                          else "division" if "division by zero" in got.no_data else "missing")  # fmt: skip
    assert kinds == {"close", "stay", "division", "missing"}


def test_a_rule_without_an_exit_clause_never_closes() -> None:
    rule = RS.rules[-1]
    env = SnapshotEnv(random_view(1))
    values = [PositionValues(1e9, -1e9, 0.0)] * 3
    assert check_exits(rule, rule.bindings[:3], env, values) == [check_exit(rule, rule.bindings[0], env, values[0])] * 3
    assert not any(c.close for c in check_exits(rule, rule.bindings[:3], env, values))


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_the_same_held_bindings_cycle_after_cycle_answer_as_each_check(data: st.DataObject) -> None:
    """The held bindings' codes are kept with the rule between calls (as the runtime
    asks for the same positions every cycle): over views in turn, envs of either coin
    coding, and a set of bindings that changes now and then, every answer is still
    `check_exit`'s."""
    picks = {rule.name: data.draw(st.lists(st.integers(0, len(rule.bindings) - 1), min_size=2,
                                           max_size=8)) for rule in RS.rules}  # fmt: skip
    for cycle in range(6):
        view = random_view(data.draw(st.integers(0, 10_000)))
        env = SnapshotEnv.for_ruleset(view, RS) if cycle % 2 else SnapshotEnv(view)
        for rule in RS.rules:
            if data.draw(st.integers(0, 3)) == 0:  # a position opens or closes
                picks[rule.name] = picks[rule.name][1:] + [data.draw(st.integers(0, len(rule.bindings) - 1))]
            bindings = [rule.bindings[i] for i in picks[rule.name]]
            values = data.draw(st.lists(_values, min_size=len(bindings), max_size=len(bindings)))
            want = [check_exit(rule, b, env, v) for b, v in zip(bindings, values, strict=True)]
            assert check_exits(rule, bindings, env, values) == want


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.data(), st.booleans())
def test_the_runtime_s_exit_checks_read_the_plan_s_batch_and_answer_as_each_check(
    seed: int, data: st.DataObject, evaluated_first: bool
) -> None:
    """The runtime's case: an env coded as the ruleset's plan (`for_ruleset`) and held
    bindings that are the rule's own, each held once. The clause runs over the plan's
    batch at the held positions (`plan_held_batch`), reading the lookups and figures
    the cycle's evaluation reads, before or after it; every answer is `check_exit`'s
    (its own env: nothing shared)."""
    view = random_view(seed)
    env = SnapshotEnv.for_ruleset(view, RS)
    if evaluated_first:
        evaluate(RS, view, env=env)
    for rule in RS.rules:
        picks = data.draw(st.lists(st.integers(0, len(rule.bindings) - 1), unique=True, max_size=12))
        bindings = [rule.bindings[i] for i in picks]
        values = data.draw(st.lists(_values, min_size=len(picks), max_size=len(picks)))
        if rule.exit_when is not None and bindings:
            mk = env.arrays(rule.markets.coins)
            assert plan_held_batch(rule, bindings, mk, {"held": np.zeros(len(bindings))}) is not None
        alone = SnapshotEnv(view)
        want = [check_exit(rule, b, alone, v) for b, v in zip(bindings, values, strict=True)]
        assert check_exits(rule, bindings, env, values) == want


def test_the_plan_s_batch_is_not_used_where_it_cannot_answer() -> None:
    """Another coin coding, a binding that is a copy of the rule's, one held twice:
    `plan_held_batch` declines (the general `held_batch` answers), and the answers
    are still `check_exit`'s."""
    view = random_view(3)
    rule = RS.rules[0]
    some = rule.bindings[:4]
    zeros = {"held": np.zeros(4)}
    planned = SnapshotEnv.for_ruleset(view, RS)
    assert plan_held_batch(rule, some, planned.arrays(rule.markets.coins), zeros) is not None
    other = SnapshotEnv(view, coins={c: i for i, c in enumerate(reversed(list(plan(RS).coins)))})
    assert plan_held_batch(rule, some, other.arrays(rule.markets.coins), zeros) is None
    copies = [dataclasses.replace(b) for b in some]
    assert plan_held_batch(rule, copies, planned.arrays(rule.markets.coins), zeros) is None
    twice = [some[0], some[1], some[0], some[2]]
    assert plan_held_batch(rule, twice, planned.arrays(rule.markets.coins), zeros) is None
    values = [PositionValues(3600.0 * i, i - 2.0, float(i % 2)) for i in range(4)]
    for env in (planned, other):
        for bindings in (some, copies, twice):
            want = [check_exit(rule, b, SnapshotEnv(view), v) for b, v in zip(bindings, values, strict=True)]
            assert check_exits(rule, bindings, env, values) == want
