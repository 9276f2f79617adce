"""trading stage of rulebook: the paper runtime, and hot reload of its rules."""

from __future__ import annotations

from ._reload import (
    ReloadFailure,
    ReloadReport,
    ReloadSettings,
    RuleFileWatch,
    RulesetHolder,
    RulesetWatcher,
    RuleStatus,
    diff_rulesets,
    rule_status,
)

__all__ = [
    "ReloadFailure",
    "ReloadReport",
    "ReloadSettings",
    "RuleFileWatch",
    "RulesetHolder",
    "RulesetWatcher",
    "RuleStatus",
    "diff_rulesets",
    "rule_status",
]
