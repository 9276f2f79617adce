"""An evaluation for an operator's terminal: a table, a summary line, explanations."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rulebook.engine import EIGHT_HOURS_S, RISK_LEVELS, Evaluation, Opportunity, figure_notes
from rulebook.lang import Explanation, format_value

__all__ = [
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


def render_table(ev: Evaluation, console: Console, include_unfired: bool = False) -> None:
    rows = [o for o in ev.opportunities if include_unfired or o.fired]
    if not rows:
        console.print("no rule fired" if not include_unfired else "no binding could be evaluated")
        return
    table = Table(
        title_justify="left",
        caption="legs: - short, + long | rates per 8h | money in the quote currency",
        caption_justify="left",
    )
    for name, justify in [
        ("rule", "left"),
        ("coin", "left"),
        ("legs", "left"),
        ("edge", "right"),
        ("APR", "right"),
        ("fees", "right"),
        ("net 8h", "right"),
        ("amount", "right"),
        ("exp 8h", "right"),
        ("exp net 8h", "right"),
        ("conf", "right"),
        ("risk", "left"),
        ("decision", "left"),
    ]:
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for o in rows:
        table.add_row(*_row(o))
    if not console.is_terminal:
        # Piped or captured output keeps whole rows rather than 80-column wrapping.
        console = Console(file=console.file, width=200, highlight=False, color_system=None)
    console.print(table)
    notes = [o for o in rows if o.reason]
    for i, o in enumerate(notes, 1):
        console.print(f"  [{i}] {o.rule} {_bindings(o.bindings)}: {o.reason}", markup=False, soft_wrap=True)
    alerts = [(o, a) for o in rows for a in o.alerts]
    for o, a in alerts:
        console.print(f"  alert from {o.rule}: {a}", markup=False, soft_wrap=True)


def _row(o: Opportunity) -> list[str | Text]:
    f = o.figures
    rule = o.rule
    legs = _legs(o)
    if o.decision is None:
        decision = Text("not fired" if not o.fired else "-", style="dim")
    else:
        style = {"open": "green", "cut": "yellow", "blocked": "red"}.get(o.decision, "")
        decision = Text(o.decision, style=style)
    if f is None:
        return [rule, o.coin or "-", legs, *["-"] * 8, "-", decision]
    risk = RISK_LEVELS[f.risk]
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
    console.print(line, markup=False, soft_wrap=True)


def render_skipped(ev: Evaluation, console: Console, every: bool = False, limit: int = 8) -> None:
    """Skipped bindings: each one with --all or --explain, else grouped by reason."""
    if not ev.skipped:
        return
    if every:
        for s in ev.skipped:
            console.print(f"  skipped {s.rule} {_bindings(s.bindings)}: {s.reason}", markup=False, soft_wrap=True)
        return
    by_reason = Counter(s.reason for s in ev.skipped)
    rules: dict[str, set[str]] = {}
    for s in ev.skipped:
        rules.setdefault(s.reason, set()).add(s.rule)
    console.print(f"skipped {len(ev.skipped)} bindings (no data):", markup=False, soft_wrap=True)
    for reason, n in by_reason.most_common(limit):
        console.print(f"  {n} x {reason} ({', '.join(sorted(rules[reason]))})", markup=False, soft_wrap=True)
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
    console.print("explanations (sub-expressions in evaluation order):", markup=False, soft_wrap=True)
    for o in sorted(ev.opportunities, key=lambda o: o.order):
        if o.explanation is None:
            continue
        state = "fired" if o.fired else "not fired"
        console.print(f"  {o.rule} {_bindings(o.bindings)}: {state}", markup=False, soft_wrap=True)
        for line in _explain_lines(o.explanation):
            console.print(line, markup=False, soft_wrap=True)
        if o.figures is not None:
            for note in figure_notes(o.figures):
                console.print(f"      {note}", markup=False, soft_wrap=True)
        if o.decision:
            why = f" ({o.reason})" if o.reason else ""
            console.print(
                f"      decision: {o.decision} {format_value('Money', o.amount or 0)}{why}",
                markup=False,
                soft_wrap=True,
            )
    for s in ev.skipped:
        console.print(f"  {s.rule} {_bindings(s.bindings)}: skipped", markup=False, soft_wrap=True)
        if s.explanation is not None:
            for line in _explain_lines(s.explanation, s.reason):
                console.print(line, markup=False, soft_wrap=True)
        else:
            console.print(f"    -> skipped: {s.reason}", markup=False, soft_wrap=True)
