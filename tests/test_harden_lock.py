"""Issue 14, attack 1: two `rulebook run --paper` on one `--db`.

One runtime per ledger: the second refuses at once naming the pid and the
command of the first; `status` keeps reading; kill -9 leaves no stale lock.
Real processes, since the lock is the operating system's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rulebook.trading import LedgerInUse, RuntimeLock

T0 = 1753112400000
RULES = "when funding(SOL, binance) > 0% then hedge 100 USDT\n"


def _line(ts: int, mark: float) -> str:
    return json.dumps(
        {"ts": ts, "exchange": "binance", "coin": "SOL", "market": "perp",
         "funding_rate": 0.001, "funding_interval_h": 8, "mark": mark, "index": mark}
    )  # fmt: skip


def _rulebook(*args: str) -> list[str]:
    return [sys.executable, "-c", "from rulebook.cli import main; main()", *args]


@pytest.fixture
def slow_replay(tmp_path: Path) -> tuple[list[str], Path]:
    """A run that lasts about 20 s: three cycles a minute apart, replayed at 6x."""
    rules = tmp_path / "r.rules"
    rules.write_text(RULES)
    rec = tmp_path / "rec.jsonl"
    rec.write_text("".join(_line(T0 + i * 60_000, 100.0 + i) + "\n" for i in range(3)))
    db = tmp_path / "paper.db"
    cmd = _rulebook(
        "run", str(rules), "--paper", "--replay", str(rec), "--speed", "6", "--db", str(db),
        "--no-watch",
    )  # fmt: skip
    return cmd, db


def _wait_for_holder(lock: RuntimeLock, timeout: float = 30.0) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        holder = lock.holder()
        if holder is not None and holder.pid is not None:
            return holder.pid
        time.sleep(0.05)
    raise AssertionError("the first run never took the lock")


def test_a_second_run_refuses_at_once_naming_the_first_and_status_keeps_reading(slow_replay):
    cmd, db = slow_replay
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pid = _wait_for_holder(RuntimeLock(db))
        assert pid == first.pid
        started = time.monotonic()
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        refused_in = time.monotonic() - started
        assert second.returncode == 2
        message = second.stderr.strip()
        assert f"in use by pid {first.pid}" in message
        assert "rulebook run" in message and "--paper" in message
        assert "Traceback" not in second.stderr
        assert len(message.splitlines()) == 1
        assert refused_in < 15  # at once: the interpreter's start-up, not the run's length
        # status and its JSON read the ledger while the runtime writes it
        status = subprocess.run(
            _rulebook("status", "--db", str(db), "--json"), capture_output=True, text=True, timeout=60
        )
        assert status.returncode == 0, status.stderr
        assert "stats" in json.loads(status.stdout)
        report = subprocess.run(
            _rulebook("report", "--db", str(db), "--json"), capture_output=True, text=True, timeout=60
        )
        assert report.returncode == 0, report.stderr
        json.loads(report.stdout)
        assert first.poll() is None  # the first run was still going all along
    finally:
        first.kill()
        first.wait(timeout=30)


def test_kill_9_leaves_no_stale_lock(slow_replay):
    cmd, db = slow_replay
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_holder(RuntimeLock(db))
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    assert RuntimeLock(db).holder() is None
    fast = [c if c != "6" else "max" for c in cmd]  # the same run, unpaced: it resumes
    again = subprocess.run(fast, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "in use" not in again.stderr


def test_the_lock_in_one_process(tmp_path: Path):
    db = tmp_path / "x.db"
    a = RuntimeLock(db)
    with a.hold("rulebook run a"):
        holder = RuntimeLock(db).holder()
        assert holder is not None and holder.pid == os.getpid() and holder.command == "rulebook run a"
        with pytest.raises(LedgerInUse) as e:
            RuntimeLock(db).acquire("rulebook run b")
        assert f"in use by pid {os.getpid()} (rulebook run a)" in str(e.value)
        assert "rulebook halt --db" in str(e.value)
    assert RuntimeLock(db).holder() is None
    again = RuntimeLock(db)
    again.acquire("again")  # released: free to take
    again.release()


def test_the_command_shown_has_no_secret(tmp_path: Path):
    db = tmp_path / "x.db"
    with RuntimeLock(db).hold("rulebook run --config x tgram://bottoken123/chat"):
        holder = RuntimeLock(db).holder()
        assert holder is not None and "bottoken123" not in holder.command
