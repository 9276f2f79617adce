"""`--html REPORT`: one self-contained page, the plots embedded as base64 PNG.

No script, no external stylesheet, font or image: the file opens offline,
attached to a mail or in a CI artefact, and shows the same figures as --json.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._streamed import Report

__all__ = ["iter_html", "render_html", "write_html"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;
color:#1f2328;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:.5em 0;font-variant-numeric:tabular-nums}
th,td{padding:3px 9px;border-bottom:1px solid #eaeef2;text-align:right}
th:first-child,td:first-child,td.l,th.l{text-align:left}
.neg{color:#d1242f}.pos{color:#1a7f37}.note{background:#fff8c5;padding:.5em .8em;border-radius:6px}
.look{background:#ddf4ff;padding:.5em .8em;border-radius:6px}
img{max-width:100%;display:block;margin:.6em 0}details{margin:.2em 0}
.muted{color:#57606a}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _money(x: float | None) -> str:
    if x is None:
        return "-"
    cls = "neg" if x < 0 else "pos" if x > 0 else ""
    return f'<span class="{cls}">{x:,.2f}</span>'


def _plain(x: float | None) -> str:
    return "-" if x is None else f"{x:,.2f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.2f}%"


def _num(x: float | None, fmt: str = ".2f") -> str:
    return "-" if x is None else format(x, fmt)


def _breakdown_table(rows: list[dict[str, Any]], title: str) -> str:
    head = "".join(
        f"<th>{h}</th>"
        for h in (title, "trades", "pnl", "funding", "fees", "price", "borrow", "win rate")
    )
    body = "".join(
        f"<tr><td>{_e(r['key'])}</td><td>{r['trades']}</td><td>{_money(r['pnl'])}</td>"
        f"<td>{_money(r['funding'])}</td><td>{_money(r['fees'])}</td><td>{_money(r['price'])}</td>"
        f"<td>{_money(r['borrow'])}</td><td>{_pct(r['win_rate'])}</td></tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _totals(t: dict[str, Any]) -> str:
    rows = [
        ("pnl", _money(t["pnl"])),
        ("  funding", _money(t["funding"])),
        ("  fees", _money(t["fees"])),
        ("  price", _money(t["price"])),
        ("  borrow", _money(t["borrow"])),
        ("capital used (peak collateral)", _plain(t["capital_used"])),
        ("return on capital used", _pct(t["return_on_capital"])),
        ("APR on capital used", _pct(t["apr_on_capital"])),
        ("initial balances", _plain(t["initial_balance"])),
        ("return on balances", _pct(t["return_on_balances"])),
        ("APR on balances", _pct(t["apr_on_balances"])),
        ("max drawdown", f"{_plain(t['max_drawdown'])} ({_pct(t['max_drawdown_fraction'])})"),
        ("Sharpe (daily equity, annualised)", _num(t["sharpe"])),
        ("Sortino (daily equity, annualised)", _num(t["sortino"])),
        ("traded notional", _plain(t["traded_notional"])),
        ("turnover (traded / capital used)", _num(t["turnover"])),
        ("trades (open)", f"{t['trades']} ({t['open_trades']})"),
        ("win rate (closed trades)", _pct(t["win_rate"])),
        ("average hold", "-" if t["average_hold_h"] is None else f"{t['average_hold_h']:.1f} h"),
        ("fills / funding payments", f"{t['fills']} / {t['funding_payments']}"),
        ("days", f"{t['days']:.1f}"),
    ]
    body = "".join(f'<tr><td class="l">{_e(k)}</td><td>{v}</td></tr>' for k, v in rows)
    return f"<table>{body}</table>"


def _position(p: dict[str, Any]) -> str:
    legs = ", ".join(f"{lg['side']} {lg['market']} {lg['exchange']}" for lg in p["legs"])
    pays = "".join(
        f"<tr><td>{_when(f['ts'])}</td><td class='l'>{_e(f['exchange'])}</td>"
        f"<td>{f['rate'] * 100:.4f}%</td><td>{f['mark']:,.2f}</td><td>{_money(f['amount'])}</td>"
        f"<td class='l muted'>{_e(f['source'] or '')}</td></tr>"
        for f in p["funding_payments"]
    )
    pay_table = (
        "<table><tr><th>settlement</th><th class='l'>venue</th><th>rate</th><th>mark</th>"
        f"<th>amount</th><th class='l'>source</th></tr>{pays}</table>"
        if pays
        else "<p class='muted'>no funding payment</p>"
    )
    hold = "open" if p["hold_h"] is None else f"{p['hold_h']:.0f} h"
    return (
        f"<details><summary>#{p['id']} {_e(p['rule'])} {_e(p['coin'])} ({_e(legs)}), "
        f"{_when(p['opened_at'])}, {hold}: pnl {_money(p['pnl'])} "
        f"(funding {_money(p['funding'])}, fees {_money(p['fees'])}, price {_money(p['price'])}, "
        f"borrow {_money(p['borrow'])}) <span class='muted'>{_e(p['close_reason'] or '')}</span>"
        f"</summary>{pay_table}</details>"
    )


def _positions(ps: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Each position's details, written as read."""
    empty = True
    for p in ps:
        empty = False
        yield _position(p)
    if empty:
        yield "<p>No position was opened.</p>"


def _sweep(sweep: dict[str, Any] | None) -> str:
    if not sweep:
        return ""
    names = sweep["parameters"]
    head = "".join(f"<th class='l'>{_e(n)}</th>" for n in names)
    head += (
        "<th>pnl</th><th>return on capital</th><th>max drawdown</th><th>Sharpe</th><th>trades</th>"
    )
    body = ""
    for i, r in enumerate(sweep["results"], start=1):
        t = r["totals"]
        cells = "".join(f"<td class='l'>{_e(r['overrides'][n])}</td>" for n in names)
        body += (
            f"<tr><td>{i}</td>{cells}<td>{_money(t['pnl'])}</td><td>{_pct(t['return_on_capital'])}</td>"
            f"<td>{_plain(t['max_drawdown'])}</td><td>{_num(t['sharpe'])}</td><td>{t['trades']}</td></tr>"
        )
    return (
        f"<h2>Sweep: {len(sweep['results'])} combinations, ranked by {_e(sweep['ranked_by'])}</h2>"
        f"<table><tr><th>#</th>{head}</tr>{body}</table>"
    )


def iter_html(report: dict[str, Any] | Report, plots: bool = True) -> Iterator[str]:
    """The page, in pieces: the head and the plots first, then a position at a time."""
    from ._plots import PLOTS

    r = Report.of(report)
    head = r.head
    images = ""
    if plots:
        for _key, (title, fn) in PLOTS.items():
            data = base64.b64encode(fn(r)).decode("ascii")
            images += f'<img alt="{_e(title)}" src="data:image/png;base64,{data}">'
    notes = "".join(f"<p class='note'>{_e(n)}</p>" for n in head["notes"])
    look = (
        f"<p class='look'><b>What the rules saw at each cycle:</b> {_e(head['lookahead'])}</p>"
        if head.get("lookahead")
        else "<p class='look'><b>What the rules saw:</b> the snapshots of the run itself "
        "(a paper run's live or recorded data).</p>"
    )
    yield (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>rulebook report</title><style>{_CSS}</style></head><body>"
        f"<h1>rulebook report</h1><p class='muted'>{_e(head['source'])}: "
        f"{_when(head['from'])} to {_when(head['to'])} UTC, {head['cycles']} cycles, "
        f"leverage {head['leverage']:g}</p>{look}{notes}"
        f"<h2>Totals</h2>{_totals(head['totals'])}"
        f"<h2>Plots</h2>{images}"
        f"{_sweep(head.get('sweep'))}"
        f"<h2>Per rule</h2>{_breakdown_table(head['per_rule'], 'rule')}"
        f"<h2>Per coin</h2>{_breakdown_table(head['per_coin'], 'coin')}"
        f"<h2>Per venue</h2><p class='muted'>From each position's legs on the venue; "
        f"win rates are per position, so not split by venue.</p>"
        f"{_breakdown_table(head['per_venue'], 'venue')}"
        f"<h2>Positions, with their funding payments</h2>"
    )
    yield from _positions(r.items("positions"))
    yield "</body></html>"


def render_html(report: dict[str, Any] | Report, plots: bool = True) -> str:
    """The whole page as one string (`iter_html` joined)."""
    return "".join(iter_html(report, plots))


def write_html(report: dict[str, Any] | Report, path: str | os.PathLike[str]) -> Path:
    """Write the page a piece at a time (memory does not grow with the positions)."""
    p = Path(path)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", encoding="utf-8") as fh:
        for piece in iter_html(report):
            fh.write(piece)
    return p
