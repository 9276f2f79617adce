"""Hot reload wired to a paper runtime: every reload and every refused edit is
recorded in the ledger, shown to the operator and sent to the notification
channels, and `status` can tell which open positions run on a rule that a
reload has since changed or removed.

    holder = RulesetHolder(ruleset)
    with HotReload(paths, holder, ledger_path, notifier, echo=print):
        runtime.run(...)      # reads holder.current() once per cycle
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path

from rulebook.lang import Ruleset
from rulebook.trading import Ledger, LedgerError, Notifier, RecordedRulesets, RulesetHolder

from ._reload import ReloadFailure, ReloadReport, RulesetWatcher, rule_status
from ._watch import ReloadSettings

__all__ = ["HotReload", "position_rule_states"]


class HotReload:
    """A RulesetWatcher whose reports go to the ledger, the operator and notify.

    The callbacks run on the watcher's thread while the runtime cycles on its
    own, so the ledger is written through a connection of their own, opened
    per record (SQLite connections belong to the thread that opened them; WAL
    and the ledger's busy timeout let the two writers take turns). A record
    that cannot be written is reported and does not stop reloading.
    """

    def __init__(
        self,
        paths: Iterable[str | Path],
        holder: RulesetHolder,
        ledger_path: str | Path,
        notifier: Notifier | None = None,
        echo: Callable[[str], None] = print,
        settings: ReloadSettings | None = None,
    ):
        self.ledger_path = Path(ledger_path)
        self.notifier = notifier
        self.echo = echo
        self.watcher = RulesetWatcher(
            paths,
            holder,
            on_reload=self._on_reload,
            on_reload_failed=self._on_reload_failed,
            on_back_to_live=self._on_back_to_live,
            on_error=self._on_error,
            settings=settings,
        )

    def start(self) -> None:
        self.watcher.start()

    def stop(self) -> None:
        self.watcher.stop()

    def __enter__(self) -> HotReload:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, write: Callable[[Ledger], None]) -> None:
        try:
            ledger = Ledger(self.ledger_path)
            try:
                write(ledger)
            finally:
                ledger.close()
        except (LedgerError, sqlite3.Error) as e:
            self.echo(f"warning: could not record the reload in {self.ledger_path}: {e}")

    def _on_reload(self, report: ReloadReport) -> None:
        new = report.ruleset
        assert new is not None
        detail = {
            "sha256": report.sha256,
            "previous_sha256": report.previous_sha256,
            "files": list(report.files),
            "added": list(report.added),
            "removed": list(report.removed),
            "changed": list(report.changed),
            "risk_changed": report.risk_changed,
            "load_ms": round(report.load_ms, 1),
        }

        def write(ledger: Ledger) -> None:
            ledger.record_reload(
                new.sha256,
                new.files,
                new.sources,
                report.previous_sha256,
                list(report.added),
                list(report.removed),
                list(report.changed),
            )
            ledger.record_event("reload", detail)

        self._record(write)
        summary = report.summary()
        self.echo(summary)
        if self.notifier is not None:
            self.notifier.send("reload", summary)

    def _on_error(self, error: BaseException) -> None:
        text = f"hot reload: {type(error).__name__}: {error}"
        self.echo(f"error: {text}")
        self._record(lambda ledger: ledger.record_event("error", text))
        if self.notifier is not None:
            self.notifier.send("error", text)

    def _on_back_to_live(self, live: Ruleset) -> None:
        self.echo(
            f"rule files clean again: they match the running ruleset {live.sha256[:12]},"
            " nothing to reload"
        )

    def _on_reload_failed(self, failure: ReloadFailure) -> None:
        detail = {
            "kept_sha256": failure.kept_sha256,
            "summary": failure.summary(),
            "diagnostics": [d.to_dict() for d in failure.diagnostics],
        }
        self._record(lambda ledger: ledger.record_event("reload_failed", detail))
        self.echo(failure.render())
        if self.notifier is not None:
            # a refused edit needs the operator: sent as an error, which notifies by default
            self.notifier.send("error", failure.summary())


def position_rule_states(ledger: Ledger) -> dict[int, str]:
    """For each open position: "current", "changed" or "removed", comparing the
    rule it was opened under with the same-named rule of the live ruleset; or
    "unknown" when either ruleset's texts are not in the ledger."""
    recorded = RecordedRulesets(ledger)
    live = recorded.ruleset(ledger.live_ruleset())
    states: dict[int, str] = {}
    for p in ledger.read.positions(status="open"):
        rule = recorded.rule(p.ruleset_sha, p.rule)
        if live is None or rule is None:
            states[p.id] = "unknown"
        else:
            states[p.id] = rule_status(live, p.rule, rule.fingerprint)
    return states
