"""The `rulebook` command line: a thin typer layer over the package's stages."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import fields
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rulebook.lang import RISK_KEYS, LoadResult, PathError, format_value, load_ruleset, render_text

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
) -> None:
    """Check rule files and report every problem with its location.

    All files given form one ruleset, so a name defined twice in two files is
    caught. Exits 1 when there is an error (or a warning, with --strict).

    Example:

        rulebook validate strategies/ --strict
    """
    result = _load(paths or DEFAULT_PATHS)
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
    raise typer.Exit(1 if failed else 0)


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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
