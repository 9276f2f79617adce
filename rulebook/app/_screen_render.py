"""`rulebook screen` for a terminal: three tables that fit its width.

    group = render_screen(screen, width=console.width, wide=False)
    console.print(group)                     # or Live(group).update(...)
"""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.text import Text

from ._screen import Screen
from ._tables import Cell, Col, fit_table

__all__ = ["render_screen", "fmt_rate", "fmt_duration", "fmt_volume"]


def fmt_rate(x: float | None, digits: int = 4, sign: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x * 100:+.{digits}f}%" if sign else f"{x * 100:.{digits}f}%"


def fmt_apr(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def fmt_interval(h: float | None) -> str:
    return "-" if h is None else f"{h:g}h"


def fmt_duration(s: float | None) -> str:
    """Time to a settlement: `45s`, `12m`, `3h05m`; `due` once it is past."""
    if s is None:
        return "-"
    if s <= 0:
        return "due"
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    m = s // 60
    if m < 60:
        return f"{m}m"
    return f"{m // 60}h{m % 60:02d}m"


def fmt_volume(v: float | None) -> str:
    if v is None:
        return "-"
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.1f}{unit}"
    return f"{v:.0f}"


def fmt_price(p: float | None) -> str:
    if p is None:
        return "-"
    return f"{p:,.2f}" if p >= 100 else f"{p:.6g}"


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _signed(x: float | None) -> Text:
    if x is None:
        return Text("-")
    return Text(fmt_rate(x), style="green" if x > 0 else "red" if x < 0 else "")


VENUE_COLS = [
    Col("coin", "left"),
    Col("exchange", "left"),
    Col("per 8h"),
    Col("APR", keep=1),
    Col("rate", keep=4),  # per interval, as the exchange states it
    Col("int", keep=2),
    Col("next", keep=3),
    Col("basis", keep=5),
    Col("volume", keep=6),
    Col("mark", keep=7, wide=True),
]
SPREAD_COLS = [
    Col("coin", "left"),
    Col("best pair", "left"),
    Col("spread 8h"),
    Col("APR", keep=1),
    Col("venues", keep=2),
]
RULE_COLS = [
    Col("rule", "left", wrap=True),
    Col("coin", "left"),
    Col("now", "left"),
    Col("why", "left", wrap=True),
]


def render_screen(
    screen: Screen, width: int, *, wide: bool = False, sort: str = "funding",
    status: str | None = None, reverse: bool = False,
) -> RenderableType:
    """The funding table, the best spread per coin, the rules now, and the gaps.

    `status` (the live view's refresh line and warnings) goes under the title,
    where a terminal shorter than the screen still shows it."""
    parts: list[RenderableType] = []
    title = Text.assemble(
        ("funding ", "bold"),
        f"{_when(screen.at)} | {screen.source} | sorted by {sort}{', reversed' if reverse else ''}",
    )
    parts.append(title)
    if status:
        parts.append(Text(status, style="yellow" if status.startswith("warning") else "dim"))
    venue_rows: list[list[Cell]] = [
        [
            v.coin,
            v.exchange,
            _signed(v.funding_8h),
            fmt_apr(v.apr),
            fmt_rate(v.funding_rate),
            fmt_interval(v.interval_h),
            fmt_duration(v.next_funding_s),
            fmt_rate(v.basis, 3, sign=True),
            fmt_volume(v.volume_24h),
            fmt_price(v.mark),
        ]
        for v in screen.venues
    ]
    hidden: set[str] = set()
    if venue_rows:
        fitted = fit_table(VENUE_COLS, venue_rows, width, wide=wide)
        hidden.update(fitted.hidden)
        parts.append(fitted.table)
    else:
        parts.append(Text("no funding data for these coins"))
    if screen.spreads:
        spread_rows: list[list[Cell]] = [
            [s.coin, f"-{s.short} +{s.long}", fmt_rate(s.spread_8h), fmt_apr(s.apr), str(s.venues)]
            for s in screen.spreads
        ]
        parts.append(Text("best spread per coin (short the perp paid most)", style="bold"))
        fitted = fit_table(SPREAD_COLS, spread_rows, width, wide=wide)
        hidden.update(fitted.hidden)
        parts.append(fitted.table)
    if screen.rules:
        rule_rows: list[list[Cell]] = []
        for r in screen.rules:
            if r.fires:
                now = Text(r.decision or "fires", style="green" if r.decision == "open" else "yellow")
            else:
                now = Text("no data" if r.evaluated == 0 else "no", style="dim")
            rule_rows.append([r.rule, r.coin, now, r.why])
        parts.append(Text("rules now (best binding per rule and coin)", style="bold"))
        parts.append(fit_table(RULE_COLS, rule_rows, width, wide=wide).table)
    notes = []
    if screen.missing:
        notes.append(
            "no data: " + "; ".join(f"{ex} {why}" for ex, why in sorted(screen.missing.items()))
        )
    legend = "rates per 8h unless stated; rate: per interval (int); basis: (mark - spot) / spot"
    if hidden:
        legend += f" | hidden at this width: {', '.join(sorted(hidden))} (--wide)"
    notes.append(legend)
    parts.extend(Text(n, style="dim") for n in notes)
    return Group(*parts)
