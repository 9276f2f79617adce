"""`exit when` for an open position (spec 6): evaluated with the entry's bindings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rulebook.lang import Binding, CompiledRule

from ._env import PositionValues, SnapshotEnv
from ._evaluator import DIV_ZERO, Batch, Tape, held_batch, plan_held_batch, run, single, tape
from ._vector import MarketArrays, spread_over

__all__ = ["ExitCheck", "check_exit", "check_exits"]


@dataclass(frozen=True, slots=True)
class ExitCheck:
    """Whether the rule's exit clause says close; `no_data` when it could not tell."""

    close: bool
    no_data: str | None = None


def exit_tape(rule: CompiledRule) -> Tape:
    """The rule's exit clause as a tape, made once per rule and kept with it
    (`CompiledRule.derived`): the runtime checks it for every open position
    every cycle, and making the tape cost more than running it. The tape is
    kept with the clause it was made from, so a rule whose clause is another
    object gets its own."""
    clause = rule.exit_when
    assert clause is not None
    got = rule.derived.get("engine.exit_tape")
    if not (isinstance(got, tuple) and got[0] is clause):
        got = rule.derived["engine.exit_tape"] = (clause, tape(clause))
    made: Tape = got[1]
    return made


def check_exit(
    rule: CompiledRule, binding: Binding, env: SnapshotEnv, values: PositionValues
) -> ExitCheck:
    """Evaluate `rule`'s exit clause for one open position.

    Missing data keeps the position open (the clause cannot be known to hold),
    and says why, so the executor can log it; the risk limits (max_hold,
    stop_loss) still apply, since the executor checks them from its own ledger.
    A rule without an exit clause never closes by itself.
    """
    if rule.exit_when is None:
        return ExitCheck(False)
    mk = env.arrays(rule.markets.coins)
    position = {"held": values.held, "pnl": values.pnl, "collected": values.collected}
    batch = single(rule, binding, mk, position)
    v, _ = run(exit_tape(rule), mk, batch)
    if v.m is not None and bool(v.m):
        return ExitCheck(False, _no_data(rule, env, mk, batch, int(v.r)))
    return ExitCheck(bool(v.v))


def check_exits(
    rule: CompiledRule,
    bindings: Sequence[Binding],
    env: SnapshotEnv,
    values: Sequence[PositionValues],
) -> list[ExitCheck]:
    """`check_exit` for several open positions of one rule at once: one run of
    the clause over all their bindings (`values[i]` is binding i's position).
    Each answer is the one `check_exit` gives for that binding alone
    (tests/test_engine_exit_batch.py): the clause's formulas are elementwise,
    and a division by zero is numbered as the single run numbers it."""
    if len(bindings) != len(values):
        raise ValueError(f"{len(bindings)} bindings but {len(values)} positions' values")
    if rule.exit_when is None:
        return [ExitCheck(False)] * len(bindings)
    if not bindings:
        return []
    mk = env.arrays(rule.markets.coins)
    position = {
        "held": np.array([v.held for v in values], dtype=float),
        "pnl": np.array([v.pnl for v in values], dtype=float),
        "collected": np.array([v.collected for v in values], dtype=float),
    }
    # the runtime's case: the env is coded as the ruleset's plan (`for_ruleset`)
    # and the bindings are the rule's own; the clause then reads the lookups the
    # cycle's evaluation reads (tests/test_engine_exit_batch.py holds it to
    # `check_exit`, binding by binding)
    batch = plan_held_batch(rule, bindings, mk, position)
    if batch is None:
        if len(bindings) < 2:
            return [check_exit(rule, b, env, v) for b, v in zip(bindings, values, strict=True)]
        batch = held_batch(rule, list(bindings), mk, position)
    v, _ = run(exit_tape(rule), mk, batch)
    n = (len(bindings),)
    close = spread_over(np.asarray(v.v, dtype=bool), n).tolist()
    if v.m is None:
        return [_CLOSE if c else _STAY for c in close]
    missing = spread_over(v.m, n).tolist()
    codes = spread_over(v.r, n).tolist()
    return [
        ExitCheck(False, _no_data(rule, env, mk, batch, int(code))) if gap
        else _CLOSE if c else _STAY
        for c, gap, code in zip(close, missing, codes, strict=True)
    ]  # fmt: skip


# the two answers with data, shared (an ExitCheck is immutable): a runtime asks
# every held position every cycle
_CLOSE, _STAY = ExitCheck(True), ExitCheck(False)


def _no_data(rule: CompiledRule, env: SnapshotEnv, mk: MarketArrays, batch: Batch, code: int) -> str:
    """Why the clause could not be known: a missing datum, or a division by zero."""
    if code > 0:
        return env.cell_reason(mk, code)
    division = list(batch.divisions)[DIV_ZERO - code]
    return f"division by zero in {rule.text_of(division)}"
