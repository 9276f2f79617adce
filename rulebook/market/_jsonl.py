"""Reading and writing snapshot files (JSON Lines, spec section 9)."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from io import BytesIO
from itertools import chain, repeat
from pathlib import Path
from typing import IO, Literal, NamedTuple, TextIO, cast

import msgspec

from rulebook._text import terminal_safe

from ._model import (
    OBSERVATION_FIELDS,
    AnyObservation,
    Line,
    Observation,
    all_hold,
    holds,
    observation_from,
)
from ._settlement import SETTLEMENT_FIELDS, Settlement, settlement_from

__all__ = [
    "MAX_LINE_BYTES",
    "JsonObject",
    "LineError",
    "Record",
    "decoded_pieces",
    "LinePieces",
    "iter_jsonl",
    "iter_objects",
    "open_recording",
    "read_jsonl",
    "read_settlements",
    "JsonlRecorder",
]

_FIELDS = OBSERVATION_FIELDS | SETTLEMENT_FIELDS

#: one valid line of a snapshot file: an observation, or a settlement record
Record = Observation | Settlement


def open_recording(path: str | os.PathLike[str]) -> IO[bytes]:
    """A recording's bytes: a ``.gz`` file is decompressed as it is read (a recording
    compresses about nine-fold)."""
    if str(path).endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))  # a GzipFile reads as IO[bytes]
    return open(path, "rb")


def _validate(data: dict[str, object]) -> Record:
    """The record of a decoded line, checked field by field (the detailed path)."""
    if data.get("market") == "settlement":
        return settlement_from(data)
    return observation_from(data)


@dataclass(frozen=True)
class LineError:
    """A problem with one line of a snapshot file; the line is skipped if severity is error."""

    path: str
    line: int
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        # the message may quote the line: escaped and cut for a terminal
        return f"{self.path}:{self.line}: {self.severity}: {terminal_safe(self.message)}"


#: the longest snapshot line read (bytes); a real line is a few hundred bytes.
#: A longer one is skipped, read in pieces of this size, never held whole.
MAX_LINE_BYTES = 64 * 1024


def _line_pieces(p: str, limit: int) -> Iterator[tuple[int, list[bytes]] | LineError]:
    """The one reader of a JSONL file's lines, for both readers (`iter_jsonl`, and the
    converter's `iter_objects`): a piece of the file at a time, ``(n, lines)`` with the
    lines (each with its newline; a file's last line may have none) numbered from
    ``n + 1``, or the report of a line longer than ``limit``, which is skipped without
    being held.

    The file is read in pieces of ``limit`` bytes, so a line inside one piece is
    shorter than the limit; only a line continued from the piece before can be longer.
    A ``.gz`` file is decompressed as it is read; a truncated one is an OSError."""
    n = 0
    # `carry` is the start of a line continued from the piece before; `skipping` is the
    # size so far of one longer than the limit, whose bytes are dropped as they are read.
    carry = b""
    skipping = 0
    with open_recording(p) as fh:
        read = fh.read
        while True:
            try:
                piece = read(limit)
            except EOFError as e:  # a truncated .gz: what callers report as unreadable
                raise OSError(f"compressed file ends early ({e})") from None
            if not piece:
                break
            # a piece's lines, each with its newline: BytesIO finds them with memchr,
            # twice as fast as bytes.split (a byte at a time)
            lines = BytesIO(piece).readlines()
            # the start of a line the next piece goes on with
            tail = lines.pop() if lines[-1][-1] != _NEWLINE else b""
            if skipping or carry:
                if not lines:  # no newline in this piece: the line goes on
                    if skipping:
                        skipping += len(tail)
                    elif len(carry) + len(tail) > limit:
                        skipping, carry = len(carry) + len(tail), b""
                    else:
                        carry += tail
                    continue
                first = lines[0]
                size = (skipping or len(carry)) + len(first)  # with its newline
                if skipping or size - 1 > limit:
                    n += 1
                    yield _too_long(p, n, size, limit)
                    del lines[0]
                else:
                    lines[0] = carry + first
                skipping, carry = 0, b""
            if lines:
                yield n, lines
                n += len(lines)
            if len(tail) > limit:  # pragma: no cover - a piece is at most `limit` bytes
                skipping = len(tail)
            else:
                carry = tail
    if skipping:
        yield _too_long(p, n + 1, skipping, limit)
    elif carry:
        yield n, [carry]


_NEWLINE = ord("\n")


def _too_long(p: str, n: int, size: int, limit: int) -> LineError:
    return LineError(p, n, f"line of {size:,} bytes is longer than {limit:,}; skipped")


def _parse_line(data: bytes) -> tuple[object, str | None]:
    """The JSON value of one line, or why it is not one. Never raises."""
    text = data.decode("utf-8", errors="replace")  # a bad byte fails below, not the file
    try:
        return json.loads(text, parse_constant=_reject_constant), None
    except json.JSONDecodeError as e:
        return None, f"not valid JSON: {e.msg} at column {e.colno}"
    except RecursionError:
        return None, "not valid JSON: nested too deeply"
    except ValueError as e:  # an integer of thousands of digits, NaN, Infinity
        return None, f"not valid JSON: {e}"


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


class JsonObject(NamedTuple):
    """A valid line read as JSON (the converter's item: it keeps the line's own spelling
    of each value, and its unknown keys)."""

    line: int
    raw: bytes  # the line's bytes, without the newline
    data: dict[str, object]  # the line's JSON object, as json.loads gives it
    record: Record  # the record it is (the field-by-field checks passed)


def _line_object(
    p: str, n: int, raw: bytes, warned: set[str], unknown: str
) -> Iterator[LineError | JsonObject]:
    """One line read as JSON and checked field by field: the one place that says what is
    wrong with a line (not JSON, not an object, an invalid record) or warns of its unknown
    keys (each once per file, in ``warned``; ``unknown`` says what becomes of them), then
    the line's object if it is valid. A blank line gives nothing."""
    if raw.endswith(b"\n"):  # a message's column counts within the line
        raw = raw[:-1]
    if not raw.strip():
        return
    data, problem = _parse_line(raw)
    if problem is not None:
        yield LineError(p, n, problem)
        return
    if not isinstance(data, dict):
        yield LineError(p, n, f"expected a JSON object, got {type(data).__name__}")
        return
    for k in data.keys() - _FIELDS:
        if k not in warned:
            warned.add(k)
            yield LineError(
                p, n, f"unknown field {_short(k)} {unknown} (reported once per file)", "warning"
            )
    try:
        record = _validate(data)
    except msgspec.ValidationError as e:
        yield LineError(p, n, str(e))
        return
    except RecursionError:  # pragma: no cover - json.loads fails first
        yield LineError(p, n, "nested too deeply")
        return
    yield JsonObject(n, raw, data, record)


def iter_objects(
    path: str | os.PathLike[str], *, unknown: str = "kept", max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[LineError | JsonObject]:
    """Each valid line's JSON object (`JsonObject`), or the report of a bad line, in file
    order: the lines, bounds and messages of `iter_jsonl` (an unknown key's warning says
    it is ``unknown``), for a reader that needs each line as written (`rulebook convert`
    keeps integer spellings and unknown keys). Slower than `iter_jsonl`: every line goes
    through ``json.loads``."""
    p = str(path)
    warned: set[str] = set()
    for piece in _line_pieces(p, max_line_bytes):
        if isinstance(piece, LineError):
            yield piece
            continue
        n, lines = piece
        for raw in lines:
            n += 1
            yield from _line_object(p, n, raw, warned, unknown)


# one decoder for every kind of line: the class is chosen by the line's "market"
_decode_record = msgspec.json.Decoder(AnyObservation | Settlement).decode


Item = tuple[int, Record | None, LineError | None]


def iter_jsonl(
    path: str | os.PathLike[str],
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Iterator[Item]:
    """Yield ``(line_number, record, None)`` or ``(line_number, None, error)``.

    A record is an :class:`Observation` or, for a ``"market": "settlement"``
    line, a :class:`Settlement` (spec 9); callers that hand data to rules keep
    the observations only (``read_jsonl`` does).

    Streams the file: memory holds one piece of ``max_line_bytes`` and its
    lines at a time. Never raises for bad content: a line too long, bad JSON,
    bad UTF-8, nesting too deep, a huge integer, a non-object or an invalid
    observation becomes a LineError and reading goes on. Blank lines are
    skipped silently. Unknown keys are dropped; each is reported once per file
    as a warning item (observation None) just before its line's result. The
    file is opened on the first ``next()`` (an OSError then, for a file that
    cannot be read).

    Each line is decoded straight into its model, which checks it as it
    parses (docs/performance.md, "Reading a recording"); a line that decode
    rejects is read again by ``json.loads`` and checked field by field, which
    says what is wrong with it, or accepts what the typed decode is stricter
    about than spec 9 (``1.7e12`` as a ``ts``, an unknown key, a bad byte in a
    symbol).
    """
    # Per piece, the lines are decoded by one C loop (map) and handed on by C
    # iterators (zip, chain): no Python frame runs per good line.
    return chain.from_iterable(_pieces(str(path), max_line_bytes))


def _pieces(p: str, limit: int) -> Iterator[Iterable[Item]]:
    """The items of the file, a piece at a time."""
    for piece in decoded_pieces(p, limit):
        if isinstance(piece, list):
            yield piece
        else:
            n, records = piece
            yield zip(range(n + 1, n + 1 + len(records)), records, repeat(None))


def decoded_pieces(
    path: str | os.PathLike[str], limit: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, list[Record]] | list[Item]]:
    """`iter_jsonl` a piece of the file at a time, for a reader that handles a piece at
    once (`ReplaySource`): ``(n, records)`` when every line of the piece is a valid
    record (numbered from ``n + 1``), else the piece's items, line by line."""
    p = str(path)
    warned: set[str] = set()
    decode = _decode_record
    for piece in _line_pieces(p, limit):
        if isinstance(piece, LineError):
            yield [(piece.line, None, piece)]
            continue
        n, lines = piece
        try:
            records = list(map(decode, lines))
            good = all_hold(records)
        except (msgspec.DecodeError, RecursionError):  # a ValidationError too; deep nesting
            good = False
        if good:
            yield n, records
        else:  # a line of this piece is bad (rare): line by line, for its message
            yield list(_line_by_line(p, n, lines, warned))


_decode_line = msgspec.json.Decoder(Line).decode


class LinePieces:
    """A JSONL file a piece at a time, for the columnar replay (`ReplaySource`): a run of
    lines that all decode as ``(n, lines, records)``, the lines numbered from ``n + 1``
    and decoded as `_model.Line`s (types and bounds checked; what a market may carry,
    the coin's form and the book: the caller checks them on the piece's columns); any
    other piece as its `iter_jsonl` items. A caller whose checks refuse a run asks
    for its items with `items`: line by line, each line's message, the lines that are
    good after all (exactly `iter_jsonl`'s).

    The file is read in pieces of ``limit`` bytes (the longest line), and up to
    ``runs`` pieces in a row that decode make one run: what a caller does once per run
    (a few dozen numpy calls) is then spread over some 4,000 lines."""

    def __init__(
        self, path: str | os.PathLike[str], limit: int = MAX_LINE_BYTES, runs: int = 8
    ) -> None:
        self.path = str(path)
        self.limit = limit
        self.runs = runs
        self._warned: set[str] = set()  # unknown keys reported (once per file)

    def __iter__(self) -> Iterator[tuple[int, list[bytes], list[Line]] | list[Item]]:
        decode = _decode_line
        first = 0  # the line before the run's first
        lines: list[bytes] = []
        records: list[Line] = []
        pieces = 0
        for piece in _line_pieces(self.path, self.limit):
            if isinstance(piece, LineError):
                if lines:
                    yield first, lines, records
                    lines, records, pieces = [], [], 0
                yield [(piece.line, None, piece)]
                continue
            n, got = piece
            try:
                decoded = list(map(decode, got))
            except (msgspec.DecodeError, RecursionError):  # a ValidationError too; deep nesting
                if lines:
                    yield first, lines, records
                    lines, records, pieces = [], [], 0
                yield self.items(n, got)
                continue
            if not lines:
                first = n
            lines += got
            records += decoded
            pieces += 1
            if pieces == self.runs:
                yield first, lines, records
                lines, records, pieces = [], [], 0
        if lines:
            yield first, lines, records

    def items(self, n: int, lines: list[bytes]) -> list[Item]:
        """The `iter_jsonl` items of lines numbered from ``n + 1``."""
        return list(_line_by_line(self.path, n, lines, self._warned))


def _line_by_line(p: str, n: int, lines: list[bytes], warned: set[str]) -> Iterator[Item]:
    """The items of lines numbered from ``n + 1``, each decoded on its own; a line the
    typed decode rejects is read by `_line_object`, for its message (or that it is good
    after all)."""
    decode = _decode_record
    for raw in lines:
        n += 1
        try:
            record = decode(raw)
        except (msgspec.DecodeError, RecursionError):
            record = None
        if record is not None and holds(record):
            yield n, record, None
            continue
        for item in _line_object(p, n, raw, warned, "ignored"):
            if isinstance(item, LineError):
                yield n, None, item
            else:
                yield n, item.record, None


def _short(key: str, limit: int = 40) -> str:
    """A key for a message: repr (control characters escaped) and cut."""
    text = repr(key)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(key):,} characters)"


def read_jsonl(path: str | os.PathLike[str]) -> tuple[list[Observation], list[LineError]]:
    """Read a whole snapshot file: the valid observations and the problems found.

    Settlement records are left out: they are what was paid, not what rules see
    (``read_settlements`` has them)."""
    obs: list[Observation] = []
    errors: list[LineError] = []
    try:
        for _, o, err in iter_jsonl(path):
            if err is not None:
                errors.append(err)
            elif isinstance(o, Observation):
                obs.append(o)
    except OSError as e:
        errors.append(LineError(str(path), 0, f"cannot read file: {e.strerror or e}"))
    return obs, errors


def read_settlements(path: str | os.PathLike[str]) -> tuple[list[Settlement], list[LineError]]:
    """The settlement records of a snapshot file, in file order, and the problems found."""
    out: list[Settlement] = []
    errors: list[LineError] = []
    try:
        for _, o, err in iter_jsonl(path):
            if err is not None:
                errors.append(err)
            elif isinstance(o, Settlement):
                out.append(o)
    except OSError as e:
        errors.append(LineError(str(path), 0, f"cannot read file: {e.strerror or e}"))
    return out, errors


class JsonlRecorder:
    """Appends observations and settlement records to a snapshot file, one JSON line
    each, flushed per batch."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fh: TextIO | None = None
        self.written = 0

    def __enter__(self) -> JsonlRecorder:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        if self._fh is None:
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")

    def write(self, observations: Iterable[Record]) -> int:
        self.open()
        assert self._fh is not None
        # Sorted so that a recording stays in time order line by line, which
        # lets ReplaySource stream it without sorting.
        rows = sorted(observations, key=lambda o: o.ts)
        self._fh.writelines(o.to_json() + "\n" for o in rows)
        self._fh.flush()
        self.written += len(rows)
        return len(rows)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
