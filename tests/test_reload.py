"""Hot reload against what real editors do to a file on save.

Each test runs a real watcher on a temporary directory, saves the way an
editor does, and waits (with a timeout, never forever) for the outcome.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rulebook.lang import Ruleset, load_ruleset
from rulebook.reload import (
    ReloadFailure,
    ReloadReport,
    RulesetWatcher,
    diff_rulesets,
    rule_status,
)
from rulebook.trading import RulesetHolder

TIMEOUT = 5.0  # seconds: far above the ~100 ms a reload takes, so a slow CI box is fine
SETTLE = 0.4  # how long "nothing more happens" is watched for


def rules(threshold: str = "0.1%", coin: str = "SOL") -> str:
    return (
        "rule cross:\n"
        f"    when spread({coin}, backpack, binance) > {threshold} and confidence > 0.7\n"
        "    then hedge 1000 USDT\n"
        "    exit when held > 48h\n"
    )


OTHER = "rule carry: when funding(BTC, okx) > 0.05% then hedge 500 USDT\n"


class Recorder:
    """Collects what the watcher reports, and lets a test wait for it."""

    def __init__(self) -> None:
        self.reports: list[ReloadReport] = []
        self.failures: list[ReloadFailure] = []
        self.back_to_live: list[str] = []
        self._event = threading.Condition()

    def on_reload(self, report: ReloadReport) -> None:
        with self._event:
            self.reports.append(report)
            self._event.notify_all()

    def on_back_to_live(self, live: Ruleset) -> None:
        with self._event:
            self.back_to_live.append(live.sha256)
            self._event.notify_all()

    def on_reload_failed(self, failure: ReloadFailure) -> None:
        with self._event:
            self.failures.append(failure)
            self._event.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
        with self._event:
            return self._event.wait_for(predicate, timeout)


@pytest.fixture
def strategies(tmp_path: Path) -> Path:
    d = tmp_path / "strategies"
    d.mkdir()
    (d / "cross.rules").write_text(rules())
    (d / "carry.rules").write_text(OTHER)
    return d


@pytest.fixture
def running(strategies: Path) -> Iterator[tuple[RulesetHolder, RulesetWatcher, Recorder]]:
    loaded = load_ruleset([strategies])
    assert loaded.ruleset is not None
    holder = RulesetHolder(loaded.ruleset)
    rec = Recorder()
    watcher = RulesetWatcher(
        [strategies],
        holder,
        on_reload=rec.on_reload,
        on_reload_failed=rec.on_reload_failed,
        on_back_to_live=rec.on_back_to_live,
    )
    with watcher:
        yield holder, watcher, rec
    assert watcher.error is None


def threshold_of(holder: RulesetHolder) -> str:
    rule = holder.current().rule("cross")
    text = holder.current().sources[rule.file]
    return text.split("> ")[1].split(" ")[0]


def test_truncate_then_write_takes_effect(running, strategies: Path) -> None:
    holder, watcher, rec = running
    old_sha = holder.current().sha256
    (strategies / "cross.rules").write_text(rules("0.2%"))  # open(O_TRUNC) then write
    assert rec.wait(lambda: len(rec.reports) == 1)
    report = rec.reports[0]
    assert report.previous_sha256 == old_sha
    assert report.sha256 == holder.current().sha256 != old_sha
    assert (report.added, report.removed, report.changed) == ((), (), ("cross",))
    assert threshold_of(holder) == "0.2%"
    assert rec.failures == []


def test_atomic_rename_takes_effect(running, strategies: Path) -> None:
    holder, watcher, rec = running
    tmp = strategies / ".cross.rules.tmp"  # how vim/VS Code/JetBrains save: temp, then rename
    tmp.write_text(rules("0.3%"))
    os.replace(tmp, strategies / "cross.rules")
    assert rec.wait(lambda: len(rec.reports) == 1)
    assert threshold_of(holder) == "0.3%"
    assert rec.reports[0].changed == ("cross",)


@pytest.mark.parametrize("empty_for", [0.01, 0.06])  # within the quiet window; past it
def test_briefly_empty_file_never_goes_live(running, strategies: Path, empty_for: float) -> None:
    holder, watcher, rec = running
    target = strategies / "cross.rules"
    with open(target, "w") as f:  # truncated: empty on disk
        f.flush()
        time.sleep(empty_for)
        f.write(rules("0.4%"))
    assert rec.wait(lambda: len(rec.reports) == 1)
    time.sleep(SETTLE)
    seen = [len(r.removed) for r in rec.reports]
    assert seen == [0]  # one reload, and it never removed the rule
    assert rec.failures == []
    assert threshold_of(holder) == "0.4%"


def test_file_left_empty_is_refused(running, strategies: Path) -> None:
    holder, watcher, rec = running
    before = holder.current()
    (strategies / "cross.rules").write_text("")
    assert rec.wait(lambda: len(rec.failures) == 1)
    failure = rec.failures[0]
    assert [d.code for d in failure.errors] == ["E301"]
    assert failure.attempts == 1 + watcher.settings.retries
    assert "reload refused" in failure.render()
    assert holder.current() is before


def test_half_written_file_is_not_read_halfway(running, strategies: Path) -> None:
    holder, watcher, rec = running
    text = rules("0.5%") + OTHER.replace("carry", "carry2")
    with open(strategies / "cross.rules", "w") as f:
        for i in range(0, len(text), 16):  # an editor flushing in small chunks
            f.write(text[i : i + 16])
            f.flush()
            time.sleep(0.002)
    assert rec.wait(lambda: len(rec.reports) >= 1)
    time.sleep(SETTLE)
    assert rec.failures == []
    assert len(rec.reports) == 1
    assert rec.reports[0].added == ("carry2",)
    assert threshold_of(holder) == "0.5%"


def test_burst_of_saves_is_one_reload(running, strategies: Path) -> None:
    holder, watcher, rec = running
    for i in range(10):  # an auto-save plugin firing on every keystroke
        (strategies / "cross.rules").write_text(rules(f"0.{i + 1}1%"))
        time.sleep(0.005)
    assert rec.wait(lambda: len(rec.reports) >= 1)
    time.sleep(SETTLE)
    assert len(rec.reports) == 1
    assert threshold_of(holder) == "0.101%"


def test_delete_and_recreate_ends_loaded(running, strategies: Path) -> None:
    holder, watcher, rec = running
    target = strategies / "cross.rules"
    target.unlink()
    time.sleep(0.02)
    target.write_text(rules("0.6%"))
    assert rec.wait(lambda: len(rec.reports) >= 1)
    time.sleep(SETTLE)
    assert rec.failures == []
    assert all(r.removed == () for r in rec.reports)  # the rule was never dropped on the way
    assert threshold_of(holder) == "0.6%"


def test_deleting_a_file_removes_its_rules(running, strategies: Path) -> None:
    holder, watcher, rec = running
    (strategies / "carry.rules").unlink()
    assert rec.wait(lambda: len(rec.reports) == 1)
    assert rec.reports[0].removed == ("carry",)
    assert [r.name for r in holder.current().rules] == ["cross"]


def test_new_file_adds_rules(running, strategies: Path) -> None:
    holder, watcher, rec = running
    (strategies / "extra.rules").write_text(OTHER.replace("carry", "extra"))
    assert rec.wait(lambda: len(rec.reports) == 1)
    assert rec.reports[0].added == ("extra",)


def test_broken_edit_keeps_old_ruleset_then_fix_loads(running, strategies: Path) -> None:
    holder, watcher, rec = running
    before = holder.current()
    (strategies / "cross.rules").write_text(rules().replace("backpack", "backpak"))
    assert rec.wait(lambda: len(rec.failures) == 1)
    failure = rec.failures[0]
    assert [d.code for d in failure.errors] == ["E102"]
    assert holder.current() is before
    assert failure.kept_sha256 == before.sha256
    text = failure.render()
    assert "error[E102]: unknown exchange 'backpak'" in text
    assert "--> " in text and "cross.rules:2:" in text
    # saving the same broken text again is not reported twice
    (strategies / "cross.rules").write_text(rules().replace("backpack", "backpak"))
    time.sleep(SETTLE)
    assert len(rec.failures) == 1
    # undoing the broken edit: the files match the running ruleset again, no reload
    (strategies / "cross.rules").write_text(rules())
    assert rec.wait(lambda: rec.back_to_live == [before.sha256])
    assert rec.reports == []
    (strategies / "cross.rules").write_text(rules("0.7%"))
    assert rec.wait(lambda: len(rec.reports) == 1)
    assert threshold_of(holder) == "0.7%"
    assert rec.reports[0].previous_sha256 == before.sha256


def test_a_check_error_across_files_is_refused(running, strategies: Path) -> None:
    holder, watcher, rec = running
    before = holder.current()
    (strategies / "dup.rules").write_text(OTHER)  # `carry` defined a second time
    assert rec.wait(lambda: len(rec.failures) == 1)
    assert [d.code for d in rec.failures[0].errors] == ["E106"]
    assert holder.current() is before


def test_touch_without_change_does_nothing(running, strategies: Path) -> None:
    holder, watcher, rec = running
    before = holder.current()
    (strategies / "cross.rules").write_text(rules())
    (strategies / "notes.txt").write_text("not a rules file")
    time.sleep(SETTLE)
    assert rec.reports == [] and rec.failures == []
    assert holder.current() is before


def test_watching_a_single_file_ignores_its_neighbours(strategies: Path) -> None:
    single = strategies / "cross.rules"
    loaded = load_ruleset([single])
    assert loaded.ruleset is not None
    holder = RulesetHolder(loaded.ruleset)
    rec = Recorder()
    with RulesetWatcher([single], holder, on_reload=rec.on_reload):
        (strategies / "carry.rules").write_text(OTHER.replace("0.05%", "0.06%"))
        time.sleep(SETTLE)
        assert rec.reports == []
        tmp = strategies / "cross.tmp"
        tmp.write_text(rules("0.8%"))
        os.replace(tmp, single)
        assert rec.wait(lambda: len(rec.reports) == 1)
    assert threshold_of(holder) == "0.8%"


def test_rule_status_and_diff() -> None:
    from rulebook.lang import load_texts

    old = load_texts({"a.rules": rules() + OTHER}).ruleset
    new = load_texts({"a.rules": rules("0.2%") + OTHER.replace("carry", "carry_v2")}).ruleset
    assert old is not None and new is not None
    assert diff_rulesets(old, new) == (("carry_v2",), ("carry",), ("cross",))
    cross = old.rule("cross")
    assert rule_status(old, "cross", cross.fingerprint) == "current"
    assert rule_status(new, "cross", cross.fingerprint) == "changed"
    assert rule_status(new, "carry", old.rule("carry").fingerprint) == "removed"


class Waits:
    """The watcher's sleep between retries, injected: the test decides what the files
    look like at each retry (no timer racing the machine's load), and sees the waits."""

    def __init__(self, *edits: Callable[[], object]) -> None:
        self.edits = list(edits)  # the i-th wait makes the i-th edit
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if len(self.waits) <= len(self.edits):
            self.edits[len(self.waits) - 1]()


def test_retry_rule_waits_out_an_empty_file(strategies: Path) -> None:
    """Called directly, without the watcher's threads: the file is empty when the
    load starts and written during the first wait, inside the retry window
    (3 retries, 25 ms apart)."""
    loaded = load_ruleset([strategies])
    assert loaded.ruleset is not None
    holder = RulesetHolder(loaded.ruleset)
    target = strategies / "cross.rules"
    waits = Waits(lambda: target.write_text(rules("0.9%")))
    watcher = RulesetWatcher([strategies], holder, sleep=waits)  # not started: reload() by hand
    target.write_text("")
    outcome = watcher.reload()
    assert isinstance(outcome, ReloadReport)
    assert outcome.attempts == 2
    assert waits.waits == [0.025]
    assert outcome.changed == ("cross",)
    assert threshold_of(holder) == "0.9%"


def test_retry_rule_waits_out_a_delete_and_recreate(strategies: Path) -> None:
    """Deleted when the load starts, recreated only during the third wait: the last
    retry loads it."""
    loaded = load_ruleset([strategies])
    assert loaded.ruleset is not None
    holder = RulesetHolder(loaded.ruleset)
    target = strategies / "carry.rules"
    nothing = lambda: None  # noqa: E731
    waits = Waits(nothing, nothing, lambda: target.write_text(OTHER.replace("0.05%", "0.04%")))
    watcher = RulesetWatcher([strategies], holder, sleep=waits)
    target.unlink()
    outcome = watcher.reload()
    assert isinstance(outcome, ReloadReport)
    assert outcome.attempts == 4
    assert waits.waits == [0.025] * 3
    assert (outcome.added, outcome.removed, outcome.changed) == ((), (), ("carry",))


def test_retry_rule_gives_up_after_its_retries(strategies: Path) -> None:
    """A file still empty after the last retry is refused (E301), old ruleset kept:
    three waits, four loads, never more."""
    loaded = load_ruleset([strategies])
    assert loaded.ruleset is not None
    holder = RulesetHolder(loaded.ruleset)
    waits = Waits()
    watcher = RulesetWatcher([strategies], holder, sleep=waits)
    (strategies / "cross.rules").write_text("")
    outcome = watcher.reload()
    assert isinstance(outcome, ReloadFailure)
    assert outcome.attempts == 4
    assert waits.waits == [0.025] * 3
    assert [d.code for d in outcome.errors] == ["E301"]
    assert holder.current() is loaded.ruleset


def test_a_failing_callback_is_reported_and_reloading_goes_on(strategies: Path) -> None:
    loaded = load_ruleset([strategies])
    assert loaded.ruleset is not None
    holder = RulesetHolder(loaded.ruleset)
    errors: list[BaseException] = []
    calls: list[str] = []

    def flaky(report: ReloadReport) -> None:
        calls.append(report.sha256)
        if len(calls) == 1:
            raise RuntimeError("ledger on fire")

    with RulesetWatcher([strategies], holder, on_reload=flaky, on_error=errors.append) as w:
        (strategies / "cross.rules").write_text(rules("0.2%"))
        assert holder.wait_for_version(1, TIMEOUT)
        deadline = time.monotonic() + TIMEOUT
        while not errors and time.monotonic() < deadline:
            time.sleep(0.005)
        (strategies / "cross.rules").write_text(rules("0.3%"))
        assert holder.wait_for_version(2, TIMEOUT)
    assert [str(e) for e in errors] == ["ledger on fire"]
    assert isinstance(w.error, RuntimeError)
    assert threshold_of(holder) == "0.3%"


def test_an_unreadable_file_is_refused_not_waited_for(strategies: Path, monkeypatch) -> None:
    """Permissions do not fix themselves in 75 ms: refused with E303, old ruleset kept.
    (Simulated: the tests run as root, whom chmod does not stop.)"""
    loaded = load_ruleset([strategies])
    assert loaded.ruleset is not None
    holder = RulesetHolder(loaded.ruleset)
    watcher = RulesetWatcher([strategies], holder)
    (strategies / "cross.rules").write_text(rules("0.2%"))
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "cross.rules":
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    outcome = watcher.reload()
    assert isinstance(outcome, ReloadFailure)
    assert [(d.code, d.message) for d in outcome.errors] == [
        ("E303", "cannot be read: Permission denied")
    ]
    assert holder.current() is loaded.ruleset
