"""The report's plots, drawn with matplotlib's Agg backend (no display needed).

Each function takes the report dict and returns PNG bytes, so the HTML page
embeds them and `docs/` can commit them.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display, the same output everywhere

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["PLOTS", "plot_contribution", "plot_equity", "plot_exposure", "plot_funding_fees"]

_W, _H = 9.0, 3.6
# Fixed metadata: the same report gives the same PNG bytes.
_META = {"Software": None}


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


def plot_equity(report: dict[str, Any]) -> bytes:
    """Equity per cycle, and its drawdown from the running peak below it."""
    pts = report["equity"]
    ts = _dates([p["ts"] for p in pts])
    eq = [p["equity"] for p in pts]
    peak: list[float] = []
    for v in eq:
        peak.append(v if not peak else max(peak[-1], v))
    dd = [v - p for v, p in zip(eq, peak, strict=True)]
    fig, (a1, a2) = plt.subplots(
        2, 1, figsize=(_W, _H * 1.4), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    a1.plot(ts, eq, color="#1f6feb", lw=1.2)
    a1.set_ylabel("equity")
    a1.set_title("Equity and drawdown")
    a2.fill_between(ts, dd, 0, color="#d1242f", alpha=0.4, step="post")
    a2.set_ylabel("drawdown")
    for ax in (a1, a2):
        _time_axis(ax)
    return _png(fig)


def plot_funding_fees(report: dict[str, Any]) -> bytes:
    """Cumulative funding received against cumulative fees paid."""
    fig, ax = plt.subplots(figsize=(_W, _H))
    f = report["cumulative_funding"]
    c = report["cumulative_fees"]
    if f:
        ax.step(_dates([p["ts"] for p in f]), [p["amount"] for p in f], where="post",
                label="funding received", color="#1a7f37")  # fmt: skip
    if c:
        ax.step(_dates([p["ts"] for p in c]), [p["amount"] for p in c], where="post",
                label="fees paid", color="#d1242f")  # fmt: skip
    ax.set_title("Cumulative funding against fees")
    ax.legend(loc="upper left")
    _time_axis(ax)
    return _png(fig)


def plot_contribution(report: dict[str, Any]) -> bytes:
    """Each rule's pnl split into funding, fees, price and borrow, with the net."""
    rows = report["per_rule"]
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


def plot_exposure(report: dict[str, Any]) -> bytes:
    """Gross notional of the open legs and the number of open positions over time."""
    pts = report["exposure"]
    ts = _dates([p["ts"] for p in pts])
    fig, ax = plt.subplots(figsize=(_W, _H))
    ax.fill_between(ts, [p["gross"] for p in pts], step="post", color="#1f6feb", alpha=0.35)
    ax.set_ylabel("gross notional")
    ax2 = ax.twinx()
    ax2.step(ts, [p["positions"] for p in pts], where="post", color="#57606a", lw=0.8)
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
