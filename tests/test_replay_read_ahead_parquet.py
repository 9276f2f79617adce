"""A large Parquet replay read ahead in the same worker process as a JSONL one
(market/_readahead.py): the views and problems that arrive are those of the replay
read here (`iter_columns`), view for view and problem for problem, through real
worker processes: a clean recording, one with settlement records, a damaged file,
a worker killed mid-replay, and when a worker is started at all."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_replay_columns import EXAMPLE, _same_views
from test_replay_read_ahead import _ahead, _big, _here, _killed_mid_replay

from rulebook.market import ReplaySource, _readahead, convert

pytest.importorskip("pyarrow")


def _parquet(tmp_path: Path, jsonl: Path) -> Path:
    out = tmp_path / (jsonl.stem + ".parquet")
    convert(jsonl, out)
    return out


def test_a_read_ahead_parquet_replay_gives_the_views_of_one_read_here(tmp_path: Path) -> None:
    example = _parquet(tmp_path, EXAMPLE)  # a third of its lines are settlement records
    big = tmp_path / "big.jsonl"
    _big(big)
    for path in (example, _parquet(tmp_path, big)):
        want, errors, counts = _here(path)
        got, source = _ahead(path)
        assert len(want) > 100
        _same_views(got, want)
        assert source.errors == errors and source.counts == counts


def test_a_damaged_parquet_file_is_reported_as_here(tmp_path: Path) -> None:
    good = _parquet(tmp_path, EXAMPLE)
    damaged = tmp_path / "damaged.parquet"
    data = good.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    want, errors, counts = _here(damaged)
    source = ReplaySource(damaged, read_ahead=True)
    got = list(source)
    _same_views(got, want)
    assert [e.message for e in source.errors] == [e.message for e in errors]
    assert source.counts == counts and counts["error"] >= 1


def test_a_worker_killed_mid_parquet_replay_leaves_the_rest_to_this_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    big = tmp_path / "big.jsonl"
    _big(big)
    _killed_mid_replay(_parquet(tmp_path, big), caplog)


def test_a_parquet_file_counts_eleven_times_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = tmp_path / "s.parquet"
    small.write_bytes(b"x" * 100)
    monkeypatch.setattr(_readahead, "READ_AHEAD_BYTES", 1100)
    assert _readahead.wanted(small, None)
    monkeypatch.setattr(_readahead, "READ_AHEAD_BYTES", 1101)
    assert not _readahead.wanted(small, None) and _readahead.wanted(small, True)
    monkeypatch.undo()
    # the bundled example's Parquet copy is read here
    assert not _readahead.wanted(_parquet(tmp_path, EXAMPLE), None)
