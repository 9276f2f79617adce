"""Hot reload: watch the rule files, load on save, swap a clean ruleset in
between two cycles, refuse a broken one; and the file watcher that
`rulebook validate --watch` shares.

    holder = RulesetHolder(ruleset)                       # from rulebook.trading
    with HotReload(["strategies/"], holder, "paper.db", notifier, echo=print):
        runtime.run(...)                                  # reads holder.current() per cycle

    with RuleFileWatch(["strategies/"], on_settled=lambda changes: ...):
        ...

This stage sits after `rulebook.trading` (it records reloads in the ledger and
replaces the runtime's `RulesetHolder`); trading never imports it.
"""

from __future__ import annotations

from ._hot_reload import HotReload, position_rule_states
from ._reload import (
    ReloadFailure,
    ReloadReport,
    RulesetWatcher,
    diff_rulesets,
    rule_status,
)
from ._watch import ReloadSettings, RuleFileWatch

__all__ = [
    "HotReload",
    "ReloadFailure",
    "ReloadReport",
    "ReloadSettings",
    "RuleFileWatch",
    "RulesetWatcher",
    "diff_rulesets",
    "position_rule_states",
    "rule_status",
]
