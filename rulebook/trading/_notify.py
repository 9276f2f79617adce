"""Notifications through apprise: one URL per channel (Telegram, e-mail, JSON webhook...).

Sent after the cycle's transaction commits, so a notification never announces
something the ledger does not hold; a channel that fails is never fatal: it is
counted (`failed`) and kept in `failures` with apprise's reason, for the
runtime to record as `notify_failed` events (which `rulebook status` counts).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rulebook._text import MaskingFilter, mask_secrets, mask_url, register_secret

if TYPE_CHECKING:
    import apprise

__all__ = ["NotifyFailure", "Notifier"]

log = logging.getLogger(__name__)
# apprise logs the URLs it cannot use, tokens and all: mask its records and ours
for _logger in (log, logging.getLogger("apprise")):
    _logger.addFilter(MaskingFilter())

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


@dataclass(frozen=True, slots=True)
class NotifyFailure:
    ts: int  # ms
    kind: str  # the event kind that was to be sent
    why: str  # apprise's reason, without URLs (they carry tokens)

    def text(self) -> str:
        return f"{self.kind} notification failed: {self.why}"


_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.I)
_LOG_PREFIX = re.compile(r"^.*? - (?:WARNING|ERROR|CRITICAL) - ")


def _reason(log: str) -> str:
    """apprise's last warning or error line, URLs masked: why a channel failed."""
    lines = [ln for ln in log.splitlines() if _LOG_PREFIX.match(ln)]
    if not lines:
        return "the channel reported a failure"
    return _URL.sub("***", _LOG_PREFIX.sub("", lines[-1])).strip()


class Notifier:
    """Sends the event kinds it is configured for to every URL."""

    def __init__(self, urls: Iterable[str], kinds: Iterable[str]) -> None:
        self.kinds = set(kinds)
        self.urls = list(urls)
        for url in self.urls:  # a URL carries its channel's token: never shown again
            register_secret(url)
        self._apprise: apprise.Apprise | None = None
        self.bad_urls: list[str] = []
        if self.urls:
            # apprise takes about 0.15 s to import: a run without a channel (every
            # replay without [notify]) does not pay it
            import apprise

            self._apprise = apprise.Apprise()
            self.bad_urls = [u for u in self.urls if not self._apprise.add(u)]
        self.sent = 0
        self.failed = 0
        # failures not yet taken by `take_failures` (the reloader sends from its thread)
        self._failures: list[NotifyFailure] = []
        self._lock = threading.Lock()

    @property
    def bad_urls_shown(self) -> list[str]:
        """The URLs apprise does not know, as they may be shown: `badscheme://***@host`."""
        return [mask_url(u) for u in self.bad_urls]

    @property
    def enabled(self) -> bool:
        return bool(self.urls) and len(self.bad_urls) < len(self.urls)

    def send(self, kind: str, text: str) -> bool:
        """Notify; False when nothing was sent (kind not wanted, no channel, or failure)."""
        if kind not in self.kinds or not self.enabled or self._apprise is None:
            return False
        import apprise  # loaded already: there is a channel

        why = ""
        try:
            with apprise.LogCapture(level=logging.WARNING) as captured:
                ok = bool(
                    self._apprise.notify(
                        body=mask_secrets(text), title=_TITLES.get(kind, "rulebook")
                    )
                )
            if not ok:
                why = mask_secrets(_reason(captured.getvalue()))
        except Exception as e:  # a notification channel must never stop trading
            ok, why = False, mask_secrets(_URL.sub("***", f"{type(e).__name__}: {e}"))
        with self._lock:
            if ok:
                self.sent += 1
            else:
                self.failed += 1
                log.warning("%s notification failed: %s", kind, why)
                self._failures.append(NotifyFailure(int(time.time() * 1000), kind, why))
        return ok

    def take_failures(self) -> list[NotifyFailure]:
        """The failures since the last call (for the ledger's events)."""
        with self._lock:
            out, self._failures = self._failures, []
        return out
