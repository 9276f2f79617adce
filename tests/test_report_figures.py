"""Report figures against hand computations on a small, clearly synthetic run.

The run: initial balances 10,000. Two positions (values chosen so every
figure can be worked out on paper, written out beside each assertion):

  #1 rule A, BTC, spread binance/bybit, 1,000 per leg, opened day 0 00:00,
     closed day 1 00:00. legs: short perp binance funding +3, fees -1, price +2;
     long perp bybit funding -1, fees -1, price -2.  pnl = 0.
  #2 rule B, ETH, carry on okx, 500 per leg, opened day 0 08:00, still open.
     legs: short perp okx funding +6, fees -0.5, price -1; long spot okx fees -0.5,
     price +1.  pnl = +5.

Cycle equity: d0 00:00 10,000; d0 08:00 9,990; d0 16:00 10,010; d1 00:00 9,995;
d2 00:00 10,005.
"""

from __future__ import annotations

import math

import pytest

from rulebook.report import (
    DAY_MS,
    EquityPoint,
    FillRecord,
    LegRecord,
    PaymentRecord,
    PositionRecord,
    ReportInput,
    breakdown,
    breakdown_by_venue,
    build_report,
    capital_used,
    daily_equity,
    daily_returns,
    max_drawdown,
    sharpe,
    sortino,
    totals,
)

H = 3_600_000
T0 = 1_700_006_400_000 // DAY_MS * DAY_MS  # a UTC midnight


def _run() -> ReportInput:
    p1 = PositionRecord(
        id=1,
        rule="A",
        coin="BTC",
        bindings={"coin": "BTC"},
        legs=(
            LegRecord("binance", "perp", "short", 1000.0, 3.0, -1.0, 2.0, 0.0),
            LegRecord("bybit", "perp", "long", 1000.0, -1.0, -1.0, -2.0, 0.0),
        ),
        notional=1000.0,
        opened_at=T0,
        closed_at=T0 + DAY_MS,
        close_reason="exit",
    )
    p2 = PositionRecord(
        id=2,
        rule="B",
        coin="ETH",
        bindings={"coin": "ETH"},
        legs=(
            LegRecord("okx", "perp", "short", 500.0, 6.0, -0.5, -1.0, 0.0),
            LegRecord("okx", "spot", "long", 500.0, 0.0, -0.5, 1.0, 0.0),
        ),
        notional=500.0,
        opened_at=T0 + 8 * H,
        closed_at=None,
        close_reason=None,
    )
    fills = [
        FillRecord(T0, 1, "binance", "perp", "sell", 100.0, 10.0, 0.5),
        FillRecord(T0, 1, "bybit", "perp", "buy", 100.0, 10.0, 0.5),
        FillRecord(T0 + 8 * H, 2, "okx", "perp", "sell", 50.0, 10.0, 0.25),
        FillRecord(T0 + 8 * H, 2, "okx", "spot", "buy", 50.0, 10.0, 0.25),
        FillRecord(T0 + DAY_MS, 1, "binance", "perp", "buy", 110.0, 10.0, 0.5),
        FillRecord(T0 + DAY_MS, 1, "bybit", "perp", "sell", 90.0, 10.0, 0.5),
    ]
    payments = [PaymentRecord(T0 + 16 * H, 1, "binance", 0.003, 100.0, 10.0, 3.0)]
    equity = [
        EquityPoint(T0, 10_000.0),
        EquityPoint(T0 + 8 * H, 9_990.0),
        EquityPoint(T0 + 16 * H, 10_010.0),
        EquityPoint(T0 + DAY_MS, 9_995.0),
        EquityPoint(T0 + 2 * DAY_MS, 10_005.0),
    ]
    return ReportInput([p1, p2], fills, payments, equity, initial_balance=10_000.0)


def test_daily_equity_takes_each_days_last_cycle_and_carries_gaps() -> None:
    run = _run()
    assert daily_equity(run.equity, 10_000.0) == [
        (T0, 10_010.0),
        (T0 + DAY_MS, 9_995.0),
        (T0 + 2 * DAY_MS, 10_005.0),
    ]
    gap = [EquityPoint(T0, 1.0), EquityPoint(T0 + 3 * DAY_MS, 2.0)]
    assert [e for _, e in daily_equity(gap, 1.0)] == [1.0, 1.0, 1.0, 2.0]


def test_daily_returns_sharpe_sortino_by_hand() -> None:
    run = _run()
    daily = daily_equity(run.equity, 10_000.0)
    r = daily_returns(daily, 10_000.0)
    # 10010/10000 - 1, 9995/10010 - 1, 10005/9995 - 1
    expected = [0.001, 9995 / 10010 - 1, 10005 / 9995 - 1]
    assert r == pytest.approx(expected, abs=1e-15)
    mean = sum(expected) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in expected) / 2)
    assert sharpe(r) == pytest.approx(mean / sd * math.sqrt(365), rel=1e-12)
    down = math.sqrt((9995 / 10010 - 1) ** 2 / 3)
    assert sortino(r) == pytest.approx(mean / down * math.sqrt(365), rel=1e-12)
    assert sharpe([0.01]) is None and sharpe([0.01, 0.01]) is None
    assert sortino([0.01, 0.02]) is None  # no down day: undefined, not infinite


def test_max_drawdown_by_hand() -> None:
    run = _run()
    dd = max_drawdown(run.equity)
    # peak 10,010 (d0 16:00) to 9,995 (d1 00:00): 15, beating 10,000 -> 9,990 (10)
    assert dd.money == pytest.approx(15.0, abs=1e-9)
    assert dd.fraction == pytest.approx(15.0 / 10_010.0, abs=1e-12)
    assert (dd.peak_ts, dd.trough_ts) == (T0 + 16 * H, T0 + DAY_MS)


def test_capital_used_is_peak_gross_notional_over_leverage() -> None:
    run = _run()
    times = [p.ts for p in run.equity]
    # from d0 08:00 to d1 00:00 both are open: 2 x 1,000 + 2 x 500 = 3,000
    assert capital_used(run.positions, times) == pytest.approx(3000.0)
    assert capital_used(run.positions, times, leverage=2.0) == pytest.approx(1500.0)


def test_totals_by_hand() -> None:
    t = totals(_run())
    assert t.pnl == pytest.approx(5.0, abs=1e-9)  # 0 + 5
    assert t.funding == pytest.approx(8.0, abs=1e-9)  # 3 - 1 + 6
    assert t.fees == pytest.approx(-3.0, abs=1e-9)
    assert t.price == pytest.approx(0.0, abs=1e-9)
    assert t.return_on_capital == pytest.approx(5.0 / 3000.0, abs=1e-12)
    assert t.return_on_balances == pytest.approx(5.0 / 10_000.0, abs=1e-12)
    assert t.days == pytest.approx(2.0)
    assert t.apr_on_capital == pytest.approx(5.0 / 3000.0 * 365 / 2, abs=1e-12)
    # fills: 1000 + 1000 + 500 + 500 + 1100 + 900
    assert t.traded_notional == pytest.approx(5000.0, abs=1e-9)
    assert t.turnover == pytest.approx(5000.0 / 3000.0, abs=1e-12)
    assert (t.trades, t.closed_trades, t.open_trades) == (2, 1, 1)
    assert t.win_rate == 0.0  # the one closed trade made exactly 0
    assert t.average_hold_h == pytest.approx(24.0)
    assert t.max_drawdown == pytest.approx(15.0)
    assert t.funding_payments == 1


def test_breakdowns_add_up_to_the_total() -> None:
    run = _run()
    t = totals(run)
    for rows in (
        breakdown(run.positions, lambda p: p.rule),
        breakdown(run.positions, lambda p: p.coin),
        breakdown_by_venue(run.positions),
    ):
        for part in ("pnl", "funding", "fees", "price", "borrow"):
            assert abs(sum(getattr(r, part) for r in rows) - getattr(t, part)) <= 1e-9
    venues = {r.key: r for r in breakdown_by_venue(run.positions)}
    assert venues["binance"].pnl == pytest.approx(4.0)  # 3 - 1 + 2
    assert venues["bybit"].pnl == pytest.approx(-4.0)
    assert venues["okx"].pnl == pytest.approx(5.0)
    assert venues["okx"].trades == 1


def test_report_json_is_strict_and_complete() -> None:
    import json

    rep = build_report(_run())
    text = json.dumps(rep, allow_nan=False)  # raises on NaN / Infinity
    assert json.loads(text)["version"] == 1
    assert [r["key"] for r in rep["per_rule"]] == ["A", "B"]
    assert rep["positions"][0]["funding_payments"][0]["amount"] == 3.0
    assert rep["exposure"][1] == {"ts": T0 + 8 * H, "gross": 3000.0, "positions": 2}
    assert rep["totals"]["sortino"] is not None
