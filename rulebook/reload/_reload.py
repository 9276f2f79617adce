"""Hot reload of rules: watch the rule files, load on save, swap in one step.

    holder = RulesetHolder(initial_ruleset)
    with RulesetWatcher(["strategies/"], holder, on_reload=..., on_reload_failed=...):
        while running:
            ruleset = holder.current()   # once per cycle: a cycle never sees a mix
            ...

The watcher never makes a broken ruleset current. On a change it loads the
whole ruleset again (every file, checked together); only a clean load is
swapped in, by replacing one reference. A load that fails, or that finds a
file emptied or gone, is retried a few times over a few tens of milliseconds
first, because editors that truncate-then-write or delete-then-recreate pass
through such states for a moment. The exact rule is in docs/reload.md.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rulebook.lang import (
    Diagnostic,
    LoadResult,
    ParseCache,
    PathError,
    Ruleset,
    Span,
    file_size_problem,
    find_rule_files,
    load_texts,
    render_text,
)
from rulebook.trading import RulesetHolder

from ._watch import ReloadSettings, RuleFileWatch

__all__ = [
    "ReloadFailure",
    "ReloadReport",
    "RulesetWatcher",
    "diff_rulesets",
    "rule_status",
]

# Codes of the diagnostics that only a reload produces (the checker's are E0xx-W2xx);
# they are not in rulebook.lang.CODES, which lists what `validate` can report.
EMPTIED = "E301"  # a file whose rules are running is now empty
NO_RULES = "E302"  # no rules files left under a path
UNREADABLE = "E303"  # a rules file cannot be read (permissions, I/O error)


@dataclass(frozen=True, slots=True)
class ReloadReport:
    """A new ruleset went live."""

    sha256: str
    previous_sha256: str
    files: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    risk_changed: bool
    n_rules: int
    load_ms: float  # from the settled change to the swap: reading, checking, compiling
    attempts: int = 1  # loads it took (more than one when a file was caught mid-write)
    ruleset: Ruleset | None = field(default=None, repr=False, compare=False)  # the new one

    def summary(self) -> str:
        def names(xs: tuple[str, ...]) -> str:
            return ", ".join(xs) if xs else "-"

        parts = [
            f"ruleset {self.sha256[:12]} live ({self.n_rules} rules in {len(self.files)} files,"
            f" replacing {self.previous_sha256[:12]}, loaded in {self.load_ms:.0f} ms)",
            f"added: {names(self.added)}; removed: {names(self.removed)};"
            f" changed: {names(self.changed)}"
            + ("; risk limits changed" if self.risk_changed else ""),
        ]
        return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class ReloadFailure:
    """An edit was refused: the running ruleset stays."""

    diagnostics: tuple[Diagnostic, ...]
    sources: dict[str, str]
    kept_sha256: str
    attempts: int

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.is_error)

    def render(self) -> str:
        """The diagnostics in the spec section 8 format, then what happened."""
        blocks = [render_text(d, self.sources.get(d.file)) for d in self.diagnostics]
        n = len(self.errors)
        blocks.append(
            f"reload refused ({n} error{'s' * (n != 1)}): "
            f"ruleset {self.kept_sha256[:12]} keeps running"
        )
        return "\n\n".join(blocks)

    def summary(self) -> str:
        first = self.errors[0] if self.errors else None
        where = f" at {first.file}:{first.line}:{first.column}: {first.message}" if first else ""
        return f"reload refused, ruleset {self.kept_sha256[:12]} keeps running{where}"


def diff_rulesets(
    old: Ruleset, new: Ruleset
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The names of the rules added, removed and changed (by fingerprint) from old to new."""
    before = {r.name: r.fingerprint for r in old.rules}
    after = {r.name: r.fingerprint for r in new.rules}
    added = tuple(n for n in after if n not in before)
    removed = tuple(n for n in before if n not in after)
    changed = tuple(n for n in after if n in before and before[n] != after[n])
    return added, removed, changed


def rule_status(ruleset: Ruleset, name: str, fingerprint: str) -> str:
    """Where the rule a position was opened by stands in ruleset: "current"
    (same name, same fingerprint), "changed" (same name, other fingerprint) or
    "removed" (no rule of that name)."""
    for r in ruleset.rules:
        if r.name == name:
            return "current" if r.fingerprint == fingerprint else "changed"
    return "removed"


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Hold off Python's cyclic garbage collector while a reload runs.

    A load allocates enough to set off a full collection now and then, and a
    full collection walks every object in the process (the parser's tables,
    the cached syntax trees, the runtime's state): measured at 100-200 ms on
    the benchmark's 100-rule ruleset, against ~15 ms for the load itself. Held
    off, the collection runs after the swap instead of between save and swap.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(slots=True)
class _Attempt:
    result: LoadResult | None
    raw: dict[str, bytes]
    problems: list[Diagnostic] = field(default_factory=list)
    in_flux: bool = False  # a file vanished between listing and reading, or changed under us


class RulesetWatcher:
    """Reloads the ruleset from `paths` on every settled change, and swaps it
    into `holder` when, and only when, it loads clean.

    on_reload(report) and on_reload_failed(failure) run on the watcher's
    thread, after the swap (or the refusal); on_back_to_live(ruleset) when a
    refused edit is undone, so the files match the running ruleset again;
    on_error(exception) when watching stops, or a reload or a callback raises.
    sqlite3 connections belong to the thread that opened them: a callback that
    writes a ledger opens its own (HotReload does), or hands over to the
    runtime's thread.
    """

    def __init__(
        self,
        paths: Iterable[str | Path],
        holder: RulesetHolder,
        *,
        on_reload: Callable[[ReloadReport], None] | None = None,
        on_reload_failed: Callable[[ReloadFailure], None] | None = None,
        on_back_to_live: Callable[[Ruleset], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        settings: ReloadSettings | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.paths = [Path(p) for p in paths]
        self.holder = holder
        self.on_reload = on_reload
        self.on_reload_failed = on_reload_failed
        self.on_back_to_live = on_back_to_live
        self.settings = settings or ReloadSettings()
        # the wait between retries (a test passes its own, to decide what the files
        # look like at each retry instead of racing a timer against the machine's load)
        self._sleep = sleep
        self._cache = ParseCache()
        live = holder.current()
        self._live_raw: dict[str, bytes] = {p: t.encode() for p, t in live.sources.items()}
        self._failed_raw: dict[str, bytes] | None = None
        self._lock = threading.Lock()  # one reload at a time
        self._watch = RuleFileWatch(
            self.paths, lambda _changes: self.reload(), self.settings, on_error
        )
        self.reloads = 0  # swaps made
        self.failures = 0  # edits refused

    def start(self) -> None:
        self._watch.start()

    def stop(self) -> None:
        self._watch.stop()

    def __enter__(self) -> RulesetWatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def error(self) -> BaseException | None:
        return self._watch.error

    # -- one reload ------------------------------------------------------------------

    def reload(self) -> ReloadReport | ReloadFailure | None:
        """Load the rule files now; swap or refuse. None when nothing changed
        since the live ruleset (or since the last refused edit)."""
        with self._lock:
            with _cyclic_gc_paused():
                outcome, back_to_live = self._load_and_swap()
            # callbacks (ledger, notifications) run after the pause: they may take a while
            if back_to_live and self.on_back_to_live:
                self.on_back_to_live(self.holder.current())
            elif isinstance(outcome, ReloadFailure) and self.on_reload_failed:
                self.on_reload_failed(outcome)
            elif isinstance(outcome, ReloadReport) and self.on_reload:
                self.on_reload(outcome)
            return outcome

    def _load_and_swap(self) -> tuple[ReloadReport | ReloadFailure | None, bool]:
        """The outcome, and whether a refused edit was just undone."""
        started = time.perf_counter()
        s = self.settings
        attempt = self._attempt()
        tries = 1
        while not self._settled(attempt) and tries <= s.retries:
            self._sleep(s.retry_delay_ms / 1000)
            attempt = self._attempt()
            tries += 1
        if attempt.in_flux:
            return None, False  # still being written: the writes' own events bring another reload
        if attempt.raw == self._live_raw:  # a save that changed nothing, or an undone refusal
            undone, self._failed_raw = self._failed_raw is not None, None
            return None, undone  # (after an undone refusal, a new break is news again)
        if attempt.raw == self._failed_raw:
            return None, False  # a refusal already reported
        result = attempt.result
        live = self.holder.current()
        if result is not None and result.ruleset is not None:
            if result.ruleset.sha256 == live.sha256 and not attempt.problems:
                self._live_raw = attempt.raw  # same texts (e.g. only line endings differ)
                return None, False
        if attempt.problems or result is None or not result.ok or result.ruleset is None:
            self._failed_raw = attempt.raw
            diags = tuple(attempt.problems) + (tuple(result.diagnostics) if result else ())
            sources = dict(result.sources) if result else {}
            self.failures += 1
            return ReloadFailure(diags, sources, live.sha256, tries), False
        new = result.ruleset
        self.holder.replace(new)
        self._live_raw, self._failed_raw = attempt.raw, None
        self.reloads += 1
        added, removed, changed = diff_rulesets(live, new)
        report = ReloadReport(
            sha256=new.sha256,
            previous_sha256=live.sha256,
            files=tuple(new.files),
            added=added,
            removed=removed,
            changed=changed,
            risk_changed=new.risk != live.risk,
            n_rules=len(new.rules),
            load_ms=(time.perf_counter() - started) * 1000,
            attempts=tries,
            ruleset=new,
        )
        return report, False

    def _settled(self, attempt: _Attempt) -> bool:
        """Whether an attempt shows the files at rest: nothing in the middle of
        being written, emptied or recreated, and a clean load."""
        if attempt.in_flux or attempt.problems:
            return False
        if set(self._live_raw) - set(attempt.raw):
            return False  # a live file is gone: maybe deleted to be recreated
        return attempt.result is not None and attempt.result.ok

    def _attempt(self) -> _Attempt:
        try:
            files = find_rule_files(self.paths)
        except PathError as e:
            where = str(self.paths[0]) if self.paths else "."
            return _Attempt(None, {}, [_file_problem(where, NO_RULES, str(e))])
        raw: dict[str, bytes] = {}
        stats: dict[str, tuple[int, int, int]] = {}
        problems: list[Diagnostic] = []
        for f in files:
            try:
                st = os.stat(f)
                too_big = file_size_problem(str(f), st.st_size)
                if too_big is not None and too_big.is_error:  # refused unread, as by validate
                    problems.append(too_big)
                    continue
                raw[str(f)] = f.read_bytes()
            except FileNotFoundError:
                return _Attempt(None, raw, in_flux=True)  # gone between listing and reading
            except OSError as e:  # e.g. permissions: not a passing state, say so
                problems.append(_file_problem(str(f), UNREADABLE, f"cannot be read: {e.strerror}"))
                continue
            stats[str(f)] = (st.st_ino, st.st_size, st.st_mtime_ns)
        problems += [
            _file_problem(
                path,
                EMPTIED,
                "this file is empty, but its rules are running",
                "to remove its rules, delete the file (or keep a comment in it)",
            )
            for path, data in raw.items()
            if not data.strip() and self._live_raw.get(path, b"").strip()
        ]
        if problems and not raw:
            return _Attempt(None, raw, problems)
        result = load_texts(dict(raw), self._cache)
        for path, before in stats.items():
            try:
                st = os.stat(path)
            except OSError:
                return _Attempt(result, raw, problems, in_flux=True)
            if (st.st_ino, st.st_size, st.st_mtime_ns) != before:
                return _Attempt(result, raw, problems, in_flux=True)  # written while we read
        return _Attempt(result, raw, problems)


def _file_problem(path: str, code: str, message: str, hint: str | None = None) -> Diagnostic:
    """A diagnostic about a whole file, shown at its first line."""
    return Diagnostic.at(Span(path, 1, 1, 1, 1), code, message, hint)
