"""`check_exit` compiles a rule's exit clause once and keeps it with the rule; its arrays too.

The runtime checks the clause of every open position every cycle; the tape
(the clause's post-order) is made on the rule's first check and reused, and a
reloaded rule (a new object, or a rule whose clause is another object) gets a
tape of its own. The answers are those of a tape made afresh for each check.
The snapshot's arrays are looked up once per rule's coins, not coin by coin
per check.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from engine_helpers import perp, ruleset, view

from rulebook.engine import PositionValues, SnapshotEnv, _exit, check_exit
from rulebook.engine._evaluator import run, single, tape

RULES = (
    "rule r:\n for c in coins, a in venues, b in venues\n"
    " when spread(c, a, b) > 0.05%\n then hedge 1000 USDT\n"
    " exit when spread(c, a, b) < 0.01% or held > 48h or pnl < -20 USDT or pnl / collected > 2\n"
)
TEXT = "set coins = SOL, ETH\nset venues = backpack, binance, okx\n" + RULES


def _view() -> Any:
    return view(
        perp("backpack", "SOL", 0.0001, 1), perp("binance", "SOL", 0.0002),
        perp("okx", "SOL", -0.0001), perp("binance", "ETH", 0.00005),
        perp("okx", "ETH", 0.00004),
    )  # fmt: skip


def _fresh(rule: Any, binding: Any, env: SnapshotEnv, values: PositionValues) -> tuple:
    """What check_exit answered before the cache: a tape made for this check."""
    mk = env.arrays(rule.markets.coins)
    position = {"held": values.held, "pnl": values.pnl, "collected": values.collected}
    v, _ = run(tape(rule.exit_when), mk, single(rule, binding, mk, position))
    return (bool(v.v), None if v.m is None or not bool(v.m) else int(v.r))


def test_the_exit_tape_is_made_once_per_rule(monkeypatch: Any) -> None:
    rule = ruleset(TEXT).rules[0]
    made: list[object] = []
    real = _exit.tape
    monkeypatch.setattr(_exit, "tape", lambda e: made.append(e) or real(e))
    env = SnapshotEnv(_view())
    for held in (0.0, 47 * 3600.0, 49 * 3600.0):
        for b in rule.bindings:
            check_exit(rule, b, env, PositionValues(held, 0.0, 1.0))
    assert made == [rule.exit_when]


def test_the_cached_tape_answers_as_a_fresh_one() -> None:
    rule = ruleset(TEXT).rules[0]
    env = SnapshotEnv(_view())
    seen = set()
    for values in (
        PositionValues(0.0, 0.0, 1.0), PositionValues(49 * 3600.0, 0.0, 1.0),
        PositionValues(0.0, -21.0, 1.0), PositionValues(0.0, 0.0, 0.0),  # pnl / 0
        PositionValues(0.0, 0.0, 0.25),
    ):  # fmt: skip
        for b in rule.bindings:
            got = check_exit(rule, b, env, values)
            close, code = _fresh(rule, b, env, values)
            assert got.close == (close and code is None)
            assert (got.no_data is None) == (code is None)
            seen.add((got.close, got.no_data is None))
    assert seen == {(True, True), (False, True), (False, False)}  # every kind of answer


def test_a_reloaded_rule_gets_its_own_tape() -> None:
    old = ruleset(TEXT).rules[0]
    env = SnapshotEnv(_view())
    b = old.bindings[1]  # SOL, backpack, binance
    assert check_exit(old, b, env, PositionValues(0.0, 0.0, 1.0)).close is False
    # the same rule with another exit clause (a reload makes new objects)
    new = ruleset(TEXT.replace("< 0.01%", "< 1%")).rules[0]
    assert check_exit(new, new.bindings[1], env, PositionValues(0.0, 0.0, 1.0)).close is True
    assert _exit.exit_tape(new) is not _exit.exit_tape(old)
    # a rule object whose clause was replaced does not reuse the old clause's tape
    swapped = dataclasses.replace(old, exit_when=new.exit_when, derived=dict(old.derived))
    assert check_exit(swapped, b, env, PositionValues(0.0, 0.0, 1.0)).close is True
    assert _exit.exit_tape(swapped) is not _exit.exit_tape(old)


def test_the_arrays_cover_every_rules_coins_as_they_are_asked_for() -> None:
    env = SnapshotEnv(_view())
    sol = ("SOL",)
    first = env.arrays(sol)
    assert env.arrays(sol) is first  # the same coins: no new arrays
    both = ("SOL", "ETH")
    wider = env.arrays(both)
    assert {"SOL", "ETH"} <= wider.coins.keys() and env.arrays(both) is wider
    assert env.arrays(sol) is wider  # still covered by the wider arrays
    more = env.arrays(["DOGE"])  # a list is checked coin by coin, every time
    assert {"SOL", "ETH", "DOGE"} <= more.coins.keys()
    assert env.arrays(both) is more and env.arrays(["DOGE"]) is more
