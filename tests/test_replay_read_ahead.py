"""A large JSONL replay read ahead in a worker process (market/_readahead.py).

The worker runs the replay this process would and sends its views and problems
through a pipe; these tests hold what arrives to the replay read here, view for
view (tests/test_replay_columns.py's comparison: times, rows, every column by bit,
settlement records) and problem for problem, through real worker processes: bad
lines, lines out of time order, ``.gz`` input and a truncated one, a worker that is
killed or cannot start, a replay closed early or interrupted, and when a worker is
started at all. (The frames themselves, on 200 random recordings, are in
tests/test_replay_columns.py.)
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_replay_columns import EXAMPLE, T0, _line, _same_views

from rulebook.market import LineError, ReplaySource, SnapshotView, _readahead

ROOT = Path(__file__).resolve().parents[1]


def _here(path: Path) -> tuple[list[SnapshotView], list[LineError], dict[str, int]]:
    source = ReplaySource(path, read_ahead=False)
    views = list(source)
    assert source._worker is None
    return views, source.errors, source.counts


def _ahead(path: Path) -> tuple[list[SnapshotView], ReplaySource]:
    source = ReplaySource(path, read_ahead=True)
    views = list(source)
    assert source._worker is not None and source._worker.returncode == 0
    return views, source


def _same(path: Path) -> None:
    want, errors, counts = _here(path)
    got, source = _ahead(path)
    _same_views(got, want)
    assert source.errors == errors and source.counts == counts


def _messy(path: Path) -> None:
    """The example recording with bad lines, lines out of time order, a null, an
    unknown key and a crossed book among its lines."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    for i, extra in ((40, "null"), (400, "unknown"), (900, "crossed"), (1500, "bad coin")):
        lines.insert(i, _line(T0, "binance", "BTC", "spot", 100.0, extra))
    lines[700:700] = ["not json", "", "[1]", '{"ts": 1}']
    lines.insert(1200, lines[100])  # an old line: out of time order
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _big(path: Path, hours: int = 400, coins: int = 40) -> None:
    """A clean hourly recording whose frames are several times the pipe's buffer, so a
    worker is still reading when the replay is a few views in."""
    names = [f"C{i}" for i in range(coins)]
    with path.open("w", encoding="utf-8") as fh:
        for h in range(hours):
            for ex in ("binance", "okx", "bybit"):
                for coin in names:
                    for m in ("perp", "spot"):
                        fh.write(_line(T0 + h * 3_600_000, ex, coin, m, 100.0 + h, "") + "\n")


def test_a_read_ahead_replay_gives_the_views_and_problems_of_one_read_here(
    tmp_path: Path,
) -> None:
    _same(EXAMPLE)  # a third of its lines are settlement records
    messy = tmp_path / "messy.jsonl"
    _messy(messy)
    _, errors, _ = _here(messy)
    assert {e.severity for e in errors} == {"error", "warning"} and len(errors) >= 8
    _same(messy)


def test_a_gz_recording_and_a_truncated_one(tmp_path: Path) -> None:
    messy = tmp_path / "messy.jsonl"
    _messy(messy)
    gz = tmp_path / "messy.jsonl.gz"
    gz.write_bytes(gzip.compress(messy.read_bytes()))
    _same(gz)
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(gz.read_bytes()[: gz.stat().st_size // 2])
    _, errors, _ = _here(cut)
    assert "cannot read file: compressed file ends early" in errors[-1].message
    _same(cut)


def test_a_missing_file_is_reported_as_here(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    source = ReplaySource(missing, read_ahead=True)
    assert list(source) == [] and source._worker is None  # nothing to read ahead
    assert [e.message for e in source.errors] == [e.message for e in _here(missing)[1]]


def test_a_worker_killed_mid_replay_leaves_the_rest_to_this_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "big.jsonl"
    _big(path)
    messy = path.read_text(encoding="utf-8").splitlines()
    messy.insert(10, "not json")  # a problem handed on before the kill
    messy.insert(len(messy) - 100, "[2]")  # and one after it
    path.write_text("\n".join(messy) + "\n", encoding="utf-8")
    _killed_mid_replay(path, caplog)


def _killed_mid_replay(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Kill ``path``'s worker three views in: the replay read here gives the rest, and
    the views and problems are those of one read here."""
    want, errors, counts = _here(path)
    source = ReplaySource(path, read_ahead=True)
    views = iter(source)
    got = [next(views) for _ in range(3)]
    worker = source._worker
    assert worker is not None and worker.poll() is None  # still reading: the pipe is full
    worker.kill()
    got += list(views)
    assert worker.returncode == -signal.SIGKILL
    _same_views(got, want)
    assert source.errors == errors and source.counts == counts
    assert "stopped" in caplog.text and "reading the rest here" in caplog.text


def test_a_worker_that_fails_leaves_the_replay_to_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure inside the worker is sent as a frame; the reader goes on here."""
    import io

    def failing(*args: object, **kwargs: object) -> object:
        yield from []
        raise RuntimeError("boom")

    out = io.BytesIO()
    with monkeypatch.context() as m:
        m.setattr(_readahead, "replay", failing)
        assert _readahead.serve(str(EXAMPLE), out) == 1
    out.seek(0)
    received = _readahead.frames(ReplaySource(EXAMPLE), out)
    with pytest.raises(StopIteration) as stop:
        next(received)
    assert stop.value.value == "RuntimeError: boom"  # why the frames ended early


def test_a_worker_that_cannot_start(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_process(*args: object, **kwargs: object) -> object:
        raise OSError("no more processes")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    want, errors, _ = _here(EXAMPLE)
    source = ReplaySource(EXAMPLE, read_ahead=True)
    _same_views(list(source), want)
    assert source.errors == errors and source._worker is None


def _wait_gone(worker: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.poll() is not None


def test_a_replay_closed_early_or_interrupted_stops_its_worker(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    _big(path)
    for stop in ("close", "interrupt", "drop"):
        source = ReplaySource(path, read_ahead=True)
        views = iter(source)
        next(views)
        worker = source._worker
        assert worker is not None and worker.poll() is None
        # its own session: a Ctrl-C at the terminal reaches the replay's process only
        assert os.getsid(worker.pid) != os.getsid(0)
        if stop == "close":
            views.close()  # type: ignore[attr-defined]
        elif stop == "interrupt":  # Ctrl-C while the replay waits for the next view
            with pytest.raises(KeyboardInterrupt):
                views.throw(KeyboardInterrupt)  # type: ignore[attr-defined]
        else:
            del views
        _wait_gone(worker)


def _workers_of(path: Path) -> list[int]:
    """The pids of live processes reading ``path`` ahead (their command line names it)."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if str(path).encode() in cmdline and b"_readahead" in cmdline:
                found.append(int(pid))
    return found


def test_ctrl_c_stops_a_run_and_its_worker(tmp_path: Path) -> None:
    """``rulebook run --replay`` of a large recording, interrupted: it stops as a replay
    read here stops (the cycle in hand ends, the summary is printed), and leaves no
    worker behind."""
    path = tmp_path / "big.jsonl"
    _big(path, hours=4000, coins=10)
    assert path.stat().st_size >= _readahead.READ_AHEAD_BYTES  # read ahead as a user's is
    rules = tmp_path / "r.rules"
    rules.write_text(
        "when spread(BTC, binance, okx) > 0.1% then hedge 100 USDT\n", encoding="utf-8"
    )
    rulebook = str(Path(sys.executable).with_name("rulebook"))
    cmd = [rulebook, "run", str(rules), "--paper", "--replay", str(path),
           "--db", str(tmp_path / "l.db"), "--no-watch"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("RULEBOOK_")}
    run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 60
    while not _workers_of(path) and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.02)
    assert _workers_of(path), f"no worker started: {run.poll()} {run.stderr}"
    time.sleep(0.3)
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=60)
    # the runtime's own stop (app/_session.py): the cycle ends, the ledger is whole
    assert run.returncode == 0 and b"halted: SIGINT" in err and b"Traceback" not in err
    cycles = int(out.split(b"cycles ", 1)[1].split(b" ", 1)[0])
    assert cycles < 4000  # stopped early (under load, possibly before its first cycle)
    deadline = time.monotonic() + 10
    while _workers_of(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _workers_of(path)


def test_only_a_large_file_is_read_ahead(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = tmp_path / "s.jsonl"
    small.write_bytes(b"x" * 1000)
    gz = tmp_path / "s.jsonl.gz"
    gz.write_bytes(b"x" * 200)
    assert not _readahead.wanted(small, None) and not _readahead.wanted(gz, None)
    assert _readahead.wanted(small, True) and not _readahead.wanted(small, False)
    assert not _readahead.wanted(tmp_path / "missing.jsonl", True)
    monkeypatch.setattr(_readahead, "READ_AHEAD_BYTES", 1000)
    assert _readahead.wanted(small, None) and not _readahead.wanted(small, False)
    assert _readahead.wanted(gz, None)  # a .gz counts eight times its size
    assert not _readahead.wanted(tmp_path / "missing.jsonl", None)
    assert _readahead.READ_AHEAD_BYTES == 1000
    monkeypatch.undo()
    # the month of the benchmark (~100 MB) is read ahead, the bundled example is not
    assert not _readahead.wanted(EXAMPLE, None)
    assert _readahead.READ_AHEAD_BYTES <= 100 * 2**20


def test_no_worker_outlives_a_killed_run(tmp_path: Path) -> None:
    """A run killed outright (SIGKILL: no clean-up runs) leaves no worker behind: the
    worker's next write finds no reader and it stops."""
    path = tmp_path / "big.jsonl"
    _big(path)
    code = (
        "import os, signal, sys\n"
        "from rulebook.market import ReplaySource\n"
        "source = ReplaySource(sys.argv[1], read_ahead=True)\n"
        "views = iter(source)\n"
        "next(views)\n"
        "print(source._worker.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, timeout=120, check=False
    )
    assert run.returncode == -signal.SIGKILL
    assert int(run.stdout) > 0
    deadline = time.monotonic() + 10
    while _workers_of(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _workers_of(path)
