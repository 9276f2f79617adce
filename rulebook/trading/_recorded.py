"""Rules as the ledger recorded them: rulesets recompiled from their stored texts.

A position keeps running on the rule it was opened under, even after a reload
changed or removed it, and `status` compares that rule with the live one. Both
need a ruleset by its sha256 when only the ledger still has its files.
"""

from __future__ import annotations

from rulebook.lang import CompiledRule, Ruleset, load_texts

from ._ledger import Ledger

__all__ = ["RecordedRulesets"]


class RecordedRulesets:
    """Rulesets by sha256, each recompiled from the ledger's texts at most once.

    `known` rulesets (the running one) are used as they are. A sha256 whose
    texts the ledger lacks, or no longer compile, gives None.
    """

    def __init__(self, ledger: Ledger, *known: Ruleset) -> None:
        self._ledger = ledger
        self._compiled: dict[str, Ruleset | None] = {rs.sha256: rs for rs in known}

    def ruleset(self, sha256: str | None) -> Ruleset | None:
        if sha256 is None:
            return None
        if sha256 not in self._compiled:
            sources = self._ledger.ruleset_sources(sha256)
            self._compiled[sha256] = load_texts(sources).ruleset if sources else None
        return self._compiled[sha256]

    def rule(self, sha256: str, name: str) -> CompiledRule | None:
        """The rule `name` of that ruleset, or None when either cannot be had."""
        rs = self.ruleset(sha256)
        if rs is None:
            return None
        try:
            return rs.rule(name)
        except KeyError:
            return None
