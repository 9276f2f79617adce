"""A Parquet replay reads the next row group in a thread while the cycles of the
current one are used (`_columnar._read_ahead`). The cycles are exactly those
read without the thread; an error comes where it came; stopping early stops
the thread."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rulebook.market import ReplaySource, _columnar, iter_columns, write_columnar

pytest.importorskip("pyarrow")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "binance-bybit-okx-btc-eth-2023-2024.jsonl"
T0 = 1_704_067_200_000
FIELDS = ("exchange", "coin", "market", "symbol", "ts", "next_funding_ts", "funding_rate",
          "funding_interval_h", "mark", "index", "bid", "ask", "volume_24h", "taker_fee",
          "borrow_rate_daily")  # fmt: skip


def _threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "rulebook-read-ahead"}


@pytest.fixture(autouse=True)
def no_thread_left() -> Iterator[None]:
    """Each test ends without a read-ahead thread of its own (one another test left
    to the garbage collector is not this test's)."""
    before = _threads()
    yield
    deadline = time.monotonic() + 5
    while _threads() - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _threads() - before


def _cycles(path: Path) -> list[tuple]:
    out = []
    for c in iter_columns(path):
        out.append((
            c.at, c.exchanges, c.coins, c.markets, c.symbols,
            tuple(getattr(c, f).dtype.str + getattr(c, f).tobytes().hex() for f in FIELDS),
            tuple(s.to_json() for s in c.settlements),
        ))  # fmt: skip
    return out


def _rows() -> list[dict]:
    rows = [json.loads(ln) for ln in EXAMPLE.read_text().splitlines()[:5000]]
    # a coin first seen late in the file: the earlier cycles do not name it
    late = {"ts": rows[-1]["ts"], "exchange": "okx", "coin": "LATE", "market": "perp",
            "funding_rate": 0.0001, "funding_interval_h": 8.0, "mark": 3.0}  # fmt: skip
    return [*rows, late, {**late, "ts": late["ts"] + 60_000}]


def test_the_cycles_are_those_read_without_the_thread(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "r.parquet"
    write_columnar(path, _rows(), row_group_rows=97)
    with_thread = _cycles(path)
    monkeypatch.setattr(_columnar, "_read_ahead", lambda items: items)
    without = _cycles(path)
    assert with_thread == without
    assert len(with_thread) > 100
    assert "LATE" not in with_thread[0][2] and "LATE" in with_thread[-1][2]


def test_items_come_in_order_and_an_error_where_it_came() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("Parquet file damaged (boom)")

    got = []
    with pytest.raises(OSError, match="damaged"):
        for x in _columnar._read_ahead(items()):
            got.append(x)
    assert got == [1, 2]


def test_stopping_early_stops_the_thread_and_closes_the_source() -> None:
    closed = threading.Event()

    def items() -> Iterator[int]:
        try:
            yield from range(1000)
        finally:
            closed.set()

    before = _threads()
    it = _columnar._read_ahead(items())
    assert [next(it), next(it), next(it)] == [0, 1, 2]
    mine = _threads() - before
    assert len(mine) == 1
    it.close()  # returns once the thread has ended
    assert closed.is_set()
    assert not any(t.is_alive() for t in mine)


def test_a_replay_stopped_early_leaves_no_thread(tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    write_columnar(path, _rows(), row_group_rows=50)
    views = iter(ReplaySource(path))
    first = [next(views) for _ in range(3)]
    assert [v.at for v in first] == sorted({v.at for v in first})
    del views  # dropped without being closed: the generator's finally ends the thread


def test_a_damaged_file_gives_what_it_gave_without_the_thread(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "r.parquet"
    rows = [{"ts": T0 + 60_000 * (i // 3), "exchange": "okx", "coin": ("BTC", "ETH", "SOL")[i % 3],
             "market": "perp", "funding_rate": 0.0001, "funding_interval_h": 8.0,
             "mark": 100.0 + i} for i in range(3000)]  # fmt: skip
    write_columnar(path, rows, row_group_rows=300)
    data = bytearray(path.read_bytes())
    mid = len(data) // 2  # a later row group's pages, not the footer
    data[mid : mid + 64] = bytes(64)
    path.write_bytes(bytes(data))

    def replay() -> tuple[list[int], list[str]]:
        source = ReplaySource(path)
        return [v.at for v in source], [str(e) for e in source.errors]

    with_thread = replay()
    monkeypatch.setattr(_columnar, "_read_ahead", lambda items: items)
    assert with_thread == replay()
    assert len(with_thread[1]) == 1 and "cannot read file" in with_thread[1][0]
