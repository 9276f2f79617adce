"""An evaluation for an operator's terminal: a table, a summary line, explanations."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rulebook._text import terminal_safe
from rulebook.engine import EIGHT_HOURS_S, RISK_LEVELS, Evaluation, Opportunity, figure_notes
from rulebook.lang import Explanation, format_value

from ._tables import Col, fit_table, print_fitted

__all__ = [
    "DRY_RUN_COLS",
    "render_table",
    "render_summary",
    "render_skipped",
    "render_explanations",
    "utc_time",
]


def _rate(x: float) -> str:
    return f"{x * 100:.4f}%"


def _legs(o: Opportunity) -> str:
    """Compact legs: `bybit: -perp +spot` on one exchange, `-bybit +okx` for two perps."""
    legs = o.legs
    if not legs:
        return "-"
    sign = {"short": "-", "long": "+"}
    if len({leg.exchange for leg in legs}) == 1:
        return f"{legs[0].exchange}: " + " ".join(sign[x.side] + x.market for x in legs)
    return " ".join(sign[x.side] + x.exchange for x in legs)


def _money(x: float | None) -> str:
    return "-" if x is None else f"{x:,.2f}"


def utc_time(ms: int) -> str:
    """A snapshot time for operators: `2024-06-30 16:00:00 UTC`."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _bindings(b: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in b.items())


# The dry-run table's columns, by priority: what fits 80 columns first (the
# rule, what it trades, its edge, expected net and decision), then APR, net
# rate, confidence, fees... as the width allows; --wide shows every one.
DRY_RUN_COLS = [
    Col("rule", "left", wrap=True),
    Col("coin", "left"),
    Col("legs", "left"),
    Col("edge"),
    Col("APR", keep=2),
    Col("fees", keep=5),
    Col("net 8h", keep=3),
    Col("amount", keep=6),
    Col("exp 8h", keep=8),
    Col("exp net", keep=1),
    Col("conf", keep=4),
    Col("risk", "left", keep=7),
    Col("breakeven", keep=9, wide=True),
    Col("decision", "left"),
]


def _ambiguous(rows: list[Opportunity]) -> set[int]:
    """Rows whose rule, coin and legs another row shares: their bindings tell them apart
    (`spread(c, hi, lo)` and `spread(c, lo, hi)` trade the same legs)."""
    seen = Counter((o.rule, o.coin, _legs(o)) for o in rows)
    return {i for i, o in enumerate(rows) if seen[(o.rule, o.coin, _legs(o))] > 1}


def render_table(
    ev: Evaluation, console: Console, include_unfired: bool = False, wide: bool = False
) -> None:
    rows = [o for o in ev.opportunities if include_unfired or o.fired]
    if not rows:
        console.print("no rule fired" if not include_unfired else "no binding could be evaluated")
        return
    ambiguous = _ambiguous(rows)
    cells = [_row(o, i in ambiguous) for i, o in enumerate(rows)]
    fitted = fit_table(DRY_RUN_COLS, cells, console.width, wide=wide)
    print_fitted(console, fitted, wide)
    caption = "- short, + long | rates per 8h | net: after the round trip's fees"
    caption += " | exp: money on the amount"
    if fitted.hidden:
        caption += f" | hidden at this width: {', '.join(fitted.hidden)} (--wide)"
    console.print(caption, markup=False, style="dim")
    notes = [o for o in rows if o.reason]
    for i, o in enumerate(notes, 1):
        print_item(console, f"  [{i}] ", f"{o.rule} {_bindings(o.bindings)}: {o.reason}")
    alerts = [(o, a) for o in rows for a in o.alerts]
    for o, a in alerts:
        print_item(console, "  alert ", f"from {o.rule}: {terminal_safe(a)}")


def print_item(console: Console, prefix: str, text: str) -> None:
    """`prefix` then `text`, its wrapped lines indented under the text (not the prefix)."""
    grid = Table.grid()
    grid.add_column(no_wrap=True)
    grid.add_column()
    grid.add_row(Text(prefix), Text(text))
    console.print(grid)


def _row(o: Opportunity, show_bindings: bool = False) -> list[str | Text]:
    f = o.figures
    rule = Text(o.rule)
    if show_bindings:
        # the bindings beyond the coin, under the rule's name
        rest = {k: v for k, v in o.bindings.items() if v != o.coin} or o.bindings
        rule.append("\n" + _bindings(rest), style="dim")
    legs = _legs(o)
    if o.decision is None:
        decision = Text("not fired" if not o.fired else "-", style="dim")
    else:
        style = {"open": "green", "cut": "yellow", "blocked": "red"}.get(o.decision, "")
        decision = Text(o.decision, style=style)
    if f is None:
        return [rule, o.coin or "-", legs, *["-"] * 10, decision]
    risk = RISK_LEVELS[f.risk]
    breakeven = "-" if f.breakeven_s == float("inf") else f"{f.breakeven_s / 3600:.1f}h"
    return [
        rule,
        o.coin or "-",
        legs,
        _rate(f.edge),
        f"{f.apr * 100:.1f}%",
        f"{f.fees * 100:.3f}%",
        _rate(f.net(EIGHT_HOURS_S)),
        _money(o.amount),
        _money(o.expected_8h),
        _money(o.expected_net_8h),
        f"{f.confidence:.2f}",
        Text(risk, style={"low": "green", "medium": "yellow", "high": "red"}[risk]),
        breakeven,
        decision,
    ]


def render_summary(ev: Evaluation, console: Console, source: str, rules: int) -> None:
    fired = ev.fired
    kinds = Counter(o.decision for o in fired)
    evaluated = ev.bindings - len(ev.skipped)
    not_fired = evaluated - len(fired)
    decided = ", ".join(
        f"{kinds[k]} {k.replace('_', ' ')}" for k in ("open", "cut", "blocked", "already_open")
    )
    exp_net = sum(o.expected_net_8h or 0.0 for o in fired if o.decision in ("open", "cut"))
    line = (
        f"{source} at {utc_time(ev.at)} | ruleset {ev.ruleset[:12]} | {rules} rules, "
        f"{ev.bindings} bindings: {len(fired)} fired ({decided}), {not_fired} not fired, "
        f"{len(ev.skipped)} skipped | expected net over 8h of what opens: {exp_net:,.2f}"
    )
    console.print(line, markup=False)


def render_skipped(ev: Evaluation, console: Console, every: bool = False, limit: int = 8) -> None:
    """Skipped bindings: each one with --all or --explain, else grouped by reason."""
    if not ev.skipped:
        return
    if every:
        for s in ev.skipped:
            print_item(console, "  skipped ", f"{s.rule} {_bindings(s.bindings)}: {s.reason}")
        return
    by_reason = Counter(s.reason for s in ev.skipped)
    rules: dict[str, set[str]] = {}
    for s in ev.skipped:
        rules.setdefault(s.reason, set()).add(s.rule)
    console.print(f"skipped {len(ev.skipped)} bindings (no data):", markup=False)
    for reason, n in by_reason.most_common(limit):
        print_item(console, f"  {n} x ", f"{reason} ({', '.join(sorted(rules[reason]))})")
    if len(by_reason) > limit:
        console.print(f"  ... and {len(by_reason) - limit} more reasons (--all lists each)")


def _explain_lines(e: Explanation, skipped: str | None = None) -> list[str]:
    out = [f"    {s.text} = {s.value}" for s in e.steps]
    if skipped is not None:
        # the when clause may have held while the subject's legs lack data
        out.append(f"    -> skipped: {skipped}")
    elif e.no_data:
        out.append(f"    -> skipped: {e.no_data}")
    elif e.fired:
        out.append("    -> fired: the when clause holds")
    else:
        out.append("    -> not fired: the when clause is false")
    return out


def render_explanations(ev: Evaluation, console: Console) -> None:
    """Every evaluated and skipped binding, with each sub-expression's value."""
    console.print("explanations (sub-expressions in evaluation order):", markup=False)
    for o in sorted(ev.opportunities, key=lambda o: o.order):
        if o.explanation is None:
            continue
        state = "fired" if o.fired else "not fired"
        console.print(f"  {o.rule} {_bindings(o.bindings)}: {state}", markup=False)
        for line in _explain_lines(o.explanation):
            console.print(line, markup=False)
        if o.figures is not None:
            for note in figure_notes(o.figures):
                console.print(f"      {note}", markup=False)
        if o.decision:
            why = f" ({o.reason})" if o.reason else ""
            console.print(
                f"      decision: {o.decision} {format_value('Money', o.amount or 0)}{why}",
                markup=False,
            )
    for s in ev.skipped:
        console.print(f"  {s.rule} {_bindings(s.bindings)}: skipped", markup=False)
        if s.explanation is not None:
            for line in _explain_lines(s.explanation, s.reason):
                console.print(line, markup=False)
        else:
            console.print(f"    -> skipped: {s.reason}", markup=False)
