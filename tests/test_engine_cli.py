"""`rulebook dry-run` end to end: JSON per spec 10, explanations, errors without tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from engine_helpers import T0, perp
from typer.testing import CliRunner

from rulebook.cli import app

EXAMPLE = (
    Path(__file__).resolve().parents[1] / "examples" / "binance-bybit-okx-btc-eth-2023-2024.jsonl"
)
runner = CliRunner()


@pytest.fixture
def seed(tmp_path):
    """Synthetic seed scenario: Backpack +0.01%/1h vs Binance -0.02%/8h."""
    snap = tmp_path / "seed.jsonl"
    snap.write_text(
        perp("backpack", "SOL", 0.0001, 1).to_json()
        + "\n"
        + perp("binance", "SOL", -0.0002, 8).to_json()
        + "\n"
        + "not json\n"
    )
    rules = tmp_path / "seed.rules"
    rules.write_text(
        "rule seed:\n for coin in [SOL]\n"
        " when spread(coin, backpack, binance) > 0.05% and confidence > 0.7\n"
        " then hedge 1000 USDT\n"
        "risk:\n min_confidence 0.5\n"
    )
    return rules, snap


def test_json_is_spec_section_10(seed):
    rules, snap = seed
    res = runner.invoke(app, ["dry-run", str(rules), "--snapshot", str(snap), "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert list(d) == ["at", "ruleset", "opportunities", "skipped"]
    assert d["at"] == T0
    (o,) = d["opportunities"]
    assert list(o) == [
        "rule",
        "bindings",
        "coin",
        "subject",
        "legs",
        "edge",
        "apr",
        "fees",
        "net_8h",
        "breakeven_h",
        "confidence",
        "risk",
        "amount",
        "expected_8h",
        "expected_net_8h",
        "fired",
        "decision",
        "reason",
    ]
    assert o["bindings"] == {"coin": "SOL"}
    assert o["edge"] == pytest.approx(0.001)  # 0.01% x 8/1 - (-0.02%)
    assert o["apr"] == pytest.approx(1.095)
    assert o["expected_8h"] == pytest.approx(1.0)  # 1000 USDT x 0.1%
    assert o["breakeven_h"] == pytest.approx(16.0)
    assert o["decision"] == "open"


def test_explain_shows_values_and_why(seed):
    rules, snap = seed
    res = runner.invoke(app, ["dry-run", str(rules), "--snapshot", str(snap), "--explain"])
    assert res.exit_code == 0, res.output
    assert "spread(coin, backpack, binance) = 0.1%" in res.stdout
    assert "-> fired: the when clause holds" in res.stdout
    assert "fees 2 x (backpack perp 0.05% (default) + binance perp 0.05% (default)) = 0.2%" in (
        res.stdout
    )
    assert "1 bindings: 1 fired (1 open" in res.stdout


def test_bad_line_is_a_warning_not_a_crash(seed):
    rules, snap = seed
    res = runner.invoke(app, ["dry-run", str(rules), "--snapshot", str(snap)])
    assert res.exit_code == 0
    assert "seed.jsonl:3: error: not valid JSON" in res.stderr


def test_at_before_the_file_is_a_clear_error(seed):
    rules, snap = seed
    res = runner.invoke(app, ["dry-run", str(rules), "--snapshot", str(snap), "--at", "2020-01-01"])
    assert res.exit_code == 2
    assert "nothing recorded at or before 2020-01-01 00:00:00 UTC" in res.stderr
    assert "Traceback" not in res.output


def test_ruleset_with_errors_exits_1(tmp_path, seed):
    _, snap = seed
    bad = tmp_path / "bad.rules"
    bad.write_text("when spread(SOL, binanse, okx) > 0.1% then hedge 1000 USDT\n")
    res = runner.invoke(app, ["dry-run", str(bad), "--snapshot", str(snap)])
    assert res.exit_code == 1
    assert "E102" in res.stderr


def test_recorded_example_matches_hand_computation(tmp_path):
    """Real data: Bybit and OKX ETH perps at 2024-03-05 07:59 UTC (examples/ recording)."""
    rules = tmp_path / "eth.rules"
    rules.write_text("when spread(ETH, bybit, okx) > 0.05% then hedge 1000 USDT\n")
    res = runner.invoke(
        app,
        ["dry-run", str(rules), "--snapshot", str(EXAMPLE), "--at", "2024-03-05T08:00Z", "--json"],
    )
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["at"] == 1709625540000  # the last cycle at or before 08:00, one minute before
    (o,) = d["opportunities"]
    # bybit 0.090826% - okx 0.03448070936528% = 0.05634529%
    assert o["edge"] == pytest.approx(0.00090826 - 0.0003448070936528)
    assert o["legs"][0] == {"exchange": "bybit", "market": "perp", "side": "short"}
    # 2 x (bybit 0.055% + okx 0.05%) = 0.21%
    assert o["fees"] == pytest.approx(0.0021)
    # marks 3695.79 and 3693.12: 2.67 / 3694.455 = 0.07227%; 1 - 0.07227/0.5 = 0.85546
    assert o["confidence"] == pytest.approx(1 - (2.67 / 3694.455) / 0.005)
    # 0.21% / 0.056345% x 8h = 29.8h > 24h: medium
    assert o["breakeven_h"] == pytest.approx(0.0021 / (0.00090826 - 0.0003448070936528) * 8)
    assert o["risk"] == "medium"
    assert o["expected_8h"] == pytest.approx(1000 * (0.00090826 - 0.0003448070936528))
