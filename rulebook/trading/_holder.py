"""The one reference to the live ruleset, which hot reload replaces between cycles."""

from __future__ import annotations

import threading

from rulebook.lang import Ruleset

__all__ = ["RulesetHolder"]


class RulesetHolder:
    """The one reference to the live ruleset.

    The runtime calls current() once at the start of a cycle and uses that
    object for the whole cycle; a reload replaces the reference in one step,
    so a cycle sees the old ruleset or the new one, never a mix.
    """

    def __init__(self, ruleset: Ruleset):
        self._ruleset = ruleset
        self._version = 0
        self._changed = threading.Condition()

    def current(self) -> Ruleset:
        return self._ruleset

    @property
    def version(self) -> int:
        """How many replacements so far."""
        return self._version

    def replace(self, ruleset: Ruleset) -> Ruleset:
        """Make ruleset the live one; return the one it replaces."""
        with self._changed:
            old, self._ruleset = self._ruleset, ruleset
            self._version += 1
            self._changed.notify_all()
        return old

    def wait_for_version(self, version: int, timeout: float) -> bool:
        """Block until at least `version` swaps happened, or timeout (seconds)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._version >= version, timeout)
