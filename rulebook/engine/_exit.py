"""`exit when` for an open position (spec 6): evaluated with the entry's bindings."""

from __future__ import annotations

from dataclasses import dataclass

from rulebook.lang import Binding, CompiledRule, NoData

from ._env import PositionValues, SnapshotEnv

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
    try:
        return ExitCheck(bool(rule.exit_when(env.with_position(values), binding)))
    except NoData as missing:
        return ExitCheck(False, missing.reason)
