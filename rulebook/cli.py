"""The ``rulebook`` command line."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="rulebook",
    help="A declarative rules engine for crypto funding-rate arbitrage.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """A declarative rules engine for crypto funding-rate arbitrage."""
    # A callback keeps `rulebook snapshot` a sub-command even while it is the only one.


@app.command()
def snapshot(
    output: Annotated[Path, typer.Option("--output", "-o", help="JSON Lines file to append to.")],
    exchanges: Annotated[
        list[str] | None,
        typer.Option("--exchanges", "-e", metavar="LIST", help="Comma-separated exchanges (default: all six)."),
    ] = None,
    coins: Annotated[
        list[str] | None,
        typer.Option("--coins", "-c", metavar="LIST", help="Comma-separated coins (default: BTC,ETH,SOL)."),
    ] = None,
    every: Annotated[str, typer.Option(metavar="DURATION", help="Time between cycles: 30s, 5m, 1h.")] = "30s",
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
            record_snapshots(output, ex_list, coin_list, every_s=every_s, count=count,
                             on_cycle=report)
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
