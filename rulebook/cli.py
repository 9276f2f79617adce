"""The `rulebook` command line: a thin typer layer over the package's stages."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from rulebook.lang import (
    RISK_KEYS,
    LoadResult,
    ParseCache,
    PathError,
    format_value,
    load_ruleset,
    render_text,
)
from rulebook.market import LiveSource, ReplaySource, parse_duration
from rulebook.trading import (
    ConfigError,
    CycleReport,
    HotReload,
    Ledger,
    LedgerError,
    Notifier,
    RuleFileWatch,
    RulesetHolder,
    Runtime,
    TradingConfig,
    ledger_status,
    live_views,
    load_config,
    recording_span,
    replay_pacer,
    watched_markets,
)

app = typer.Typer(
    name="rulebook",
    help="A declarative rules engine for crypto funding-rate arbitrage.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
# Piped output (logs, CI) gets wide tables rather than rich's 80-column default.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DEFAULT_PATHS = [Path("strategies")]


@app.callback()
def _root() -> None:
    """rulebook: write funding-arbitrage strategies as rules, check them, dry-run
    them against live or recorded snapshots, and paper-trade them."""


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line error (never a traceback) and return the exit to raise."""
    err.print(f"error: {message}", markup=False)
    return typer.Exit(code)


def _load(paths: list[Path]) -> LoadResult:
    try:
        return load_ruleset(paths)
    except PathError as e:
        raise fail(str(e)) from None


def _print_rules(result: LoadResult) -> None:
    rs = result.ruleset
    assert rs is not None
    table = Table(title=f"ruleset {rs.sha256[:12]}", title_justify="left")
    for col in ("rule", "where", "subject", "bindings", "actions", "exit"):
        table.add_column(col, no_wrap=col in ("rule", "where"))
    for r in rs.rules:
        actions = [type(a).__name__.lower() for a in r.source.actions]
        table.add_row(
            r.name,
            f"{Path(r.file).name}:{r.line}",
            r.subject_kind or "-",
            str(len(r.bindings)),
            ", ".join(actions),
            "yes" if r.exit_when else "-",
        )
    out.print(table)
    risk = {f.name: getattr(rs.risk, f.name) for f in fields(rs.risk)}
    risk = {k: v for k, v in risk.items() if v is not None}
    if risk:
        shown = (f"{k} {format_value(RISK_KEYS[k].type, v)}" for k, v in risk.items())
        out.print("risk: " + ", ".join(shown))
    else:
        out.print("risk: no risk block (no limits beyond the rules themselves)")


@app.command()
def validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Rule files or directories (searched recursively for *.rules). Default: strategies/"
        ),
    ] = None,
    format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="text, or json for tools")
    ] = OutputFormat.text,
    strict: Annotated[
        bool, typer.Option("--strict", help="Warnings count as errors (exit 1).")
    ] = False,
    list_rules: Annotated[
        bool, typer.Option("--list", help="After a clean check, list the rules and risk limits.")
    ] = False,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch", "-w", help="Check again on every save of a *.rules file; Ctrl-C to stop."
        ),
    ] = False,
) -> None:
    """Check rule files and report every problem with its location.

    All files given form one ruleset, so a name defined twice in two files is
    caught. Exits 1 when there is an error (or a warning, with --strict).
    With --watch, keeps checking on every save (the same watcher `run` uses
    for hot reload) and exits, on Ctrl-C, with the last check's status.

    Example:

        rulebook validate strategies/ --strict
        rulebook validate strategies/ --watch
    """
    paths = paths or DEFAULT_PATHS
    result = _load(paths)
    code = _report_validation(result, format, strict, list_rules)
    if watch:
        code = _validate_on_save(
            paths, lambda r: _report_validation(r, format, strict, list_rules), code
        )
    raise typer.Exit(code)


def _report_validation(
    result: LoadResult, format: OutputFormat, strict: bool, list_rules: bool
) -> int:
    """Print one check's findings; return its exit status."""
    diags = result.diagnostics
    if format is OutputFormat.json:
        typer.echo(json.dumps([d.to_dict() for d in diags], indent=2))
    else:
        for d in diags:
            typer.echo(render_text(d, result.sources.get(d.file)))
            typer.echo("")
        n_err, n_warn = len(result.errors), len(result.warnings)
        n_rules = result.rule_count
        summary = (
            f"{len(result.files)} file{'s' * (len(result.files) != 1)}, "
            f"{n_rules} rule{'s' * (n_rules != 1)}: "
            f"{n_err} error{'s' * (n_err != 1)}, {n_warn} warning{'s' * (n_warn != 1)}"
        )
        err.print(summary, markup=False)
        if list_rules and result.ok:
            _print_rules(result)
    failed = bool(result.errors) or (strict and bool(result.warnings))
    return 1 if failed else 0


def _validate_on_save(paths: list[Path], check: Callable[[LoadResult], int], code: int) -> int:
    """Run `check` again after every settled save until Ctrl-C; the last status."""
    cache = ParseCache()
    last = code

    def on_settled(changes: set[tuple[object, str]]) -> None:
        nonlocal last
        saved = ", ".join(sorted({Path(p).name for _, p in changes}))
        err.print(f"--- {time.strftime('%H:%M:%S')} saved {saved}: checking again", markup=False)
        try:
            last = check(load_ruleset(paths, cache))
        except PathError as e:  # e.g. the last rules file of a directory was deleted
            err.print(f"error: {e}", markup=False)
            last = 2

    watcher = RuleFileWatch(paths, on_settled)
    shown = " ".join(str(p) for p in paths)
    with watcher:  # start() returns once the watches are set: no save is missed after this
        err.print(f"watching {shown} for changes to *.rules (Ctrl-C to stop)", markup=False)
        try:
            while watcher.running:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
    if watcher.error is not None:
        raise fail(f"watching stopped: {watcher.error}")
    return last


@app.command("dry-run")
def dry_run(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Rule files or directories. Default: strategies/"),
    ] = None,
    snapshot: Annotated[
        Path | None,
        typer.Option(
            "--snapshot", "-s", help="A recorded snapshot file (JSON Lines) instead of live data."
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="TIME",
            help="With --snapshot: the snapshot at this time (ms or ISO-8601, UTC). "
            "Default: the end of the file.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print spec section 10 JSON.")] = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also list bindings whose when clause is false.")
    ] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Show each sub-expression's value per binding.")
    ] = False,
) -> None:
    """What would this ruleset do right now, and why? Nothing is traded.

    Evaluates every rule and binding over one snapshot: live from the
    exchanges by default, or a recorded file, whose "now" is its latest
    timestamp (so a file gives the same answer every time). Lists the
    opportunities sorted by expected net over 8h, with the risk limits'
    decisions, and the bindings skipped for missing data.

    Example:

        rulebook dry-run strategies/ --snapshot examples/binance-bybit-okx-btc-eth-2023-2024.jsonl --explain
    """
    from rulebook.engine import evaluate
    from rulebook.engine._render import (
        render_explanations,
        render_skipped,
        render_summary,
        render_table,
    )
    from rulebook.engine._snapshot import (
        SnapshotError,
        parse_time,
        snapshot_from_file,
        snapshot_live,
    )

    result = _load(paths or DEFAULT_PATHS)
    if not result.ok or result.ruleset is None:
        for d in result.errors:
            err.print(render_text(d, result.sources.get(d.file)), markup=False)
        raise fail(f"the ruleset has {len(result.errors)} error(s); fix them first", 1)
    ruleset = result.ruleset
    try:
        if snapshot is not None:
            loaded = snapshot_from_file(snapshot, parse_time(at) if at else None)
        elif at is not None:
            raise SnapshotError("--at needs --snapshot: live data is always now")
        else:
            loaded = snapshot_live(ruleset)
    except SnapshotError as e:
        raise fail(str(e)) from None
    for problem in loaded.problems[:5]:
        err.print(f"warning: {problem}", markup=False)
    if len(loaded.problems) > 5:
        err.print(f"warning: ... and {len(loaded.problems) - 5} more", markup=False)

    ev = evaluate(ruleset, loaded.view, include_unfired=show_all or explain, explain=explain)
    if as_json:
        typer.echo(json.dumps(ev.to_dict(include_unfired=show_all), indent=2))
        return
    render_table(ev, out, include_unfired=show_all)
    render_skipped(ev, out, every=show_all or explain)
    if explain:
        render_explanations(ev, out)
    render_summary(ev, out, loaded.source, len(ruleset.rules))


@app.command()
def snapshot(
    output: Annotated[Path, typer.Option("--output", "-o", help="JSON Lines file to append to.")],
    exchanges: Annotated[
        list[str] | None,
        typer.Option(
            "--exchanges",
            "-e",
            metavar="LIST",
            help="Comma-separated exchanges (default: all six).",
        ),
    ] = None,
    coins: Annotated[
        list[str] | None,
        typer.Option(
            "--coins", "-c", metavar="LIST", help="Comma-separated coins (default: BTC,ETH,SOL)."
        ),
    ] = None,
    every: Annotated[
        str, typer.Option(metavar="DURATION", help="Time between cycles: 30s, 5m, 1h.")
    ] = "30s",
    count: Annotated[
        int | None, typer.Option(min=1, help="Stop after N cycles (default: run until Ctrl-C).")
    ] = None,
) -> None:
    """Record live market snapshots from the exchanges as JSON Lines.

    Every cycle fetches funding rates and intervals, mark and index prices, top of
    book, 24h volume and (where public) borrow rates for the coins, from all
    exchanges at once through their public APIs: no keys needed. An exchange that
    fails is reported and skipped for that cycle. The file replays with dry-run.

    Example:

        rulebook snapshot -o snaps.jsonl --exchanges binance,bybit --coins BTC,SOL --every 30s --count 10
    """
    from rulebook.market import EXCHANGES, parse_duration
    from rulebook.market._record import parse_list, record_snapshots

    try:
        every_s = parse_duration(every)
        ex_list = parse_list(exchanges, known=EXCHANGES, what="exchange") or list(EXCHANGES)
        coin_list = parse_list(coins) or ["BTC", "ETH", "SOL"]
        for c in coin_list:
            if not (c.isascii() and c.isalnum() and c.upper() == c):
                raise ValueError(f"coin {c!r} must be upper-case letters and digits, like SOL")
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None

    def report(n: int, res) -> None:
        line = f"cycle {n}: {len(res.observations)} observations in {res.elapsed_s:.2f}s"
        typer.echo(line)
        for ex, why in sorted(res.failures.items()):
            typer.echo(f"  {ex} skipped: {why}", err=True)
        for ex, warns in sorted(res.warnings.items()):
            for w in warns:
                typer.echo(f"  {ex} warning: {w}", err=True)

    try:
        written = asyncio.run(
            record_snapshots(
                output, ex_list, coin_list, every_s=every_s, count=count, on_cycle=report
            )
        )
    except KeyboardInterrupt:
        typer.echo("stopped", err=True)
        raise typer.Exit(130) from None
    except OSError as e:
        typer.echo(f"error: cannot write {output}: {e.strerror or e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote {written} observations to {output}")


SHOWN_CLOSED = 20


def _money(x: float | None) -> str:
    return "-" if x is None else f"{x:,.2f}"


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _print_status(data: dict, positions: bool = True) -> None:
    s = data["stats"]
    out.print(
        f"cycles {s['cycles']} ({_when(s['first_cycle'])} .. {_when(s['last_cycle'])} UTC)\n"
        f"opportunities found  {s['opportunities_found']} over all cycles "
        f"({s['opportunities_distinct']} distinct rule bindings)\n"
        f"trades executed      {s['trades_executed']} fills, {s['positions_opened']} positions "
        f"opened, {s['positions_closed']} closed\n"
        f"active positions     {s['active_positions']} (exposure {_money(s['exposure'])})\n"
        f"cumulative profit    {_money(s['cumulative_profit'])} "
        f"(realised {_money(s['realised_pnl'])}, open {_money(s['unrealised_pnl'])})\n"
        f"  funding {_money(s['funding'])}, fees {_money(s['fees'])}, "
        f"price {_money(s['price'])}, borrow {_money(s['borrow'])}\n"
        f"paper balance        {_money(s['cash'])} of {_money(s['initial_balance'])} "
        f"(halts {s['halts']}, errors {s['errors']}, outages {s['outages']})",
        markup=False,
    )
    if s["runner_pid"] is not None:
        out.print(f"running              pid {s['runner_pid']}", markup=False)
    rows = data["positions"]
    if not positions or not rows:
        return
    # Every open position and the latest closed ones; --json lists them all.
    closed = [p for p in rows if p["status"] != "open"]
    older = closed[:-SHOWN_CLOSED] if len(closed) > SHOWN_CLOSED else []
    rows = [p for p in rows if p["status"] == "open"] + closed[len(older) :]
    table = Table(title="positions", title_justify="left")
    for col in (
        "id",
        "rule",
        "coin",
        "legs",
        "notional",
        "status",
        "opened",
        "funding",
        "fees",
        "price",
        "borrow",
        "pnl",
        "closed because",
    ):
        table.add_column(
            col,
            justify="right"
            if col in ("notional", "funding", "fees", "price", "borrow", "pnl")
            else "left",
            no_wrap=col == "rule",  # keeps "name * rule changed" readable
        )
    for p in rows:
        legs = ", ".join(f"{lg['side']} {lg['market']} {lg['exchange']}" for lg in p["legs"])
        rule = p["rule"]
        if p.get("rule_state") in ("changed", "removed"):
            rule = f"{rule} * rule {p['rule_state']}"
        table.add_row(
            str(p["id"]),
            rule,
            p["coin"],
            legs,
            _money(p["notional"]),
            p["status"],
            _when(p["opened_at"]),
            _money(p["pnl_funding"]),
            _money(p["pnl_fees"]),
            _money(p["pnl_price"]),
            _money(p["pnl_borrow"]),
            _money(p["pnl"]),
            p["close_reason"] or "",
        )
    out.print(table)
    if older:
        out.print(f"... and {len(older)} older closed positions (--json lists all)", markup=False)
    if s.get("positions_on_old_rules"):
        out.print(
            "* rule changed or removed by a reload since the position opened: it keeps the "
            "exit clause it was opened with, and the risk limits apply",
            markup=False,
        )


def _config(config: Path | None, every: str | None, db: Path | None) -> TradingConfig:
    try:
        cfg = load_config(config)
        updates: dict[str, object] = {}
        if every is not None:
            updates["every"] = parse_duration(every)
        if db is not None:
            updates["ledger"] = str(db)
        return cfg.model_copy(update=updates)
    except ConfigError as e:
        raise fail(f"configuration: {e}") from None
    except ValueError as e:
        raise fail(f"--every: {e}") from None


def _ledger(path: str | Path) -> Ledger:
    try:
        return Ledger(path)
    except LedgerError as e:
        raise fail(str(e)) from None


def _speed(value: str) -> float | None:
    if value == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        speed = 0.0
    if not speed > 0:
        raise typer.BadParameter(f"{value!r}: give a positive number (times real time) or max")
    return speed


@app.command()
def run(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Rule files or directories. Default: strategies/"),
    ] = None,
    paper: Annotated[bool, typer.Option("--paper", help="Paper-trade (the only mode).")] = False,
    replay: Annotated[
        Path | None, typer.Option("--replay", help="Replay a recording instead of live data.")
    ] = None,
    speed: Annotated[
        str, typer.Option("--speed", help="Replay speed: N times real time, or max.")
    ] = "max",
    every: Annotated[
        str | None, typer.Option("--every", help="Live cycle interval (default 30s).")
    ] = None,
    db: Annotated[
        Path | None, typer.Option("--db", help="Ledger file (default rulebook.db).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Configuration (default ./rulebook.toml).")
    ] = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch/--no-watch",
            help="Reload the rules on save (the default); a broken edit is refused.",
        ),
    ] = True,
) -> None:
    """Paper-trade a ruleset, live or over a recording, into a SQLite ledger.

    Each cycle settles funding, marks positions, closes what exit clauses and
    risk limits say, and opens what the rules and limits allow, in one ledger
    transaction. A restart on the same ledger resumes; a replay continues after
    its last complete cycle. Ctrl-C, SIGTERM or `rulebook halt` stop it cleanly.

    Example:

        rulebook run strategies/ --paper --replay examples/binance-bybit-okx-btc-eth-2023-2024.jsonl --db paper.db
    """
    if not paper:
        raise fail("rulebook only paper-trades: add --paper")
    pace_speed = _speed(speed)
    cfg = _config(config, every, db)
    result = _load(paths or DEFAULT_PATHS)
    for d in result.diagnostics:
        err.print(render_text(d, result.sources.get(d.file)), markup=False)
    if result.ruleset is None:
        raise fail("the ruleset has errors; nothing was run", 1)
    if replay is not None and not replay.is_file():
        raise fail(f"{replay}: recording not found")
    ledger = _ledger(cfg.ledger)
    notifier = Notifier(cfg.notify.urls, cfg.notify.events)
    for url in notifier.bad_urls:
        err.print(
            f"warning: notify.urls: {url!r} is not a URL apprise knows; ignored", markup=False
        )
    paths = paths or DEFAULT_PATHS
    holder = RulesetHolder(result.ruleset)
    runtime = Runtime(
        holder,
        cfg,
        ledger,
        notifier,
        source=f"replay {replay}" if replay else "live",
    )
    runtime.discard_stale_halts()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda n, f: runtime.request_stop(signal.Signals(n).name))
    reloader = HotReload(
        paths, holder, cfg.ledger, notifier, echo=lambda text: err.print(text, markup=False)
    )
    if watch:
        reloader.start()
        shown = " ".join(str(p) for p in paths)
        err.print(f"reloading rules on save: watching {shown}", markup=False)
    try:
        if replay is not None:
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

                summary = runtime.run(
                    source, pace=replay_pacer(runtime, pace_speed), on_cycle=advance
                )
            problems = [e for e in source.errors if e.severity == "error"]
            if problems:
                err.print(
                    f"warning: {len(problems)} invalid line(s) in {replay} were skipped, "
                    f"first: {problems[0]}",
                    markup=False,
                )
            if summary.skipped_cycles:
                err.print(
                    f"resumed: {summary.skipped_cycles} cycle(s) were already in {cfg.ledger}",
                    markup=False,
                )
        else:
            exchanges, coins = watched_markets(result.ruleset, runtime)
            live = LiveSource(exchanges, coins)
            with err.status("starting") as line:

                def show(report: CycleReport) -> None:
                    line.update(
                        f"{_when(report.at)} UTC  opportunities {report.opportunities}  "
                        f"open {report.open_positions}  equity {report.equity:,.2f}  "
                        f"next in {cfg.every:g}s"
                    )

                summary = runtime.run(live_views(runtime, live, cfg.every), on_cycle=show)
    finally:
        reloader.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
    if summary.halted:
        err.print(f"halted: {summary.halted}", markup=False)
    _print_status(ledger_status(ledger), positions=False)
    ledger.close()
    if summary.failed:
        raise fail(summary.failed, 1)


@app.command()
def status(
    db: Annotated[
        Path | None, typer.Option("--db", help="Ledger file (default rulebook.db).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, for tools.")] = False,
    config: Annotated[
        Path | None, typer.Option("--config", help="Configuration (default ./rulebook.toml).")
    ] = None,
) -> None:
    """Show a ledger's statistics and its positions with their pnl parts.

    Example:

        rulebook status --db paper.db --json
    """
    cfg = _config(config, None, db)
    if not Path(cfg.ledger).is_file():
        raise fail(f"{cfg.ledger}: no ledger here (run `rulebook run --paper` first)")
    ledger = _ledger(cfg.ledger)
    data = ledger_status(ledger)
    ledger.close()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        _print_status(data)


@app.command()
def halt(
    db: Annotated[
        Path | None, typer.Option("--db", help="Ledger file (default rulebook.db).")
    ] = None,
    close_all: Annotated[
        bool, typer.Option("--close-all", help="Also close every open position.")
    ] = False,
    config: Annotated[
        Path | None, typer.Option("--config", help="Configuration (default ./rulebook.toml).")
    ] = None,
) -> None:
    """Stop the paper runtime on a ledger: no new entries; --close-all closes everything.

    The running `rulebook run` picks the request up within a second (or at its
    next replayed cycle), finishes the cycle it is in and stops.

    Example:

        rulebook halt --db paper.db --close-all
    """
    cfg = _config(config, None, db)
    if not Path(cfg.ledger).is_file():
        raise fail(f"{cfg.ledger}: no ledger here")
    ledger = _ledger(cfg.ledger)
    ledger.request_halt(close_all)
    runner = ledger.runner_pid()
    ledger.close()
    what = "halt and close all positions" if close_all else "halt"
    if runner is None:
        err.print(
            f"requested {what}, but no runtime is running on {cfg.ledger}; "
            "the request will be discarded by the next run",
            markup=False,
        )
        raise typer.Exit(1)
    out.print(f"requested {what} of the runtime (pid {runner}) on {cfg.ledger}", markup=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
