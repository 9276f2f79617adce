"""One runtime per ledger: an OS lock on a file beside the ledger.

    with RuntimeLock("paper.db").hold("rulebook run strategies/ --paper"):
        ...  # a second `run` on paper.db now fails at once with LedgerInUse

The lock is `flock(2)` on ``<ledger>.lock``: the kernel drops it when the
process ends, however it ends (kill -9 included), so a lock is never stale.
The file holds the pid, the command and the start time of the holder, for the
message a second runtime gets. Readers (`status`, `report`) and `halt` do not
take it: SQLite's WAL lets them read, and write a halt request, while the
runtime runs.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rulebook._text import mask_secrets, terminal_safe

from ._ledger import LedgerError

__all__ = ["LedgerInUse", "LockHolder", "RuntimeLock"]


class LedgerInUse(LedgerError):
    """Another runtime holds the ledger: the message names its pid and command."""


@dataclass(frozen=True, slots=True)
class LockHolder:
    pid: int | None
    command: str
    since_ms: int | None


class RuntimeLock:
    """The exclusive right to run on one ledger."""

    def __init__(self, ledger_path: str | os.PathLike[str]) -> None:
        self.ledger = Path(ledger_path)
        self.path = self.ledger.with_name(self.ledger.name + ".lock")
        self._fd: int | None = None

    def acquire(self, command: str) -> None:
        """Take the lock or raise LedgerInUse at once (never waits)."""
        try:
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise LedgerError(
                f"{self.path}: cannot create the ledger's lock file: {e.strerror or e}; "
                "the directory must be writable"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise LedgerInUse(_in_use(self.ledger, holder)) from None
        except OSError as e:
            os.close(fd)
            raise LedgerError(f"{self.path}: cannot lock: {e.strerror or e}") from None
        record = {"pid": os.getpid(), "command": mask_secrets(command), "since": _now_ms()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    @contextmanager
    def hold(self, command: str) -> Iterator[RuntimeLock]:
        self.acquire(command)
        try:
            yield self
        finally:
            self.release()

    def holder(self) -> LockHolder | None:
        """Who runs on this ledger now, if anyone (a shared probe; takes nothing)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _read(fd)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _read(fd: int) -> LockHolder:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode("utf-8", errors="replace") or "{}")
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    pid = data.get("pid") if isinstance(data.get("pid"), int) else None
    since = data.get("since") if isinstance(data.get("since"), int) else None
    raw = data.get("command")
    command = raw if isinstance(raw, str) else "?"
    return LockHolder(pid, terminal_safe(command, 200), since)


def _in_use(ledger: Path, holder: LockHolder) -> str:
    who = f"pid {holder.pid}" if holder.pid is not None else "another process"
    since = ""
    if holder.since_ms is not None:
        since = time.strftime(" since %Y-%m-%d %H:%M UTC", time.gmtime(holder.since_ms / 1000))
    return (
        f"{ledger}: in use by {who} ({holder.command}){since}; one runtime per ledger: "
        f"stop it (rulebook halt --db {ledger}) or give another --db"
    )
