"""What `rulebook backtest`, `rulebook report` and `rulebook history` print and write.

code = backtest_command(spec, out=out, err=err, as_json=False, html=Path("r.html"))
code = report_command(Path("paper.db"), config, out=out, err=err)
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from rulebook import _json

__all__ = [
    "backtest_command",
    "import_command",
    "print_report",
    "print_sweep",
    "report_command",
    "sweep_command",
    "write_outputs",
]


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _money(x: float | None) -> str:
    return "-" if x is None else f"{x:,.2f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.2f}%"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def print_report(console: Console, report: dict[str, Any]) -> None:
    """The totals and the per-rule table, for a terminal."""
    t = report["totals"]
    hold = "-" if t["average_hold_h"] is None else f"{t['average_hold_h']:.1f}h"
    if report.get("lookahead"):
        console.print(f"what the rules saw: {report['lookahead']}", markup=False)
    for note in report["notes"]:
        console.print(f"note: {note}", markup=False)
    console.print(
        f"{report['source']}: {_when(report['from'])} .. {_when(report['to'])} UTC, "
        f"{report['cycles']} cycles\n"
        f"pnl {_money(t['pnl'])} (funding {_money(t['funding'])}, fees {_money(t['fees'])}, "
        f"price {_money(t['price'])}, borrow {_money(t['borrow'])})\n"
        f"capital used {_money(t['capital_used'])}: return {_pct(t['return_on_capital'])}, "
        f"APR {_pct(t['apr_on_capital'])}; on balances of {_money(t['initial_balance'])}: "
        f"return {_pct(t['return_on_balances'])}, APR {_pct(t['apr_on_balances'])}\n"
        f"max drawdown {_money(t['max_drawdown'])} ({_pct(t['max_drawdown_fraction'])}), "
        f"Sharpe {_num(t['sharpe'])}, Sortino {_num(t['sortino'])}\n"
        f"trades {t['trades']} ({t['open_trades']} open), win rate {_pct(t['win_rate'])}, "
        f"average hold {hold}, "
        f"turnover {_num(t['turnover'])}x",
        markup=False,
    )
    for key, title in (("per_rule", "rule"), ("per_coin", "coin"), ("per_venue", "venue")):
        console.print(_breakdown(report[key], title))


def _breakdown(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=f"per {title}", title_justify="left")
    for col in (title, "trades", "pnl", "funding", "fees", "price", "borrow", "win rate"):
        table.add_column(col, justify="left" if col == title else "right")
    for r in rows:
        table.add_row(
            r["key"],
            str(r["trades"]),
            _money(r["pnl"]),
            _money(r["funding"]),
            _money(r["fees"]),
            _money(r["price"]),
            _money(r["borrow"]),
            _pct(r["win_rate"]),
        )
    return table


def write_outputs(
    report: dict[str, Any],
    *,
    out: Console,
    err: Console,
    as_json: bool | None,
    html: Path | None,
    csv_dir: Path | None,
) -> None:
    """Print the report (JSON or a summary) and write the HTML and CSV files asked for."""
    if as_json:
        print(_json.dumps(report, indent=2))  # strict: an undefined figure is null
    elif as_json is not None:  # None: the caller printed already
        print_report(out, report)
    if html is not None:
        from rulebook.report import write_html

        write_html(report, html)
        err.print(f"wrote {html}", markup=False)
    if csv_dir is not None:
        from rulebook.report import write_csv

        for p in write_csv(report, csv_dir):
            err.print(f"wrote {p}", markup=False)


def backtest_command(
    spec: Any,
    *,
    out: Console,
    err: Console,
    as_json: bool,
    html: Path | None,
    csv_dir: Path | None,
    db: Path | None,
    seen: Path | None = None,
) -> int:
    """Run one backtest and write its report. Returns the exit status."""
    from rulebook.backtest import BacktestError, run_backtest
    from rulebook.lang import render_text
    from rulebook.report import build_report

    try:
        result = run_backtest(spec, db=db, seen=seen)
    except BacktestError as e:
        for d in e.diagnostics:
            err.print(render_text(d, e.sources.get(d.file)), markup=False)
        err.print(f"error: {e}", markup=False)
        return 2 if not e.diagnostics else 1
    for r in result.refused:
        err.print(f"warning: {r}", markup=False)
    extra = {
        "ruleset": result.ruleset_sha,
        "overrides": result.overrides,
        "refused": [{"rule": r.rule, "reason": r.reason} for r in result.refused],
    }
    report = build_report(result.run, extra)
    write_outputs(report, out=out, err=err, as_json=as_json, html=html, csv_dir=csv_dir)
    if db is not None:
        err.print(f"ledger kept in {db} (rulebook report --db {db})", markup=False)
    if seen is not None:
        err.print(
            f"what the rules saw at each cycle: {seen} (rulebook dry-run --snapshot {seen} --at TIME)",
            markup=False,
        )
    return 1 if result.summary.failed else 0


def report_command(
    db: Path,
    leverage: float,
    *,
    out: Console,
    err: Console,
    as_json: bool,
    html: Path | None,
    csv_dir: Path | None,
) -> int:
    """The same report for any ledger (a paper run's included). Reads only."""
    from rulebook.report import build_report, read_ledger
    from rulebook.trading import LedgerError, LedgerReader

    try:
        reader = LedgerReader.open(db)  # read-only: a running paper runtime is not disturbed
    except LedgerError as e:
        err.print(f"error: {e}", markup=False)
        return 2
    try:
        run = read_ledger(reader, leverage=leverage, source=f"ledger {db}")
    finally:
        reader.close()
    if not run.equity:
        err.print(f"error: {db}: the ledger has no complete cycle yet", markup=False)
        return 2
    write_outputs(build_report(run), out=out, err=err, as_json=as_json, html=html, csv_dir=csv_dir)
    return 0


def import_command(
    sources: list[Path], output: Path, fmt: str | None, quote: str, *, out: Console, err: Console
) -> int:
    """Convert a dataset to the history format and say what it has and lacks."""
    from rulebook.history import HistoryImportError, import_history, read_history, write_history

    try:
        result = import_history(sources, fmt, quote)
    except HistoryImportError as e:
        err.print(f"error: {e}", markup=False)
        return 2
    except OSError as e:
        err.print(f"error: {e}", markup=False)
        return 2
    try:
        n = write_history(output, result.records)
    except OSError as e:
        err.print(f"error: cannot write {output}: {e.strerror or e}", markup=False)
        return 2
    history, _ = read_history([output])
    table = Table(title=f"{output}: {n} records ({result.format})", title_justify="left")
    for col in (
        "exchange",
        "coin",
        "settlements",
        "from",
        "to",
        "intervals",
        "perp prices",
        "spot prices",
    ):
        table.add_column(col)
    for row in history.coverage():
        table.add_row(
            row["exchange"],
            row["coin"],
            str(row["settlements"]),
            _when(row["from"]),
            _when(row["to"]),
            ", ".join(f"{h:g}h" for h in row["intervals_h"]),
            "yes" if row["perp_prices"] else "NONE",
            "yes" if row["spot_prices"] else "NONE",
        )
    out.print(table)
    for note in result.notes:
        out.print(f"note: {note}", markup=False)
    if result.skipped:
        out.print(
            f"skipped {result.skipped} source rows (other pairs or predicted rates)", markup=False
        )
    return 0


def print_sweep(console: Console, sweep: dict[str, Any]) -> None:
    """The ranked table of a sweep."""
    names = sweep["parameters"]
    table = Table(
        title=f"sweep: {len(sweep['results'])} combinations on {sweep['workers']}, "
        f"ranked by {sweep['ranked_by']}",
        title_justify="left",
    )
    table.add_column("#", justify="right")
    for n in names:
        table.add_column(n)
    for col in ("pnl", "return on capital", "APR", "max drawdown", "Sharpe", "trades", "win rate"):
        table.add_column(col, justify="right")
    for i, r in enumerate(sweep["results"], start=1):
        t = r["totals"]
        table.add_row(
            str(i),
            *(r["overrides"][n] for n in names),
            _money(t["pnl"]),
            _pct(t["return_on_capital"]),
            _pct(t["apr_on_capital"]),
            _money(t["max_drawdown"]),
            _num(t["sharpe"]),
            str(t["trades"]),
            _pct(t["win_rate"]),
        )
    console.print(table)
    for f in sweep["failed"]:
        console.print(f"failed: {f['overrides']}: {f['error']}", markup=False)


def sweep_command(
    spec: Any,
    sweeps: list[tuple[str, list[str]]],
    *,
    workers: int | None,
    cluster: str | None,
    rank_by: str,
    out: Console,
    err: Console,
    as_json: bool,
    html: Path | None,
    csv_dir: Path | None,
) -> int:
    """Run the sweep; print the ranked table; the report is the best combination's,
    with the table in it."""
    from rulebook.backtest import BacktestError, run_sweep
    from rulebook.lang import render_text

    try:
        result = run_sweep(spec, sweeps, workers=workers, cluster=cluster, rank_by=rank_by)
    except BacktestError as e:
        for d in e.diagnostics:
            err.print(render_text(d, e.sources.get(d.file)), markup=False)
        err.print(f"error: {e}", markup=False)
        return 2 if not e.diagnostics else 1
    if not result.results:
        err.print("error: every combination failed", markup=False)
        for f in result.failed:
            err.print(f"  {f['overrides']}: {f['error']}", markup=False)
        return 2
    table = result.table()
    best = dict(result.results[0]["report"])
    best["sweep"] = table
    best["notes"] = [
        f"the report below is the best combination's by {rank_by}: "
        + ", ".join(f"{k}={v}" for k, v in result.results[0]["overrides"].items()),
        *best["notes"],
    ]
    if as_json:
        print(_json.dumps(best, indent=2))
    else:
        print_sweep(out, table)
    write_outputs(best, out=out, err=err, as_json=None, html=html, csv_dir=csv_dir)
    return 0 if not result.failed else 1
