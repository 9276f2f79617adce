"""The history format: settlement records plus the price observations there are.

A history file is a snapshot file (spec section 9, JSON Lines) that holds
only what was *recorded after the fact*:

* settlement records (``"market": "settlement"``): the rate that settled at
  ``ts`` for the interval ``funding_interval_h``, and the mark at settlement
  when the source has it;
* price observations: ``perp`` lines with ``mark`` (and ``index`` where the
  source has one) and ``spot`` lines with ``bid``/``ask``, without any
  funding field: a forecast is not history.

Where a source has no price for a leg, there is no line for it: nothing is
invented. :func:`read_history` turns files into a :class:`History` of
columnar series (one numpy array per field, per exchange and coin), which is
what the backtest's cycle builder and a later columnar (Parquet) reader share.
"""

from __future__ import annotations

import gzip
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rulebook.errors import RulebookError
from rulebook.market import LineError, Observation, Settlement, is_columnar, iter_jsonl

__all__ = [
    "History",
    "HistoryError",
    "PriceSeries",
    "SettlementSeries",
    "read_history",
    "write_history",
]


class HistoryError(RulebookError):
    """A history file cannot be used (missing, unreadable, or holds no usable line)."""


@dataclass(frozen=True, slots=True)
class SettlementSeries:
    """Every settlement of one perp: times (ms), rates, intervals (h), marks (NaN: none)."""

    ts: np.ndarray
    rate: np.ndarray
    interval_h: np.ndarray
    mark: np.ndarray

    def __len__(self) -> int:
        return int(self.ts.size)


@dataclass(frozen=True, slots=True)
class PriceSeries:
    """Price observations of one market: times (ms) and prices (perp mark / spot mid)."""

    ts: np.ndarray
    price: np.ndarray
    index: np.ndarray  # perp index (NaN where the source has none); NaN for spot
    volume: np.ndarray  # 24h volume in the quote currency (NaN where the source has none)

    def __len__(self) -> int:
        return int(self.ts.size)


@dataclass(slots=True)
class History:
    """Histories of several exchanges and coins, as columns, sorted by time."""

    settlements: dict[tuple[str, str], SettlementSeries] = field(default_factory=dict)
    prices: dict[tuple[str, str, str], PriceSeries] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    @property
    def span(self) -> tuple[int, int] | None:
        times = [s.ts for s in self.settlements.values() if len(s)] + [
            p.ts for p in self.prices.values() if len(p)
        ]
        if not times:
            return None
        return int(min(t[0] for t in times)), int(max(t[-1] for t in times))

    def has_price(self, exchange: str, coin: str, market: str) -> bool:
        """Whether any price is recorded for this leg (a perp's settlement marks count)."""
        p = self.prices.get((exchange, coin, market))
        if p is not None and len(p):
            return True
        if market == "perp":
            s = self.settlements.get((exchange, coin))
            return s is not None and bool(np.isfinite(s.mark).any())
        return False

    def coverage(self) -> list[dict[str, Any]]:
        """One row per perp series: settlements, span, intervals, and which prices exist."""
        rows = []
        for (ex, coin), s in sorted(self.settlements.items()):
            intervals = sorted({float(x) for x in np.unique(s.interval_h)})
            rows.append(
                {
                    "exchange": ex,
                    "coin": coin,
                    "settlements": len(s),
                    "from": int(s.ts[0]) if len(s) else None,
                    "to": int(s.ts[-1]) if len(s) else None,
                    "intervals_h": intervals,
                    "perp_prices": self.has_price(ex, coin, "perp"),
                    "spot_prices": self.has_price(ex, coin, "spot"),
                }
            )
        return rows


def write_history(path: str | os.PathLike[str], records: Iterable[dict[str, Any]]) -> int:
    """Write records (settlements and price observations) in time order; returns the count.

    The file is written beside its name and renamed when complete (as `write_columnar`
    does), so a file it replaces is never left half-written."""
    rows = sorted(
        records, key=lambda r: (r["ts"], r["exchange"], r["coin"], _MARKET_ORDER[r["market"]])
    )
    p = Path(path)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    if is_columnar(p):  # the same rows, as Parquet (docs/columnar.md)
        from rulebook.market import write_columnar

        return write_columnar(p, ({k: v for k, v in r.items() if v is not None} for r in rows))
    # mtime=0: the same records give the same bytes, so a re-import shows no diff.
    # and no file name in the header either.
    text = "".join(
        json.dumps({k: v for k, v in r.items() if v is not None}, separators=(",", ":"),
                   allow_nan=False) + "\n"
        for r in rows
    )  # fmt: skip
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as raw:
            if p.suffix == ".gz":
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                    gz.write(text.encode("utf-8"))
            else:
                raw.write(text.encode("utf-8"))
        os.replace(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)
    return len(rows)


_MARKET_ORDER = {"settlement": 0, "perp": 1, "spot": 2, "borrow": 3}

_Rows = dict[Any, list[tuple[int, float, float, float]]]


def _read_columnar(path: str, settle: _Rows, prices: _Rows, errors: list[LineError]) -> None:
    """A Parquet history file into the same per-series rows as its JSONL form gives,
    selected a row group at a time with numpy (same checks, same problems)."""
    from rulebook.market import iter_column_batches

    warned_forecast = False
    try:
        for b in iter_column_batches(path):
            found = list(b.problems)
            v = b.values
            settles = b.market == 3
            no_interval = settles & np.isnan(v["funding_interval_h"])
            found.extend(
                LineError(path, int(n), "funding_interval_h: a history needs each interval")
                for n in b.rows[no_interval]
            )
            perp, spot = b.market == 0, b.market == 1
            forecast = perp & ~np.isnan(v["funding_rate"])
            if forecast.any() and not warned_forecast:
                warned_forecast = True
                found.append(
                    LineError(
                        path,
                        int(b.rows[forecast][0]),
                        "perp lines with a funding rate are a live recording's "
                        "forecasts, not history: their rates are ignored (reported once)",
                        "warning",
                    )
                )
            found.sort(key=lambda e: e.line)
            errors.extend(found)
            bid, ask = v["bid"], v["ask"]
            mid = (bid + ask) / 2.0  # NaN unless both sides (the JSONL reader's o.mid())
            spot_price = np.where(np.isnan(mid), np.where(np.isnan(bid), ask, bid), mid)
            groups = (
                (settles & ~no_interval, settle, "settlement", v["funding_rate"],
                 v["funding_interval_h"], v["mark"]),
                (perp & ~np.isnan(v["mark"]), prices, "perp", v["mark"], v["index"],
                 v["volume_24h"]),
                (spot & ~np.isnan(spot_price), prices, "spot", spot_price,
                 np.full(b.ts.size, np.nan), v["volume_24h"]),
            )  # fmt: skip
            for mask, into, market, a1, a2, a3 in groups:
                keys = b.exchange[mask].astype(np.int64) << 32 | b.coin[mask].astype(np.int64)
                cols = (b.ts[mask], a1[mask], a2[mask], a3[mask])
                for k in np.unique(keys).tolist():
                    at = keys == k
                    ex, coin = b.exchanges[k >> 32], b.coins[k & 0xFFFFFFFF]
                    key: Any = (ex, coin) if market == "settlement" else (ex, coin, market)
                    into.setdefault(key, []).extend(
                        zip(*(c[at].tolist() for c in cols), strict=True)
                    )
    except OSError as e:
        raise HistoryError(f"{path}: cannot read: {e.strerror or e}") from None


def read_history(
    paths: Iterable[str | os.PathLike[str]],
) -> tuple[History, list[LineError]]:
    """Read history files into columns. Bad lines are reported and skipped.

    A perp line that carries a funding rate is a *forecast* (a live
    recording), not history: it is reported and its price is kept, its rate
    is not (the backtest builds what rules see from settlements only, so the
    look-ahead is the one it states).
    """
    settle: _Rows = {}
    prices: _Rows = {}
    errors: list[LineError] = []
    files: list[str] = []
    for path in paths:
        p = str(path)
        files.append(p)
        if is_columnar(p):
            _read_columnar(p, settle, prices, errors)
            continue
        warned_forecast = False
        try:
            # the market stage's reader: the same checks and line-numbered reports
            # as a recording (docs/limits.md), and its typed decode
            for n, rec, err in iter_jsonl(path):
                if err is not None:
                    errors.append(err)
                    continue
                if isinstance(rec, Settlement):
                    st = rec
                    if st.funding_interval_h is None:
                        errors.append(
                            LineError(p, n, "funding_interval_h: a history needs each interval")
                        )
                        continue
                    settle.setdefault((st.exchange, st.coin), []).append(
                        (
                            st.ts,
                            st.funding_rate,
                            st.funding_interval_h,
                            math.nan if st.mark is None else st.mark,
                        )
                    )
                    continue
                assert isinstance(rec, Observation)
                o = rec
                if o.market == "perp":
                    if o.funding_rate is not None and not warned_forecast:
                        warned_forecast = True
                        errors.append(
                            LineError(
                                p,
                                n,
                                "perp lines with a funding rate are a live recording's "
                                "forecasts, not history: their rates are ignored (reported once)",
                                "warning",
                            )
                        )
                    if o.mark is None:
                        continue
                    price, index = o.mark, o.index
                elif o.market == "spot":
                    mid = o.mid()
                    spot_price = mid if mid is not None else (o.bid or o.ask)
                    if spot_price is None:
                        continue
                    price, index = spot_price, None
                else:
                    continue  # borrow rates: not part of the history format yet
                prices.setdefault((o.exchange, o.coin, o.market), []).append(
                    (
                        o.ts,
                        float(price),
                        math.nan if index is None else float(index),
                        math.nan if o.volume_24h is None else float(o.volume_24h),
                    )
                )
        except OSError as e:
            raise HistoryError(f"{p}: cannot read: {e.strerror or e}") from None
    history = History(files=files)
    for key, rows in settle.items():
        rows.sort()
        ts = np.array([r[0] for r in rows], dtype=np.int64)
        keep = np.ones(ts.size, dtype=bool)
        keep[1:] = ts[1:] != ts[:-1]  # one settlement per time: the first line wins
        arr = np.array([r[1:] for r in rows], dtype=np.float64)[keep]
        history.settlements[key] = SettlementSeries(ts[keep], arr[:, 0], arr[:, 1], arr[:, 2])
    for pkey, prows in prices.items():
        prows.sort()
        ts = np.array([r[0] for r in prows], dtype=np.int64)
        keep = np.ones(ts.size, dtype=bool)
        keep[1:] = ts[1:] != ts[:-1]
        arr = np.array([r[1:] for r in prows], dtype=np.float64)[keep]
        history.prices[pkey] = PriceSeries(ts[keep], arr[:, 0], arr[:, 1], arr[:, 2])
    if not history.settlements and not history.prices:
        shown = ", ".join(files)
        raise HistoryError(f"{shown}: no usable settlement or price line")
    return history, errors
