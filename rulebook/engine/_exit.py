"""`exit when` for an open position (spec 6): evaluated with the entry's bindings."""

from __future__ import annotations

from dataclasses import dataclass

from rulebook.lang import Binding, CompiledRule

from ._env import PositionValues, SnapshotEnv
from ._evaluator import DIV_ZERO, run, single, tape

__all__ = ["ExitCheck", "check_exit"]


@dataclass(frozen=True, slots=True)
class ExitCheck:
    """Whether the rule's exit clause says close; `no_data` when it could not tell."""

    close: bool
    no_data: str | None = None


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
    v, _ = run(tape(rule.exit_when), mk, batch)
    if v.m is not None and bool(v.m):
        code = int(v.r)
        if code > 0:
            return ExitCheck(False, env.cell_reason(mk, code))
        division = list(batch.divisions)[DIV_ZERO - code]
        return ExitCheck(False, f"division by zero in {rule.text_of(division)}")
    return ExitCheck(bool(v.v))
