"""Key presses for a live view, read without blocking its refresh.

    with KeyReader(sys.stdin) as keys:
        for key in keys.wait(1.0):     # what was typed within a second ('' chars: none)
            ...

On a terminal, the reader puts it in cbreak mode (each key arrives at once,
unechoed; Ctrl-C still interrupts) and restores the terminal's own settings
on the way out, whatever ends the view: a key, Ctrl-C or an error. Where the
input is not a terminal (a pipe, a test's runner), no key ever arrives and
`wait` only waits.
"""

from __future__ import annotations

import os
import select
import sys
import time
from typing import IO, Any

__all__ = ["KeyReader"]


class KeyReader:
    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdin
        self._fd: int | None = None
        self._saved: list[Any] | None = None
        self._eof = False

    @property
    def active(self) -> bool:
        """Whether keys can arrive (the input is a terminal in cbreak mode)."""
        return self._saved is not None

    def __enter__(self) -> KeyReader:
        try:
            fd = self._stream.fileno()
        except (AttributeError, OSError, ValueError):
            return self  # no file behind it (a test's runner): no keys
        if not os.isatty(fd):
            return self
        try:
            import termios
            import tty
        except ImportError:  # not a POSIX terminal (Windows): no keys, --sort still works
            return self
        try:
            self._saved = termios.tcgetattr(fd)
            tty.setcbreak(fd, termios.TCSANOW)
        except termios.error:
            self._saved = None
            return self
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None and self._fd is not None:
            import termios

            # TCSAFLUSH: keys typed after the last read do not land in the shell
            termios.tcsetattr(self._fd, termios.TCSAFLUSH, self._saved)
        self._saved, self._fd = None, None

    def wait(self, timeout: float) -> str:
        """The keys typed within `timeout` seconds, returned as soon as one is;
        '' when none was (after waiting the whole time)."""
        if self._fd is None or self._eof:
            time.sleep(max(0.0, timeout))
            return ""
        ready, _, _ = select.select([self._fd], [], [], max(0.0, timeout))
        if not ready:
            return ""
        data = os.read(self._fd, 64)
        if not data:  # the terminal went away: stop waiting for keys
            self._eof = True
            return ""
        return data.decode(errors="replace")
