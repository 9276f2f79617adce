"""A replay's progress bar takes a cycle's figures at most as often as it is drawn, and
always ends on the replay's last cycle (rulebook/app/_session.py `_run_replay`)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rulebook.app import _session
from rulebook.cli import app

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "examples" / "binance-bybit-okx-btc-eth-2023-2024.jsonl"


def _last_cycle(db: Path) -> str:
    with sqlite3.connect(db) as c:
        ts, equity = c.execute("select ts, equity from cycles order by ts desc").fetchone()
    when = datetime.fromtimestamp(ts / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")
    return f"{when} open 0 equity {equity:,.2f}"


@pytest.mark.parametrize("every_s", [0.0, 1e12])  # every cycle shown; none until the end
def test_the_bar_ends_on_the_last_cycle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every_s: float
) -> None:
    monkeypatch.setattr(_session, "SHOW_EVERY_S", every_s)
    db = tmp_path / "paper.db"
    res = CliRunner().invoke(
        app,
        ["run", str(ROOT / "strategies"), "--paper", "--replay", str(RECORDING),
         "--db", str(db), "--no-watch"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    last = _last_cycle(db)
    assert last == "2024-06-30 23:59 open 0 equity 60,381.46"  # the README main job's end
    assert last in res.output
