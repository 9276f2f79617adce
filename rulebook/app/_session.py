"""One paper-trading run for an operator's terminal (what `rulebook run --paper` does).

    summary = run_paper(ruleset, paths, config, Ledger("paper.db"), replay=None,
                        speed=None, watch=True, out=Console(), err=Console(stderr=True))

Sets up the notifier, the runtime and hot reload, stops cleanly on SIGINT or
SIGTERM, shows a progress bar over a replay or a status line while live, and
prints the final statistics. The caller owns the ledger and the exit status.
"""

from __future__ import annotations

import signal
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from rulebook.lang import Ruleset
from rulebook.market import ReplaySource
from rulebook.reload import HotReload
from rulebook.trading import (
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
) -> RunSummary:
    """Paper-trade `ruleset` over `replay` (at `speed`, None for max) or live data.

    `executor`: the live executor for `rulebook run --live` (default: paper).

    With `watch`, the rules under `paths` are reloaded on save. Progress and
    warnings go to `err`, the final statistics to `out`.
    """
    notifier = Notifier(config.notify.urls, config.notify.events)
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
    reloader = HotReload(
        paths, holder, config.ledger, notifier, echo=lambda text: err.print(text, markup=False)
    )
    if watch:
        reloader.start()
        shown = " ".join(str(p) for p in paths)
        err.print(f"reloading rules on save: watching {shown}", markup=False)
    try:
        if replay is not None:
            summary = _run_replay(runtime, replay, speed, err)
        else:
            summary = _run_live(runtime, ruleset, err)
    finally:
        reloader.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
    if summary.halted:
        err.print(f"halted: {summary.halted}", markup=False)
    print_status(out, ledger_status(ledger), positions=False)
    return summary


def _run_replay(runtime: Runtime, replay: Path, speed: float | None, err: Console) -> RunSummary:
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
    ) as bar:
        total = (span[1] - span[0]) if span and span[1] > span[0] else 1
        task = bar.add_task("replay", total=total)

        def advance(report: CycleReport) -> None:
            done = report.at - span[0] if span else total
            bar.update(
                task,
                completed=done,
                description=(
                    f"{_when(report.at)} open {report.open_positions} "
                    f"equity {report.equity:,.2f}"
                ),
            )

        summary = runtime.run(source, pace=replay_pacer(runtime, speed), on_cycle=advance)
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


def _run_live(runtime: Runtime, ruleset: Ruleset, err: Console) -> RunSummary:
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
    with err.status("starting") as line:

        def show(report: CycleReport) -> None:
            line.update(
                f"{_when(report.at)} UTC  opportunities {report.opportunities}  "
                f"open {report.open_positions}  equity {report.equity:,.2f}  "
                f"next in {every:g}s"
            )

        return runtime.run(live_views(runtime, live, every), on_cycle=show)
