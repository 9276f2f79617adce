"""A large replay read ahead in another process (docs/performance.md, "Reading a
JSONL replay ahead"; docs/market.md, "Replay").

A Parquet recording goes the same way (`_replay.replay_parquet`): its reader's
thread leaves pyarrow's decoding off the GIL but not the Python that turns each
row group into views.

Reading a JSONL recording (msgspec's decode, lines into columns) holds the GIL, so
a thread cannot overlap it with the cycle that uses its views. A worker process can:
it runs the very replay this process would (`_replay.replay_jsonl`: pieces, checks,
the general path for the pieces that need it, time order and late lines, ``.gz``)
and sends each view's columns, and each problem, through a pipe in the order the
replay made them. This process turns the bytes back into the same columns
(`ObservationColumns` over the received buffer, no copy) and reports the problems
through its own `ReplaySource`, so views, figures and reports are exactly those of
reading here (tests/test_replay_read_ahead.py).

- Only for a file big enough (`READ_AHEAD_BYTES`): starting a Python process costs
  about 0.15 s of CPU. `ReplaySource(read_ahead=...)` turns it on or off for one
  replay.
- The worker is started afresh (``subprocess``, not ``fork``: the runtime may hold
  threads, SQLite connections and locks a forked child must not inherit) in its own
  session, so a Ctrl-C reaches this process only, which stops the worker (as it does
  when the replay is closed or dropped). A worker whose reader is gone stops at its
  next write.
- A worker that stops early (killed, out of memory, a failure of its own) is not an
  error of the recording: the replay goes on here from where the worker stopped
  (the views and problems already handed on are skipped), with a warning in the log.
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
import subprocess
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import numpy as np

from rulebook._exchanges import EXCHANGES

from ._filetype import is_columnar
from ._jsonl import MAX_LINE_BYTES, LineError
from ._replay import _NUMBERS, replay
from ._view import MARKETS, SnapshotView

if TYPE_CHECKING:
    from ._columnar import ObservationColumns
    from ._replay import ReplaySource

__all__ = ["READ_AHEAD_BYTES", "views", "wanted", "serve"]

log = logging.getLogger(__name__)

#: the smallest JSONL file read ahead (a ``.gz`` counts eight times its size): about
#: 100,000 lines, which take a quarter of a second to read here
READ_AHEAD_BYTES = 16 * 1024 * 1024
_GZ_RATIO = 8
#: a Parquet file holds about 11 times the observations of a JSONL one of its size
_PARQUET_RATIO = 11
#: the pipe's buffer (Linux lets a process set up to 1 MiB): a dozen views ahead
_PIPE_BYTES = 1024 * 1024

# A frame: its kind and size, then its payload.
_FRAME = struct.Struct("<cxxxI")
_VIEW, _PROBLEMS, _END, _FAILED = b"V", b"P", b"E", b"X"
# A view's payload: its time, rows, what it carries besides the numbers (flags), the
# size of its pickled part; then the number rows, ts, symbol codes, [the code
# arrays], [the pickled categories and settlement records]. Every array starts at a
# multiple of its item size.
_HEAD = struct.Struct("<qiB3xI4x")
_CODES, _COINS, _SYMBOLS, _SETTLEMENTS = 1, 2, 4, 8


def wanted(path: str | os.PathLike[str], read_ahead: bool | None) -> bool:
    """Whether a JSONL replay of ``path`` is read ahead in another process."""
    if read_ahead is False or os.name != "posix":  # the worker's pipe is passed as a POSIX fd
        return False
    try:
        size = os.path.getsize(path)
    except OSError:  # the replay here reports it
        return False
    if read_ahead:
        return True
    if is_columnar(path):
        ratio = _PARQUET_RATIO
    else:
        ratio = _GZ_RATIO if str(path).endswith(".gz") else 1
    return size * ratio >= READ_AHEAD_BYTES


# -- the worker's side --------------------------------------------------------------


class _Encoder:
    """A view's columns as one frame; the code arrays and category tuples only when they
    are other objects than the last view's (the replay shares them while no market is
    added)."""

    def __init__(self) -> None:
        self._codes: tuple[object, ...] = ()
        self._coins: object = None
        self._symbols: object = None

    def __call__(self, cols: ObservationColumns) -> bytes:
        n = len(cols)
        flags = 0
        parts: list[Any] = [getattr(cols, name).data for name in _NUMBERS]
        parts += [cols.ts.data, cols.symbol.data]
        meta: list[object] = []
        codes = (cols.coin, cols.exchange, cols.market)
        if len(self._codes) != 3 or any(a is not b for a, b in zip(codes, self._codes, strict=True)):
            self._codes = codes
            flags |= _CODES
            parts += [cols.coin.data, cols.exchange.data, cols.market.data]
        if cols.coins is not self._coins:
            self._coins = cols.coins
            flags |= _COINS
            meta.append(cols.coins)
        if cols.symbols is not self._symbols:
            self._symbols = cols.symbols
            flags |= _SYMBOLS
            meta.append(cols.symbols)
        if cols.settlements:
            flags |= _SETTLEMENTS
            meta.append(cols.settlements)
        pickled = pickle.dumps(tuple(meta), pickle.HIGHEST_PROTOCOL) if meta else b""
        body = b"".join([_HEAD.pack(cols.at, n, flags, len(pickled)), *parts, pickled])
        return _FRAME.pack(_VIEW, len(body)) + body


def serve(path: str, out: IO[bytes], limit: int = MAX_LINE_BYTES, by_piece: bool = True) -> int:
    """The worker: the replay of ``path`` as frames on ``out``; its exit status."""
    problems: list[LineError] = []
    encode = _Encoder()
    write = out.write
    try:
        try:
            for frame in replay(path, problems.append, encode, by_piece=by_piece, limit=limit):
                if problems:
                    write(_pickled(_PROBLEMS, problems))
                    problems.clear()
                write(frame)
                out.flush()
            if problems:
                write(_pickled(_PROBLEMS, problems))
            write(_FRAME.pack(_END, 0))
            out.flush()
        except BrokenPipeError:  # the replay was closed: nobody reads any more
            return 0
        except Exception as e:  # noqa: BLE001 - said to the reader, which reads here instead
            write(_pickled(_FAILED, f"{type(e).__name__}: {e}"))
            out.flush()
            return 1
    except BrokenPipeError:
        return 0
    return 0


def _pickled(kind: bytes, value: object) -> bytes:
    body = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    return _FRAME.pack(kind, len(body)) + body


def _main() -> int:  # pragma: no cover - runs in the worker (tested through `views`)
    fd, path, limit, by_piece = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    with open(fd, "wb", buffering=_PIPE_BYTES) as out:
        return serve(path, out, limit, by_piece == "1")


# -- the reader's side --------------------------------------------------------------


class _Decoder:
    """Frames back into views: the columns over each frame's buffer (read-only code
    arrays and category tuples kept, as the replay here shares them)."""

    def __init__(self) -> None:
        self.codes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.coins: tuple[str, ...] = ()
        self.symbols: tuple[str, ...] = ()

    def view(self, buf: bytearray) -> SnapshotView:
        from ._columnar import ObservationColumns

        at, n, flags, pickled = _HEAD.unpack_from(buf, 0)
        off = _HEAD.size
        numbers = np.frombuffer(buf, np.float64, len(_NUMBERS) * n, off).reshape(-1, n)
        off += numbers.nbytes
        ts = np.frombuffer(buf, np.int64, n, off)
        off += ts.nbytes
        symbol = np.frombuffer(buf, np.int32, n, off)
        off += symbol.nbytes
        if flags & _CODES:
            coin = np.frombuffer(buf, np.int32, n, off)
            exchange = np.frombuffer(buf, np.int16, n, off + 4 * n)
            market = np.frombuffer(buf, np.int8, n, off + 6 * n)
            off += 7 * n
            for a in (coin, exchange, market):
                a.setflags(write=False)
            self.codes = (coin, exchange, market)
        assert self.codes is not None
        coin, exchange, market = self.codes
        meta = list(pickle.loads(bytes(buf[off : off + pickled]))) if pickled else []
        if flags & _COINS:
            self.coins = meta.pop(0)
        if flags & _SYMBOLS:
            self.symbols = meta.pop(0)
        settlements = meta.pop(0) if flags & _SETTLEMENTS else ()
        cols = ObservationColumns(
            at=at,
            exchanges=EXCHANGES,
            coins=self.coins,
            markets=MARKETS,
            symbols=self.symbols,
            exchange=exchange,
            coin=coin,
            market=market,
            symbol=symbol,
            ts=ts,
            settlements=settlements,
            **dict(zip(_NUMBERS, numbers, strict=True)),
        )
        return SnapshotView.from_columns(cols)


def _read(stream: IO[bytes], size: int) -> bytearray | None:
    """``size`` bytes, or None at the end of the stream (the worker stopped)."""
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = stream.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            return None
        got += n
    return buf


def frames(source: ReplaySource, stream: IO[bytes]) -> Generator[SnapshotView, None, str | None]:
    """The views of a worker's frames, its problems reported through ``source`` in order.
    Returns None at the end of the replay, or why the frames ended before it."""
    decoder = _Decoder()
    while True:
        head = _read(stream, _FRAME.size)
        if head is None:
            return "it exited"
        kind, size = _FRAME.unpack(head)
        body = _read(stream, size)
        if body is None:
            return "it exited"
        try:
            if kind == _VIEW:
                view = decoder.view(body)
            elif kind == _PROBLEMS:
                problems: list[LineError] = pickle.loads(body)
            elif kind == _FAILED:
                why = str(pickle.loads(body))
        except (pickle.UnpicklingError, struct.error, ValueError, EOFError) as bad:
            # pragma: no cover - the two sides are the same code
            return f"it sent a frame this process cannot read ({bad})"
        if kind == _VIEW:
            yield view
        elif kind == _PROBLEMS:
            for problem in problems:
                source._problem(problem)
        elif kind == _END:
            return None
        elif kind == _FAILED:
            return why
        else:  # pragma: no cover - the two sides are the same code
            return f"it sent an unknown frame {kind!r}"


def views(
    source: ReplaySource, *, by_piece: bool = True, limit: int = MAX_LINE_BYTES
) -> Iterator[SnapshotView]:
    """``source``'s JSONL replay, read by a worker process; if the worker stops early,
    the rest read here."""
    path = str(source.path)
    read, write = os.pipe()
    try:
        import fcntl

        fcntl.fcntl(read, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    except (ImportError, AttributeError, OSError):  # pragma: no cover - not Linux
        pass
    env = dict(os.environ)
    # the worker imports this very rulebook, wherever it was imported from
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    code = "from rulebook.market._readahead import _main; raise SystemExit(_main())"
    argv = [sys.executable, "-P", "-c", code, str(write), path, str(limit), str(int(by_piece))]
    try:
        worker = subprocess.Popen(
            argv,
            pass_fds=(write,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a Ctrl-C is this process's to handle
        )
    except OSError as e:
        os.close(read)
        os.close(write)
        log.warning("cannot start a process to read %s ahead (%s); reading it here", path, e)
        yield from _rest(source, 0, 0, by_piece, limit)
        return
    os.close(write)
    source._worker = worker  # for tests
    yielded = 0
    counts = source.counts
    ended = False
    try:
        with open(read, "rb", buffering=_PIPE_BYTES) as stream:
            received = frames(source, cast(IO[bytes], stream))
            while True:
                try:
                    view = next(received)
                except StopIteration as stop:
                    why: str | None = stop.value
                    break
                yield view
                yielded += 1
        if why is None:
            ended = True
            return
        reported = sum(counts.values())
        worker.wait()
        log.warning(
            "the process reading %s ahead stopped (%s, exit status %s); "
            "reading the rest here",
            path,
            why,
            worker.returncode,
        )
        yield from _rest(source, yielded, reported, by_piece, limit)
    finally:
        if ended:  # it has sent everything and is exiting
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - it has nothing left to do
                pass
        if worker.poll() is None:  # closed early, interrupted: it is not needed any more
            worker.kill()
        worker.wait()


def _rest(
    source: ReplaySource, views_done: int, problems_done: int, by_piece: bool, limit: int
) -> Iterator[SnapshotView]:
    """The replay here, without its first ``views_done`` views and ``problems_done``
    problems (those the worker handed on: the replay is the same, in the same order)."""
    skip = problems_done

    def problem(e: LineError) -> None:
        nonlocal skip
        if skip:
            skip -= 1
        else:
            source._problem(e)

    for i, view in enumerate(
        replay(source.path, problem, SnapshotView.from_columns, by_piece=by_piece, limit=limit)
    ):
        if i >= views_done:
            yield view
