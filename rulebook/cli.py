"""The `rulebook` command line: a thin typer layer over `rulebook.app`.

Each command imports what it needs inside its function, so `rulebook --help`
loads typer and rich only, and `rulebook validate` adds the language stage but
not numpy, the ledger, apprise, watchfiles or ccxt
(benchmarks/bench_startup.py times them; tests/test_startup.py checks the imports).
"""

from __future__ import annotations

import os
import shlex
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO, cast

import typer
from rich.console import Console

from rulebook._text import MaskedStream, terminal_safe

if TYPE_CHECKING:
    from rulebook.lang import LoadResult
    from rulebook.trading import Ledger, TradingConfig

app = typer.Typer(
    name="rulebook",
    help="A declarative rules engine for crypto funding-rate arbitrage.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)


def _piped_width() -> int | None:
    """Tables fit the terminal; piped output (logs, CI) is 120 columns wide unless
    COLUMNS says otherwise (rich reads COLUMNS itself)."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit():
        return None
    return 120


# Everything printed goes through a stream that masks secrets (URLs' credentials
# and tokens, configured keys): no message can show one (docs/limits.md).
out = Console(highlight=False, width=_piped_width(), file=cast(TextIO, MaskedStream()))
err = Console(
    stderr=True, highlight=False, soft_wrap=True, file=cast(TextIO, MaskedStream(stderr=True))
)

DEFAULT_PATHS = [Path("strategies")]

# Arguments and options several commands share.
RulePaths = Annotated[
    list[Path] | None,
    typer.Argument(help="Rule files or directories. Default: strategies/"),
]
LedgerOption = Annotated[
    Path | None, typer.Option("--db", help="Ledger file (default rulebook.db).")
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Configuration (default ./rulebook.toml).")
]
WideOption = Annotated[
    bool, typer.Option("--wide", help="Every column, even past the terminal's width.")
]
ExchangesOption = Annotated[
    list[str] | None,
    typer.Option(
        "--exchanges", "-e", metavar="LIST", help="Comma-separated exchanges (default: all six)."
    ),
]
# the report's outputs: `backtest` and `report` write the same report
ReportJsonOption = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
HtmlOption = Annotated[
    Path | None, typer.Option("--html", metavar="REPORT", help="Write the HTML report.")
]
CsvOption = Annotated[
    Path | None, typer.Option("--csv", metavar="DIR", help="Write trades and daily equity.")
]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"rulebook {version('rulebook')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """rulebook: write funding-arbitrage strategies as rules, check them, dry-run
    them against live or recorded snapshots, and paper-trade them."""


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line error (never a traceback) and return the exit to raise."""
    err.print(f"error: {terminal_safe(message, keep_newlines=True)}", markup=False)
    return typer.Exit(code)


def _names(values: list[str] | None, what: str, known: tuple[str, ...] | None = None) -> list[str]:
    """`--coins BTC,ETH --coins SOL` as ["BTC", "ETH", "SOL"]; an unknown name is an error
    with the closest known one."""
    import difflib

    names = [n.strip() for v in values or [] for n in v.split(",") if n.strip()]
    for n in names:
        if known is not None and n not in known:
            close = difflib.get_close_matches(n, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"
            raise fail(f"unknown {what} {n!r}{hint}")
        if known is None and not (n.isascii() and n.isalnum() and n.upper() == n):
            raise fail(f"{what} {n!r} must be upper-case letters and digits, like SOL")
    return list(dict.fromkeys(names))


def _load(paths: list[Path]) -> LoadResult:
    from rulebook.lang import PathError, load_ruleset

    try:
        return load_ruleset(paths)
    except PathError as e:
        raise fail(str(e)) from None


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
    from rulebook.app import check_on_save, report_validation

    paths = paths or DEFAULT_PATHS

    def check(result: LoadResult) -> int:
        return report_validation(
            result,
            typer.echo,
            out,
            err,
            as_json=format is OutputFormat.json,
            strict=strict,
            list_rules=list_rules,
        )

    code = check(_load(paths))
    if watch:
        code, error = check_on_save(paths, check, err, code)
        if error is not None:
            raise fail(f"watching stopped: {error}")
    raise typer.Exit(code)


@app.command("dry-run")
def dry_run(
    paths: RulePaths = None,
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
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the evaluation as JSON (docs/json.md).")
    ] = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also list bindings whose when clause is false.")
    ] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Show each sub-expression's value per binding.")
    ] = False,
    wide: WideOption = False,
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
    from rulebook.app import SnapshotError, load_snapshot, show_dry_run
    from rulebook.lang import render_text

    result = _load(paths or DEFAULT_PATHS)
    if not result.ok or result.ruleset is None:
        for d in result.errors:
            err.print(render_text(d, result.sources.get(d.file)), markup=False)
        raise fail(f"the ruleset has {len(result.errors)} error(s); fix them first", 1)
    try:
        loaded = load_snapshot(result.ruleset, snapshot, at)
    except SnapshotError as e:
        raise fail(str(e)) from None
    show_dry_run(
        result.ruleset,
        loaded,
        typer.echo,
        out,
        err,
        as_json=as_json,
        show_all=show_all,
        explain=explain,
        wide=wide,
    )


@app.command()
def screen(
    paths: RulePaths = None,
    coins: Annotated[
        list[str] | None,
        typer.Option(
            "--coins", "-c", metavar="LIST",
            help="Comma-separated coins (default: the coins the rules read).",
        ),
    ] = None,
    exchanges: ExchangesOption = None,
    snapshot: Annotated[
        Path | None,
        typer.Option("--snapshot", "-s", help="A recording instead of the exchanges."),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", metavar="TIME", help="With --snapshot: the snapshot at this time."),
    ] = None,
    every: Annotated[
        str, typer.Option("--every", metavar="DURATION", help="Time between refreshes.")
    ] = "60s",
    sort: Annotated[
        str,
        typer.Option(
            "--sort", help="Order of the funding rows: funding, apr, basis, volume, next, "
            "coin or exchange.",
        ),
    ] = "funding",
    reverse: Annotated[
        bool, typer.Option("--reverse", help="The --sort order the other way round.")
    ] = False,
    once: Annotated[bool, typer.Option("--once", help="Print one screen and exit.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one screen as JSON (docs/json.md) and exit.")
    ] = False,
    wide: WideOption = False,
) -> None:
    """A live screener: funding per venue and which of your rules would fire now.

    For each coin and exchange: funding per 8h and per interval, the interval,
    the time to the next settlement, APR, basis and 24h volume; per coin the
    best cross-exchange spread; per rule and coin whether it fires now, or the
    first condition that stops it. Refreshes every --every until Ctrl-C, or
    prints once (--once, --json). With --snapshot it shows a recording: at
    --at once, or its latest snapshot re-read on every refresh (to follow a
    file `rulebook snapshot` is writing).

    In the live view keys re-sort at once: f funding, a APR, b basis,
    v volume, n next settlement, c coin, e exchange; r reverses; q quits.

    Example:

        rulebook screen strategies/ --sort apr
        rulebook screen --coins BTC,ETH,SOL,DOGE --once
        rulebook screen --snapshot examples/binance-bybit-okx-btc-eth-2023-2024.jsonl --at 2024-03-05T08:00Z
    """
    from rulebook.app import SORT_KEYS, ScreenSettings, SnapshotError, run_screen
    from rulebook.lang import render_text
    from rulebook.market import EXCHANGES, parse_duration

    if at is not None and snapshot is None:
        raise fail("--at needs --snapshot: live data is always now")
    if sort not in SORT_KEYS:
        raise fail(f"--sort {sort!r}: expected one of {', '.join(SORT_KEYS)}")
    try:
        every_s = parse_duration(every)
    except ValueError as e:
        raise fail(f"--every: {e}") from None
    ex_list = _names(exchanges, "exchange", EXCHANGES) or list(EXCHANGES)
    coin_list = _names(coins, "coin")
    ruleset = None
    if paths or DEFAULT_PATHS[0].exists():
        result = _load(paths or DEFAULT_PATHS)
        if not result.ok or result.ruleset is None:
            for d in result.errors:
                err.print(render_text(d, result.sources.get(d.file)), markup=False)
            raise fail(f"the ruleset has {len(result.errors)} error(s); fix them first", 1)
        ruleset = result.ruleset
    if not coin_list:
        coin_list = list(ruleset.markets().coins) if ruleset is not None else []
    if not coin_list:
        raise fail("no coins to show: give --coins, or rules that read some")
    settings = ScreenSettings(
        coins=coin_list, exchanges=ex_list, ruleset=ruleset, snapshot=snapshot, at=at,
        every_s=every_s, sort=sort, reverse=reverse, once=once, as_json=as_json, wide=wide,
    )
    try:
        code = run_screen(settings, out, err, typer.echo)
    except SnapshotError as e:
        raise fail(str(e)) from None
    raise typer.Exit(code)


@app.command()
def snapshot(
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="File to append to: .jsonl, or .parquet (docs/columnar.md)."
        ),
    ],
    exchanges: ExchangesOption = None,
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
    file_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            metavar="jsonl|parquet",
            help="The output's format (default: by its suffix; it must agree with the suffix).",
        ),
    ] = None,
) -> None:
    """Record live market snapshots from the exchanges as JSON Lines (or Parquet).

    Every cycle fetches funding rates and intervals, mark and index prices, top of
    book, 24h volume and (where public) borrow rates for the coins, from all
    exchanges at once through their public APIs: no keys needed. An exchange that
    fails is reported and skipped for that cycle. The file replays with dry-run.

    A .parquet output is written through OUTPUT.partial.jsonl, folded into the
    Parquet file when the run stops (Ctrl-C included).

    Example:

        rulebook snapshot -o snaps.jsonl --exchanges binance,bybit --coins BTC,SOL --every 30s --count 10
    """
    import asyncio

    from rulebook.market import (  # loads ccxt
        CycleResult,
        cycle_reporter,
        parse_duration,
        parse_markets,
        record_snapshots,
    )

    try:
        every_s = parse_duration(every)
        ex_list, coin_list = parse_markets(exchanges, coins)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    _check_format(output, file_format)
    warn = cycle_reporter(typer.echo, lambda text: typer.echo(text, err=True))
    reached = 0  # cycles in which at least one exchange answered

    def report(n: int, res: CycleResult) -> None:
        nonlocal reached
        reached += len(res.failures) < len(ex_list)
        warn(n, res)

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
    if not reached:
        raise fail("no exchange answered in any cycle; nothing was recorded", 1)


def _check_format(output: Path, file_format: str | None) -> None:
    """--format agrees with the output's suffix (readers go by the suffix), and Parquet
    is there to write before anything is fetched."""
    from rulebook.market import is_columnar, require_parquet

    by_name = "parquet" if is_columnar(output) else "jsonl"
    if file_format is not None and file_format not in ("jsonl", "parquet"):
        raise typer.BadParameter(f"--format {file_format}: jsonl or parquet")
    if file_format is not None and file_format != by_name:
        want = ".parquet" if file_format == "parquet" else ".jsonl or .jsonl.gz"
        raise typer.BadParameter(
            f"--format {file_format} needs an output named {want} (readers go by the suffix)"
        )
    if by_name == "parquet":
        try:
            require_parquet()
        except OSError as e:
            raise fail(str(e), 1) from None


def _config(config: Path | None, every: str | None, db: Path | None) -> TradingConfig:
    from rulebook.market import parse_duration
    from rulebook.trading import ConfigError, load_config

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
    from rulebook.trading import Ledger, LedgerError

    try:
        return Ledger(path)
    except LedgerError as e:
        raise fail(str(e)) from None


def _check_ledger_dir(path: str | Path) -> None:
    """A ledger in a directory that does not exist is a typo, not a request to create it."""
    parent = Path(path).parent
    if not parent.is_dir():
        raise fail(f"--db {path}: the directory {parent} does not exist")


def _check_recording(path: Path) -> None:
    """A replay of a missing or empty file is an error, as a dry-run of it is."""
    from rulebook.market import Observation, has_observations, is_columnar, iter_jsonl

    if not path.exists():
        raise fail(f"{path}: recording not found")
    if not path.is_file():
        raise fail(f"{path}: not a recording (not a regular file)")
    try:
        # the first valid observation ends the scan: a long recording costs one
        # piece of lines, or one small batch of a Parquet file's rows
        if is_columnar(path):
            found = has_observations(path)
        else:
            found = any(isinstance(o, Observation) for _, o, _ in iter_jsonl(path))
    except OSError as e:
        raise fail(f"{path}: cannot read: {e.strerror or e}") from None
    if not found:
        raise fail(f"{path}: no valid observations; nothing to replay")


def _set_aside(db: Path) -> None:
    """--fresh: keep the old ledger (and its WAL files) under a dated name."""
    import time

    if not db.exists():
        return  # the caller holds the runtime lock: no runtime writes to it now
    stamp = time.strftime("%Y%m%dT%H%M%S")
    kept = db.with_name(f"{db.name}.{stamp}")
    for suffix in ("", "-wal", "-shm"):
        old = db.with_name(db.name + suffix)
        if old.exists():
            old.rename(kept.with_name(kept.name + suffix))
    err.print(f"fresh ledger {db}: the previous one is kept as {kept}", markup=False)


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
    paths: RulePaths = None,
    paper: Annotated[bool, typer.Option("--paper", help="Paper-trade: no order is sent.")] = False,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Trade live through the exchanges' APIs (keys needed; start on testnets: "
            "docs/live.md). Never the default.",
        ),
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="With --live: do not ask for confirmation.")
    ] = False,
    replay: Annotated[
        Path | None, typer.Option("--replay", help="Replay a recording instead of live data.")
    ] = None,
    speed: Annotated[
        str | None,
        typer.Option("--speed", help="With --replay: N times real time, or max (the default)."),
    ] = None,
    every: Annotated[
        str | None, typer.Option("--every", help="Live cycle interval (default 30s).")
    ] = None,
    for_: Annotated[
        str | None,
        typer.Option(
            "--for",
            metavar="DURATION",
            help="Stop cleanly after this long (24h, 90m; of recorded time in a replay) "
            "and print the statistics.",
        ),
    ] = None,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh", help="Start a new ledger: the existing file is kept aside, renamed."
        ),
    ] = False,
    notify: Annotated[
        bool,
        typer.Option(
            "--notify", help="Send notifications during a replay too (a live run always does)."
        ),
    ] = False,
    db: LedgerOption = None,
    config: ConfigOption = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch/--no-watch",
            help="Reload the rules on save (the default); a broken edit is refused.",
        ),
    ] = True,
) -> None:
    """Paper-trade a ruleset (--paper), or trade it live (--live), into a SQLite ledger.

    Each cycle settles funding, marks positions, closes what exit clauses and
    risk limits say, and opens what the rules and limits allow, in one ledger
    transaction. A restart on the same ledger resumes; a replay continues after
    its last complete cycle. Ctrl-C, SIGTERM or `rulebook halt` stop it cleanly.

    --live sends real orders: it refuses without keys for every exchange the
    rules can trade, asks for confirmation (unless --yes), and keeps its own
    ledger (default live.db) that a paper run cannot open, and vice versa.

    Example:

        rulebook run strategies/ --paper --replay examples/binance-bybit-okx-btc-eth-2023-2024.jsonl --db paper.db
        rulebook run strategies/ --live --db live.db
    """
    from rulebook.app import run_paper
    from rulebook.lang import render_text
    from rulebook.market import parse_duration
    from rulebook.trading import LedgerError, RuntimeLock, ledger_mode

    if paper == live:
        raise fail("choose one: --paper (no orders sent) or --live (real orders; docs/live.md)")
    if live and replay is not None:
        raise fail("--live trades on live data; --replay is for --paper")
    if replay is None and speed is not None:
        raise fail("--speed paces a replay: give --replay FILE, or drop --speed")
    if replay is not None and every is not None:
        raise fail("--every sets the live cycle; a replay's cycles are the recording's")
    if live and fresh:
        raise fail("--fresh is for paper ledgers; a live ledger is never set aside")
    pace_speed = _speed(speed or "max")
    try:
        run_for = parse_duration(for_) if for_ is not None else None
    except ValueError as e:
        raise fail(f"--for: {e}") from None
    cfg = _config(config, every, db)
    if live and db is None and "ledger" not in cfg.model_fields_set:
        cfg = cfg.model_copy(update={"ledger": "live.db"})
    result = _load(paths or DEFAULT_PATHS)
    for d in result.diagnostics:
        err.print(render_text(d, result.sources.get(d.file)), markup=False)
    if result.ruleset is None:
        raise fail("the ruleset has errors; nothing was run", 1)
    if replay is not None:
        _check_recording(replay)
    _check_ledger_dir(cfg.ledger)
    # One runtime per ledger: a second `run` on it stops here, naming the holder.
    lock = RuntimeLock(cfg.ledger)
    try:
        lock.acquire(shlex.join(["rulebook", *sys.argv[1:]]))
    except LedgerError as e:
        raise fail(str(e)) from None
    try:
        if fresh:
            _set_aside(Path(cfg.ledger))
        ledger = _ledger(cfg.ledger)
        executor = None
        if live:
            from rulebook.app import LiveRefused, prepare_live

            try:
                executor = prepare_live(
                    result.ruleset, cfg, ledger, yes=yes, err=err,
                    confirm=lambda q: typer.confirm(q.removesuffix(" [y/N]"), default=False),
                )  # fmt: skip
            except LiveRefused as e:
                ledger.close()
                raise fail(str(e)) from None
        elif ledger_mode(ledger) == "live":
            ledger.close()
            raise fail(f"{cfg.ledger} is a live ledger; a paper run needs its own (--db paper.db)")
        try:
            summary = run_paper(
                result.ruleset,
                paths or DEFAULT_PATHS,
                cfg,
                ledger,
                replay=replay,
                speed=pace_speed,
                watch=watch,
                out=out,
                err=err,
                executor=executor,
                notify=notify or replay is None,
                run_for_s=run_for,
            )
        except LedgerError as e:  # the ledger failed outside a cycle: full disk, read-only...
            raise fail(str(e), 1) from None
        finally:
            ledger.close()
    finally:
        lock.release()
    if summary.failed:
        raise fail(summary.failed, 1)


@app.command()
def status(
    db: LedgerOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object, for tools (docs/json.md).")
    ] = False,
    wide: WideOption = False,
    config: ConfigOption = None,
    position: Annotated[
        int | None,
        typer.Option(
            "--position",
            "-p",
            help="One position's funding payments as a table: each settlement, its interval, "
            "rate, mark, amount and where the rate and mark came from.",
        ),
    ] = None,
) -> None:
    """Show a ledger's statistics, each venue's cash, margin in use, free balance
    and exposure, the exposure by coin, and the positions with their pnl parts.

    Example:

        rulebook status --db paper.db --json
        rulebook status --db paper.db --position 3
    """
    from rulebook import _json
    from rulebook.app import (
        ledger_status,
        position_status,
        print_position_funding,
        print_status,
        status_json,
    )

    cfg = _config(config, None, db)
    if not Path(cfg.ledger).is_file():
        raise fail(f"{cfg.ledger}: no ledger here (run `rulebook run --paper` first)")
    ledger = _ledger(cfg.ledger)
    # read with SQL aggregates and the open positions: memory does not grow with the ledger
    try:
        if position is not None:
            found = position_status(ledger, position)
            if found is None:
                ids = ledger.read.position_ids()
                known = f"positions {ids[0]}..{ids[1]}" if ids else "no positions"
                raise fail(f"{cfg.ledger}: no position {position} ({known})")
            if as_json:
                typer.echo(_json.dumps(found, indent=2))
            else:
                print_position_funding(out, found)
        elif as_json:
            for chunk in status_json(ledger, cfg.leverage):  # a position at a time
                typer.echo(chunk, nl=False)
            typer.echo()
        else:
            print_status(out, ledger_status(ledger, cfg.leverage), wide=wide)
    finally:
        ledger.close()


@app.command()
def halt(
    db: LedgerOption = None,
    close_all: Annotated[
        bool, typer.Option("--close-all", help="Also close every open position.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Stop the runtime on a ledger: no new entries; --close-all closes everything.

    The running `rulebook run` picks the request up within a second (or at its
    next replayed cycle), finishes the cycle it is in and stops. On a live
    ledger with no runtime running, --close-all closes the positions on the
    exchanges itself (keys needed), reduce-only, with the same leg-risk rules.

    Example:

        rulebook halt --db paper.db --close-all
    """
    from rulebook.trading import LedgerError, RuntimeLock, ledger_mode

    cfg = _config(config, None, db)
    if not Path(cfg.ledger).is_file():
        raise fail(f"{cfg.ledger}: no ledger here")
    ledger = _ledger(cfg.ledger)
    runner = ledger.runner_pid()
    lock = RuntimeLock(cfg.ledger)
    if close_all and runner is None and ledger_mode(ledger) == "live" and lock.holder() is None:
        # No runtime to pick the request up: close the live positions from here, holding
        # the runtime's lock so that no `run --live` starts trading meanwhile.
        from rulebook.app import LiveRefused, close_all_live

        try:
            with lock.hold(shlex.join(["rulebook", *sys.argv[1:]])):
                closed, left = close_all_live(cfg, ledger, err=err)
        except (LiveRefused, LedgerError) as e:
            ledger.close()
            raise fail(str(e)) from None
        ledger.close()
        out.print(f"closed {closed} live position(s) on {cfg.ledger}; {left} left open",
                  markup=False)  # fmt: skip
        if left:
            raise fail(f"{left} position(s) could not be closed: see `rulebook status`", 1)
        return
    what = "halt and close all positions" if close_all else "halt"
    held_by = lock.holder()
    if runner is None and held_by is None and close_all:
        from rulebook.app import close_all_offline, utc_time

        try:
            # the runtime's lock, so that no `run` starts on the ledger meanwhile
            with lock.hold(shlex.join(["rulebook", *sys.argv[1:]])):
                t, shut = close_all_offline(cfg, ledger)
        except LedgerError as e:
            ledger.close()
            raise fail(str(e)) from None
        ledger.close()
        pnl = sum(p for _, p in shut)
        out.print(
            f"no runtime is running on {cfg.ledger}: closed {len(shut)} paper position(s) "
            f"here at their last marks (the ledger's last cycle, {utc_time(t)}), "
            f"pnl {pnl:+,.2f}",
            markup=False,
        )
        return
    if runner is None and held_by is None:
        ledger.close()
        err.print(
            f"no runtime is running on {cfg.ledger}: nothing to halt "
            "(--close-all closes its open positions at their last marks)",
            markup=False,
        )
        raise typer.Exit(1)
    ledger.request_halt(close_all)
    ledger.close()
    pid = runner if runner is not None else getattr(held_by, "pid", None)
    out.print(f"requested {what} of the runtime (pid {pid}) on {cfg.ledger}", markup=False)


# -- history, backtests and reports ---------------------------------------------------

history_app = typer.Typer(
    help="Get funding history: import third-party datasets, fetch from the exchanges.",
    no_args_is_help=True,
)
app.add_typer(history_app, name="history")


@history_app.command("import")
def history_import(
    sources: Annotated[
        list[Path], typer.Argument(help="The dataset's files or its directory (one format).")
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="History file to write: .jsonl, .jsonl.gz or .parquet."
        ),
    ],
    format: Annotated[
        str | None,
        typer.Option("--format", help="supervik, aha-hh or zushen (default: detected)."),
    ] = None,
    quote: Annotated[
        str, typer.Option("--quote", help="zushen: the margin currency of the perps taken.")
    ] = "USDT",
    wide: WideOption = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace OUTPUT if it exists (never done without).")
    ] = False,
) -> None:
    """Convert a funding dataset into rulebook's history format.

    The history format is settlement records (the rate that settled, its
    interval, the mark where known) plus the price observations the dataset
    has. Time zones are fixed (supervik's Binance and Bybit dates are UTC+3,
    AHA-HH's are Europe/London local time); where a dataset has no price for
    a leg the table says NONE and nothing is invented. An output named .parquet
    is written in the columnar format (docs/columnar.md). An existing OUTPUT is
    replaced only with --force, and only once the new one is complete.

    Example:

        rulebook history import all_exchanges.csv -o history.jsonl.gz
    """
    from rulebook.app import import_command

    raise typer.Exit(
        import_command(sources, output, format, quote, out=out, err=err, wide=wide, force=force)
    )


@history_app.command("fetch")
def history_fetch(
    exchange: Annotated[str, typer.Option("--exchange", "-e", help="One of the six exchanges.")],
    coins: Annotated[str, typer.Option("--coins", "-c", metavar="LIST", help="BTC,ETH,...")],
    since: Annotated[str, typer.Option("--since", metavar="DATE", help="Start, ISO-8601 UTC.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="History file to append to: .jsonl, or .parquet."
        ),
    ],
    until: Annotated[
        str | None, typer.Option("--until", metavar="DATE", help="End (default: now).")
    ] = None,
    timeframe: Annotated[
        str, typer.Option("--timeframe", help="Candles for the prices: 1m 5m 15m 1h 4h 8h.")
    ] = "1h",
) -> None:
    """Fetch funding history and prices from an exchange's public API, through ccxt.

    Settled rates (with their intervals) from the funding-rate history, and
    mark, index and spot candles, paged and rate-limited. Every page is
    appended as it arrives; running the same command again resumes after the
    last time the file holds. No API key is needed. A .parquet output is
    appended to through OUTPUT.partial.jsonl, folded in when the fetch ends.

    Example:

        rulebook history fetch --exchange binance --coins BTC,ETH --since 2024-01-01 -o binance.jsonl
    """
    import asyncio
    import time

    from rulebook.history import fetch_history
    from rulebook.lang import EXCHANGES

    if exchange not in EXCHANGES:
        raise typer.BadParameter(f"--exchange {exchange}: one of {', '.join(EXCHANGES)}")
    coin_list = [c.strip().upper() for c in coins.split(",") if c.strip()]
    if not coin_list:
        raise typer.BadParameter("--coins: give at least one coin, like BTC,ETH")
    start = _time_option(since, "--since")
    end = _time_option(until, "--until") or int(time.time() * 1000)
    assert start is not None
    if end <= start:
        raise fail("--until must be after --since")
    try:
        stats = asyncio.run(
            fetch_history(
                exchange,
                coin_list,
                start,
                end,
                output,
                timeframe=timeframe,
                on_progress=lambda text: err.print(text, markup=False),
            )
        )
    except KeyboardInterrupt:
        err.print(f"stopped; run the same command again to resume into {output}", markup=False)
        raise typer.Exit(130) from None
    except ValueError as e:
        raise fail(str(e)) from None
    except Exception as e:  # noqa: BLE001 - a ccxt error, phrased for the operator
        raise fail(
            f"{exchange}: {type(e).__name__}: {e}; what was fetched is in {output}, "
            "run again to resume"
        ) from None
    for n in stats.notes:
        err.print(f"note: {n}", markup=False)
    out.print(
        f"wrote {stats.settlements} settlements, {stats.perp_prices} perp and "
        f"{stats.spot_prices} spot price observations to {output} ({stats.requests} requests)",
        markup=False,
    )


def _time_option(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    from rulebook.app import SnapshotError, parse_time

    try:
        return parse_time(text)
    except SnapshotError as e:
        raise typer.BadParameter(str(e).replace("--at", name)) from None


@app.command()
def backtest(
    paths: RulePaths = None,
    data: Annotated[
        list[Path] | None,
        typer.Option("--data", "-d", help="History file(s) (rulebook history import/fetch)."),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", metavar="TIME", help="Start (ISO-8601 UTC or ms).")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", metavar="TIME", help="End, inclusive.")] = None,
    config: ConfigOption = None,
    lookahead: Annotated[
        str,
        typer.Option(
            "--lookahead",
            help="What rules see: last-settled (default, no look-ahead) or next-settlement.",
        ),
    ] = "last-settled",
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="NAME=VALUE", help="Override a `let` constant."),
    ] = None,
    as_json: ReportJsonOption = False,
    html: HtmlOption = None,
    csv_dir: CsvOption = None,
    db: Annotated[
        Path | None,
        typer.Option("--db", help="Keep the backtest's ledger in this NEW file (default: none)."),
    ] = None,
    seen: Annotated[
        Path | None,
        typer.Option(
            "--seen",
            metavar="FILE",
            help="Write what the rules saw at each cycle (a snapshot file dry-run reads).",
        ),
    ] = None,
    sweep: Annotated[
        list[str] | None,
        typer.Option(
            "--sweep",
            metavar="NAME=V1,V2,...",
            help="Backtest each value of a `let` constant; repeat for the grid of all combinations.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Sweep: local processes (default: every core)."),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster", metavar="ADDRESS", help="Sweep on a Dask scheduler (tcp://host:8786)."
        ),
    ] = None,
    rank_by: Annotated[
        str, typer.Option("--rank-by", help="Sweep: rank by pnl, return_on_capital, sharpe, ...")
    ] = "pnl",
    wide: WideOption = False,
) -> None:
    """Replay a ruleset over funding history at full speed and report how it did.

    Runs the paper runtime's cycle over the history into a fresh ledger of its
    own (never an operator's, and nothing is notified), then reports the
    totals, per-rule, per-coin, per-venue and per-position figures. Rules
    that would trade a leg the history has no price for are refused, with
    the reason. See docs/backtest.md.

    With --sweep, one backtest per combination of the swept constants runs on
    the local cores (or a Dask cluster) and a ranked table is printed; the
    report is the best combination's, with the table in it.

    Example:

        rulebook backtest strategies/ --data examples/history/binance-bybit-okx-btc-eth-2023-2024.jsonl.gz --html report.html
        rulebook backtest strategies/ --data examples/history/binance-bybit-okx-btc-eth-2023-2024.jsonl.gz --sweep carry_min_rate=0.01%,0.02%,0.03% --sweep extreme_rate=0.1%,0.2%
    """
    from rulebook.app import backtest_command
    from rulebook.backtest import BacktestSpec, OverrideError, parse_assignment
    from rulebook.history import LOOKAHEADS

    if not data:
        raise fail("give the history with --data FILE (see `rulebook history import --help`)")
    for d in data:
        if not d.exists():
            raise fail(f"{d}: history file not found")
    if lookahead not in LOOKAHEADS:
        raise typer.BadParameter(f"--lookahead {lookahead}: one of {', '.join(LOOKAHEADS)}")
    try:
        sets = dict(parse_assignment(s) for s in overrides or [])
    except OverrideError as e:
        raise typer.BadParameter(str(e)) from None
    cfg = _config(config, None, None)
    spec = BacktestSpec(
        rule_paths=paths or DEFAULT_PATHS,
        data=data,
        start=_time_option(start, "--from"),
        end=_time_option(end, "--to"),
        lookahead=lookahead,
        overrides=sets,
        config=cfg,
    )
    try:
        if sweep:
            from rulebook.app import sweep_command
            from rulebook.backtest import parse_sweep

            if db is not None:
                raise fail("--db keeps one backtest's ledger; a sweep runs many: drop --db")
            code = sweep_command(
                spec,
                [parse_sweep(s) for s in sweep],
                workers=workers,
                cluster=cluster,
                rank_by=rank_by,
                out=out,
                err=err,
                as_json=as_json,
                html=html,
                csv_dir=csv_dir,
                wide=wide,
            )
        else:
            if cluster is not None or workers is not None:
                raise fail("--cluster and --workers are for sweeps: add --sweep NAME=V1,V2")
            code = backtest_command(
                spec,
                out=out,
                err=err,
                as_json=as_json,
                html=html,
                csv_dir=csv_dir,
                db=db,
                seen=seen,
                wide=wide,
            )
    except OverrideError as e:
        raise fail(str(e)) from None
    raise typer.Exit(code)


@app.command()
def report(
    db: LedgerOption = None,
    config: ConfigOption = None,
    as_json: ReportJsonOption = False,
    html: HtmlOption = None,
    csv_dir: CsvOption = None,
    wide: WideOption = False,
) -> None:
    """The backtest report for any ledger: a paper run's, or a kept backtest's.

    Reads the ledger only (a running paper runtime is not disturbed).

    Example:

        rulebook report --db paper.db --html paper.html
    """
    from rulebook.app import report_command

    cfg = _config(config, None, db)
    raise typer.Exit(
        report_command(
            Path(cfg.ledger),
            cfg.leverage,
            out=out,
            err=err,
            as_json=as_json,
            html=html,
            csv_dir=csv_dir,
            wide=wide,
        )
    )


@app.command()
def convert(
    source: Annotated[Path, typer.Argument(help="A snapshot or history file: .jsonl, .jsonl.gz or .parquet.")],
    output: Annotated[Path, typer.Argument(help="The file to write: .parquet, or .jsonl / .jsonl.gz.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace OUTPUT if it exists (never done without).")
    ] = False,
) -> None:
    """Convert a snapshot or history file between JSON Lines and Parquet.

    The direction is OUTPUT's suffix. Every line (row) is checked as a replay
    checks it: a bad one is reported with its number and skipped. Settlement
    records and unknown keys are kept; a JSONL file converts to Parquet and
    back byte for byte (docs/columnar.md). Parquet needs the `parquet` extra.

    Example:

        rulebook convert recording.jsonl.gz recording.parquet
    """
    from rulebook.market import convert as convert_file

    try:
        result = convert_file(source, output, force=force)
    except FileExistsError as e:
        raise fail(str(e)) from None
    except FileNotFoundError as e:
        raise fail(str(e) if not e.strerror else f"{source}: no such file") from None
    except ValueError as e:
        raise fail(str(e)) from None
    except OSError as e:
        raise fail(f"{source}: {e.strerror or e}", 1) from None
    for problem in result.problems[:20]:
        err.print(str(problem), markup=False)
    shown = min(len(result.problems), 20)
    if result.skipped + result.warnings > shown:
        err.print(
            f"... {result.skipped + result.warnings - shown:,} more problems", markup=False
        )
    if result.rows == 0:
        raise fail(f"{source}: no valid record; nothing written", 1)
    skipped = f", skipped {result.skipped:,} invalid" if result.skipped else ""
    out.print(
        f"wrote {result.rows:,} records ({result.settlements:,} settlement records) "
        f"to {output}{skipped}",
        markup=False,
    )


def main() -> None:
    from rulebook.errors import RulebookError

    try:
        app()
    except RulebookError as e:
        # a stage's error that its command did not turn into a message itself:
        # still one line for the operator, never a traceback
        err.print(f"error: {e}", markup=False)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
