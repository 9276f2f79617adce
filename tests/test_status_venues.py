"""`rulebook status` per venue: cash, margin in use, free balance, exposure by
venue and by coin, and the failed notifications, worked out by hand."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console
from trading_helpers import T0, H, T, pair_rows, write_jsonl
from typer.testing import CliRunner

from rulebook.app import ledger_status, print_status
from rulebook.cli import app
from rulebook.trading import Ledger

RULES = """
rule sol_spread:
    when spread(SOL, bybit, binance) > 0.01%
    then hedge 1000 USDT
"""
runner = CliRunner()


@pytest.fixture
def ledger_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.rules").write_text(RULES)
    rows = pair_rows(T0, "SOL", (100.0, 0.0001), (100.2, 0.0004), T) + pair_rows(
        T, "SOL", (101.0, 0.0001), (101.1, 0.0003), T + 8 * H
    )
    write_jsonl(tmp_path / "rec.jsonl", rows)
    res = runner.invoke(app, ["run", "s.rules", "--paper", "--replay", "rec.jsonl", "--db", "p.db",
                              "--no-watch"])
    assert res.exit_code == 0, res.output
    return tmp_path / "p.db"


def test_venues_margin_free_and_exposure(ledger_path) -> None:
    data = json.loads(runner.invoke(app, ["status", "--db", str(ledger_path), "--json"]).stdout)
    venues = {v["exchange"]: v for v in data["venues"]}
    assert set(venues) == {"backpack", "binance", "bybit", "okx", "gate", "bitget"}
    s = 1000 / 100.1  # coins per leg: short bybit perp, long binance perp, both at 100.1
    for ex in ("binance", "bybit"):
        assert venues[ex]["margin"] == 1000.0  # one 1000 leg at leverage 1
        assert venues[ex]["free"] == pytest.approx(venues[ex]["cash"] - 1000.0, abs=1e-9)
        assert venues[ex]["legs"] == 1
    assert venues["binance"]["long"] == pytest.approx(s * 101.0, abs=1e-9)  # last mark, at T
    assert venues["bybit"]["short"] == pytest.approx(s * 101.1, abs=1e-9)
    assert venues["okx"] == {"exchange": "okx", "initial": 10_000.0, "cash": 10_000.0,
                             "margin": 0.0, "free": 10_000.0, "long": 0.0, "short": 0.0, "legs": 0}
    (sol,) = data["coins"]
    assert sol["coin"] == "SOL" and sol["venues"] == ["bybit", "binance"]
    assert sol["net"] == pytest.approx(s * 101.0 - s * 101.1, abs=1e-9)
    assert data["stats"]["notify_failed"] == 0


def test_leverage_halves_the_margin(ledger_path) -> None:
    (ledger_path.parent / "rulebook.toml").write_text("leverage = 2\n")
    data = json.loads(runner.invoke(app, ["status", "--db", str(ledger_path), "--json"]).stdout)
    assert {v["exchange"]: v["margin"] for v in data["venues"]}["bybit"] == 500.0


def test_failed_notifications_show_in_status(ledger_path) -> None:
    led = Ledger(ledger_path)
    led.record_event("notify_failed", "open notification failed: Connection refused")
    data = ledger_status(led)
    led.close()
    assert data["stats"]["notify_failed"] == 1
    buf = io.StringIO()
    print_status(Console(file=buf, width=120, color_system=None), data)
    assert "notifications failed 1" in buf.getvalue()


@pytest.mark.parametrize("width", [80, 120])
def test_status_tables_fit(ledger_path, width) -> None:
    led = Ledger(ledger_path)
    data = ledger_status(led)
    led.close()
    buf = io.StringIO()
    print_status(Console(file=buf, width=width, color_system=None), data)
    out = buf.getvalue()
    assert all(len(line) <= width for line in out.splitlines()), out
    assert "…" not in out
    for figure in ("1,000.00", "-bybit +binance", "margin", "free"):
        assert figure in out
