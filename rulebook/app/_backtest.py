"""What `rulebook backtest`, `rulebook report` and `rulebook history` print and write.

code = backtest_command(spec, out=out, err=err, as_json=False, html=Path("r.html"))
code = report_command(Path("paper.db"), config, out=out, err=err)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from rulebook import _json

from ._report import _money, _when  # money and times as every table shows them
from ._tables import Col, fit_table, print_fitted

if TYPE_CHECKING:
    from rulebook.report import Report

__all__ = [
    "backtest_command",
    "import_command",
    "print_report",
    "print_sweep",
    "report_command",
    "sweep_command",
    "write_outputs",
]


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.2f}%"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def print_report(console: Console, report: dict[str, Any], wide: bool = False) -> None:
    """The totals and the per-rule, per-coin and per-venue tables, for a terminal."""
    t = report["totals"]
    hold = "-" if t["average_hold_h"] is None else f"{t['average_hold_h']:.1f}h"
    if report.get("lookahead"):
        console.print(f"what the rules saw: {report['lookahead']}", markup=False)
    for note in report["notes"]:
        console.print(f"note: {note}", markup=False)
    # one figure group a line, so that a line reads whole at 80 columns
    lines = [
        f"{report['source']}:",
        f"  {_when(report['from'])} .. {_when(report['to'])} UTC, {report['cycles']} cycles",
        f"pnl {_money(t['pnl'])} (funding {_money(t['funding'])}, fees {_money(t['fees'])}, "
        f"price {_money(t['price'])}, borrow {_money(t['borrow'])})",
        f"capital used {_money(t['capital_used'])}: return {_pct(t['return_on_capital'])}, "
        f"APR {_pct(t['apr_on_capital'])}",
        f"on balances of {_money(t['initial_balance'])}: return {_pct(t['return_on_balances'])}, "
        f"APR {_pct(t['apr_on_balances'])}",
        f"max drawdown {_money(t['max_drawdown'])} ({_pct(t['max_drawdown_fraction'])}), "
        f"Sharpe {_num(t['sharpe'])}, Sortino {_num(t['sortino'])}",
        f"trades {t['trades']} ({t['open_trades']} open), win rate {_pct(t['win_rate'])}, "
        f"average hold {hold}, turnover {_num(t['turnover'])}x",
    ]
    console.print("\n".join(lines), markup=False)
    hidden: list[str] = []
    for key, title in (("per_rule", "rule"), ("per_coin", "coin"), ("per_venue", "venue")):
        console.print(Text(f"per {title}", style="bold"))
        fitted = fit_table(_breakdown_cols(title), _breakdown_rows(report[key]), console.width,
                           wide=wide)  # fmt: skip
        print_fitted(console, fitted, wide)
        hidden += [h for h in fitted.hidden if h not in hidden]
    _hidden_note(console, hidden)


def _hidden_note(console: Console, hidden: list[str]) -> None:
    if hidden:
        console.print(
            f"hidden at this width: {', '.join(hidden)} (--wide, or --json)",
            markup=False, style="dim",
        )  # fmt: skip


def _breakdown_cols(title: str) -> list[Col]:
    # pnl and its two largest parts always; the smaller parts go first when narrow
    return [
        Col(title, "left", wrap=True),
        Col("trades"),
        Col("pnl"),
        Col("funding"),
        Col("fees"),
        Col("price", keep=1),
        Col("win rate", keep=2),
        Col("borrow", keep=3),
    ]


def _breakdown_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            r["key"],
            str(r["trades"]),
            _money(r["pnl"]),
            _money(r["funding"]),
            _money(r["fees"]),
            _money(r["price"]),
            _pct(r["win_rate"]),
            _money(r["borrow"]),
        ]
        for r in rows
    ]


def write_outputs(
    report: dict[str, Any] | Report,
    *,
    out: Console,
    err: Console,
    as_json: bool | None,
    html: Path | None,
    csv_dir: Path | None,
    wide: bool = False,
) -> None:
    """Print the report (JSON or a summary) and write the HTML and CSV files asked for.
    A streamed `Report` is written as it is read (its long lists never in memory)."""
    from rulebook.report import Report, iter_json

    r = Report.of(report)
    if as_json:
        # strict: an undefined figure is null; the bytes of _json.dumps(report, indent=2)
        for piece in iter_json(r):
            print(piece, end="")
        print()
    elif as_json is not None:  # None: the caller printed already
        print_report(out, r.head, wide)
    if html is not None:
        from rulebook.report import write_html

        write_html(r, html)
        err.print(f"wrote {html}", markup=False)
    if csv_dir is not None:
        from rulebook.report import write_csv

        for p in write_csv(r, csv_dir):
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
    wide: bool = False,
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
    write_outputs(
        report, out=out, err=err, as_json=as_json, html=html, csv_dir=csv_dir, wide=wide
    )
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
    wide: bool = False,
) -> int:
    """The same report for any ledger (a paper run's included). Reads only, in one
    read transaction, a row at a time: memory does not grow with the ledger."""
    from rulebook.report import ledger_report
    from rulebook.trading import LedgerError, LedgerReader

    try:
        reader = LedgerReader.open(db)  # read-only: a running paper runtime is not disturbed
    except LedgerError as e:
        err.print(f"error: {e}", markup=False)
        return 2
    try:
        # every pass of the report sees the same ledger, however many cycles a
        # running runtime commits meanwhile
        with reader.snapshot():
            report = ledger_report(reader, leverage=leverage, source=f"ledger {db}")
            if not report.head["cycles"]:
                err.print(f"error: {db}: the ledger has no complete cycle yet", markup=False)
                return 2
            write_outputs(
                report, out=out, err=err, as_json=as_json, html=html, csv_dir=csv_dir, wide=wide
            )
    finally:
        reader.close()
    return 0


IMPORT_COLS = [
    Col("exchange", "left"),
    Col("coin", "left"),
    Col("settled"),
    Col("from", "left"),
    Col("to", "left"),
    Col("prices", "left"),
    Col("intervals", "left", keep=1, wrap=True),
]


def _prices(perp: bool, spot: bool) -> str:
    """Which legs have prices: `perp, spot`, one of them, or NONE (nothing is invented)."""
    have = [name for name, ok in (("perp", perp), ("spot", spot)) if ok]
    return ", ".join(have) if have else "NONE"


def import_command(
    sources: list[Path],
    output: Path,
    fmt: str | None,
    quote: str,
    *,
    out: Console,
    err: Console,
    wide: bool = False,
    force: bool = False,
) -> int:
    """Convert a dataset to the history format and say what it has and lacks.

    An existing output is replaced only with ``force`` (refused before any source is read)."""
    from rulebook.history import HistoryImportError, import_history, read_history, write_history

    if output.exists() and not force:  # the words of `convert`
        err.print(f"error: {output} exists; give --force to replace it", markup=False)
        return 2
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
    rows = [
        [
            row["exchange"],
            row["coin"],
            str(row["settlements"]),
            _when(row["from"]),
            _when(row["to"]),
            ", ".join(f"{h:g}h" for h in row["intervals_h"]),
            _prices(row["perp_prices"], row["spot_prices"]),
        ]
        for row in history.coverage()
    ]
    out.print(Text(f"{output}: {n} records ({result.format})", style="bold"))
    fitted = fit_table(IMPORT_COLS, rows, out.width, wide=wide)
    print_fitted(out, fitted, wide)
    _hidden_note(out, fitted.hidden)
    for note in result.notes:
        out.print(f"note: {note}", markup=False)
    if result.skipped:
        out.print(
            f"skipped {result.skipped} source rows (other pairs or predicted rates)", markup=False
        )
    return 0


def print_sweep(console: Console, sweep: dict[str, Any], wide: bool = False) -> None:
    """The ranked table of a sweep."""
    names = sweep["parameters"]
    cols = [
        Col("#"),
        *(Col(n, "left") for n in names),
        Col("pnl"),
        Col("return", keep=3),
        Col("APR"),
        Col("drawdown", keep=2),
        Col("Sharpe", keep=4),
        Col("trades", keep=1),
        Col("win rate", keep=5),
    ]
    rows = []
    for i, r in enumerate(sweep["results"], start=1):
        t = r["totals"]
        rows.append([
            str(i),
            *(r["overrides"][n] for n in names),
            _money(t["pnl"]),
            _pct(t["return_on_capital"]),
            _pct(t["apr_on_capital"]),
            _money(t["max_drawdown"]),
            _num(t["sharpe"]),
            str(t["trades"]),
            _pct(t["win_rate"]),
        ])
    console.print(
        Text(
            f"sweep: {len(sweep['results'])} combinations on {sweep['workers']}, "
            f"ranked by {sweep['ranked_by']}",
            style="bold",
        )
    )
    fitted = fit_table(cols, rows, console.width, wide=wide)
    print_fitted(console, fitted, wide)
    caption = "return and APR on the capital used; drawdown: the largest, in money"
    if fitted.hidden:
        caption += f" | hidden at this width: {', '.join(fitted.hidden)} (--wide, or --json)"
    console.print(caption, markup=False, style="dim")
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
    wide: bool = False,
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
        print_sweep(out, table, wide)
    write_outputs(best, out=out, err=err, as_json=None, html=html, csv_dir=csv_dir, wide=wide)
    return 0 if not result.failed else 1
