"""`rulebook screen`'s live view in a real terminal: tmux at 80 columns.

The screen follows a recording that grows while it runs (as one that
`rulebook snapshot` writes does), refreshes every second, fits the terminal,
re-sorts at a key press, and quits cleanly on q or Ctrl-C, leaving the
terminal as it found it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "binance-bybit-okx-btc-eth-2023-2024.jsonl"

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def _tmux(socket: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True,
                          timeout=10).stdout


def _wait_for(socket: str, text: str, timeout: float = 30.0) -> str:
    end = time.monotonic() + timeout
    pane = ""
    while time.monotonic() < end:
        pane = _tmux(socket, "capture-pane", "-p", "-t", "scr")
        if text in pane:
            return pane
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared; the pane shows:\n{pane}")


def test_live_screen_refreshes_fits_and_quits(tmp_path) -> None:
    lines = EXAMPLE.read_text().splitlines(keepends=True)
    rec = tmp_path / "rec.jsonl"
    rec.write_text("".join(lines[:30]))  # the cycle of 2023-01-01 07:59
    socket = f"rulebook-test-{os.getpid()}"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    status = tmp_path / "status"
    command = shlex.join([sys.executable, "-m", "rulebook.cli", "screen", "strategies/",
                          "--snapshot", str(rec), "--every", "1s"])
    stty = tmp_path / "stty"
    command = (f"stty -a > {shlex.quote(str(stty))}.before; {command}; "
               f"echo $? > {shlex.quote(str(status))}; "  # the exit status, for the test
               f"stty -a > {shlex.quote(str(stty))}")  # the terminal, after Ctrl-C
    subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-s", "scr", "-x", "80",
                    "-y", "50", "-c", str(ROOT), command], check=True, env=env, timeout=10)
    try:
        pane = _wait_for(socket, "funding 2023-01-01 07:59:00 UTC")
        assert "refresh every 1s" in pane
        assert all(len(line) <= 80 for line in pane.splitlines())
        assert "…" not in pane
        assert "BTC   bybit     0.0364%  39.9%" in pane  # the first funding row, whole
        # the recording grows: the next refresh shows its newest snapshot
        rec.write_text("".join(lines[:60]))
        pane = _wait_for(socket, "funding 2023-01-01 23:59:00 UTC")
        _tmux(socket, "send-keys", "-t", "scr", "C-c")
        pane = _wait_for(socket, "screen stopped at")
        assert "Traceback" not in pane
        end = time.monotonic() + 10
        while not (status.exists() and status.read_text().strip()) and time.monotonic() < end:
            time.sleep(0.1)
        assert status.read_text().strip() == "0"  # a clean exit
        while not (stty.exists() and stty.read_text().strip()) and time.monotonic() < end:
            time.sleep(0.1)
        assert stty.read_text() == (tmp_path / "stty.before").read_text()  # as it was
    finally:
        _tmux(socket, "kill-server")


def test_live_screen_resorts_on_a_key_and_restores_the_terminal(tmp_path) -> None:
    """c sorts by coin, r reverses, q quits: each at once, not at the next refresh
    (every 60 s here), and the shell gets its terminal back as it was (stty)."""
    lines = EXAMPLE.read_text().splitlines(keepends=True)
    rec = tmp_path / "rec.jsonl"
    rec.write_text("".join(lines[:30]))
    socket = f"rulebook-test-keys-{os.getpid()}"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    status, stty = tmp_path / "status", tmp_path / "stty"
    command = shlex.join([sys.executable, "-m", "rulebook.cli", "screen", "strategies/",
                          "--snapshot", str(rec), "--every", "60s"])
    command = (f"stty -a > {shlex.quote(str(stty))}.before; {command}; "
               f"echo $? > {shlex.quote(str(status))}; stty -a > {shlex.quote(str(stty))}")
    subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-s", "scr", "-x", "80",
                    "-y", "50", "-c", str(ROOT), command], check=True, env=env, timeout=10)
    try:
        pane = _wait_for(socket, "sorted by funding")
        assert "q or Ctrl-C quits" in pane and "c coin, e exchange, r reverse" in pane  # footer
        assert _first_row(pane) == ["BTC", "bybit"]  # largest funding first
        _tmux(socket, "send-keys", "-t", "scr", "c")
        pane = _wait_for(socket, "sorted by coin", timeout=10)  # not at the refresh, 60 s away
        assert "reversed" not in pane
        assert _first_row(pane) == ["BTC", "binance"]
        _tmux(socket, "send-keys", "-t", "scr", "r")
        pane = _wait_for(socket, "reversed", timeout=10)
        assert "sorted by coin, reversed" in " ".join(pane.split())
        assert _first_row(pane) == ["ETH", "okx"]
        assert all(len(line) <= 80 for line in pane.splitlines()) and "…" not in pane
        _tmux(socket, "send-keys", "-t", "scr", "q")
        pane = _wait_for(socket, "screen stopped at", timeout=10)
        assert "Traceback" not in pane
        end = time.monotonic() + 10
        while not (stty.exists() and stty.read_text().strip()) and time.monotonic() < end:
            time.sleep(0.1)
        assert status.read_text().strip() == "0"
        assert stty.read_text() == (tmp_path / "stty.before").read_text()  # icanon, echo back
    finally:
        _tmux(socket, "kill-server")


def _first_row(pane: str) -> list[str]:
    """Coin and exchange of the funding table's first row."""
    lines = pane.splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.split()[:2] == ["coin", "exchange"])
    return lines[header + 2].split()[:2]
