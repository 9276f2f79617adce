"""Text that leaves rulebook: escaped for a terminal, secrets masked.

Every stage may put text from outside (a rule file, a snapshot line, an
exchange's error, a configured URL) into a message. Two functions make such
text safe to show:

- :func:`terminal_safe`: control characters and escape sequences become
  visible symbols (one symbol per character, so a caret under a source line
  still points at the right column), bidirectional overrides are shown as
  ``<U+202E>``, and a long text is cut with the count of what was cut.
- :func:`mask_secrets`: credentials and tokens in URLs, and every value
  registered with :func:`register_secret`, become ``***``.

Both are pure functions of the text (plus the registered secrets); the limits
are in ``docs/limits.md``.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TextIO
from urllib.parse import urlsplit

__all__ = [
    "MAX_MESSAGE_CHARS",
    "MaskedStream",
    "MaskingFilter",
    "mask_secrets",
    "mask_url",
    "register_secret",
    "terminal_safe",
    "visible",
]

#: a message line longer than this is cut, with the count of what was cut
MAX_MESSAGE_CHARS = 500

MASK = "***"

# C0 controls (except tab and newline, handled by the caller's choice), DEL and
# the C1 controls (0x80-0x9f: 0x9b is a one-byte CSI on some terminals).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Bidirectional overrides and isolates can make a line read differently from
# what it holds (CVE-2021-42574, "Trojan Source").
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def _picture(m: re.Match[str]) -> str:
    c = ord(m.group(0))
    if c < 0x20:
        return chr(0x2400 + c)  # U+2400 block: a visible symbol per control, e.g. ␛ for ESC
    if c == 0x7F:
        return "\u2421"  # ␡
    return "\ufffd"  # C1: the replacement character


def visible(text: str, *, keep_newlines: bool = False) -> str:
    """Each control character as one visible symbol (ESC as ␛, NUL as ␀), so that
    columns are kept; tabs stay; newlines stay only with ``keep_newlines``."""
    if not keep_newlines:
        text = text.replace("\n", "\u2424").replace("\r", "\u240d")
    text = _CONTROL.sub(_picture, text)
    return _BIDI.sub(lambda m: f"<U+{ord(m.group(0)):04X}>", text)


def cut(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how many were cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"


def terminal_safe(
    text: str, limit: int | None = MAX_MESSAGE_CHARS, *, keep_newlines: bool = False
) -> str:
    """Text from outside made safe to print: controls visible, each line cut at ``limit``."""
    if keep_newlines:
        return "\n".join(terminal_safe(line, limit) for line in text.split("\n"))
    shown = visible(text)
    return shown if limit is None else cut(shown, limit)


# -- secrets -------------------------------------------------------------------------

_SECRETS: set[str] = set()
# scheme://rest, up to whitespace or a quote; the scheme as RFC 3986 has it
_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.\-]{1,30})://([^\s'\"<>`]+)")
_WEB = ("http", "https", "ws", "wss")


def register_secret(value: str) -> None:
    """Mask ``value`` wherever it appears in a message from now on (API keys,
    notification URLs). Values shorter than 4 characters are ignored: masking
    "1" everywhere would garble every number."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


def mask_url(url: str) -> str:
    """A URL with its credentials and tokens as ``***``.

    Web URLs keep their host and path (an exchange's endpoint helps an
    operator) but lose user, password and every query value. Any other scheme
    (apprise's ``tgram://TOKEN/CHAT``, ``mailto://user:pass@host``) carries
    its tokens in the host and path, so only the scheme and, after an ``@``,
    the host are kept.
    """
    m = _URL.fullmatch(url.strip())
    if m is None:
        return MASK
    scheme, rest = m.group(1), m.group(2)
    if scheme.lower() in _WEB:
        try:
            parts = urlsplit(url.strip())
            host = parts.hostname or ""
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            return f"{scheme}://{MASK}"
        user = f"{MASK}@" if "@" in parts.netloc else ""
        query = ""
        if parts.query:
            keys = [q.split("=", 1)[0] for q in parts.query.split("&")]
            query = "?" + "&".join(f"{k}={MASK}" for k in keys)
        return f"{scheme}://{user}{host}{port}{parts.path}{query}"
    authority = rest.split("/", 1)[0]
    if "@" in authority:
        host = authority.rsplit("@", 1)[1]
        return f"{scheme}://{MASK}@{host}"
    return f"{scheme}://{MASK}"


def mask_secrets(text: str) -> str:
    """``text`` with every URL masked (:func:`mask_url`) and every registered secret
    replaced by ``***``."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    if "://" not in text:
        return text
    return _URL.sub(lambda m: mask_url(m.group(0)), text)


class MaskingFilter(logging.Filter):
    """A logging filter that masks secrets in every record it passes (attach it to a
    logger or a handler: rulebook's own loggers and apprise's carry one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record: leave it to logging
            return True
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class MaskedStream:
    """A text stream that masks secrets in everything written to it, for a console.

    It looks up ``sys.stdout`` or ``sys.stderr`` at each write, so a test runner
    that swaps them still captures the output."""

    def __init__(self, stderr: bool = False) -> None:
        self._stderr = stderr

    @property
    def _target(self) -> TextIO:
        return sys.stderr if self._stderr else sys.stdout

    def write(self, text: str) -> int:
        self._target.write(mask_secrets(text) if "://" in text or _SECRETS else text)
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return self._target.isatty()

    def fileno(self) -> int:
        return self._target.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._target, "encoding", None) or "utf-8"
