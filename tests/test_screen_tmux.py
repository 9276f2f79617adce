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
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "binance-bybit-okx-btc-eth-2023-2024.jsonl"

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def _tmux(socket: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True,
                          timeout=10).stdout


def _start(socket: str, command: str, env: dict[str, str]) -> None:
    """Run `command` in an 80x50 pane that stays after the command ends
    (remain-on-exit), so the screen's last words can be read however late the
    test looks: without it the session vanishes within ~0.1 s of the exit, and
    a test slowed by load missed "screen stopped at"."""
    subprocess.run(["tmux", "-L", socket, "-f", os.devnull, "set-option", "-g", "remain-on-exit",
                    "on", ";", "new-session", "-d", "-s", "scr", "-x", "80", "-y", "50", "-c",
                    str(ROOT), command], check=True, env=env, timeout=10)  # fmt: skip


def _wait_for(socket: str, *texts: str, timeout: float = 30.0,
              until: Callable[[str], bool] | None = None, history: bool = False) -> str:
    """The pane once it shows every one of `texts` (and `until(pane)` holds) and
    has settled: the same on two captures 0.25 s apart. Under load a capture can
    land while the screen is still writing a frame, top line first: a new title
    over the old rows. Waiting for what the whole frame shows, not for its first
    line, is what keeps the checks below from reading half a frame.

    `history`: the pane's scrolled-off lines too. Once the command has ended, tmux
    scrolls what the dead pane showed into its history to write "Pane is dead"."""
    capture = ["capture-pane", "-p", "-t", "scr", *(["-S", "-"] if history else [])]
    end = time.monotonic() + timeout
    pane = ""
    while time.monotonic() < end:
        pane = _tmux(socket, *capture)
        if all(t in pane for t in texts) and (until is None or until(pane)):
            time.sleep(0.25)
            again = _tmux(socket, *capture)
            if again == pane:
                return pane
            continue
        time.sleep(0.2)
    missing = [t for t in texts if t not in pane] + ([] if until is None else [until.__doc__])
    state = _tmux(socket, "display-message", "-p", "-t", "scr",
                  "dead #{pane_dead} (status #{pane_dead_status}), alternate screen #{alternate_on}")
    raise AssertionError(f"{missing!r} never appeared (or the pane never settled); pane "
                         f"{state.strip()}; it shows:\n{pane}")


def _file_text(path: Path, timeout: float = 30.0) -> str:
    """What the shell wrote to `path`, once it has (the command's status, stty)."""
    end = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()) and time.monotonic() < end:
        time.sleep(0.1)
    return path.read_text() if path.exists() else ""


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
    _start(socket, command, env)
    try:
        pane = _wait_for(socket, "funding 2023-01-01 07:59:00 UTC", "refresh every 1s",
                         "BTC   bybit     0.0364%  39.9%",  # the first funding row, whole
                         timeout=60)
        assert all(len(line) <= 80 for line in pane.splitlines())
        assert "…" not in pane
        # the recording grows (appended to, as `rulebook snapshot` does): the next
        # refresh shows its newest snapshot
        with rec.open("a") as f:
            f.write("".join(lines[30:60]))
        pane = _wait_for(socket, "funding 2023-01-01 23:59:00 UTC")
        _tmux(socket, "send-keys", "-t", "scr", "C-c")
        pane = _wait_for(socket, "screen stopped at", history=True)
        assert "Traceback" not in pane
        assert _file_text(status).strip() == "0"  # a clean exit
        assert _file_text(stty) == (tmp_path / "stty.before").read_text()  # as it was
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
    _start(socket, command, env)
    try:
        pane = _wait_for(socket, "sorted by funding", "q or Ctrl-C quits",  # and the footer
                         "c coin, e exchange, r reverse", timeout=60)
        assert _first_row(pane) == ["BTC", "bybit"]  # largest funding first
        _tmux(socket, "send-keys", "-t", "scr", "c")
        # at once, not at the refresh 60 s away; the frame is whole once its first row is new
        pane = _wait_for(socket, "sorted by coin", timeout=10, until=_row("BTC", "binance"))
        assert "reversed" not in pane
        assert _first_row(pane) == ["BTC", "binance"]
        _tmux(socket, "send-keys", "-t", "scr", "r")
        pane = _wait_for(socket, "reversed", timeout=10, until=_row("ETH", "okx"))
        assert "sorted by coin, reversed" in " ".join(pane.split())
        assert _first_row(pane) == ["ETH", "okx"]
        assert all(len(line) <= 80 for line in pane.splitlines()) and "…" not in pane
        _tmux(socket, "send-keys", "-t", "scr", "q")
        pane = _wait_for(socket, "screen stopped at", history=True)
        assert "Traceback" not in pane
        assert _file_text(status).strip() == "0"
        assert _file_text(stty) == (tmp_path / "stty.before").read_text()  # icanon, echo back
    finally:
        _tmux(socket, "kill-server")


def _row(coin: str, exchange: str) -> Callable[[str], bool]:
    def shown_first(pane: str) -> bool:
        return _first_row(pane) == [coin, exchange]

    shown_first.__doc__ = f"{coin} {exchange} as the first row"
    return shown_first


def _first_row(pane: str) -> list[str]:
    """Coin and exchange of the funding table's first row ([] while none is drawn)."""
    lines = pane.splitlines()
    header = next((i for i, ln in enumerate(lines) if ln.split()[:2] == ["coin", "exchange"]), None)
    if header is None or header + 2 >= len(lines):
        return []
    return lines[header + 2].split()[:2]
