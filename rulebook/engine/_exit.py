"""`exit when` for an open position (spec 6): evaluated with the entry's bindings."""

from __future__ import annotations

from dataclasses import dataclass

from rulebook.lang import Binding, CompiledRule

from ._env import PositionValues, SnapshotEnv
from ._evaluator import DIV_ZERO, Tape, run, single, tape

__all__ = ["ExitCheck", "check_exit"]


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
        code = int(v.r)
        if code > 0:
            return ExitCheck(False, env.cell_reason(mk, code))
        division = list(batch.divisions)[DIV_ZERO - code]
        return ExitCheck(False, f"division by zero in {rule.text_of(division)}")
    return ExitCheck(bool(v.v))
