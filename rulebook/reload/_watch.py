"""Watching rule files: settled bursts of changes to `*.rules`, from watchfiles.

Used by hot reload (RulesetWatcher) and by `rulebook validate --watch`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import watchfiles

__all__ = ["ReloadSettings", "RuleFileWatch"]


@dataclass(frozen=True, slots=True)
class ReloadSettings:
    """Timings of the watcher, in milliseconds. With these defaults,
    benchmarks/bench_reload.py measures the latencies in docs/reload.md; no
    other values were benchmarked."""

    # watchfiles: how often it looks for events, and how long it may group a
    # stream of events before handing them over (it hands over as soon as one
    # step passes with nothing new)
    step_ms: int = 10
    debounce_ms: int = 200
    # after a batch of events, wait until none has come for this long: a burst
    # of saves becomes one reload, and a write in progress is not read halfway
    quiet_ms: int = 30
    # a load that fails, or finds a file emptied or gone, is tried again this
    # many times, this far apart, before the failure is reported
    retries: int = 3
    retry_delay_ms: int = 25


def _watch_roots(paths: Sequence[Path]) -> tuple[list[Path], Callable[[str], bool]]:
    """The directories to watch, and which changed paths matter.

    A directory is watched recursively for `*.rules`. A single file is watched
    through its parent directory, since an editor's atomic save replaces the
    file (a watch on the file itself would stay on the old, unlinked inode).
    """
    dirs: list[Path] = []
    files: set[Path] = set()
    for p in paths:
        p = p.resolve()
        if p.is_dir():
            dirs.append(p)
        else:
            files.add(p)
    roots = sorted({*dirs, *(f.parent for f in files)})
    # a root inside another root is watched already (watches are recursive)
    roots = [r for r in roots if not any(o != r and o in r.parents for o in roots)]

    def relevant(changed: str) -> bool:
        path = Path(changed)
        if path.suffix != ".rules":
            return False
        return path in files or any(d in path.parents for d in dirs)

    return roots, relevant


class RuleFileWatch:
    """Calls on_settled(changes) after each settled burst of changes to rule files.

    Two threads: one runs watchfiles and queues its batches; the other waits
    until no batch has come for `quiet_ms`, merges what came, and calls
    on_settled. Changes that arrive while on_settled runs are queued, not lost.
    """

    def __init__(
        self,
        paths: Iterable[str | Path],
        on_settled: Callable[[set[tuple[watchfiles.Change, str]]], object],  # result unused
        settings: ReloadSettings | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ):
        self.paths = [Path(p) for p in paths]
        self.on_settled = on_settled
        self.on_error = on_error
        self.settings = settings or ReloadSettings()
        self._roots, self._relevant = _watch_roots(self.paths)
        self._batches: queue.Queue[set[tuple[watchfiles.Change, str]]] = queue.Queue()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._threads: list[threading.Thread] = []
        self.error: BaseException | None = None

    def _filter(self, change: watchfiles.Change, path: str) -> bool:
        return self._relevant(path)

    def start(self) -> None:
        import watchfiles  # noqa: F401 - loaded here, before the threads (see _watch)

        self._threads = [
            threading.Thread(target=self._watch, name="rulebook-watch", daemon=True),
            threading.Thread(target=self._settle, name="rulebook-reload", daemon=True),
        ]
        for t in self._threads:
            t.start()
        # watchfiles sets its watches before its first step; wait for that so
        # that a save right after start() is seen
        self._ready.wait(timeout=5)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout)

    def __enter__(self) -> RuleFileWatch:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def _watch(self) -> None:
        # here, not at the top: `status` and a replay without --watch use the
        # reload stage's functions and never watch (start() loaded it already)
        import watchfiles

        s = self.settings
        try:
            changes_iter = watchfiles.watch(
                *self._roots,
                watch_filter=self._filter,
                debounce=s.debounce_ms,
                step=s.step_ms,
                stop_event=self._stop,
                # come back every 50 ms when idle: the first return tells start()
                # that the watches are set, and stop() is seen promptly
                rust_timeout=50,
                yield_on_timeout=True,
                raise_interrupt=False,
            )
            for changes in changes_iter:
                # the first (empty) timeout batch, or any batch, means the watches are set
                self._ready.set()
                if changes:
                    self._batches.put(changes)
        except BaseException as e:  # noqa: BLE001 - reported through .error, never a traceback
            self.error = e
            if self.on_error is not None:
                self.on_error(e)
        finally:
            self._ready.set()

    def _settle(self) -> None:
        quiet = self.settings.quiet_ms / 1000
        while not self._stop.is_set():
            try:
                changes = self._batches.get(timeout=0.1)
            except queue.Empty:
                continue
            while True:
                try:
                    changes |= self._batches.get(timeout=quiet)
                except queue.Empty:
                    break
            if self._stop.is_set():
                return
            try:
                self.on_settled(changes)
            except BaseException as e:  # noqa: BLE001 - a callback's bug must not end reloads
                self.error = e
                if self.on_error is not None:
                    self.on_error(e)
