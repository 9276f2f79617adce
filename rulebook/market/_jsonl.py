"""Reading and writing snapshot files (JSON Lines, spec section 9)."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, TextIO

from pydantic import ValidationError

from ._model import Observation
from ._settlement import SETTLEMENT_FIELDS, Settlement

__all__ = [
    "LineError",
    "Record",
    "iter_jsonl",
    "open_recording",
    "read_jsonl",
    "read_settlements",
    "JsonlRecorder",
]

_FIELDS = frozenset(Observation.model_fields) | SETTLEMENT_FIELDS

#: one valid line of a snapshot file: an observation, or a settlement record
Record = Observation | Settlement


def open_recording(path: str | os.PathLike[str]) -> IO[bytes]:
    """A recording's bytes: a ``.gz`` file is decompressed as it is read (a recording
    compresses about nine-fold)."""
    if str(path).endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _whole(fh: IO[bytes]) -> Iterator[bytes]:
    """The lines of fh; a truncated .gz is an OSError (what callers report), not EOFError."""
    try:
        yield from fh
    except EOFError as e:
        raise OSError(f"compressed file ends early ({e})") from None


def _validate(data: dict[str, object]) -> Record:
    if data.get("market") == "settlement":
        return Settlement.model_validate(data)
    return Observation.model_validate(data)


@dataclass(frozen=True)
class LineError:
    """A problem with one line of a snapshot file; the line is skipped if severity is error."""

    path: str
    line: int
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.severity}: {self.message}"


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "line"
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def iter_jsonl(
    path: str | os.PathLike[str],
) -> Iterator[tuple[int, Record | None, LineError | None]]:
    """Yield ``(line_number, record, None)`` or ``(line_number, None, error)``.

    A record is an :class:`Observation` or, for a ``"market": "settlement"``
    line, a :class:`Settlement` (spec 9); callers that hand data to rules keep
    the observations only (``read_jsonl`` does).

    Never raises for bad content: bad JSON, bad UTF-8, a non-object or an
    invalid observation becomes a LineError and reading goes on. Blank lines
    are skipped silently. Unknown keys are dropped; each is reported once per
    file as a warning item (observation None) just before its line's result.
    """
    p = str(path)
    warned: set[str] = set()
    # errors="replace" keeps one bad byte from aborting the file; the line
    # that holds it then fails JSON or validation and is reported.
    with open_recording(path) as fh:
        for n, raw_bytes in enumerate(_whole(fh), start=1):
            text = raw_bytes.decode("utf-8", errors="replace").strip()
            if not text:
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as e:
                yield n, None, LineError(p, n, f"not valid JSON: {e.msg} at column {e.colno}")
                continue
            if not isinstance(data, dict):
                yield n, None, LineError(p, n, f"expected a JSON object, got {type(data).__name__}")
                continue
            for k in data.keys() - _FIELDS:
                if k not in warned:
                    warned.add(k)
                    yield n, None, LineError(
                        p, n, f"unknown field {k!r} ignored (reported once per file)", "warning"
                    )
            try:
                obs = _validate(data)
            except ValidationError as e:
                yield n, None, LineError(p, n, _describe(e))
                continue
            yield n, obs, None


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
