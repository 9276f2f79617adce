"""Notifications through apprise: one URL per channel (Telegram, e-mail, JSON webhook...).

Sent after the cycle's transaction commits, so a notification never announces
something the ledger does not hold; a channel that fails is logged, never fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import apprise

__all__ = ["Notifier"]

log = logging.getLogger(__name__)

_TITLES = {
    "open": "rulebook: position opened",
    "close": "rulebook: position closed",
    "risk": "rulebook: risk limit",
    "outage": "rulebook: exchange outage",
    "halt": "rulebook: halted",
    "alert": "rulebook: alert",
    "error": "rulebook: error",
    "reload": "rulebook: ruleset reloaded",
}


class Notifier:
    """Sends the event kinds it is configured for to every URL."""

    def __init__(self, urls: Iterable[str], kinds: Iterable[str]) -> None:
        self.kinds = set(kinds)
        self.urls = list(urls)
        self._apprise = apprise.Apprise()
        self.bad_urls = [u for u in self.urls if not self._apprise.add(u)]
        self.sent = 0
        self.failed = 0

    @property
    def enabled(self) -> bool:
        return bool(self.urls) and len(self.bad_urls) < len(self.urls)

    def send(self, kind: str, text: str) -> bool:
        """Notify; False when nothing was sent (kind not wanted, no channel, or failure)."""
        if kind not in self.kinds or not self.enabled:
            return False
        try:
            ok = bool(self._apprise.notify(body=text, title=_TITLES.get(kind, "rulebook")))
        except Exception as e:  # a notification channel must never stop trading
            log.warning("notification failed: %s", e)
            ok = False
        if ok:
            self.sent += 1
        else:
            self.failed += 1
        return ok
