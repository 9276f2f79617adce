"""A backtest on a tiny, clearly synthetic history, every figure worked out by hand.

Binance and Bybit SOL perps, settlements every 8h at t0..t3, marks observed at
each, no book (fills at the mark: slippage 0), taker fee 0.1% on both, 10,000
on each of the two venues (0 elsewhere). The rule opens a 1,000 USDT spread
(short bybit, long binance) when bybit's rate is more than 0.01% above
binance's, and exits when it has been held 16h.

    t     binance rate/mark   bybit rate/mark    rules see (last settled)
    t0    0.0001 / 100        0.0005 / 100       spread 0.04%: open, 10 SOL a leg at 100
    t1    0.0001 / 101        0.0003 / 101       already open; paid at t1's rates and marks
    t2    0.0001 / 102        0.00015 / 101.5    paid, then held 16h: closed at 102 / 101.5
    t3    0.0001 / 102        0.0001 / 101.5     spread 0: nothing

Funding (short receives a positive rate, spec 11):
    t1: bybit +10 x 101 x 0.0003 = 0.303;      binance -10 x 101 x 0.0001 = -0.101
    t2: bybit +10 x 101.5 x 0.00015 = 0.15225; binance -10 x 102 x 0.0001 = -0.102
    funding = 0.25225
Fees: entry 2 x 10 x 100 x 0.001 = 2; exit 10 x 102 x 0.001 + 10 x 101.5 x 0.001 = 2.035
Price: long binance +10 x (102 - 100) = 20; short bybit -10 x (101.5 - 100) = -15
pnl = 0.25225 - 4.035 + 5 = 1.21725
Equity: t0 19,998 (entry fees), t1 19,998.202, t2 and t3 20,001.21725;
max drawdown 2 (from the initial 20,000 to 19,998), capital used 2,000.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rulebook.cli import app
from rulebook.history import write_history

H8 = 8 * 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
ROWS = [  # (binance rate, mark), (bybit rate, mark) at t0..t3
    ((0.0001, 100.0), (0.0005, 100.0)),
    ((0.0001, 101.0), (0.0003, 101.0)),
    ((0.0001, 102.0), (0.00015, 101.5)),
    ((0.0001, 102.0), (0.0001, 101.5)),
]
RULE = """
rule s:
    when spread(SOL, bybit, binance) > 0.01%
    then hedge 1000 USDT
    exit when held >= 16h
"""
CONFIG = """
slippage = 0
[exchanges.binance]
balance = 10000
perp_taker_fee = 0.001
[exchanges.bybit]
balance = 10000
perp_taker_fee = 0.001
[exchanges.backpack]
balance = 0
[exchanges.okx]
balance = 0
[exchanges.gate]
balance = 0
[exchanges.bitget]
balance = 0
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("hand")
    records = []
    for i, row in enumerate(ROWS):
        t = T0 + i * H8
        for ex, (rate, mark) in zip(("binance", "bybit"), row, strict=True):
            records.append({"ts": t, "exchange": ex, "coin": "SOL", "market": "settlement",
                            "funding_rate": rate, "funding_interval_h": 8.0})  # fmt: skip
            records.append({"ts": t, "exchange": ex, "coin": "SOL", "market": "perp", "mark": mark})
    write_history(d / "h.jsonl", records)
    (d / "s.rules").write_text(RULE)
    (d / "rulebook.toml").write_text(CONFIG)
    res = CliRunner().invoke(
        app,
        ["backtest", str(d / "s.rules"), "--data", str(d / "h.jsonl"),
         "--config", str(d / "rulebook.toml"), "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_totals_by_hand(report: dict) -> None:
    t = report["totals"]
    assert report["cycles"] == 4
    assert t["funding"] == pytest.approx(0.25225, abs=1e-9)
    assert t["fees"] == pytest.approx(-4.035, abs=1e-9)
    assert t["price"] == pytest.approx(5.0, abs=1e-9)
    assert t["pnl"] == pytest.approx(1.21725, abs=1e-9)
    assert t["initial_balance"] == 20_000.0
    assert t["final_equity"] == pytest.approx(20_001.21725, abs=1e-9)
    assert t["return_on_balances"] == pytest.approx(1.21725 / 20_000, abs=1e-12)
    assert t["capital_used"] == pytest.approx(2_000.0, abs=1e-9)
    assert t["return_on_capital"] == pytest.approx(1.21725 / 2_000, abs=1e-12)
    assert t["max_drawdown"] == pytest.approx(2.0, abs=1e-9)
    assert t["max_drawdown_fraction"] == pytest.approx(2.0 / 20_000, abs=1e-12)
    assert (t["trades"], t["closed_trades"], t["win_rate"]) == (1, 1, 1.0)
    assert t["average_hold_h"] == pytest.approx(16.0)
    # fills: 1,000 + 1,000 at entry, 1,020 + 1,015 at exit
    assert t["traded_notional"] == pytest.approx(4_035.0, abs=1e-9)
    assert [e["equity"] for e in report["equity"]] == pytest.approx(
        [19_998.0, 19_998.202, 20_001.21725, 20_001.21725], abs=1e-9
    )


def test_payments_and_venues_by_hand(report: dict) -> None:
    (p,) = report["positions"]
    pays = sorted((f["ts"] - T0, f["exchange"], f["amount"]) for f in p["funding_payments"])
    expected = sorted([(H8, "bybit", 0.303), (H8, "binance", -0.101),
                       (2 * H8, "bybit", 0.15225), (2 * H8, "binance", -0.102)])  # fmt: skip
    assert [x[:2] for x in pays] == [x[:2] for x in expected]
    for got, want in zip(pays, expected, strict=True):
        assert abs(got[2] - want[2]) <= 1e-9
    assert {f["source"] for f in p["funding_payments"]} == {"settled"}
    venues = {r["key"]: r for r in report["per_venue"]}
    assert venues["binance"]["pnl"] == pytest.approx(-0.203 - 2.02 + 20.0, abs=1e-9)
    assert venues["bybit"]["pnl"] == pytest.approx(0.45525 - 2.015 - 15.0, abs=1e-9)
    (rule,) = report["per_rule"]
    assert rule["pnl"] == pytest.approx(report["totals"]["pnl"], abs=1e-9)
