"""The runtime cycle over hand-computed replays (synthetic quotes, arithmetic in comments)."""

from __future__ import annotations

import json

import pytest
from trading_helpers import T0, H, T, pair_rows, paper_runtime, perp_line, sql, write_jsonl

from rulebook.lang import load_texts
from rulebook.market import ReplaySource
from rulebook.trading import Ledger, RulesetHolder, Runtime, TradingConfig

SPREAD_RULE = """
rule sol_spread:
    when spread(SOL, bybit, binance) > 0.01%
    then hedge 1000 USDT
    exit when spread(SOL, bybit, binance) < 0%
"""


def make_runtime(tmp_path, rules: str, db: str = "paper.db") -> Runtime:
    result = load_texts({"s.rules": rules})
    assert result.ok, [d.message for d in result.diagnostics]
    return paper_runtime(
        RulesetHolder(result.ruleset), TradingConfig(), Ledger(tmp_path / db), source="replay"
    )


def test_two_exchange_replay_matches_hand_computation(tmp_path) -> None:
    rows = (
        # T0: spread 0.04% - 0.01% = 0.03% > 0.01%: open short bybit, long binance
        pair_rows(T0, "SOL", (100.0, 0.0001), (100.2, 0.0004), T)
        # T: both settle the rates seen at T0; the new rates (0.01%, 0.03%) keep the spread
        + pair_rows(T, "SOL", (101.0, 0.0001), (101.1, 0.0003), T + 8 * H)
        # T+4h: rates move to 0.015% and 0.035%: these settle at T+8h
        + pair_rows(T + 4 * H, "SOL", (102.0, 0.00015), (102.1, 0.00035), T + 8 * H)
        # T+8h: settle, then the spread is -0.01% < 0%: the exit clause closes
        + pair_rows(T + 8 * H, "SOL", (100.5, 0.0002), (100.8, 0.0001), T + 16 * H)
    )
    rec = write_jsonl(tmp_path / "rec.jsonl", rows)
    rt = make_runtime(tmp_path, SPREAD_RULE)
    summary = rt.run(ReplaySource(rec))
    assert summary.cycles == 4

    s = 1000 / 100.1  # coins per leg: long binance at its ask 100.1, short bybit at its bid 100.1
    entry_fees = 1000 * 0.0005 + 1000 * 0.00055  # 1.05
    # short gets, long pays: s * (101.1 * 0.0004 - 101.0 * 0.0001) = s * 0.03034
    funding_t = s * 101.1 * 0.0004 - s * 101.0 * 0.0001
    # s * (100.8 * 0.00035 - 100.5 * 0.00015) = s * (0.03528 - 0.015075) = s * 0.020205
    funding_t8 = s * 100.8 * 0.00035 - s * 100.5 * 0.00015
    price = s * (100.4 - 100.1) - s * (100.9 - 100.1)  # sell long at bid, buy short at ask: -0.5 s
    exit_fees = s * 100.4 * 0.0005 + s * 100.9 * 0.00055  # s * (0.0502 + 0.055495) = s * 0.105695
    pnl = funding_t + funding_t8 - entry_fees - exit_fees + price
    # s * (0.03034 + 0.020205 - 0.105695 - 0.5) - 1.05 = s * -0.55515 - 1.05
    assert funding_t == pytest.approx(0.03034 * 1000 / 100.1, abs=1e-12)  # 0.3030969...
    assert pnl == pytest.approx(-0.55515 * 1000 / 100.1 - 1.05, abs=1e-12)  # -6.5959540...

    led = rt.ledger
    (pos,) = sql(led, "select * from positions")
    assert pos["status"] == "closed" and pos["close_reason"] == "exit when of rule sol_spread"
    assert pos["opened_at"] == T0 and pos["closed_at"] == T + 8 * H
    assert pos["pnl_funding"] == pytest.approx(funding_t + funding_t8, abs=1e-9)
    assert pos["pnl_fees"] == pytest.approx(-(entry_fees + exit_fees), abs=1e-9)
    assert pos["pnl_price"] == pytest.approx(price, abs=1e-9)
    assert pos["pnl_borrow"] == 0
    assert pos["pnl"] == pytest.approx(pnl, abs=1e-9)
    pays = sql(led,
        "select exchange, ts, rate, amount from funding_payments order by ts, exchange"
    )
    assert [(p["exchange"], p["ts"], p["rate"]) for p in pays] == [
        ("binance", T, 0.0001),
        ("bybit", T, 0.0004),
        ("binance", T + 8 * H, 0.00015),
        ("bybit", T + 8 * H, 0.00035),
    ]
    assert sum(p["amount"] for p in pays) == pytest.approx(funding_t + funding_t8, abs=1e-9)
    cycles = sql(led, "select ts, opened, closed, opportunities from cycles order by ts")
    assert [(c["ts"], c["opened"], c["closed"]) for c in cycles] == [
        (T0, 1, 0),
        (T, 0, 0),
        (T + 4 * H, 0, 0),
        (T + 8 * H, 0, 1),
    ]
    # fired in the first three cycles; the ledger records the changes only
    # (issue 13): appeared (open), changed (already_open), gone (exit cycle)
    assert [c["opportunities"] for c in cycles] == [1, 1, 1, 0]
    decisions = [
        (r["cycle_ts"], r["decision"])
        for r in sql(led, "select cycle_ts, decision from opportunities order by id")
    ]
    assert decisions == [(T0, "open"), (T, "already_open"), (T + 8 * H, "gone")]
    cash = sum(r["cash"] for r in sql(led, "select cash from balances"))
    assert cash == pytest.approx(60_000 + pnl, abs=1e-9)


def _stop_rows() -> list[dict]:
    nxt = T0 + 7 * H  # no settlement inside this replay
    return (
        pair_rows(T0, "SOL", (100.0, 0.0001), (100.2, 0.0004), nxt)
        # +1h: bybit 100.6: price s*(99.9-100.1) ... marks: long 100.0, short 100.6
        + pair_rows(T0 + H, "SOL", (100.0, 0.0001), (100.6, 0.0004), nxt)
        # +2h: bybit 101.0; rates equal so nothing reopens
        + pair_rows(T0 + 2 * H, "SOL", (100.0, 0.0001), (101.0, 0.0001), nxt)
        + pair_rows(T0 + 3 * H, "SOL", (100.0, 0.0001), (101.0, 0.0001), nxt)
    )


def test_stop_loss_fires_at_the_right_cycle(tmp_path) -> None:
    rec = write_jsonl(tmp_path / "rec.jsonl", _stop_rows())
    rt = make_runtime(tmp_path, SPREAD_RULE + "risk:\n    stop_loss 1%\n")
    sent: list[tuple[str, str]] = []

    class Recorder:
        def send(self, kind: str, text: str) -> bool:
            sent.append((kind, text))
            return True

    rt.notifier = Recorder()  # type: ignore[assignment]
    rt.run(ReplaySource(rec))
    # a close by a risk limit is a `risk` notification (operators may want only those)
    assert [k for k, _ in sent] == ["open", "risk"]
    assert sent[1][1].startswith("closed #1 sol_spread spread(SOL, bybit, binance) (stop_loss 1%")
    s = 1000 / 100.1
    # marked pnl = -1.05 fees + s*(100.0-100.1) - s*(mark_bybit-100.1)
    at_1h = -1.05 + s * (-0.1) - s * (100.6 - 100.1)  # -7.0439..., above -10: stays open
    at_2h = -1.05 + s * (-0.1) - s * (101.0 - 100.1)  # -11.0400..., at or below -10: closes
    assert at_1h > -10 >= at_2h
    (pos,) = sql(rt.ledger, "select * from positions")
    assert pos["closed_at"] == T0 + 2 * H
    assert pos["close_reason"].startswith("stop_loss 1%: pnl -11.04")
    # realised at the book: sell binance at 99.9, buy bybit at 101.1
    exit_fees = s * 99.9 * 0.0005 + s * 101.1 * 0.00055
    realised = -1.05 - exit_fees + s * (99.9 - 100.1) - s * (101.1 - 100.1)
    assert pos["pnl"] == pytest.approx(realised, abs=1e-9)


@pytest.mark.parametrize(("max_hold", "closed_at"), [("2h", T0 + 2 * H), ("3h", T0 + 3 * H)])
def test_max_hold_fires_at_the_right_cycle(tmp_path, max_hold, closed_at) -> None:
    rec = write_jsonl(tmp_path / "rec.jsonl", _stop_rows())
    rt = make_runtime(tmp_path, SPREAD_RULE + f"risk:\n    max_hold {max_hold}\n")
    rt.run(ReplaySource(rec))
    (pos,) = sql(rt.ledger, "select * from positions")
    assert pos["closed_at"] == closed_at
    assert pos["close_reason"].startswith(f"max_hold {max_hold}")


TWO_COINS = """
rule pairs:
    for coin in [SOL, ETH]
    when spread(coin, bybit, binance) > 0.01%
    then hedge 1000 USDT
"""


def _two_coin_rows() -> list[dict]:
    # SOL spread 0.03%, ETH spread 0.02%: SOL nets more over 8h, so it is decided first
    return pair_rows(T0, "SOL", (100.0, 0.0001), (100.0, 0.0004), T) + pair_rows(
        T0, "ETH", (2000.0, 0.0001), (2000.0, 0.0003), T
    )


@pytest.mark.parametrize(
    ("risk", "eth_decision", "eth_amount", "reason"),
    [
        (
            "max_total_exposure 1500 USDT",
            "cut",
            500.0,
            "max_total_exposure: cut from 1000 USDT to 500 USDT",
        ),
        (
            "max_total_exposure 1005 USDT",
            "blocked",
            1000.0,
            "max_total_exposure: 5 USDT left, under the 10 USDT minimum",
        ),
        ("max_open_positions 1", "blocked", 1000.0, "max_open_positions: 1 of 1 already open"),
    ],
)
def test_limits_cut_and_block(tmp_path, risk, eth_decision, eth_amount, reason) -> None:
    rec = write_jsonl(tmp_path / "rec.jsonl", _two_coin_rows())
    rt = make_runtime(tmp_path, TWO_COINS + f"risk:\n    {risk}\n")
    rt.run(ReplaySource(rec))
    opps = sql(rt.ledger, "select coin, decision, amount, reason from opportunities order by id")
    assert [(o["coin"], o["decision"], o["amount"]) for o in opps] == [
        ("SOL", "open", 1000.0),
        ("ETH", eth_decision, eth_amount),
    ]
    assert opps[1]["reason"] == reason
    positions = sql(rt.ledger, "select coin, notional from positions order by id")
    expected = [("SOL", 1000.0)] + ([("ETH", 500.0)] if eth_decision == "cut" else [])
    assert [(p["coin"], p["notional"]) for p in positions] == expected
    risk_events = sql(rt.ledger, "select detail from events where kind = 'risk'")
    assert len(risk_events) == 1 and reason in risk_events[0]["detail"]


def test_resume_skips_complete_cycles_and_keeps_positions(tmp_path) -> None:
    rows = pair_rows(T0, "SOL", (100.0, 0.0001), (100.2, 0.0004), T) + pair_rows(
        T, "SOL", (101.0, 0.0001), (101.1, 0.0003), T + 8 * H
    )
    first = write_jsonl(tmp_path / "a.jsonl", rows[:2])
    rt = make_runtime(tmp_path, SPREAD_RULE)
    rt.run(ReplaySource(first))
    rt.ledger.close()
    whole = write_jsonl(tmp_path / "b.jsonl", rows)
    rt2 = make_runtime(tmp_path, SPREAD_RULE)
    assert list(rt2.executor.positions) == [1] and rt2.executor.positions[1].rule is not None
    summary = rt2.run(ReplaySource(whole))
    assert (summary.skipped_cycles, summary.cycles) == (1, 1)
    assert len(sql(rt2.ledger, "select * from positions")) == 1
    assert len(sql(rt2.ledger, "select * from funding_payments")) == 2


def test_halt_close_all_closes_everything_and_stops(tmp_path) -> None:
    rows = (
        pair_rows(T0, "SOL", (100.0, 0.0001), (100.2, 0.0004), T)
        + pair_rows(T0 + H, "SOL", (100.0, 0.0001), (100.2, 0.0004), T)
        + pair_rows(T0 + 2 * H, "SOL", (100.0, 0.0001), (100.2, 0.0004), T)
    )
    rec = write_jsonl(tmp_path / "rec.jsonl", rows)
    rt = make_runtime(tmp_path, SPREAD_RULE)

    def after(report) -> None:
        if report.at == T0:
            rt.ledger.request_halt(close_all=True)

    summary = rt.run(ReplaySource(rec), on_cycle=after)
    assert summary.halted == "rulebook halt --close-all" and summary.cycles == 2
    (pos,) = sql(rt.ledger, "select status, close_reason, closed_at from positions")
    assert (pos["status"], pos["close_reason"], pos["closed_at"]) == (
        "closed",
        "halt --close-all",
        T0 + H,
    )
    assert rt.ledger.pending_halt() is None
    assert [e["kind"] for e in sql(rt.ledger, "select kind from events")] == ["halt"]


def test_plain_halt_stops_new_entries_and_keeps_positions(tmp_path) -> None:
    rows = pair_rows(T0, "SOL", (100.0, 0.0001), (100.2, 0.0004), T) + pair_rows(
        T0 + H, "SOL", (100.0, 0.0001), (100.2, 0.0004), T
    )
    rec = write_jsonl(tmp_path / "rec.jsonl", rows)
    rt = make_runtime(tmp_path, SPREAD_RULE)
    rt.run(ReplaySource(rec), on_cycle=lambda r: rt.request_stop("SIGTERM"))
    assert len(sql(rt.ledger, "select * from cycles")) == 1
    (pos,) = sql(rt.ledger, "select status from positions")
    assert pos["status"] == "open"


def test_a_failing_cycle_rolls_back_is_logged_and_stops_the_run(tmp_path, monkeypatch) -> None:
    rows = pair_rows(T0, "SOL", (100.0, 0.0001), (100.2, 0.0004), T) + pair_rows(
        T, "SOL", (101.0, 0.0001), (101.1, 0.0003), T + 8 * H
    )
    rec = write_jsonl(tmp_path / "rec.jsonl", rows)
    rt = make_runtime(tmp_path, SPREAD_RULE)
    real_mark = rt.executor.mark

    def mark_then_fail(view) -> None:
        real_mark(view)
        if view.at == T:
            raise RuntimeError("disk full")

    monkeypatch.setattr(rt.executor, "mark", mark_then_fail)
    summary = rt.run(ReplaySource(rec))
    assert summary.cycles == 1
    assert summary.failed.startswith(f"cycle at {T} failed and was not written: RuntimeError")
    # the funding settled at T before the failure was rolled back with the rest of the cycle
    assert sql(rt.ledger, "select * from funding_payments") == []
    assert [c["ts"] for c in sql(rt.ledger, "select ts from cycles")] == [T0]
    (e,) = sql(rt.ledger, "select kind, detail from events")
    assert e["kind"] == "error" and "disk full" in e["detail"]


def test_borrowed_spot_leg_through_the_runtime(tmp_path) -> None:
    def spot(ts: int, bid: float, ask: float) -> dict:
        return {
            "ts": ts,
            "exchange": "binance",
            "coin": "SOL",
            "market": "spot",
            "bid": bid,
            "ask": ask,
            "taker_fee": 0.001,
        }

    def borrow(ts: int) -> dict:
        return {
            "ts": ts,
            "exchange": "binance",
            "coin": "SOL",
            "market": "borrow",
            "borrow_rate_daily": 0.0006,
        }

    t2 = T0 + 2 * H
    rows = [
        # T0: funding -0.03% per 8h: long the perp (at its ask 100.1), sell borrowed spot (bid 99.8)
        perp_line("binance", T0, "SOL", 100.0, -0.0003, T, 0.0005),
        spot(T0, 99.8, 100.0),
        borrow(T0),
        # T0+2h: the settlement at T (T0+1h) has paid the long; spot mid 100.9
        perp_line("binance", t2, "SOL", 101.0, -0.0002, T + 8 * H, 0.0005),
        spot(t2, 100.8, 101.0),
        borrow(t2),
    ]
    rec = write_jsonl(tmp_path / "rec.jsonl", rows)
    rt = make_runtime(
        tmp_path, "rule neg:\n  when funding(SOL, binance) < -0.01%\n  then hedge 1000 USDT\n"
    )
    rt.run(ReplaySource(rec))
    (pos,) = sql(rt.ledger, "select * from positions")
    legs = json.loads(pos["legs"])
    assert [(lg["market"], lg["side"], lg["borrowed"]) for lg in legs] == [
        ("perp", "long", False),
        ("spot", "short", True),
    ]
    # one coin quantity on both legs (size_hedge): 1000 / the higher fill price, the perp's 100.1
    size_p = size_s = 1000 / 100.1
    # the long receives a negative rate, on the mark at the settlement T (the last perp
    # mark at or before it: T0's 100.0), not on the paying cycle's 101.0 (spec 11)
    funding = size_p * 100.0 * 0.0003
    borrow_cost = size_s * 100.9 * 0.0006 * 2 / 24  # 2 hours at 0.06% a day, spot mid 100.9
    fees = size_p * 100.1 * 0.0005 + size_s * 99.8 * 0.001  # 0.5 + 0.997002...
    price = size_p * (101.0 - 100.1) - size_s * (100.9 - 99.8)  # perp at mark, spot at mid
    assert pos["pnl_funding"] == pytest.approx(funding, abs=1e-9)  # 0.29970029...
    assert pos["pnl_borrow"] == pytest.approx(-borrow_cost, abs=1e-9)  # -0.05039960...
    assert pos["pnl_fees"] == pytest.approx(-fees, abs=1e-9)
    assert pos["pnl_price"] == pytest.approx(price, abs=1e-9)
    assert pos["pnl"] == pytest.approx(funding - borrow_cost - fees + price, abs=1e-9)
    (charge,) = sql(rt.ledger, "select ts, rate_daily, seconds, amount from borrow_charges")
    assert (charge["ts"], charge["rate_daily"], charge["seconds"]) == (t2, 0.0006, 7200)
