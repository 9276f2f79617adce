"""`rulebook validate --watch`: re-checks on every save, stops on Ctrl-C."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

GOOD = "rule cross: when spread(SOL, backpack, binance) > 0.1% then hedge 1000 USDT\n"


def _lines(stream, into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


def wait_for(lines: queue.Queue[str], text: str, seen: list[str], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not any(text in line for line in seen):
        left = deadline - time.monotonic()
        assert left > 0, f"never printed {text!r}; got:\n{''.join(seen)}"
        try:
            seen.append(lines.get(timeout=left))
        except queue.Empty:
            pass


def test_validate_watch_rechecks_each_save_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    rules = tmp_path / "cross.rules"
    rules.write_text(GOOD)
    proc = subprocess.Popen(
        [sys.executable, "-m", "rulebook.cli", "validate", str(tmp_path), "--watch"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []
    threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
    try:
        wait_for(lines, "watching", seen)
        assert "1 file, 1 rule: 0 errors, 0 warnings\n" in seen

        rules.write_text(GOOD.replace("binance", "binanse"))
        wait_for(lines, "1 error", seen)
        out = "".join(seen)
        assert "saved cross.rules: checking again" in out
        assert "error[E102]: unknown exchange 'binanse'" in out
        assert f"--> {rules}:1:40" in out

        seen.clear()
        rules.write_text(GOOD.replace("0.1%", "0.2%"))
        wait_for(lines, "0 errors", seen)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0  # the last check was clean
    assert "Traceback" not in "".join(seen)
