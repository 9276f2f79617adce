"""Importers: third-party funding datasets to the history format.

Three real datasets, three formats, each with its pitfalls (docs/backtest.md):

* ``supervik``: ``Symbol,Date,Funding Rate`` per exchange and pair, no prices.
  Binance and Bybit dates are the author's local time, **UTC+3**; Gate's are
  UTC. Binance dates carry a few milliseconds of jitter.
* ``aha-hh``: 8h OHLCV candles with funding (``all_exchanges.csv``), in
  **Europe/London** local time (British Summer Time shifts it by an hour).
* ``zushen``: settlements with intervals and (Binance only) the mark at
  settlement, as the project's parquet files or the CSV made from them.

Each importer returns an :class:`ImportResult`: the records to write and
notes that say what the source does not have (no price for a leg is said,
never filled in).
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from rulebook._exchanges import EXCHANGES
from rulebook.errors import RulebookError
from rulebook.market import Settlement

__all__ = ["FORMATS", "HistoryImportError", "ImportResult", "detect_format", "import_history"]

FORMATS = ("supervik", "aha-hh", "zushen")

_H = 3_600_000
_MINUTE = 60_000


class HistoryImportError(RulebookError):
    """A source cannot be imported (unknown format, missing column, a time off its grid)."""


@dataclass(slots=True)
class ImportResult:
    format: str
    records: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the source lacks, said plainly
    skipped: int = 0  # source rows not taken (other pairs, predicted rates)

    def series(self) -> list[tuple[str, str, str]]:
        return sorted({(r["exchange"], r["coin"], r["market"]) for r in self.records})


# -- time ----------------------------------------------------------------------------


def _round_minute(ms: int) -> int:
    """Settlement times sit on the minute; APIs add a few ms of jitter (Binance's .001)."""
    return (ms + _MINUTE // 2) // _MINUTE * _MINUTE


def _parse_local(text: str) -> datetime:
    text = text.strip()
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise HistoryImportError(f"{text!r} is not a time like 2023-01-01 08:00:00")


def _fixed_offset_to_ms(text: str, hours: int) -> int:
    local = _parse_local(text).replace(tzinfo=UTC)
    return _round_minute(int((local - timedelta(hours=hours)).timestamp() * 1000))


def _last_sunday(year: int, month: int) -> datetime:
    d = datetime(year, month + 1, 1, tzinfo=UTC) - timedelta(days=1)
    return d - timedelta(days=(d.weekday() - 6) % 7)


def london_to_utc_ms(text: str) -> int:
    """Europe/London local time to UTC ms (BST: last Sunday of March to last Sunday of
    October, 01:00 UTC both ends). The autumn hour that happens twice is read as its
    first occurrence, BST, which is where an 8h grid puts it."""
    local = _parse_local(text).replace(tzinfo=UTC)
    start = _last_sunday(local.year, 3).replace(hour=1)
    end = _last_sunday(local.year, 10).replace(hour=1)
    as_bst = local - timedelta(hours=1)
    utc = as_bst if start <= as_bst < end else local
    return _round_minute(int(utc.timestamp() * 1000))


def _iso_to_ms(text: str) -> int:
    t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return _round_minute(int(t.timestamp() * 1000))


def _intervals_from_spacing(ts: list[int]) -> list[float]:
    """Each settlement's interval from the time since the previous one.

    Across a gap in the source (more than the series' usual spacing), and for
    the first settlement, the usual spacing is taken: a gap is missing data,
    not a 16h interval."""
    if len(ts) < 2:
        return [8.0] * len(ts)
    gaps = [b - a for a, b in zip(ts, ts[1:], strict=False)]
    usual = Counter(gaps).most_common(1)[0][0]
    out = [usual / _H]
    for g in gaps:
        out.append((g if 0 < g <= usual else usual) / _H)
    return out


def _settlement(ex: str, coin: str, ts: int, rate: float, interval_h: float, mark: float | None):
    rec = {
        "ts": ts,
        "exchange": ex,
        "coin": coin,
        "market": "settlement",
        "funding_rate": rate,
        "funding_interval_h": interval_h,
        "mark": mark,
    }
    try:
        Settlement.checked(**rec)  # spec 9's checks, the market stage's model
    except msgspec.ValidationError as e:
        raise HistoryImportError(f"{ex} {coin} at {ts}: {e}") from None
    return rec


# -- supervik ------------------------------------------------------------------------

# The fetcher wrote binance and bybit times with datetime.fromtimestamp on a
# UTC+3 machine; its gate times are UTC (checked: 03/11/19 against 00/08/16).
SUPERVIK_UTC_OFFSET_H = {"binance": 3, "bybit": 3, "gate": 0}
_SUPERVIK_NAME = re.compile(
    r"^(?P<pair>[A-Z0-9]+-[A-Z0-9]+)_(?P<ex>[a-z]+)_.*funding_history\.csv$"
)


def import_supervik(paths: Iterable[Path]) -> ImportResult:
    res = ImportResult("supervik")
    files = []
    for p in paths:
        files.extend(sorted(p.rglob("*_funding_history.csv")) if p.is_dir() else [p])
    if not files:
        raise HistoryImportError("no *_funding_history.csv files found")
    for f in files:
        m = _SUPERVIK_NAME.match(f.name)
        if m is None:
            raise HistoryImportError(
                f"{f}: not a supervik file name (PAIR_exchange_..._funding_history.csv)"
            )
        ex = m["ex"]
        if ex not in SUPERVIK_UTC_OFFSET_H:
            res.skipped += 1
            res.notes.append(f"{f.name}: exchange {ex} is not one rulebook trades; skipped")
            continue
        base, quote = m["pair"].split("-")
        offset = SUPERVIK_UTC_OFFSET_H[ex]
        rows: list[tuple[int, float]] = []
        with open(f, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames != ["Symbol", "Date", "Funding Rate"]:
                raise HistoryImportError(f"{f}: expected columns Symbol,Date,Funding Rate")
            for n, row in enumerate(reader, start=2):
                try:
                    rows.append(
                        (_fixed_offset_to_ms(row["Date"], offset), float(row["Funding Rate"]))
                    )
                except (ValueError, HistoryImportError) as e:
                    raise HistoryImportError(f"{f}:{n}: {e}") from None
        rows.sort()
        for ts, _ in rows:
            if ts % _H:
                raise HistoryImportError(
                    f"{f}: {ts} is off the hourly grid after the UTC{offset:+d} fix"
                )
        ts_list = [t for t, _ in rows]
        for (ts, rate), interval in zip(rows, _intervals_from_spacing(ts_list), strict=True):
            res.records.append(_settlement(ex, base, ts, rate, interval, None))
        res.notes.append(
            f"{ex} {base}-{quote}: {len(rows)} settlements, no prices in this dataset "
            "(no perp mark, no spot): a backtest refuses rules that trade this leg"
        )
    return res


# -- AHA-HH --------------------------------------------------------------------------

_AHA_COINS = {"bitcoin": "BTC", "ethereum": "ETH"}
_AHA_COLUMNS = ["time", "exchange", "crypto", "pair", "contract", "open", "high", "low",
                "close", "volume", "funding rate"]  # fmt: skip


def import_aha_hh(path: Path) -> ImportResult:
    """USDT-margined perps and spot; coin-margined (USDCM) perps are skipped.

    The candle *open* at a settlement time t is the price at t, known by then:
    the perp's is a perp price observation (a last-trade price, the nearest the
    source has to a mark), the spot's a spot observation (bid = ask = it: the
    source has no book). 24h volume is the three 8h candles closed before t.
    The ``funding rate`` of a perp row at t is the rate that settled at t.
    """
    res = ImportResult("aha-hh")
    series: dict[tuple[str, str, str], dict[int, dict[str, str]]] = defaultdict(dict)
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames != _AHA_COLUMNS:
            raise HistoryImportError(f"{path}: expected columns {','.join(_AHA_COLUMNS)}")
        for n, row in enumerate(reader, start=2):
            coin = _AHA_COINS.get(row["crypto"])
            if coin is None or row["exchange"] not in EXCHANGES:
                res.skipped += 1
                continue
            if row["contract"] == "spot":
                market = "spot"
            elif row["pair"] == f"{coin}USDT":
                market = "perp"
            else:
                res.skipped += 1  # coin-margined perp: not the linear perp rules trade
                continue
            try:
                ts = london_to_utc_ms(row["time"])
            except HistoryImportError as e:
                raise HistoryImportError(f"{path}:{n}: {e}") from None
            if ts % (8 * _H):
                raise HistoryImportError(
                    f"{path}:{n}: {row['time']} (London) is off the 8h UTC grid"
                )
            series[(row["exchange"], coin, market)][ts] = row

    def volume(rows: dict[int, dict[str, str]], t: int) -> float | None:
        prev = [rows.get(t - k * 8 * _H) for k in (1, 2, 3)]
        if any(p is None for p in prev):
            return None
        return sum(float(p["volume"]) * float(p["close"]) for p in prev if p is not None)

    for (ex, coin, market), rows in sorted(series.items()):
        times = sorted(rows)
        if market == "perp":
            rated = [t for t in times if rows[t]["funding rate"].strip()]
            for t, interval in zip(rated, _intervals_from_spacing(rated), strict=True):
                res.records.append(
                    _settlement(ex, coin, t, float(rows[t]["funding rate"]), interval, None)
                )
        for t in times:
            px = float(rows[t]["open"])
            obs: dict[str, Any] = {"ts": t, "exchange": ex, "coin": coin, "market": market}
            if market == "perp":
                obs.update(symbol=f"{coin}/USDT:USDT", mark=px)
            else:
                obs.update(symbol=f"{coin}/USDT", bid=px, ask=px)
            obs["volume_24h"] = volume(rows, t)
            res.records.append(obs)
    exchanges = sorted({k[0] for k in series})
    res.notes.append(
        f"{', '.join(exchanges)}: perp prices are the perp candles' open (a trade price, "
        "used as the mark); spot prices are the spot candles' open (no book: bid = ask); "
        "no index price in this dataset"
    )
    return res


# -- ZuShen168 -----------------------------------------------------------------------

_ZUSHEN_SYMBOL = re.compile(r"^(?P<coin>[A-Z0-9]+)-(?P<quote>[A-Z]+)-PERP$")


def _zushen_rows(path: Path) -> Iterable[dict[str, Any]]:
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ModuleNotFoundError:
            raise HistoryImportError(
                f"{path}: reading parquet needs pyarrow (pip install 'rulebook[parquet]'), "
                "or import the CSV made from it"
            ) from None
        table = pq.read_table(path)
        for row in table.to_pylist():
            ts = row["settlement_ts"]
            row["settlement_ts"] = ts.isoformat() if hasattr(ts, "isoformat") else str(ts)
            yield row
        return
    with open(path, newline="", encoding="utf-8") as fh:
        yield from csv.DictReader(fh)


def _falsy(v: object) -> bool:
    return v in (False, None, "", "False", "false", "0", 0)


def import_zushen(paths: Iterable[Path], quote: str = "USDT") -> ImportResult:
    """Settled rates with their intervals; the mark at settlement where the venue gave one
    (Binance). Only perps margined in `quote` (one perp per exchange and coin)."""
    res = ImportResult("zushen")
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(p.rglob("*.parquet")) or sorted(p.rglob("*.csv")))
        else:
            files.append(p)
    by_series: dict[tuple[str, str], dict[int, dict[str, Any]]] = defaultdict(dict)
    for f in files:
        for row in _zushen_rows(f):
            ex = str(row["venue"])
            m = _ZUSHEN_SYMBOL.match(str(row["canonical_symbol"]))
            if ex not in EXCHANGES or m is None or m["quote"] != quote:
                res.skipped += 1
                continue
            if not _falsy(row.get("is_predicted")):
                res.skipped += 1  # a predicted rate is a forecast, not a settlement
                continue
            ts = _iso_to_ms(str(row["settlement_ts"]))
            by_series[(ex, m["coin"])][ts] = row
    if not by_series:
        raise HistoryImportError(f"no {quote}-margined perp settlements found")
    no_marks: list[str] = []
    for (ex, coin), rows in sorted(by_series.items()):
        have_mark = False
        times = sorted(rows)
        spaced = _intervals_from_spacing(times)
        for t, from_spacing in zip(times, spaced, strict=True):
            r = rows[t]
            mark_raw = r.get("mark_price")
            mark = None if mark_raw in (None, "") else float(mark_raw)
            have_mark = have_mark or mark is not None
            interval_raw = r.get("interval_hours")
            if interval_raw in (None, ""):
                # One bybit INJ row has none: the spacing of the settlements says it.
                interval = from_spacing
                res.notes.append(
                    f"{ex} {coin} at {t}: no interval in the source; {interval:g}h "
                    "from the spacing of settlements"
                )
            else:
                interval = float(interval_raw)
            res.records.append(_settlement(ex, coin, t, float(r["rate_raw"]), interval, mark))
        if not have_mark:
            no_marks.append(f"{ex} {coin}")
    if no_marks:
        res.notes.append(
            f"no prices in this dataset for {', '.join(no_marks)} (no mark at settlement, no "
            "spot): a backtest refuses rules that trade these legs"
        )
    res.notes.append("no spot prices in this dataset: rules with a spot leg cannot trade on it")
    return res


# -- dispatch ------------------------------------------------------------------------


def detect_format(path: Path) -> str:
    """Which of FORMATS a file or directory holds, from names and CSV headers."""
    if path.is_dir():
        if any(path.rglob("*_funding_history.csv")):
            return "supervik"
        if any(path.rglob("*.parquet")):
            return "zushen"
        inner = sorted(path.glob("*.csv"))
        if len(inner) == 1:
            return detect_format(inner[0])
        raise HistoryImportError(f"{path}: cannot tell the dataset's format; give --format")
    if path.suffix == ".parquet":
        return "zushen"
    try:
        with open(path, encoding="utf-8") as fh:
            header = fh.readline().strip()
    except OSError as e:
        raise HistoryImportError(f"{path}: cannot read: {e.strerror or e}") from None
    if header == "Symbol,Date,Funding Rate":
        return "supervik"
    if header.startswith("time,exchange,crypto,pair,contract"):
        return "aha-hh"
    if header.startswith("venue,venue_symbol,canonical_symbol,settlement_ts"):
        return "zushen"
    raise HistoryImportError(
        f"{path}: unknown header {header[:60]!r}; give --format ({', '.join(FORMATS)})"
    )


def import_history(
    paths: Iterable[str | os.PathLike[str]], fmt: str | None = None, quote: str = "USDT"
) -> ImportResult:
    """Import one dataset (files or directories of one format) to history records."""
    ps = [Path(p) for p in paths]
    if not ps:
        raise HistoryImportError("no source given")
    for p in ps:
        if not p.exists():
            raise HistoryImportError(f"{p}: no such file or directory")
    kinds = {fmt} if fmt is not None else {detect_format(p) for p in ps}
    if len(kinds) != 1:
        raise HistoryImportError(
            f"the sources mix formats ({', '.join(sorted(kinds))}); import each alone"
        )
    kind = kinds.pop()
    if kind == "supervik":
        return import_supervik(ps)
    if kind == "aha-hh":
        if len(ps) != 1 or ps[0].is_dir() and not list(ps[0].glob("*.csv")):
            raise HistoryImportError("aha-hh: give the one all_exchanges.csv")
        src = ps[0] if ps[0].is_file() else sorted(ps[0].glob("*.csv"))[0]
        return import_aha_hh(src)
    if kind == "zushen":
        return import_zushen(ps, quote)
    raise HistoryImportError(f"unknown format {kind!r}; known: {', '.join(FORMATS)}")
