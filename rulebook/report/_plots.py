"""The report's plots, drawn with matplotlib's Agg backend (no display needed).

Each function takes the report (a `build_report` dict or a `Report`) and returns
PNG bytes, so the HTML page embeds them and `docs/` can commit them.

A series of at most `MAX_POINTS` points is drawn whole, as it always was. A
longer one (a paper run of a million cycles) is reduced as it is read to at
most four points per column of `BUCKETS` across its time span: the first, the
lowest, the highest and the last (M4 aggregation), which draws the same line at
the image's width (810 pixels) without holding the series. Only the plots are
reduced: every printed figure is computed from every record (docs/backtest.md).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display, the same output everywhere

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ._streamed import Report, Span  # noqa: E402

__all__ = [
    "BUCKETS",
    "MAX_POINTS",
    "PLOTS",
    "Series",
    "plot_contribution",
    "plot_equity",
    "plot_exposure",
    "plot_funding_fees",
    "reduce_series",
]

_W, _H = 9.0, 3.6
# Fixed metadata: the same report gives the same PNG bytes.
_META = {"Software": None}
#: a series longer than this is drawn reduced (M4 over BUCKETS columns)
MAX_POINTS = 4_000
BUCKETS = 1_000


@dataclass
class Series:
    """One drawn line: times (ms) and values."""

    ts: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


class _M4:
    """First, lowest, highest and last point of each of BUCKETS columns over [first, last]."""

    def __init__(self, first: int, last: int) -> None:
        self.first, self.width = first, max(last - first, 1)
        self.out = Series()
        self._bucket: int | None = None
        self._kept: list[tuple[int, int, float]] = []  # (index, ts, value): first, lo, hi, last

    def add(self, i: int, t: int, v: float) -> None:
        b = min((t - self.first) * BUCKETS // self.width, BUCKETS - 1)
        if b != self._bucket:
            self.flush()
            self._bucket = b
            self._kept = [(i, t, v)] * 4
            return
        f, lo, hi, _ = self._kept
        self._kept = [f, (i, t, v) if v < lo[2] else lo, (i, t, v) if v > hi[2] else hi, (i, t, v)]

    def flush(self) -> None:
        for _, t, v in sorted(set(self._kept)):
            self.out.ts.append(t)
            self.out.values.append(v)
        self._kept = []


def reduce_series(read: Any, n: int, span: Span | None = None) -> list[Series]:
    """The n series of `read()` (an iterator of (ts, v1, ..., vn)), whole when short,
    else reduced per column (M4). `span` is (points, first ts, last ts) when known;
    else `read` is called twice: to count, then to keep."""
    if span is not None:
        count, first, last = span
    else:
        count, first, last = 0, 0, 0
        for row in read():
            if count == 0:
                first = row[0]
            last = row[0]
            count += 1
    if count <= MAX_POINTS:
        whole = [Series() for _ in range(n)]
        for row in read():
            for s, v in zip(whole, row[1:], strict=True):
                s.ts.append(row[0])
                s.values.append(v)
        return whole
    reducers = [_M4(first, last) for _ in range(n)]
    for i, row in enumerate(read()):
        for m, v in zip(reducers, row[1:], strict=True):
            m.add(i, row[0], v)
    for m in reducers:
        m.flush()
    return [m.out for m in reducers]


def _dates(ms: list[int]) -> Any:
    # matplotlib plots datetimes on a date axis; its stubs accept only arrays
    # and numbers, hence Any (a list of datetimes)
    return [datetime.fromtimestamp(t / 1000, tz=UTC) for t in ms]


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata=_META)
    plt.close(fig)
    return buf.getvalue()


def _time_axis(ax: Any) -> None:
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
    ax.grid(True, alpha=0.3)


def _with_drawdown(points: Iterable[dict[str, Any]]) -> Iterator[tuple[int, float, float]]:
    """(ts, equity, equity less its running peak), the peak as the plot always took it."""
    peak: float | None = None
    for p in points:
        v = p["equity"]
        peak = v if peak is None else max(peak, v)
        yield p["ts"], v, v - peak


def plot_equity(report: dict[str, Any] | Report) -> bytes:
    """Equity per cycle, and its drawdown from the running peak below it."""
    r = Report.of(report)
    eq, dd = reduce_series(lambda: _with_drawdown(r.items("equity")), 2, r.spans.get("equity"))
    fig, (a1, a2) = plt.subplots(
        2, 1, figsize=(_W, _H * 1.4), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    a1.plot(_dates(eq.ts), eq.values, color="#1f6feb", lw=1.2)
    a1.set_ylabel("equity")
    a1.set_title("Equity and drawdown")
    a2.fill_between(_dates(dd.ts), dd.values, 0, color="#d1242f", alpha=0.4, step="post")
    a2.set_ylabel("drawdown")
    for ax in (a1, a2):
        _time_axis(ax)
    return _png(fig)


def plot_funding_fees(report: dict[str, Any] | Report) -> bytes:
    """Cumulative funding received against cumulative fees paid."""
    r = Report.of(report)
    fig, ax = plt.subplots(figsize=(_W, _H))
    for key, label, color in (("cumulative_funding", "funding received", "#1a7f37"),
                              ("cumulative_fees", "fees paid", "#d1242f")):  # fmt: skip
        (s,) = reduce_series(
            lambda key=key: ((p["ts"], p["amount"]) for p in r.items(key)), 1, r.spans.get(key)
        )
        if s.ts:
            ax.step(_dates(s.ts), s.values, where="post", label=label, color=color)
    ax.set_title("Cumulative funding against fees")
    ax.legend(loc="upper left")
    _time_axis(ax)
    return _png(fig)


def plot_contribution(report: dict[str, Any] | Report) -> bytes:
    """Each rule's pnl split into funding, fees, price and borrow, with the net."""
    rows = Report.of(report).head["per_rule"]
    fig, ax = plt.subplots(figsize=(_W, max(1.6, 0.7 * len(rows) + 1.0)))
    names = [r["key"] for r in rows]
    y = list(range(len(rows)))
    colors = {"funding": "#1a7f37", "fees": "#d1242f", "price": "#9a6700", "borrow": "#8250df"}
    pos_left = [0.0] * len(rows)
    neg_left = [0.0] * len(rows)
    for part, color in colors.items():
        vals = [r[part] or 0.0 for r in rows]
        lefts = [pos_left[i] if v >= 0 else neg_left[i] for i, v in enumerate(vals)]
        ax.barh(y, vals, left=lefts, color=color, height=0.5, label=part)
        for i, v in enumerate(vals):
            if v >= 0:
                pos_left[i] += v
            else:
                neg_left[i] += v
    ax.scatter([r["pnl"] or 0.0 for r in rows], y, color="black", zorder=3, label="net pnl")
    ax.set_yticks(y, names)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_title("Contribution per rule")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(True, axis="x", alpha=0.3)
    return _png(fig)


def plot_exposure(report: dict[str, Any] | Report) -> bytes:
    """Gross notional of the open legs and the number of open positions over time."""
    r = Report.of(report)
    gross, count = reduce_series(
        lambda: ((p["ts"], p["gross"], p["positions"]) for p in r.items("exposure")),
        2,
        r.spans.get("exposure"),
    )
    fig, ax = plt.subplots(figsize=(_W, _H))
    ax.fill_between(_dates(gross.ts), gross.values, step="post", color="#1f6feb", alpha=0.35)
    ax.set_ylabel("gross notional")
    ax2 = ax.twinx()
    ax2.step(_dates(count.ts), count.values, where="post", color="#57606a", lw=0.8)
    ax2.set_ylabel("open positions")
    ax.set_title("Exposure and open positions")
    _time_axis(ax)
    return _png(fig)


PLOTS = {
    "equity": ("Equity and drawdown", plot_equity),
    "funding_fees": ("Cumulative funding against fees", plot_funding_fees),
    "contribution": ("Contribution per rule", plot_contribution),
    "exposure": ("Exposure and open positions", plot_exposure),
}
