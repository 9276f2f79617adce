"""One backtest: a ruleset replayed at full speed over a history into a fresh ledger.

    spec = BacktestSpec(rule_paths=[Path("strategies")], data=[Path("history.jsonl.gz")])
    result = run_backtest(spec)              # a temporary ledger, removed afterwards
    report = build_report(result.run)

The replay is the paper runtime itself (the cycle of spec section 11), with
no notifier and a ledger of its own: a backtest never notifies and never
touches an operator's paper ledger. What the rules saw at each cycle is the
look-ahead choice of `rulebook.history` (conservative by default), written as
a recording the report refers to.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rulebook.errors import RulebookError
from rulebook.history import (
    LOOKAHEAD_TEXT,
    History,
    RecordingStats,
    read_history,
    write_recording,
)
from rulebook.lang import Diagnostic, HedgeAction, Ruleset, find_rule_files, load_texts
from rulebook.market import LineError, ReplaySource, SnapshotView
from rulebook.report import ReportInput, read_ledger
from rulebook.trading import (
    REPLAY_COMMITS,
    Ledger,
    PaperExecutor,
    RulesetHolder,
    RunSummary,
    Runtime,
    TradingConfig,
)

from ._overrides import apply_overrides

__all__ = [
    "BacktestError",
    "BacktestResult",
    "BacktestSpec",
    "Refusal",
    "load_rules",
    "prepare_recording",
    "read_views",
    "refusals",
    "run_backtest",
]


class BacktestError(RulebookError):
    """A backtest cannot run: bad rules, unusable data, a ledger that already exists."""

    def __init__(self, message: str, diagnostics: list[Diagnostic] | None = None) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics or []
        self.sources: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class BacktestSpec:
    rule_paths: list[Path]
    data: list[Path]
    start: int | None = None  # ms, inclusive
    end: int | None = None  # ms, inclusive
    lookahead: str = "last-settled"
    overrides: Mapping[str, str] = field(default_factory=dict)
    config: TradingConfig = field(default_factory=TradingConfig)


@dataclass(frozen=True, slots=True)
class Refusal:
    rule: str
    reason: str

    def __str__(self) -> str:
        return f"rule {self.rule} refused: {self.reason}"


@dataclass(slots=True)
class BacktestResult:
    run: ReportInput
    summary: RunSummary
    recording: RecordingStats
    refused: list[Refusal]
    ruleset_sha: str
    overrides: dict[str, str]
    data_problems: list[LineError]
    ledger_path: Path | None  # kept only when the caller named one


def load_rules(paths: list[Path], overrides: Mapping[str, str]) -> Ruleset:
    """The ruleset under paths with `let` overrides applied, or BacktestError."""
    try:
        files = find_rule_files(paths)
        texts = {str(f): f.read_text(encoding="utf-8") for f in files}
    except (OSError, UnicodeDecodeError) as e:
        raise BacktestError(f"cannot read the rules: {e}") from None
    except Exception as e:  # PathError: the message names the path
        raise BacktestError(str(e)) from None
    result = load_texts(dict(apply_overrides(texts, overrides)))
    if result.ruleset is None:
        err = BacktestError(
            f"the ruleset has {len(result.errors)} error(s); nothing was run", result.errors
        )
        err.sources = result.sources
        raise err
    return result.ruleset


def _legs_traded(subject_kind: str | None) -> tuple[str, ...]:
    # A spread trades two perps; every other subject a perp and the spot beside it.
    return ("perp",) if subject_kind == "spread" else ("perp", "spot")


def refusals(ruleset: Ruleset, history: History) -> list[Refusal]:
    """Rules that would trade a leg the history has no price for, and why.

    A position's size and its funding payments need the price of every leg;
    a history without it (a settlement-only dataset) cannot say what such a
    rule would have made, so the rule is refused rather than run on
    invented prices. Alert-only rules need no price and always run."""
    out: list[Refusal] = []
    for r in ruleset.rules:
        if not any(isinstance(a, HedgeAction) for a in r.actions):
            continue
        m = r.markets
        missing: list[str] = []
        for ex in m.exchanges:
            for coin in m.coins:
                if (ex, coin) not in history.settlements:
                    continue  # not in the data at all: the engine skips it with "no data"
                for market in _legs_traded(r.subject_kind):
                    if not history.has_price(ex, coin, market):
                        missing.append(f"{ex} {coin} {market}")
        if missing:
            shown = ", ".join(missing[:6]) + (
                f" and {len(missing) - 6} more" if len(missing) > 6 else ""
            )
            out.append(
                Refusal(
                    r.name,
                    f"the history has no prices for {shown}; a position's size and funding "
                    "need the price of every leg, and none is invented",
                )
            )
    return out


def _scratch() -> str | None:
    """Where a backtest's throw-away ledger goes: memory-backed /dev/shm where there is
    one (a ledger commits every cycle; nothing of it is kept), else the temp dir."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def read_views(path: Path) -> tuple[list[SnapshotView], list[LineError]]:
    """Every cycle's view of a recording, and its invalid lines."""
    source = ReplaySource(path)
    got = list(source)
    return got, [e for e in source.errors if e.severity == "error"]


def prepare_recording(
    data: list[Path], path: Path, lookahead: str, start: int | None, end: int | None
) -> tuple[History, RecordingStats, list[LineError]]:
    """Read the history and write what the rules will see (a snapshot file) to `path`."""
    try:
        history, problems = read_history(data)
    except Exception as e:  # HistoryError: the message names the file
        raise BacktestError(str(e)) from None
    stats = write_recording(history, path, lookahead, start, end)
    if stats.cycles == 0:
        raise BacktestError("the history has no cycle in the chosen --from/--to range")
    return history, stats, problems


def run_backtest(
    spec: BacktestSpec,
    *,
    db: Path | None = None,
    recording: tuple[Path, History, RecordingStats, list[LineError]] | None = None,
    seen: Path | None = None,
    views: tuple[list[SnapshotView], list[LineError]] | None = None,
) -> BacktestResult:
    """Run one backtest. `db` names a new ledger file to keep (it must not exist);
    `recording` reuses a prepared one (a sweep prepares it once for all runs);
    `seen` keeps what the rules saw at each cycle, as a snapshot file that
    `rulebook dry-run --snapshot FILE --at TIME` replays. `views` are that
    recording already read (a sweep's worker reads it once for all its runs)."""
    if db is not None and db.exists():
        raise BacktestError(
            f"{db} exists: a backtest writes a fresh ledger and never touches an existing one"
        )
    ruleset = load_rules(spec.rule_paths, spec.overrides)
    work = Path(tempfile.mkdtemp(prefix="rulebook-backtest-", dir=_scratch()))
    try:
        if recording is None:
            rec_path = work / "seen.jsonl"
            history, stats, problems = prepare_recording(
                spec.data, rec_path, spec.lookahead, spec.start, spec.end
            )
        else:
            rec_path, history, stats, problems = recording
        if seen is not None:
            seen.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(rec_path, seen)
        refused = refusals(ruleset, history)
        names = {x.rule for x in refused}
        kept = [r for r in ruleset.rules if r.name not in names]
        if not kept:
            raise BacktestError(
                "every rule was refused:\n  " + "\n  ".join(str(x) for x in refused)
            )
        runnable = dataclasses.replace(ruleset, rules=kept) if refused else ruleset
        ledger_path = db if db is not None else work / "backtest.db"
        config = spec.config.model_copy(update={"ledger": str(ledger_path)})
        ledger = Ledger(ledger_path)
        try:
            runtime = Runtime(
                RulesetHolder(runnable),
                config,
                ledger,
                None,
                source="backtest",
                executor=PaperExecutor(config, ledger),
            )
            if views is None:
                # streamed: memory holds one cycle's state, not a year of views
                source = ReplaySource(rec_path)
                summary = runtime.run(source, resume=False, commits=REPLAY_COMMITS)
                problems = problems + [e for e in source.errors if e.severity == "error"]
            else:
                summary = runtime.run(views[0], resume=False, commits=REPLAY_COMMITS)
                problems = problems + views[1]
            run = read_ledger(
                ledger,
                leverage=config.leverage,
                lookahead=f"{spec.lookahead}: {LOOKAHEAD_TEXT[spec.lookahead]}",
                source="backtest of " + ", ".join(str(p) for p in spec.data),
            )
        finally:
            ledger.close()
        run.notes.extend(str(x) for x in refused)
        if problems:
            run.notes.append(
                f"{len(problems)} invalid line(s) in the data were skipped, first: {problems[0]}"
            )
        if summary.failed:
            run.notes.append(summary.failed)
        return BacktestResult(
            run=run,
            summary=summary,
            recording=stats,
            refused=refused,
            ruleset_sha=runnable.sha256,
            overrides=dict(spec.overrides),
            data_problems=problems,
            ledger_path=db,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
