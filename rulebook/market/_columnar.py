"""The columnar snapshot format: a recording or a history as one Parquet file.

JSON Lines stays the interchange format (spec 9); this is the format to keep
and replay a long history in. One row per line of the JSONL file, in file
order, observations and settlement records alike (``market`` says which), with
the same field names; docs/columnar.md describes the schema, the row groups
and the compression.

* :func:`write_columnar` writes rows (the dicts a JSON line decodes to);
* :func:`iter_columns` reads a file by row group straight into per-cycle
  :class:`ObservationColumns` (numpy arrays, no Python object per observation),
  which is what :class:`ReplaySource` feeds ``SnapshotView.from_columns``;
* :func:`iter_parquet` yields ``(row, record, error)`` like ``iter_jsonl``, for
  the readers that want records (dry-run's snapshot, ``history`` reading);
* :func:`convert` turns JSONL (or .jsonl.gz) into Parquet and back; a file
  written by Python's ``json`` or by rulebook comes back byte for byte.

Every value is checked as a JSON line's is (docs/limits.md), vectorised over a
row group; a bad row is reported with its row number (1-based, in file order)
and skipped, exactly as a bad JSONL line is. pyarrow is an optional extra
(``pip install 'rulebook[parquet]'``) and is imported only when a Parquet file
is read or written.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import queue
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import numpy as np

from rulebook._exchanges import EXCHANGES

from ._checks import LIMITS, check_coin
from ._filetype import COLUMNAR_SUFFIXES, PARQUET_HINT, is_columnar
from ._jsonl import (
    _FIELDS,
    LineError,
    Record,
    _short,
    _validate,
    iter_objects,
)
from ._settlement import Settlement

__all__ = [
    "COLUMNAR_SUFFIXES",
    "PARQUET_HINT",
    "ColumnBatch",
    "ConvertResult",
    "ObservationColumns",
    "convert",
    "fold_into_columnar",
    "has_observations",
    "is_columnar",
    "iter_column_batches",
    "iter_columns",
    "iter_parquet",
    "iter_records",
    "read_columnar_rows",
    "series_ends",
    "spool_path",
    "time_span",
    "write_columnar",
]

#: the value of the file's `rulebook.format` metadata key
FORMAT_TAG = b"rulebook-snapshot/1"
#: rows per row group: about 5 MB of columns in memory per group read
ROW_GROUP_ROWS = 65_536
#: rows per batch when only the first valid observation is wanted
_PROBE_ROWS = 4_096

#: the fields of a line in the order rulebook (and the spec's examples) write them
FIELD_ORDER: tuple[str, ...] = (
    "ts",
    "exchange",
    "coin",
    "market",
    "symbol",
    "funding_rate",
    "funding_interval_h",
    "next_funding_ts",
    "mark",
    "index",
    "bid",
    "ask",
    "volume_24h",
    "taker_fee",
    "borrow_rate_daily",
)
#: the float64 columns (null = absent)
FLOAT_FIELDS: tuple[str, ...] = (
    "funding_rate",
    "funding_interval_h",
    "mark",
    "index",
    "bid",
    "ask",
    "volume_24h",
    "taker_fee",
    "borrow_rate_daily",
)
_FLOAT_BIT = {name: 1 << i for i, name in enumerate(FLOAT_FIELDS)}
#: the market codes of the file and of ObservationColumns (settlement rows never reach a view)
MARKET_CODES: tuple[str, ...] = ("perp", "spot", "borrow", "settlement")
_SETTLEMENT = 3
_OBS_MARKETS = ("perp", "spot", "borrow")
_PERP_ONLY = ("funding_rate", "funding_interval_h", "mark", "index")
_SETTLEMENT_STRAY = ("index", "bid", "ask", "volume_24h", "taker_fee", "borrow_rate_daily")
# the bounds of docs/limits.md, from the one table (`_checks.LIMITS`)
_MIN_MS = int(LIMITS["timestamp_ms"].low)
_MAX_MS = int(LIMITS["timestamp_ms"].high)
PRICE_RANGE = (LIMITS["price"].low, LIMITS["price"].high)
MAX_FUNDING_RATE = LIMITS["funding_rate"].high
INTERVAL_RANGE_H = (LIMITS["funding_interval_h"].low, LIMITS["funding_interval_h"].high)
MAX_VOLUME = LIMITS["volume_24h"].high
MAX_BORROW_RATE_DAILY = LIMITS["borrow_rate_daily"].high
MAX_TAKER_FEE = LIMITS["taker_fee"].high
_DEFAULT_SEPARATORS = (", ", ": ")


def _arrow() -> Any:
    """pyarrow, or an OSError with the one line that says how to get it."""
    try:
        import pyarrow as pa
        import pyarrow.parquet  # noqa: F401 - loads pa.parquet
    except ModuleNotFoundError:
        raise OSError(PARQUET_HINT) from None
    return pa


# -- the per-cycle columns (the contract with the view: docs/columnar.md) ----------------


@dataclass(frozen=True, slots=True)
class ObservationColumns:
    """The latest observation per (exchange, coin, market) at ``at``, as columns.

    One row per market, in the order the markets first appeared in the file.
    Strings are small-int codes into the category tuples; every number field is
    a float64 array with NaN for null (``next_funding_ts`` too: milliseconds are
    exact in a float64). Every value has passed the checks of docs/limits.md.
    The arrays belong to this object: nothing changes them afterwards.
    """

    at: int
    exchanges: tuple[str, ...]
    coins: tuple[str, ...]
    markets: tuple[str, ...]
    symbols: tuple[str, ...]
    exchange: np.ndarray  # int16 codes into `exchanges`
    coin: np.ndarray  # int32 codes into `coins`
    market: np.ndarray  # int8 codes into `markets`
    symbol: np.ndarray  # int32 codes into `symbols`, -1 = null
    ts: np.ndarray  # int64 ms: each observation's own time (<= at)
    next_funding_ts: np.ndarray
    funding_rate: np.ndarray
    funding_interval_h: np.ndarray
    mark: np.ndarray
    index: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    volume_24h: np.ndarray
    taker_fee: np.ndarray
    borrow_rate_daily: np.ndarray
    #: settlement records that arrive with this cycle (SnapshotView.settlements)
    settlements: tuple[Settlement, ...] = ()

    def __len__(self) -> int:
        return int(self.ts.size)

    def rows(self) -> Iterator[dict[str, Any]]:
        """Each row as the dict its JSON line decodes to (nulls left out)."""
        for i in range(len(self)):
            row: dict[str, Any] = {
                "ts": int(self.ts[i]),
                "exchange": self.exchanges[int(self.exchange[i])],
                "coin": self.coins[int(self.coin[i])],
                "market": self.markets[int(self.market[i])],
            }
            s = int(self.symbol[i])
            if s >= 0:
                row["symbol"] = self.symbols[s]
            nxt = float(self.next_funding_ts[i])
            if nxt == nxt:
                row["next_funding_ts"] = int(nxt)
            for name in FLOAT_FIELDS:
                v = float(getattr(self, name)[i])
                if v == v:
                    row[name] = v
            yield row


# -- writing ------------------------------------------------------------------------


def _schema(pa: Any) -> Any:
    fields = [
        pa.field("ts", pa.int64(), nullable=False),
        pa.field("exchange", pa.dictionary(pa.int8(), pa.string()), nullable=False),
        pa.field("coin", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("market", pa.dictionary(pa.int8(), pa.string()), nullable=False),
        pa.field("symbol", pa.dictionary(pa.int32(), pa.string())),
        pa.field("next_funding_ts", pa.int64()),
        *(pa.field(name, pa.float64()) for name in FLOAT_FIELDS),
        # which float fields the line wrote as JSON integers (`8`, not `8.0`): bit i is
        # FLOAT_FIELDS[i]; kept so that a JSONL file converts back byte for byte
        pa.field("json_ints", pa.uint16(), nullable=False),
        # keys the format does not know, as the JSON object text of the line's own
        # (a newer writer's fields): kept, so converting loses nothing stored
        pa.field("extra", pa.string()),
    ]
    return pa.schema(fields)


def _metadata(separators: tuple[str, str]) -> dict[bytes, bytes]:
    return {
        b"rulebook.format": FORMAT_TAG,
        b"rulebook.json_separators": json.dumps(list(separators)).encode(),
    }


def _as_int(v: object) -> int | None:
    """An integer field's value; a float with an integral value is accepted (1.7e12)."""
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"{v!r} is not an integer")
    if isinstance(v, float):
        if not (math.isfinite(v) and v.is_integer()):
            raise ValueError(f"{v!r} is not an integer")
        return int(v)
    return v


def _as_float(v: object) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"{v!r} is not a number")
    return float(v)


def _table(pa: Any, rows: list[Mapping[str, Any]], separators: tuple[str, str]) -> Any:
    known = frozenset(FIELD_ORDER)
    cols: dict[str, Any] = {
        "ts": [_as_int(r.get("ts")) for r in rows],
        "exchange": [str(r.get("exchange")) for r in rows],
        "coin": [str(r.get("coin")) for r in rows],
        "market": [str(r.get("market")) for r in rows],
        "symbol": [None if (s := r.get("symbol")) is None else str(s) for r in rows],
        "next_funding_ts": [_as_int(r.get("next_funding_ts")) for r in rows],
    }
    ints = [0] * len(rows)
    for name in FLOAT_FIELDS:
        bit = _FLOAT_BIT[name]
        values: list[float | None] = []
        for i, r in enumerate(rows):
            v = r.get(name)
            if type(v) is int:
                ints[i] |= bit
            values.append(_as_float(v))
        cols[name] = values
    cols["json_ints"] = ints
    item, key = separators
    cols["extra"] = [
        json.dumps(extra, separators=(item, key), allow_nan=False)
        if (extra := {k: v for k, v in r.items() if k not in known})
        else None
        for r in rows
    ]
    schema = _schema(pa)
    arrays = []
    for f in schema:
        if pa.types.is_dictionary(f.type):
            arrays.append(pa.array(cols[f.name], pa.string()).dictionary_encode().cast(f.type))
        else:
            arrays.append(pa.array(cols[f.name], f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def write_columnar(
    path: str | os.PathLike[str],
    rows: Iterable[Mapping[str, Any]],
    *,
    separators: tuple[str, str] = (",", ":"),
    row_group_rows: int = ROW_GROUP_ROWS,
) -> int:
    """Write rows (the dicts JSON lines decode to) as a Parquet file, in the order given.

    The file appears whole or not at all: it is written beside the target and
    renamed. ``separators`` are those of the JSON text the rows came from
    (``convert`` writes them back the same way). Returns the count of rows."""
    pa = _arrow()
    pq = pa.parquet
    target = Path(path)
    if target.parent and not target.parent.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    schema = _schema(pa).with_metadata(_metadata(separators))
    count = 0
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            batch: list[Mapping[str, Any]] = []
            for r in rows:
                batch.append(r)
                if len(batch) >= row_group_rows:
                    writer.write_table(_table(pa, batch, separators))
                    count += len(batch)
                    batch = []
            if batch or count == 0:
                writer.write_table(_table(pa, batch, separators))
                count += len(batch)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count


# -- reading: the checks of docs/limits.md over a row group ------------------------------


@dataclass(slots=True)
class _Batch:
    """One row group as numpy columns with codes into the reader's global categories."""

    first_row: int  # 1-based row number of the batch's first row
    ts: np.ndarray
    ts_null: np.ndarray
    exchange: np.ndarray  # int16, -1 = not a known exchange (or null)
    coin: np.ndarray  # int32, -1 = invalid
    market: np.ndarray  # int8, -1 = invalid
    symbol: np.ndarray  # int32, -1 = null
    symbol_bad: np.ndarray  # longer than 100 characters
    next_funding_ts: np.ndarray  # float64, NaN = null
    next_null: np.ndarray
    floats: dict[str, np.ndarray]  # NaN = null
    nulls: dict[str, np.ndarray]
    ints: np.ndarray
    #: the `extra` text of each row that has one, by row index in the batch (few
    #: rows have one: a list of every row's would cost a Python object per row)
    extra: dict[int, str]
    #: the file's exchange, coin and symbol categories once this batch was decoded
    #: (what a cycle read from it names its codes with)
    categories: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = ((), (), ())


class _Categories:
    """Global codes for the strings of a file, batch dictionaries mapped onto them."""

    def __init__(self, fixed: tuple[str, ...] = ()) -> None:
        self.values: list[str] = list(fixed)
        self.code: dict[str, int] = {v: i for i, v in enumerate(fixed)}
        self._tuple: tuple[str, ...] | None = None

    def add(self, value: str) -> int:
        c = self.code.get(value)
        if c is None:
            c = self.code[value] = len(self.values)
            self.values.append(value)
            self._tuple = None
        return c

    def as_tuple(self) -> tuple[str, ...]:
        if self._tuple is None:
            self._tuple = tuple(self.values)
        return self._tuple


def _coin_ok(v: str) -> bool:
    return len(v) <= 32 and check_coin(v) is None


class _Decoder:
    """Turns record batches into checked numpy columns; holds the file's categories."""

    def __init__(self, pa: Any) -> None:
        self.pa = pa
        import pyarrow.compute as pc

        self.pc = pc
        self.exchanges = _Categories(EXCHANGES)
        self.coins = _Categories()
        self.symbols = _Categories()

    def _codes(self, column: Any, valid: Any, dtype: type[np.signedinteger[Any]]) -> np.ndarray:
        """Codes per row (-1: null, or rejected by `valid`)."""
        pa = self.pa
        if not pa.types.is_dictionary(column.type):
            column = self.pc.dictionary_encode(column.cast(pa.string()))
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        words: list[str | None] = column.dictionary.cast(pa.string()).to_pylist()
        mapping = np.array([valid(w) for w in words] + [-1], dtype=np.int64)
        idx = column.indices.fill_null(len(words)).to_numpy(zero_copy_only=False)
        codes: np.ndarray = mapping[idx.astype(np.int64)].astype(dtype)
        return codes

    def decode(self, batch: Any, first_row: int) -> _Batch:
        pa = self.pa
        n = batch.num_rows
        names = set(batch.schema.names)
        for required in ("ts", "exchange", "coin", "market"):
            if required not in names:
                raise OSError(f"not a rulebook snapshot file: no {required!r} column")

        def col(name: str) -> Any:
            return batch.column(name)

        def numbers(name: str) -> tuple[np.ndarray, np.ndarray]:
            if name not in names:
                return np.full(n, np.nan), np.ones(n, dtype=bool)
            c = col(name)
            null = c.is_null().to_numpy(zero_copy_only=False)
            if not (pa.types.is_floating(c.type) or pa.types.is_integer(c.type)):
                raise OSError(f"column {name!r} is {c.type}, not a number")
            return c.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False), null

        ts_col = col("ts")
        if not pa.types.is_integer(ts_col.type):
            raise OSError(f"column 'ts' is {ts_col.type}, not an integer")
        ts_null = ts_col.is_null().to_numpy(zero_copy_only=False)
        ts = ts_col.fill_null(0).cast(pa.int64()).to_numpy(zero_copy_only=False)
        ex = self._codes(col("exchange"), lambda w: self.exchanges.code.get(w, -1), np.int16)
        coin = self._codes(
            col("coin"), lambda w: self.coins.add(w) if w is not None and _coin_ok(w) else -1,
            np.int32,
        )  # fmt: skip
        market = self._codes(
            col("market"), lambda w: MARKET_CODES.index(w) if w in MARKET_CODES else -1, np.int8
        )
        if "symbol" in names:
            symbol = self._codes(
                col("symbol"), lambda w: -1 if w is None else self.symbols.add(w), np.int32
            )
            lengths = self.pc.utf8_length(col("symbol").cast(pa.string())).fill_null(0)
            symbol_bad = lengths.to_numpy(zero_copy_only=False) > 100
        else:
            symbol = np.full(n, -1, dtype=np.int32)
            symbol_bad = np.zeros(n, dtype=bool)
        nxt, nxt_null = numbers("next_funding_ts")
        floats: dict[str, np.ndarray] = {}
        nulls: dict[str, np.ndarray] = {}
        for name in FLOAT_FIELDS:
            floats[name], nulls[name] = numbers(name)
        ints = (
            col("json_ints").fill_null(0).cast(pa.uint16()).to_numpy(zero_copy_only=False)
            if "json_ints" in names
            else np.zeros(n, dtype=np.uint16)
        )
        extra: dict[int, str] = {}
        if "extra" in names and col("extra").null_count < n:
            texts = col("extra").cast(pa.string())
            valid = texts.is_valid()
            at = np.flatnonzero(valid.to_numpy(zero_copy_only=False)).tolist()
            extra = dict(zip(at, texts.filter(valid).to_pylist(), strict=True))
        categories = (self.exchanges.as_tuple(), self.coins.as_tuple(), self.symbols.as_tuple())
        return _Batch(
            first_row, ts, ts_null, ex, coin, market, symbol, symbol_bad, nxt, nxt_null,
            floats, nulls, ints, extra, categories,
        )  # fmt: skip


def _bad_rows(b: _Batch) -> np.ndarray:
    """Rows that fail a check of docs/limits.md (the model says which, for the message)."""
    f = b.floats
    present = {name: ~b.nulls[name] for name in FLOAT_FIELDS}
    bad = b.ts_null | (b.ts < _MIN_MS) | (b.ts > _MAX_MS)
    bad |= (b.exchange < 0) | (b.coin < 0) | (b.market < 0) | b.symbol_bad
    nxt_present = ~b.next_null
    with np.errstate(invalid="ignore"):
        bad |= nxt_present & ~(
            np.isfinite(b.next_funding_ts)
            & (b.next_funding_ts >= _MIN_MS)
            & (b.next_funding_ts <= _MAX_MS)
            & (b.next_funding_ts == np.floor(b.next_funding_ts))
        )
        for name in FLOAT_FIELDS:
            bad |= present[name] & ~np.isfinite(f[name])
        low, high = PRICE_RANGE
        for name in ("mark", "index", "bid", "ask"):
            bad |= present[name] & ~((f[name] >= low) & (f[name] <= high))
        bad |= present["funding_rate"] & ~(np.abs(f["funding_rate"]) <= MAX_FUNDING_RATE)
        ilow, ihigh = INTERVAL_RANGE_H
        bad |= present["funding_interval_h"] & ~(
            (f["funding_interval_h"] >= ilow) & (f["funding_interval_h"] <= ihigh)
        )
        bad |= present["volume_24h"] & ~((f["volume_24h"] >= 0) & (f["volume_24h"] <= MAX_VOLUME))
        bad |= present["borrow_rate_daily"] & ~(
            (f["borrow_rate_daily"] >= 0) & (f["borrow_rate_daily"] <= MAX_BORROW_RATE_DAILY)
        )
        bad |= present["taker_fee"] & ~((f["taker_fee"] >= 0) & (f["taker_fee"] < MAX_TAKER_FEE))
        bad |= present["bid"] & present["ask"] & (f["bid"] > f["ask"])
    perp, spot, borrow, settle = (b.market == i for i in range(4))
    not_perp = spot | borrow
    for name in _PERP_ONLY:
        bad |= not_perp & present[name]
    bad |= not_perp & nxt_present
    for name in ("bid", "ask", "volume_24h", "taker_fee"):
        bad |= borrow & present[name]
    bad |= borrow & ~present["borrow_rate_daily"]
    bad |= (perp | spot) & present["borrow_rate_daily"]
    bad |= settle & ~present["funding_rate"]
    bad |= settle & nxt_present
    for name in _SETTLEMENT_STRAY:
        bad |= settle & present[name]
    return bad


def _message(row: Mapping[str, Any], symbol: str | None) -> str:
    """Why the model rejects a row: the same words a bad JSON line gets."""
    data = dict(row)
    if symbol is not None:
        data["symbol"] = symbol
    for name in FLOAT_FIELDS:
        v = data.get(name)
        if isinstance(v, float) and not np.isfinite(v):
            return f"{name}: must be a finite number"
    try:
        _validate(data)
    except msgspec.ValidationError as e:
        return str(e)
    return "the row fails the format's checks"  # pragma: no cover - the checks agree


# -- reading ----------------------------------------------------------------------


def _batches(path: str | os.PathLike[str], rows: int = ROW_GROUP_ROWS) -> Iterator[Any]:
    """The file's record batches of up to `rows` rows (a row group at a time by default);
    OSError for a file that is not one."""
    pa = _arrow()
    try:
        pf = pa.parquet.ParquetFile(path)
    except FileNotFoundError:
        raise
    except (pa.ArrowException, ValueError) as e:
        raise OSError(f"not a Parquet file ({e})") from None
    with pf:
        try:
            yield from pf.iter_batches(batch_size=rows)
        except pa.ArrowException as e:
            raise OSError(f"Parquet file damaged ({e})") from None


class _Reader:
    """A Parquet file's checked batches, the bad rows reported as LineErrors."""

    def __init__(self, path: str | os.PathLike[str], batch_rows: int = ROW_GROUP_ROWS) -> None:
        self.path = str(path)
        self.batch_rows = batch_rows
        self.pa = _arrow()
        self.decoder = _Decoder(self.pa)
        self._warned: set[str] = set()

    def batches(
        self, ahead: bool = False
    ) -> Iterator[tuple[_Batch, np.ndarray, list[tuple[int, LineError]]]]:
        """(batch, good-row mask, [(row index in batch, problem)]). `ahead`: the next
        batch is read, decoded and checked in a thread while the caller works on this
        one (`_read_ahead`)."""
        return _read_ahead(self._checked()) if ahead else self._checked()

    def _checked(self) -> Iterator[tuple[_Batch, np.ndarray, list[tuple[int, LineError]]]]:
        first = 1
        for rb in _batches(self.path, self.batch_rows):
            try:
                b = self.decoder.decode(rb, first)
            except self.pa.ArrowException as e:  # a column of a type no cast makes a number
                raise OSError(f"unreadable columns ({e})") from None
            bad = _bad_rows(b)
            problems: list[tuple[int, LineError]] = []
            for i in np.flatnonzero(bad).tolist():
                problems.append((i, LineError(self.path, first + i, self._why(rb, b, i))))
            for i, text in b.extra.items():  # in row order
                if bad[i]:
                    continue
                for k in _extra_keys(text):
                    if k not in self._warned and k not in _FIELDS:
                        self._warned.add(k)
                        msg = f"unknown field {_short(k)} ignored (reported once per file)"
                        problems.append((i, LineError(self.path, first + i, msg, "warning")))
            problems.sort(key=lambda p: p[0])
            yield b, ~bad, problems
            first += rb.num_rows

    def _why(self, rb: Any, b: _Batch, i: int) -> str:
        row = rb.slice(i, 1).to_pylist()[0]
        data = {k: v for k, v in row.items() if k in _FIELDS and v is not None}
        for name in FLOAT_FIELDS:  # a NaN the model would see as a number
            if name in data and not np.isfinite(data[name]):
                return f"{name}: must be a finite number"
        return _message(data, None)


_T = TypeVar("_T")


def _read_ahead(items: Iterator[_T]) -> Iterator[_T]:
    """`items`, each made in a thread one ahead of the caller's use.

    A replay's per-cycle work holds the interpreter; reading a row group
    (pyarrow's decompression and decoding) and checking it (numpy over whole
    columns) mostly do not, so on a second core they overlap with it. Nothing
    else changes: the items come in order, an exception is raised where the
    item it replaced would have come, and at most two items wait beyond the
    one in use. Closing this iterator (or dropping it) stops the thread."""
    slot: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for x in items:
                slot.put((True, x))
                if stop.is_set():
                    return
            slot.put((True, done))
        except BaseException as e:  # handed to the caller, in order
            slot.put((False, e))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="rulebook-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            ok, x = slot.get()
            if not ok:
                raise x
            if x is done:
                return
            yield x
    finally:
        stop.set()
        while worker.is_alive():  # unblock a put, so that the thread sees `stop`
            try:
                slot.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()


def _extra(text: str) -> dict[str, Any]:
    """A row's unknown keys (an `extra` that is not a JSON object holds none)."""
    try:
        extra = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    return extra if isinstance(extra, dict) else {}


def _extra_keys(text: str) -> list[str]:
    return list(_extra(text))


def _row(b: _Batch, i: int, dec: _Decoder) -> dict[str, Any]:
    """Row i (a good one) as the dict its JSON line decodes to, in the writer's key order,
    floats written as integers where the line had them so."""
    row: dict[str, Any] = {
        "ts": int(b.ts[i]),
        "exchange": dec.exchanges.values[int(b.exchange[i])],
        "coin": dec.coins.values[int(b.coin[i])],
        "market": MARKET_CODES[int(b.market[i])],
    }
    s = int(b.symbol[i])
    if s >= 0:
        row["symbol"] = dec.symbols.values[s]
    ints = int(b.ints[i])
    for name in FIELD_ORDER[5:]:
        if name == "next_funding_ts":
            if not b.next_null[i]:
                row[name] = int(b.next_funding_ts[i])
            continue
        if not b.nulls[name][i]:
            v = float(b.floats[name][i])
            row[name] = int(v) if ints & _FLOAT_BIT[name] and v.is_integer() else v
    return row


def read_columnar_rows(
    path: str | os.PathLike[str],
) -> Iterator[tuple[int, dict[str, Any] | None, LineError | None]]:
    """``(row, dict, None)`` per good row, with the row's unknown keys after its own;
    ``(row, None, problem)`` per bad row or warning. What ``convert`` writes back."""
    reader = _Reader(path)
    for b, good, problems in reader.batches():
        at = 0
        for i in range(b.ts.size):
            while at < len(problems) and problems[at][0] == i:
                yield b.first_row + i, None, problems[at][1]
                at += 1
            if good[i]:
                row = _row(b, i, reader.decoder)
                text = b.extra.get(i)
                if text is not None:
                    for k, v in _extra(text).items():
                        row.setdefault(k, v)  # never over a field of the format
                yield b.first_row + i, row, None


def iter_parquet(
    path: str | os.PathLike[str],
) -> Iterator[tuple[int, Record | None, LineError | None]]:
    """``(row, record, None)`` or ``(row, None, error)``, as ``iter_jsonl`` does for lines.

    Records are built through the models' validating constructor; unknown keys
    are dropped (and reported once per file, as a warning)."""
    for n, row, err in read_columnar_rows(path):
        if err is not None:
            yield n, None, err
            continue
        assert row is not None
        try:
            yield n, _validate(row), None
        except msgspec.ValidationError as e:  # pragma: no cover - the vectorised checks agree
            yield n, None, LineError(str(path), n, str(e))


def iter_records(
    path: str | os.PathLike[str],
) -> Iterator[tuple[int, Record | None, LineError | None]]:
    """A snapshot file's records, JSONL (.gz too) or Parquet by the file's suffix."""
    if is_columnar(path):
        return iter_parquet(path)
    from ._jsonl import iter_jsonl

    return iter_jsonl(path)


def time_span(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """The first and last observation times of a file in time order (the `ts` of its
    first and last rows that are not settlement records: a progress bar's ends), or
    None if it has none.

    Only the `ts` and `market` columns of the first and last row groups holding an
    observation are read (usually two row groups of the whole file), not the file."""
    pa = _arrow()
    try:
        pf = pa.parquet.ParquetFile(path)
    except FileNotFoundError:
        raise
    except (pa.ArrowException, ValueError) as e:
        raise OSError(f"not a Parquet file ({e})") from None
    with pf:
        groups = range(pf.num_row_groups)
        try:
            first = next((ts[0] for i in groups if (ts := _observation_ts(pf, i)).size), None)
            if first is None:
                return None
            last = next(ts[-1] for i in reversed(groups) if (ts := _observation_ts(pf, i)).size)
        except (pa.ArrowException, ValueError) as e:
            raise OSError(f"not a Parquet file ({e})") from None
    return int(first), int(last)


def _observation_ts(pf: Any, group: int) -> np.ndarray:
    """The `ts` of a row group's rows that are not settlement records, in file order
    (rows without a `ts` left out)."""
    pa = _arrow()
    import pyarrow.compute as pc

    table = pf.read_row_group(group, columns=["ts", "market"])
    ts = table.column("ts")
    market = table.column("market").cast(pa.string())
    keep = pc.and_(pc.is_valid(ts), pc.fill_null(pc.not_equal(market, "settlement"), True))
    out: np.ndarray = ts.filter(keep).to_numpy().astype(np.int64, copy=False)
    return out


def has_observations(path: str | os.PathLike[str]) -> bool:
    """Whether the file holds one valid observation (what a replay needs to have a
    cycle), found with the replay's own checks a small batch at a time: the first
    valid observation ends the read, so a long file costs one batch."""
    for b, good, _ in _Reader(path, batch_rows=_PROBE_ROWS).batches():
        if np.any(good & (b.market != _SETTLEMENT)):
            return True
    return False


@dataclass(frozen=True, slots=True)
class ColumnBatch:
    """The valid rows of one row group as columns, for readers that group rows
    themselves (``rulebook.history`` builds its series from these)."""

    rows: np.ndarray  # int64: each row's 1-based number in the file
    exchanges: tuple[str, ...]
    coins: tuple[str, ...]
    exchange: np.ndarray  # int16 codes into `exchanges`
    coin: np.ndarray  # int32 codes into `coins`
    market: np.ndarray  # int8 codes into MARKETS ("perp", "spot", "borrow", "settlement")
    ts: np.ndarray  # int64 ms
    #: every number field but ts (next_funding_ts too), float64 with NaN for null
    values: dict[str, np.ndarray]
    #: the row group's bad rows (skipped) and warnings, in row order
    problems: list[LineError]

    MARKETS: tuple[str, ...] = MARKET_CODES


def iter_column_batches(path: str | os.PathLike[str]) -> Iterator[ColumnBatch]:
    """A Parquet file's row groups, checked: valid rows as numpy columns, and the problems."""
    reader = _Reader(path)
    dec = reader.decoder
    for b, good, problems in reader.batches():
        keep = np.flatnonzero(good)
        values = {name: b.floats[name][keep] for name in FLOAT_FIELDS}
        values["next_funding_ts"] = b.next_funding_ts[keep]
        yield ColumnBatch(
            rows=keep.astype(np.int64) + b.first_row,
            exchanges=dec.exchanges.as_tuple(),
            coins=dec.coins.as_tuple(),
            exchange=b.exchange[keep],
            coin=b.coin[keep],
            market=b.market[keep],
            ts=b.ts[keep],
            values=values,
            problems=[e for _, e in problems],
        )


# -- reading per cycle, into columns ----------------------------------------------------


class _State:
    """The latest observation per market, one slot per (exchange, coin, market) key."""

    def __init__(self) -> None:
        self.slot: dict[int, int] = {}
        self.size = 0
        cap = 64
        self.exchange = np.zeros(cap, dtype=np.int16)
        self.coin = np.zeros(cap, dtype=np.int32)
        self.market = np.zeros(cap, dtype=np.int8)
        self.symbol = np.full(cap, -1, dtype=np.int32)
        self.ts = np.zeros(cap, dtype=np.int64)
        self.next_funding_ts = np.full(cap, np.nan)
        self.floats = {name: np.full(cap, np.nan) for name in FLOAT_FIELDS}
        # the slots' codes as handed to the last columns, while no slot is added: a
        # slot's key never changes, so consecutive cycles share these (read-only)
        # arrays, and whoever derives something from a view's codes can keep it
        # while they are the same objects
        self._codes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _grow(self, need: int) -> None:
        cap = self.ts.size
        if need <= cap:
            return
        new = max(need, cap * 2)

        def grown(a: np.ndarray, fill: float | int) -> np.ndarray:
            out = np.full(new, fill, dtype=a.dtype)
            out[:cap] = a
            return out

        self.exchange = grown(self.exchange, 0)
        self.coin = grown(self.coin, 0)
        self.market = grown(self.market, 0)
        self.symbol = grown(self.symbol, -1)
        self.ts = grown(self.ts, 0)
        self.next_funding_ts = grown(self.next_funding_ts, np.nan)
        self.floats = {k: grown(v, np.nan) for k, v in self.floats.items()}

    def slots(self, b: _Batch, rows: np.ndarray) -> np.ndarray:
        """The slot of each row's key; new keys get new slots in row order."""
        key = (
            b.exchange[rows].astype(np.int64) << 40
            | b.coin[rows].astype(np.int64) << 8
            | b.market[rows].astype(np.int64)
        )
        uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        slot_of_uniq = np.empty(uniq.size, dtype=np.int64)
        for j in np.argsort(first, kind="stable").tolist():  # first appearance order
            k = int(uniq[j])
            s = self.slot.get(k)
            if s is None:
                s = self.slot[k] = self.size
                self.size += 1
                self._codes = None
                self._grow(self.size)
                r = int(rows[first[j]])
                self.exchange[s] = b.exchange[r]
                self.coin[s] = b.coin[r]
                self.market[s] = b.market[r]
            slot_of_uniq[j] = s
        return slot_of_uniq[inverse.ravel()]

    def apply(self, b: _Batch, rows: np.ndarray, slots: np.ndarray) -> None:
        """Rows (in file order) replace what their slots hold: the last row of a key wins."""
        if rows.size == 0:
            return
        k = rows.size
        if k > 1 and int(slots[-1]) - int(slots[0]) == k - 1 == int(rows[-1]) - int(rows[0]):
            # rows (in file order) and slots both k consecutive numbers once they rise
            # throughout: each row onto its slot, one to one (every cycle of a file
            # rulebook wrote: all its markets, in slot order), copied as slices rather
            # than gathered and scattered: the same values
            if int(np.count_nonzero(slots[1:] > slots[:-1])) == k - 1 and int(
                np.count_nonzero(rows[1:] > rows[:-1])
            ) == k - 1:
                self._apply_run(b, int(rows[0]), int(slots[0]), k)
                return
        if rows.size == 1 or bool(np.all(slots[1:] > slots[:-1])):
            r, s = rows, slots  # one row per key (the usual cycle: keys in slot order)
        else:
            # of several rows of one key, the last: unique over the reversed order
            _, last_rev = np.unique(slots[::-1], return_index=True)
            pick = rows.size - 1 - last_rev
            r, s = rows[pick], slots[pick]
        self.ts[s] = b.ts[r]
        self.symbol[s] = b.symbol[r]
        self.next_funding_ts[s] = b.next_funding_ts[r]
        for name in FLOAT_FIELDS:
            self.floats[name][s] = b.floats[name][r]

    def _apply_run(self, b: _Batch, r0: int, s0: int, k: int) -> None:
        """`apply` of rows r0..r0+k-1 onto slots s0..s0+k-1, one to one, in order."""
        r, s = slice(r0, r0 + k), slice(s0, s0 + k)
        self.ts[s] = b.ts[r]
        self.symbol[s] = b.symbol[r]
        self.next_funding_ts[s] = b.next_funding_ts[r]
        floats = b.floats
        for name, a in self.floats.items():
            a[s] = floats[name][r]

    def columns(
        self,
        at: int,
        categories: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]],
        settlements: tuple[Settlement, ...],
    ) -> ObservationColumns:
        n = self.size
        codes = self._codes
        if codes is None:
            codes = self._codes = (
                _frozen(self.exchange[:n]), _frozen(self.coin[:n]), _frozen(self.market[:n])
            )
        return ObservationColumns(
            at=at,
            exchanges=categories[0],
            coins=categories[1],
            markets=_OBS_MARKETS,
            symbols=categories[2],
            exchange=codes[0],
            coin=codes[1],
            market=codes[2],
            symbol=self.symbol[:n].copy(),
            ts=self.ts[:n].copy(),
            next_funding_ts=self.next_funding_ts[:n].copy(),
            settlements=settlements,
            **{name: a[:n].copy() for name, a in self.floats.items()},
        )


def _frozen(a: np.ndarray) -> np.ndarray:
    """A read-only copy."""
    out = a.copy()
    out.setflags(write=False)
    return out


def iter_columns(
    path: str | os.PathLike[str],
    on_problem: Any = None,
) -> Iterator[ObservationColumns]:
    """The file's cycles, in time order: at each distinct observation time, the latest
    observation per market as :class:`ObservationColumns`, with the settlement records
    due then. The same cycles, figures and problems as ``ReplaySource`` over the JSONL
    form of the file; memory holds a few row groups (the one in use, and the next
    ones read ahead in a thread: `_read_ahead`) and one row per market.

    ``on_problem(LineError)`` is called for each bad row (skipped) and warning."""
    say = on_problem if on_problem is not None else (lambda _e: None)
    reader = _Reader(path)
    dec = reader.decoder
    state = _State()
    current: int | None = None
    pending: list[Settlement] = []
    p = str(path)

    def due(at: int) -> tuple[Settlement, ...]:
        nonlocal pending
        now = tuple(s for s in pending if s.ts <= at)
        if now:
            pending = [s for s in pending if s.ts > at]
        return now

    categories: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = ((), (), ())
    for b, good, problems in reader.batches(ahead=True):
        categories = b.categories  # the file's, up to this batch
        for _, e in problems:
            say(e)
        rows = np.flatnonzero(good)
        if rows.size == 0:
            continue
        is_obs = b.market[rows] != _SETTLEMENT
        t = b.ts[rows]
        floor = np.iinfo(np.int64).min if current is None else current
        obs_t = np.where(is_obs, t, np.iinfo(np.int64).min)
        prior = np.maximum.accumulate(np.concatenate(([floor], obs_t)))[:-1]
        boundary = is_obs & (t > prior)
        late = is_obs & (t < prior)
        starts = np.flatnonzero(boundary).tolist()
        edges = [0, *starts, rows.size] if not starts or starts[0] != 0 else [*starts, rows.size]
        obs_rows = rows[is_obs]
        obs_slots = state.slots(b, obs_rows) if obs_rows.size else np.empty(0, np.int64)
        slot_at = np.full(rows.size, -1, dtype=np.int64)
        slot_at[is_obs] = obs_slots
        # a batch of observations only, in time order (every batch of a file of
        # observations rulebook wrote): each cycle's rows are applied as they are
        plain = int(np.count_nonzero(is_obs)) == is_obs.size and not np.count_nonzero(late)
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            if lo == hi:
                continue
            if boundary[lo]:
                if current is not None:
                    yield state.columns(current, categories, due(current))
                current = int(t[lo])
            seg = slice(lo, hi)
            if plain:  # what the general steps below do when no row is late or a settlement
                state.apply(b, rows[seg], slot_at[seg])
                continue
            for j in np.flatnonzero(~is_obs[seg]).tolist():
                pending.append(_settlement(b, int(rows[lo + j]), dec))
            seg_late = late[seg]
            for j in np.flatnonzero(seg_late).tolist():
                k = lo + j
                r = int(rows[k])
                say(
                    LineError(
                        p,
                        b.first_row + r,
                        f"out of time order: ts {int(t[k])} after {int(prior[k])}; "
                        "applied to later snapshots only",
                        "warning",
                    )
                )
                # applied only over an older observation (a new slot holds ts 0)
                if int(state.ts[int(slot_at[k])]) <= int(t[k]):
                    state.apply(b, rows[k : k + 1], slot_at[k : k + 1])
            keep = is_obs[seg] & ~seg_late
            state.apply(b, rows[seg][keep], slot_at[seg][keep])
    if current is not None:
        yield state.columns(current, categories, due(current))


def _settlement(b: _Batch, r: int, dec: _Decoder) -> Settlement:
    row = _row(b, r, dec)
    out = _validate(row)
    assert isinstance(out, Settlement)
    return out


# -- appending: a JSONL spool folded into a Parquet file ---------------------------------


def spool_path(path: str | os.PathLike[str]) -> Path:
    """Where a writer that appends as it goes (``snapshot``, ``history fetch``) puts the
    lines of a Parquet output until it folds them in: ``OUT.parquet.partial.jsonl``.

    A Parquet file is complete only once its footer is written, so appending
    line by line goes to this JSONL file beside it (readable by every command
    meanwhile); a run that is killed leaves it there, and the next run on the
    same output folds it in (or ``rulebook convert`` makes it a file of its own)."""
    p = Path(path)
    return p.with_name(p.name + ".partial.jsonl")


def fold_into_columnar(
    path: str | os.PathLike[str], spool: str | os.PathLike[str] | None = None
) -> ConvertResult:
    """Append the valid lines of a JSONL spool (default: ``spool_path(path)``) to a
    Parquet file, or make it, then delete the spool. The file is rewritten beside
    itself and renamed: a fold that fails leaves both files as they were. A spool
    without a valid line is deleted and the file left alone."""
    target = Path(path)
    spooled = Path(spool) if spool is not None else spool_path(target)
    result = ConvertResult(str(spooled), str(target))
    if not spooled.exists():
        return result
    style: list[tuple[str, str]] = []
    new = _jsonl_rows(str(spooled), result, style)  # streamed: a spool may be days long
    first = next(new, None)
    if first is not None:
        _arrow()
        separators = _separators_in(target) if target.exists() else style[0]
        added = 0

        def rows() -> Iterator[dict[str, Any]]:
            nonlocal added
            if target.exists():
                for _, row, err in read_columnar_rows(target):
                    if err is not None:
                        result.problem(err)
                    elif row is not None:
                        yield row
            for row in chain([first], new):
                added += 1
                yield row

        write_columnar(target, rows(), separators=separators)
        result.rows = added
    spooled.unlink()
    return result


def series_ends(path: str | os.PathLike[str]) -> dict[tuple[str, str, str], int]:
    """The last time each (exchange, coin, market) series holds (its ``ts`` column,
    settlement records under ``"settlement"``): where a resumed fetch starts."""
    pa = _arrow()
    try:
        table = pa.parquet.read_table(path, columns=["ts", "exchange", "coin", "market"])
    except (pa.ArrowException, ValueError) as e:
        raise OSError(f"not a Parquet file ({e})") from None
    if table.num_rows == 0:
        return {}
    grouped = table.group_by(["exchange", "coin", "market"]).aggregate([("ts", "max")])
    out: dict[tuple[str, str, str], int] = {}
    for row in grouped.to_pylist():
        out[(str(row["exchange"]), str(row["coin"]), str(row["market"]))] = int(row["ts_max"])
    return out


# -- converting -------------------------------------------------------------------------


@dataclass(slots=True)
class ConvertResult:
    """What a conversion wrote and what it skipped."""

    source: str
    output: str
    rows: int = 0
    settlements: int = 0
    problems: list[LineError] = field(default_factory=list)
    skipped: int = 0  # invalid lines or rows (errors), each in `problems` up to KEPT
    warnings: int = 0

    KEPT = 1000

    def problem(self, e: LineError) -> None:
        if e.severity == "error":
            self.skipped += 1
        else:
            self.warnings += 1
        if len(self.problems) < self.KEPT:
            self.problems.append(e)


def _separators_of(line: bytes) -> tuple[str, str]:
    """The separators a JSON line was written with: Python's default or compact."""
    text = line.decode("utf-8", errors="replace")
    return _DEFAULT_SEPARATORS if '", "' in text or '": ' in text else (",", ":")


def _jsonl_rows(
    path: str, result: ConvertResult, style: list[tuple[str, str]]
) -> Iterator[dict[str, Any]]:
    """The valid lines of a JSONL file as their dicts (integer spellings and unknown keys
    as written); bad lines reported and skipped, as `iter_jsonl` reports them."""
    for item in iter_objects(path, unknown="kept"):
        if isinstance(item, LineError):
            result.problem(item)
            continue
        if not style:
            style.append(_separators_of(item.raw))
        result.settlements += isinstance(item.record, Settlement)
        yield item.data


def _write_jsonl(path: Path, lines: Iterable[str]) -> int:
    """Write the lines (gzip for a .gz name) beside `path`, then rename: the count written.
    With no line, nothing is written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    count = 0
    try:
        with open(tmp, "wb") as raw:
            if path.suffix == ".gz":
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                    for text in lines:
                        gz.write(text.encode("utf-8"))
                        count += 1
            else:
                for text in lines:
                    raw.write(text.encode("utf-8"))
                    count += 1
        if count:
            os.replace(tmp, path)
        else:
            tmp.unlink()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count


def _separators_in(path: str | os.PathLike[str]) -> tuple[str, str]:
    pa = _arrow()
    try:
        meta = pa.parquet.read_schema(path).metadata or {}
    except (pa.ArrowException, ValueError) as e:
        raise OSError(f"not a Parquet file ({e})") from None
    raw = meta.get(b"rulebook.json_separators")
    if raw is None:
        return (",", ":")
    item, key = json.loads(raw)
    return str(item), str(key)


def convert(
    source: str | os.PathLike[str], output: str | os.PathLike[str], *, force: bool = False
) -> ConvertResult:
    """JSONL (or .jsonl.gz) to Parquet, or Parquet to JSONL (.gz by the output's suffix).

    The direction is the output's suffix. Bad lines (rows) are reported with their
    numbers and skipped; unknown keys are kept. An existing output is never
    replaced unless ``force``; the output appears whole or not at all.
    With no valid record nothing is written (``rows`` is 0).
    Raises FileExistsError, FileNotFoundError, ValueError (same kind both sides)
    or OSError (unreadable, not Parquet, no pyarrow)."""
    src, out = Path(source), Path(output)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no such file")
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists; give --force to replace it")
    if out.resolve() == src.resolve():
        raise ValueError(f"{out}: the output is the source")
    if is_columnar(src) == is_columnar(out):
        kind = "Parquet" if is_columnar(src) else "JSON Lines"
        raise ValueError(
            f"{src} and {out} are both {kind}: name the output .parquet or .jsonl(.gz)"
        )
    result = ConvertResult(str(src), str(out))
    if is_columnar(out):
        _arrow()  # the hint before reading a large file
        style: list[tuple[str, str]] = []
        # streamed: the first valid line gives the separators, and with none nothing is written
        rows = _jsonl_rows(str(src), result, style)
        first = next(rows, None)
        if first is not None:
            result.rows = write_columnar(out, chain([first], rows), separators=style[0])
        return result
    item, key = _separators_in(src)

    def lines() -> Iterator[str]:
        for _, row, err in read_columnar_rows(src):
            if err is not None:
                result.problem(err)
                continue
            assert row is not None
            result.rows += 1
            result.settlements += row.get("market") == "settlement"
            yield json.dumps(row, separators=(item, key), allow_nan=False) + "\n"

    _write_jsonl(out, lines())
    return result
