"""One paper-trading run for an operator's terminal (what `rulebook run --paper` does).

    summary = run_paper(ruleset, paths, config, Ledger("paper.db"), replay=None,
                        speed=None, watch=True, out=Console(), err=Console(stderr=True))

Sets up the notifier, the runtime and hot reload, stops cleanly on SIGINT or
SIGTERM, shows a progress bar over a replay or a status line while live, and
prints the final statistics. The caller owns the ledger and the exit status.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.spinner import Spinner
from rich.text import Text

from rulebook.lang import Ruleset
from rulebook.market import ReplaySource, SnapshotView
from rulebook.trading import (
    REPLAY_COMMITS,
    CycleReport,
    Executor,
    Ledger,
    Notifier,
    PaperExecutor,
    RulesetHolder,
    RunSummary,
    Runtime,
    TradingConfig,
)

from ._report import _when, print_status
from ._sources import live_views, recording_span, replay_pacer, watched_markets
from ._status import ledger_status

__all__ = ["run_paper"]


def run_paper(
    ruleset: Ruleset,
    paths: list[Path],
    config: TradingConfig,
    ledger: Ledger,
    *,
    replay: Path | None,
    speed: float | None,
    watch: bool,
    out: Console,
    err: Console,
    executor: Executor | None = None,
    notify: bool = True,
    run_for_s: float | None = None,
) -> RunSummary:
    """Paper-trade `ruleset` over `replay` (at `speed`, None for max) or live data.

    `executor`: the live executor for `rulebook run --live` (default: paper).

    With `watch`, the rules under `paths` are reloaded on save. `notify` False
    (a replay without --notify) sends nothing: a replay of last year must not
    page anyone. `run_for_s` stops after that long (of recorded time in a
    replay). Progress and warnings go to `err`, the final statistics to `out`.
    """
    if not notify and config.notify.urls:
        err.print("notifications off for a replay (--notify sends them)", markup=False)
    # A quiet replay still checks the URLs (their warnings below), but wants no kind.
    notifier = Notifier(config.notify.urls, config.notify.events if notify else [])
    _resume_note(ledger, ruleset, config, err)
    for url in notifier.bad_urls_shown:  # its token masked: `badscheme://***@host`
        err.print(
            f"warning: notify.urls: {url!r} is not a URL apprise knows; ignored", markup=False
        )
    holder = RulesetHolder(ruleset)
    runtime = Runtime(
        holder,
        config,
        ledger,
        notifier,
        source=f"replay {replay}" if replay else "live",
        executor=executor if executor is not None else PaperExecutor(config, ledger),
    )
    runtime.discard_stale_halts()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda n, f: runtime.request_stop(signal.Signals(n).name))
    reloader = None
    if watch:
        from rulebook.reload import HotReload  # and watchfiles: only when watching

        reloader = HotReload(
            paths, holder, config.ledger, notifier, echo=lambda text: err.print(text, markup=False)
        )
        reloader.start()
        shown = " ".join(str(p) for p in paths)
        err.print(f"reloading rules on save: watching {shown}", markup=False)
    try:
        if replay is not None:
            summary = _run_replay(runtime, replay, speed, err, run_for_s)
        else:
            summary = _run_live(runtime, ruleset, err, run_for_s)
    finally:
        if reloader is not None:
            reloader.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
    if summary.halted:
        err.print(f"halted: {summary.halted}", markup=False)
    print_status(out, ledger_status(ledger), positions=False)
    return summary


def _resume_note(ledger: Ledger, ruleset: Ruleset, config: TradingConfig, err: Console) -> None:
    """Say when a run resumes a ledger, and when its rules are not the last run's."""
    last = ledger.last_cycle_ts()
    if last is None:
        return
    held = len(ledger.open_positions())
    err.print(
        f"resuming {config.ledger}: last cycle {_when(last)} UTC, {held} open position(s); "
        "--fresh starts a new ledger",
        markup=False,
    )
    before = ledger.live_ruleset()
    if before is not None and before != ruleset.sha256:
        err.print(
            f"warning: the ruleset ({ruleset.sha256[:12]}) differs from the last run's "
            f"({before[:12]}): open positions keep the exit clauses they were opened with",
            markup=False,
        )


#: how often (seconds) a replay's progress bar takes a cycle's figures: as often as
#: rich draws it
SHOW_EVERY_S = 0.1


def _until(views: Iterable[SnapshotView], run_for_s: float | None) -> Iterator[SnapshotView]:
    """The views of the first `run_for_s` seconds (by the views' own clock) from the first."""
    it = iter(views)
    try:
        end: int | None = None
        for view in it:
            if run_for_s is not None:
                end = end if end is not None else view.at + int(run_for_s * 1000)
                if view.at > end:
                    return
            yield view
    finally:
        close = getattr(it, "close", None)
        if callable(close):
            close()


def _run_replay(
    runtime: Runtime, replay: Path, speed: float | None, err: Console, run_for_s: float | None
) -> RunSummary:
    """Replay a recording under a progress bar; report skipped lines and a resume."""
    source = ReplaySource(replay)
    span = recording_span(replay)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
        # No redirection: the console's own stream (which masks secrets) writes to
        # sys.stderr, and a redirected one feeds back into the bar: on a terminal
        # nothing showed and the output piled up in memory, slowing the replay down.
        redirect_stdout=False,
        redirect_stderr=False,
    ) as bar:
        total = (span[1] - span[0]) if span and span[1] > span[0] else 1
        task = bar.add_task("replay", total=total)

        def show(report: CycleReport) -> None:
            done = report.at - span[0] if span else total
            bar.update(
                task,
                completed=done,
                description=(
                    f"{_when(report.at)} open {report.open_positions} "
                    f"equity {report.equity:,.2f}"
                ),
            )

        # The bar is drawn 10 times a second: a cycle's figures are formatted for it at
        # most as often (a year's replay makes some 9,000 cycles in well under a minute),
        # and the last cycle's always, so the bar ends on the replay's last figures.
        shown = 0.0
        last: list[CycleReport] = []

        def advance(report: CycleReport) -> None:
            nonlocal shown
            now = time.monotonic()
            if now - shown >= SHOW_EVERY_S:
                shown = now
                show(report)
                last.clear()
            else:
                last[:] = [report]

        summary = runtime.run(
            _until(source, run_for_s),
            pace=replay_pacer(runtime, speed),
            on_cycle=advance,
            commits=REPLAY_COMMITS,  # complete cycles committed in groups (docs/trading.md)
        )
        if last:
            show(last[0])
    problems = [e for e in source.errors if e.severity == "error"]
    if problems:
        err.print(
            f"warning: {source.counts['error']} invalid line(s) in {replay} were skipped, "
            f"first: {problems[0]}",
            markup=False,
        )
    notes = [e for e in source.errors if e.severity == "warning"]
    if notes:  # unknown keys, lines out of time order: used, but said
        err.print(
            f"warning: {source.counts['warning']} line warning(s) in {replay}, first: {notes[0]}",
            markup=False,
        )
    if summary.skipped_cycles:
        err.print(
            f"resumed: {summary.skipped_cycles} cycle(s) were already in {runtime.config.ledger}",
            markup=False,
        )
    return summary


def _warn_unreachable(views: Iterable[SnapshotView], err: Console) -> Iterator[SnapshotView]:
    """A warning line, at once, for every exchange that did not answer this cycle."""
    it = iter(views)
    try:
        for view in it:
            for exchange, why in sorted(view.failures.items()):
                err.print(f"warning: {exchange} unreachable this cycle: {why}", markup=False)
            yield view
    finally:
        close = getattr(it, "close", None)
        if callable(close):
            close()  # the live generator closes its exchange clients


def _run_live(
    runtime: Runtime, ruleset: Ruleset, err: Console, run_for_s: float | None
) -> RunSummary:
    """Run on live data every `config.every` seconds under a one-line status."""
    from rulebook.market import LiveSource  # imports ccxt: only when live

    every = runtime.config.every
    exchanges, coins = watched_markets(ruleset, runtime)
    clients = {}
    if getattr(runtime.executor, "mode", "paper") == "live":
        # prices from the testnets / api_url the orders go to
        from ._live import market_clients

        clients = market_clients(runtime.config, exchanges)
    live = LiveSource(exchanges, coins, clients=clients)
    views = _until(_warn_unreachable(live_views(runtime, live, every), err), run_for_s)
    # A spinner line, as Console.status draws it, but without redirecting the
    # standard streams (see _run_replay): Console.status cannot be told not to.
    line = Spinner("dots", Text("starting"))
    with Live(line, console=err, transient=True, refresh_per_second=12.5,
              redirect_stdout=False, redirect_stderr=False):  # fmt: skip

        def show(report: CycleReport) -> None:
            line.update(
                text=Text(
                    f"{_when(report.at)} UTC  opportunities {report.opportunities}  "
                    f"open {report.open_positions}  equity {report.equity:,.2f}  "
                    f"next in {every:g}s"
                )
            )

        return runtime.run(views, on_cycle=show)
