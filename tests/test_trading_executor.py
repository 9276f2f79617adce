"""The paper executor's arithmetic, worked out by hand (synthetic, clearly made-up quotes)."""

from __future__ import annotations

import weakref

import pytest
from trading_helpers import sql

from rulebook.lang import Subject
from rulebook.market import Observation, SnapshotView
from rulebook.trading import (
    FundingStep,
    Ledger,
    LegSpec,
    OpenRequest,
    PaperExecutor,
    TradingConfig,
)

H = 3_600_000
T = 1_753_113_600_000  # a settlement time (ms)
T0 = T - H


def perp(
    ex: str,
    ts: int,
    mark: float,
    bid: float | None,
    ask: float | None,
    rate: float,
    nxt: int,
    fee: float | None = None,
) -> Observation:
    return Observation.checked(
        ts=ts,
        exchange=ex,
        coin="SOL",
        market="perp",
        funding_rate=rate,
        funding_interval_h=8,
        next_funding_ts=nxt,
        mark=mark,
        index=mark,
        bid=bid,
        ask=ask,
        taker_fee=fee,
    )


def view(at: int, *obs: Observation) -> SnapshotView:
    return SnapshotView.from_observations(obs, at=at)


SPREAD = Subject("spread", "SOL", ("bybit", "binance"))
SPREAD_LEGS = (LegSpec("bybit", "perp", "short"), LegSpec("binance", "perp", "long"))


@pytest.fixture
def ex(tmp_path):
    ledger = Ledger(tmp_path / "l.db")
    yield PaperExecutor(TradingConfig(), ledger)
    ledger.close()


# step 1 as a replay runs it (these views carry no settlement records: the estimate),
# one per executor
_STEPS: weakref.WeakKeyDictionary[PaperExecutor, FundingStep] = weakref.WeakKeyDictionary()


def settle_cycle(ex: PaperExecutor, v: SnapshotView, t: int) -> float:
    return _step(ex).settle(ex, v, t)


def _step(ex: PaperExecutor) -> FundingStep:
    if ex not in _STEPS:
        _STEPS[ex] = FundingStep(ex.ledger, 600_000, expect_records=False)
    return _STEPS[ex]


def open_spread(ex: PaperExecutor, v: SnapshotView, amount: float = 1000.0):
    with ex.ledger.cycle():
        _step(ex).feed(v)
        return ex.open(OpenRequest("r", {}, "sha", SPREAD, SPREAD_LEGS, amount), v, v.at)


def test_open_settle_mark_close_by_hand(ex: PaperExecutor) -> None:
    v0 = view(
        T0,
        perp("binance", T0, 100.0, 99.9, 100.1, 0.0001, T, 0.0005),
        perp("bybit", T0, 100.2, 100.1, 100.3, 0.0004, T, 0.00055),
    )
    res = open_spread(ex, v0)
    assert res.decision == "open"
    p = res.position
    size = 1000 / 100.1  # both legs fill at 100.1: long binance at its ask, short bybit at its bid
    assert p.legs[0].size == pytest.approx(size, abs=1e-12)
    assert p.legs[1].size == pytest.approx(size, abs=1e-12)
    # fees: 1000 * 0.00055 (bybit) + 1000 * 0.0005 (binance) = 1.05
    assert p.fees == pytest.approx(-1.05, abs=1e-9)
    assert ex.cash["bybit"] == pytest.approx(10_000 - 0.55, abs=1e-9)
    assert ex.cash["binance"] == pytest.approx(10_000 - 0.5, abs=1e-9)

    # Cycle at T: both settle, at the rates shown before T (no settlement record: the
    # estimate) on the mark at T (the last perp observation at or before T).
    v1 = view(
        T,
        perp("binance", T, 101.0, 100.9, 101.1, 0.0002, T + 8 * H),
        perp("bybit", T, 101.5, 101.4, 101.6, 0.0001, T + 8 * H),
    )
    with ex.ledger.cycle():
        funding = settle_cycle(ex, v1, T)
        ex.mark(v1)
        ex.persist(T)
    short_gets = size * 101.5 * 0.0004  # 9.99000999 * 0.0406 = 0.405594405594...
    long_pays = size * 101.0 * 0.0001  # 9.99000999 * 0.0101 = 0.100899100899...
    assert short_gets == pytest.approx(0.4055944055944056, abs=1e-12)
    assert long_pays == pytest.approx(0.10089910089910089, abs=1e-12)
    assert funding == pytest.approx(short_gets - long_pays, abs=1e-9)
    rows = sql(ex.ledger,
        "select exchange, ts, rate, amount from funding_payments order by exchange"
    )
    assert [(r["exchange"], r["ts"], r["rate"]) for r in rows] == [
        ("binance", T, 0.0001),
        ("bybit", T, 0.0004),
    ]
    assert rows[0]["amount"] == pytest.approx(-long_pays, abs=1e-9)
    assert rows[1]["amount"] == pytest.approx(short_gets, abs=1e-9)
    # price: long binance 100.1 -> 101 (+0.9/coin), short bybit 100.1 -> 101.5 (-1.4/coin)
    assert p.price == pytest.approx(size * (0.9 - 1.4), abs=1e-9)  # -4.995004995...

    # A second settle in the same cycle (a restart replaying T) pays nothing more.
    with ex.ledger.cycle():
        assert settle_cycle(ex, v1, T) == 0.0
    assert len(sql(ex.ledger, "select * from funding_payments")) == 2

    # Close at T+1h: sell the long at binance's bid, buy back the short at bybit's ask.
    v2 = view(
        T + H,
        perp("binance", T + H, 100.6, 100.5, 100.7, 0.0002, T + 8 * H),
        perp("bybit", T + H, 100.8, 100.7, 100.9, 0.0001, T + 8 * H),
    )
    with ex.ledger.cycle():
        settle_cycle(ex, v2, T + H)  # nothing due before T+8h
        ex.mark(v2)
        assert ex.close(p, v2, T + H, "test").closed
        ex.persist(T + H)
    price = size * (100.5 - 100.1) - size * (100.9 - 100.1)  # size * -0.4 = -3.996003996...
    exit_fees = size * 100.5 * 0.0005 + size * 100.9 * 0.00055  # default fees (no taker_fee)
    assert p.price == pytest.approx(price, abs=1e-9)
    assert p.fees == pytest.approx(-1.05 - exit_fees, abs=1e-9)
    pnl = (short_gets - long_pays) - 1.05 - exit_fees + price
    row = sql(ex.ledger, "select * from positions where id = ?", [p.id])[0]
    assert row["status"] == "closed" and row["close_reason"] == "test"
    assert row["pnl"] == pytest.approx(pnl, abs=1e-9)
    assert row["pnl_funding"] + row["pnl_fees"] + row["pnl_price"] + row["pnl_borrow"] == (
        pytest.approx(pnl, abs=1e-9)
    )
    # Cash holds everything realised: 20000 + pnl across both exchanges.
    total_cash = sum(r["cash"] for r in sql(ex.ledger, "select cash from balances"))
    assert total_cash == pytest.approx(6 * 10_000 + pnl, abs=1e-9)
    fills = sql(ex.ledger, "select exchange, side, price, price_source from fills order by id")
    assert [(f["exchange"], f["side"], f["price"], f["price_source"]) for f in fills] == [
        ("bybit", "sell", 100.1, "bid"),
        ("binance", "buy", 100.1, "ask"),
        ("bybit", "buy", 100.9, "ask"),
        ("binance", "sell", 100.5, "bid"),
    ]


def test_missing_book_fills_at_mark_with_slippage(ex: PaperExecutor) -> None:
    v0 = view(
        T0,
        perp("binance", T0, 100.0, None, None, 0.0001, T),
        perp("bybit", T0, 200.0, None, None, 0.0004, T),
    )
    p = open_spread(ex, v0).position
    # slippage 0.0005: buy at 100 * 1.0005 = 100.05, sell at 200 * 0.9995 = 199.9
    assert p.legs[1].entry_price == pytest.approx(100.05, abs=1e-12)
    assert p.legs[0].entry_price == pytest.approx(199.9, abs=1e-12)
    assert p.legs[0].size == pytest.approx(1000 / 199.9, abs=1e-12)


def test_not_enough_balance_is_blocked_with_reason(tmp_path) -> None:
    cfg = TradingConfig.model_validate({"exchanges": {"bybit": {"balance": 500}}})
    ex = PaperExecutor(cfg, Ledger(tmp_path / "l.db"))
    v0 = view(
        T0,
        perp("binance", T0, 100.0, 99.9, 100.1, 0.0001, T),
        perp("bybit", T0, 100.2, 100.1, 100.3, 0.0004, T),
    )
    res = open_spread(ex, v0)
    # bybit needs 1000 (margin at 1x) + 1000 * 0.00055 fee = 1000.55; it has 500
    assert res.decision == "blocked"
    assert res.reason == "balance: bybit has 500.00 free, needs 1000.55"
    assert ex.positions == {} and sql(ex.ledger, "select * from positions") == []


def test_no_price_at_all_blocks_the_entry(ex: PaperExecutor) -> None:
    v0 = view(T0, perp("bybit", T0, 100.2, 100.1, 100.3, 0.0004, T))
    res = open_spread(ex, v0)
    assert res.decision == "blocked"
    assert res.reason == "no price for SOL perp on binance"


def test_borrowed_spot_leg_accrues_interest(ex: PaperExecutor) -> None:
    spot = Observation.checked(ts=T0, exchange="binance", coin="SOL", market="spot", bid=99.0, ask=101.0)
    bor = Observation.checked(
        ts=T0, exchange="binance", coin="SOL", market="borrow", borrow_rate_daily=0.0003
    )
    p0 = perp("binance", T0, 100.0, 99.9, 100.1, -0.0002, T)
    v0 = view(T0, p0, spot, bor)
    with ex.ledger.cycle():
        legs = (LegSpec("binance", "perp", "long"), LegSpec("binance", "spot", "short"))
        subject = Subject("funding", "SOL", ("binance",))
        _step(ex).feed(v0)
        res = ex.open(OpenRequest("neg", {}, "s", subject, legs, 1000.0), v0, T0)
    p = res.position
    spot_leg = p.legs[1]
    assert spot_leg.borrowed and spot_leg.entry_price == 99.0  # sold borrowed coins at the bid
    # both legs hold the same coins (rulebook.trading.size_hedge): 1000 / the higher fill
    # price, the perp's ask 100.1
    size = 1000 / 100.1
    assert [leg.size for leg in p.legs] == [size, size]
    # Two hours later at mid 100: interest = size * 100 * 0.0003 * 2/24
    v1 = view(T0 + 2 * H, p0, spot, bor)
    with ex.ledger.cycle():
        settle_cycle(ex, v1, T0 + 2 * H)
    assert p.borrow == pytest.approx(-(size * 100 * 0.0003 * 2 / 24), abs=1e-12)  # -0.02497502...
    # The long perp pays nothing yet: its settlement T is after T0+2h? T = T0 + 1h, so it settled:
    # long with a negative rate receives size_perp * mark * 0.0002 = (1000/100.1) * 100 * 0.0002
    assert p.funding == pytest.approx(1000 / 100.1 * 100 * 0.0002, abs=1e-12)
