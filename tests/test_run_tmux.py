"""`rulebook run` in a real terminal (tmux, 80 columns): the replay's progress bar
and the live status line show, and the run ends with its statistics.

rich's Live (under Progress and Console.status) redirects sys.stdout and
sys.stderr by default; rulebook's consoles write through a stream that masks
secrets into sys.stderr, so a redirected one fed the bar's output back into the
bar: on a terminal (never in a pipe) nothing showed and the output piled up in
memory (the README's main job took minutes instead of seconds).
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


def _in_tmux(tmp_path: Path, args: list[str], timeout: float = 60.0) -> str:
    """Run `rulebook ARGS` in an 80x40 tmux pane; the pane once it has ended."""
    socket = f"rulebook-run-{os.getpid()}-{time.monotonic_ns()}"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    done = tmp_path / "done"
    command = shlex.join([sys.executable, "-m", "rulebook.cli", *args])
    command += f"; echo $? > {shlex.quote(str(done))}; sleep 30"
    subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-s", "run", "-x", "80", "-y",
                    "40", "-c", str(ROOT), command], check=True, env=env, timeout=10)  # fmt: skip
    try:
        end = time.monotonic() + timeout
        while not (done.exists() and done.read_text().strip()) and time.monotonic() < end:
            time.sleep(0.2)
        pane = subprocess.run(["tmux", "-L", socket, "capture-pane", "-p", "-t", "run"],
                              capture_output=True, text=True, timeout=10).stdout  # fmt: skip
        assert done.exists(), f"still running after {timeout} s; the pane shows:\n{pane}"
        assert done.read_text().strip() == "0", pane
        return pane
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)


def test_replay_shows_its_progress_bar_and_statistics(tmp_path) -> None:
    rec = tmp_path / "rec.jsonl"
    rec.write_text("".join(EXAMPLE.read_text().splitlines(keepends=True)[:3000]))
    pane = _in_tmux(tmp_path, ["run", "strategies/", "--paper", "--replay", str(rec),
                               "--db", str(tmp_path / "paper.db")])  # fmt: skip
    bar = [ln for ln in pane.splitlines() if "100%" in ln]
    assert len(bar) == 1 and " equity " in bar[0], pane  # the bar, at its end
    assert "cycles " in pane and "paper balance" in pane
    assert "Traceback" not in pane
