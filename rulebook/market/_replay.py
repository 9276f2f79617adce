"""Replay a snapshot file as a sequence of views in time order."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from struct import pack as _pack
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec
import numpy as np

from rulebook._exchanges import EXCHANGES

from ._checks import coin_known
from ._filetype import is_columnar
from ._jsonl import MAX_LINE_BYTES, LineError, LinePieces
from ._model import FIELD_ORDER, LINE_MARKETS, NO_NEXT_FUNDING, Line, Observation
from ._settlement import Settlement
from ._view import MARKETS, SnapshotView

if TYPE_CHECKING:
    from ._columnar import ObservationColumns

__all__ = ["ReplaySource", "replay_jsonl"]

T = TypeVar("T")  # what a replay makes of a view's columns

_EXCHANGE_CODE = {e: i for i, e in enumerate(EXCHANGES)}
_LINE_MARKET = {m: i for i, m in enumerate(LINE_MARKETS)}  # MARKETS' codes, then a settlement
_SETTLEMENT = LINE_MARKETS.index("settlement")
assert LINE_MARKETS[: len(MARKETS)] == MARKETS
#: the number fields of a line, in line order: the rows of `_ReplayState.numbers`
_NUMBERS = FIELD_ORDER[5:]
_ROW = {name: i for i, name in enumerate(_NUMBERS)}
_NEXT, _BID, _ASK = _ROW["next_funding_ts"], _ROW["bid"], _ROW["ask"]


def _fields(allowed: dict[str, tuple[str, ...]]) -> np.ndarray:
    """A (number field, market code) table: whether the market's lines carry the field."""
    table = np.zeros((len(_NUMBERS), len(LINE_MARKETS)), dtype=bool)
    for market, names in allowed.items():
        for name in names:
            table[_ROW[name], _LINE_MARKET[market]] = True
    return table


_PERP_FIELDS = ("funding_rate", "funding_interval_h", "next_funding_ts", "mark", "index")
_BOOK = ("bid", "ask", "volume_24h", "taker_fee")
#: what each market's line may carry (the fields of its record class), and what it must
_MAY = _fields({
    "perp": (*_PERP_FIELDS, *_BOOK),
    "spot": _BOOK,
    "borrow": ("borrow_rate_daily",),
    "settlement": ("funding_rate", "funding_interval_h", "mark"),
})  # fmt: skip
_MUST = _fields({"borrow": ("borrow_rate_daily",), "settlement": ("funding_rate",)})
#: lines turned into columns at a time: their tuples stay fewer than the collector's
#: first threshold (700), so none lives on into its older generations
_CHUNK = 512
_FIELDS = Line.__struct_fields__
_decode_settlement = msgspec.json.Decoder(Settlement).decode
_astuple = msgspec.structs.astuple


def _frozen(a: np.ndarray) -> np.ndarray:
    """A read-only copy."""
    out = a.copy()
    out.setflags(write=False)
    return out


class ReplaySource:
    """Streams a recording and yields the snapshot at each distinct timestamp.

    The file is read once, a piece at a time: memory holds only the latest
    observation per (exchange, coin, market), so a year of hourly data for
    hundreds of coins replays without loading the file. Each yielded view owns
    a copy of that state, so a view stays valid after the replay moves on.

    A recording is expected in time order (``rulebook snapshot`` writes it so).
    A line older than the current time is applied only if it is newer than
    what its key holds, and reported as a warning: the views already yielded
    cannot be changed. Invalid lines are reported in ``errors`` and skipped.

    Settlement records (spec 9) make no cycle of their own and are not part
    of any view's observations: each rides on the first view, from where it
    was read on, whose time is at or after its settlement time, in
    ``view.settlements``. A record is written once the exchange's history
    has it, so it may follow observations newer than itself: that is not out
    of order, and the runtime learns of it when a live run did.

    Every view is a column view (`SnapshotView.from_columns`): one row per
    market, in the order the markets first appeared in the file. A JSONL file's
    lines go straight into columns (`_ReplayState` below, no `Observation` per
    line); a ``.parquet`` file (the columnar format, docs/columnar.md) is read a
    row group at a time (``iter_columns``), its bad rows reported by row number.
    Both give the views a line-by-line replay of the JSONL form gives
    (tests/test_replay_columns.py).
    """

    #: problems kept per severity: a file of a billion bad lines must not fill memory;
    #: ``counts`` has them all
    KEPT = 1000

    def __init__(
        self, path: str | os.PathLike[str], *, read_ahead: bool | None = None
    ) -> None:
        self.path = path
        #: read a JSONL file ahead in another process: None decides by its size
        #: (`_readahead.wanted`, docs/performance.md)
        self.read_ahead = read_ahead
        self._worker: Any = None  # the reading process of the last replay, if any
        self.errors: list[LineError] = []
        self.counts: dict[str, int] = {"error": 0, "warning": 0}

    def _problem(self, e: LineError) -> None:
        self.counts[e.severity] = self.counts.get(e.severity, 0) + 1
        if self.counts[e.severity] <= self.KEPT:
            self.errors.append(e)

    def __iter__(self) -> Iterator[SnapshotView]:
        self.errors = []
        self.counts = {"error": 0, "warning": 0}
        yield from self._views()

    def _views(
        self, *, by_piece: bool = True, limit: int = MAX_LINE_BYTES
    ) -> Iterator[SnapshotView]:
        """A recording's views, JSONL or Parquet: read ahead in another process for a
        large file (`_readahead`, which gives the same views and problems in the same
        order), else here (`replay`)."""
        from . import _readahead

        if _readahead.wanted(self.path, self.read_ahead):
            yield from _readahead.views(self, by_piece=by_piece, limit=limit)
            return
        yield from replay(
            self.path, self._problem, SnapshotView.from_columns, by_piece=by_piece, limit=limit
        )


def replay(
    path: str | os.PathLike[str],
    problem: Callable[[LineError], None],
    make: Callable[[ObservationColumns], T],
    *,
    by_piece: bool = True,
    limit: int = MAX_LINE_BYTES,
) -> Iterator[T]:
    """A recording's views, each ``make`` of its columns: `replay_parquet` for a
    columnar file, else `replay_jsonl` (``by_piece`` and ``limit`` are JSONL's)."""
    if is_columnar(path):
        return replay_parquet(path, problem, make)
    return replay_jsonl(path, problem, make, by_piece=by_piece, limit=limit)


def replay_parquet(
    path: str | os.PathLike[str],
    problem: Callable[[LineError], None],
    make: Callable[[ObservationColumns], T],
) -> Iterator[T]:
    """A columnar recording's views (`_columnar.iter_columns`), each ``make`` of its
    columns; a file that cannot be read is one problem, at line 0."""
    from ._columnar import iter_columns

    try:
        for cols in iter_columns(path, problem):
            yield make(cols)
    except OSError as e:
        problem(LineError(str(path), 0, f"cannot read file: {e.strerror or e}"))


def replay_jsonl(
    path: str | os.PathLike[str],
    problem: Callable[[LineError], None],
    make: Callable[[ObservationColumns], T],
    *,
    by_piece: bool = True,
    limit: int = MAX_LINE_BYTES,
) -> Iterator[T]:
    """A JSONL recording's views, each ``make`` of its columns; each problem handed to
    ``problem`` as it is found. A piece of the file whose lines are all valid, with its
    observations in time order and none older than the current view, goes into the
    columns at once (``by_piece``: `_ReplayState.piece`); any other piece, line by line
    (`_ReplayState.line`, the general path, which `tests/test_replay_columns.py` holds
    the piece path to)."""
    state: _ReplayState[T] = _ReplayState(make)
    pieces = LinePieces(path, limit)
    try:
        for piece in pieces:
            if isinstance(piece, list):
                items = piece
            else:
                n, lines, records = piece
                if by_piece:
                    views = state.piece(lines, records)
                    if views is not None:
                        yield from views
                        continue
                items = pieces.items(n, lines)
            for n, record, err in items:
                if err is not None:
                    problem(err)
                    continue
                assert record is not None
                if isinstance(record, Observation) and record.ts < (state.current or 0):
                    problem(
                        LineError(
                            str(path),
                            n,
                            f"out of time order: ts {record.ts} after {state.current}; "
                            "applied to later snapshots only",
                            "warning",
                        )
                    )
                    state.late(record)
                    continue
                view = state.line(record)
                if view is not None:
                    yield view
    except OSError as e:
        problem(LineError(str(path), 0, f"cannot read file: {e.strerror or e}"))
    last = state.close()
    if last is not None:
        yield last


class _ReplayState(Generic[T]):
    """A JSONL replay's state: the latest observation per market as columns, one slot
    per (exchange, coin, market) in the order the markets first appeared, and the
    settlement records not yet due. Each view gets a copy (`ObservationColumns`).

    Every value here passed the checks of docs/limits.md: a piece's lines were
    decoded by the typed decode (`_jsonl.LinePieces`: types and bounds), and `piece`
    checks the rest (what each market's line may carry, the coin's form, a crossed
    book) before it changes anything; a line of the general path is a checked
    record."""

    def __init__(self, make: Callable[[ObservationColumns], T]) -> None:
        self.make = make  # a view of its columns
        self.size = 0  # slots in use: the rows of a view
        cap = 64
        self.exchange = np.zeros(cap, dtype=np.int16)
        self.coin = np.zeros(cap, dtype=np.int32)
        self.market = np.zeros(cap, dtype=np.int8)
        self.symbol = np.full(cap, -1, dtype=np.int32)
        self.ts = np.zeros(cap, dtype=np.int64)
        self.numbers = np.full((len(_NUMBERS), cap), np.nan)  # a row per field of _NUMBERS
        #: every coin seen valid (observation or settlement record), by id
        self.coin_id: dict[str, int] = {}
        #: the slot of (coin id, exchange code, market code), -1 for none yet
        self.slots = np.full((16, len(EXCHANGES), len(MARKETS)), -1, dtype=np.int64)
        self.coins: dict[str, int] = {}  # a view's categories, in order of first appearance
        self.symbols: dict[str, int] = {}
        self.current: int | None = None  # the time of the view being gathered
        self.pending: list[Settlement] = []
        self._keys: tuple[int, tuple[np.ndarray, ...]] | None = None  # codes of the last view
        self._tuples: dict[int, tuple[str, ...]] = {}  # categories of the last view

    # -- views -----------------------------------------------------------------------
    def _view(self) -> T:
        """The view of the current time, with the settlement records due by then."""
        from ._columnar import ObservationColumns

        at = self.current
        assert at is not None
        n = self.size
        due: tuple[Settlement, ...] = ()
        if self.pending:
            due = tuple(s for s in self.pending if s.ts <= at)
            if due:
                self.pending = [s for s in self.pending if s.ts > at]
        if self._keys is None or self._keys[0] != n:
            # the same rows: the same read-only code arrays and category tuples, view
            # after view (the guard, the engine and the settling log cache their work
            # per code arrays that cannot change)
            self._keys = (n, (_frozen(self.exchange[:n]), _frozen(self.coin[:n]),
                              _frozen(self.market[:n])))  # fmt: skip
        exchange, coin, market = self._keys[1]
        numbers = self.numbers[:, :n].copy()
        cols: ObservationColumns = ObservationColumns(
            at=at,
            exchanges=EXCHANGES,
            coins=self._categories(self.coins),
            markets=MARKETS,
            symbols=self._categories(self.symbols),
            exchange=exchange,
            coin=coin,
            market=market,
            symbol=self.symbol[:n].copy(),
            ts=self.ts[:n].copy(),
            settlements=due,
            **dict(zip(_NUMBERS, numbers, strict=True)),
        )
        return self.make(cols)

    def _categories(self, names: dict[str, int]) -> tuple[str, ...]:
        """``tuple(names)``, the same tuple while nothing is added."""
        kept = self._tuples.get(id(names))
        if kept is None or len(kept) != len(names):
            kept = self._tuples[id(names)] = tuple(names)
        return kept

    def close(self) -> T | None:
        """The last view, at the end of the file."""
        return None if self.current is None else self._view()

    # -- slots -----------------------------------------------------------------------
    def _coin(self, coin: str) -> int:
        """A valid coin's id."""
        c = self.coin_id.get(coin)
        if c is None:
            c = self.coin_id[coin] = len(self.coin_id)
            if c >= self.slots.shape[0]:
                grown = np.full((2 * c, *self.slots.shape[1:]), -1, dtype=np.int64)
                grown[: self.slots.shape[0]] = self.slots
                self.slots = grown
        return c

    def _grow(self, need: int) -> None:
        cap = self.ts.size
        if need <= cap:
            return
        new = max(need, cap * 2)
        for name, fill in (("exchange", 0), ("coin", 0), ("market", 0), ("symbol", -1),
                           ("ts", 0)):  # fmt: skip
            old = getattr(self, name)
            grown = np.full(new, fill, dtype=old.dtype)
            grown[:cap] = old
            setattr(self, name, grown)
        numbers = np.full((len(_NUMBERS), new), np.nan)
        numbers[:, :cap] = self.numbers
        self.numbers = numbers

    def _add(self, coin_id: int, exchange: int, market: int, coin: str) -> int:
        """A new market's slot."""
        s = self.size
        self.slots[coin_id, exchange, market] = s
        self.size += 1
        self._grow(self.size)
        self.exchange[s] = exchange
        self.coin[s] = self.coins.setdefault(coin, len(self.coins))
        self.market[s] = market
        return s

    def _symbol_code(self, symbol: str | None) -> int:
        return -1 if symbol is None else self.symbols.setdefault(symbol, len(self.symbols))

    # -- the general path: one checked record at a time -------------------------------
    def line(self, record: Observation | Settlement) -> T | None:
        """Apply one record in file order (an observation not older than the current
        time: an older one is `late`'s); the view of the time before, if it is newer."""
        if isinstance(record, Settlement):
            self.pending.append(record)
            return None
        out = None
        if self.current is None:
            self.current = record.ts
        elif record.ts > self.current:
            out = self._view()
            self.current = record.ts
        self._set(record)
        return out

    def late(self, record: Observation) -> None:
        """A record older than the current time: applied over an older one only."""
        s = self._slot(record)
        if s < 0 or self.ts[s] <= record.ts:
            self._set(record)

    def _slot(self, o: Observation) -> int:
        c = self.coin_id.get(o.coin)
        if c is None:
            return -1
        return int(self.slots[c, _EXCHANGE_CODE[o.exchange], _LINE_MARKET[o.market]])

    def _set(self, o: Observation) -> None:
        s = self._slot(o)
        if s < 0:
            s = self._add(
                self._coin(o.coin), _EXCHANGE_CODE[o.exchange], _LINE_MARKET[o.market], o.coin
            )
        self.ts[s] = o.ts
        self.symbol[s] = self._symbol_code(o.symbol)
        col = self.numbers[:, s]
        for i, name in enumerate(_NUMBERS):
            v = getattr(o, name)
            col[i] = np.nan if v is None else v

    # -- the piece path ----------------------------------------------------------------
    def piece(self, lines: list[bytes], records: list[Line]) -> list[T] | None:
        """Apply a piece of decoded lines at once, and the views it completes; None
        (nothing changed) if the piece needs the general path: a field its market's
        line may not carry (or lacks), a coin of the wrong form, a crossed book, an
        observation out of time order."""
        m = len(records)
        # the run as columns: a list per field (C loops: no Python frame per line)
        fields: list[list[Any]] = [[] for _ in _FIELDS]
        for at in range(0, m, _CHUNK):
            chunk = zip(*map(_astuple, records[at : at + _CHUNK]), strict=True)
            for kept, values in zip(fields, chunk, strict=True):
                kept.extend(values)
        ts_of, exchange_of, coin_of, market_of, symbol_of, *numbers_of = fields
        fmt = f"{m}d"
        numbers = np.frombuffer(
            bytearray(b"".join([_pack(fmt, *values) for values in numbers_of]))
        ).reshape(len(_NUMBERS), m)
        market = np.frombuffer(bytes(map(_LINE_MARKET.__getitem__, market_of)), np.int8)
        nxt = numbers[_NEXT]
        nxt[nxt == NO_NEXT_FUNDING] = np.nan
        present = numbers == numbers  # NaN: absent (a JSON number is never NaN)
        if bool((present & ~_MAY[:, market]).any()) or bool((~present & _MUST[:, market]).any()):
            return None
        with np.errstate(invalid="ignore"):
            if bool((numbers[_BID] > numbers[_ASK]).any()):  # a crossed book (NaN: no book)
                return None
        ids = list(map(self.coin_id.get, coin_of))
        if None in ids:  # coins not seen before: checked (not yet kept)
            seen: dict[str, int] = {}
            for i in [i for i, c in enumerate(ids) if c is None]:
                coin = coin_of[i]
                if coin not in seen:
                    if not coin_known(coin):
                        return None
                    seen[coin] = len(self.coin_id) + len(seen)
                ids[i] = seen[coin]
        else:
            seen = {}
        ts = np.fromiter(ts_of, np.int64, m)
        obs = market != _SETTLEMENT
        all_obs = bool(obs.all())
        t = ts if all_obs else ts[obs]
        if t.size and (
            (self.current is not None and t[0] < self.current) or bool((t[1:] < t[:-1]).any())
        ):
            return None
        settlements: dict[int, Settlement] = {}
        if not all_obs:  # a settlement line: its record, as the general path reads it
            for i in np.flatnonzero(~obs).tolist():
                try:
                    settlements[i] = _decode_settlement(lines[i])
                except msgspec.DecodeError:  # pragma: no cover - the checks above agree
                    return None
        # nothing refused: the piece is applied
        for coin in seen:
            self._coin(coin)
        coin = np.fromiter(ids, np.int64, m)
        exchange = np.fromiter(map(_EXCHANGE_CODE.__getitem__, exchange_of), np.int64, m)
        slots = np.full(m, -1, dtype=np.int64)
        slots[obs] = self.slots[coin[obs], exchange[obs], market[obs]]
        fresh: list[tuple[int, int, int, str]] = []  # new markets, in order of first line
        if bool((slots[obs] < 0).any()):
            provisional: dict[tuple[int, int, int], int] = {}
            for i in np.flatnonzero(obs & (slots < 0)).tolist():
                key = (int(coin[i]), int(exchange[i]), int(market[i]))
                s = provisional.get(key)
                if s is None:
                    s = provisional[key] = self.size + len(provisional)
                    fresh.append((*key, coin_of[i]))
                slots[i] = s
        symbol = (
            np.full(m, -1, dtype=np.int32)
            if symbol_of.count(None) == m
            else np.fromiter(map(self._symbol_code, symbol_of), np.int32, m)
        )
        return self._apply(settlements, slots, obs, all_obs, ts, numbers, symbol, fresh)

    def _apply(
        self,
        settlements: dict[int, Settlement],
        slots: np.ndarray,
        obs: np.ndarray,
        all_obs: bool,
        ts: np.ndarray,
        numbers: np.ndarray,
        symbol: np.ndarray,
        fresh: list[tuple[int, int, int, str]],
    ) -> list[T]:
        """The piece's observations into their slots, a view at each change of time:
        what the general path does line by line (a settlement record joins the pending
        ones where it was read)."""
        views: list[T] = []
        m = slots.size
        if all_obs:
            changes = np.flatnonzero(ts[1:] != ts[:-1]) + 1
        else:
            rows = np.flatnonzero(obs)
            t = ts[rows]
            changes = rows[np.flatnonzero(t[1:] != t[:-1]) + 1]
        starts = [0, *changes.tolist()]
        ends = [*starts[1:], m]
        for lo, hi in zip(starts, ends, strict=True):
            if all_obs:
                self._advance(int(ts[lo]), views)
                seg = slice(lo, hi)
                if fresh:
                    self._open(fresh, int(slots[seg].max()))
                self._put(slots[seg], ts[seg], numbers[:, seg], symbol[seg])
                continue
            here = np.arange(lo, hi)
            at_rows = here[obs[lo:hi]]
            settling = here[~obs[lo:hi]].tolist()
            if not at_rows.size:  # settlement records only
                self.pending.extend(settlements[i] for i in settling)
                continue
            first = int(at_rows[0])
            # a record read before the first line of a newer time is due with the view
            # that line completes; one read after it, with a later view
            self.pending.extend(settlements[i] for i in settling if i < first)
            self._advance(int(ts[first]), views)
            self.pending.extend(settlements[i] for i in settling if i > first)
            if fresh:
                self._open(fresh, int(slots[at_rows].max()))
            self._put(slots[at_rows], ts[at_rows], numbers[:, at_rows], symbol[at_rows])
        return views

    def _open(self, fresh: list[tuple[int, int, int, str]], upto: int) -> None:
        """Slots for the new markets (in order of first line) up to slot ``upto``."""
        while fresh and self.size <= upto:
            self._add(*fresh.pop(0))

    def _advance(self, t: int, views: list[T]) -> None:
        """The time of the lines that follow: the view of the time before, if it is newer."""
        if self.current is None:
            self.current = t
        elif t > self.current:
            views.append(self._view())
            self.current = t

    def _put(
        self, slots: np.ndarray, ts: np.ndarray, numbers: np.ndarray, symbol: np.ndarray
    ) -> None:
        """Rows into their slots, in file order: of two rows of one market, the later."""
        if slots.size > 1:
            order = np.sort(slots)
            if bool((order[1:] == order[:-1]).any()):
                _, last = np.unique(slots[::-1], return_index=True)
                pick = slots.size - 1 - last
                slots, ts, numbers, symbol = slots[pick], ts[pick], numbers[:, pick], symbol[pick]
        self.ts[slots] = ts
        self.symbol[slots] = symbol
        self.numbers[:, slots] = numbers
