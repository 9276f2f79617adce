"""Leg risk, restart safety and reconciliation against a fault-injecting exchange.

The exchange is `FakeBinance` behind the real `ccxt.binance` class (its `fetch`
replaced; errors raised by ccxt's own handle_errors from Binance's error
bodies). The hedge is Binance's carry: short BTC perp, long BTC spot.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from live_fakes import PERP, SPOT, FakeBinance
from trading_helpers import sql

from rulebook.lang import Subject
from rulebook.market import Observation, SnapshotView
from rulebook.trading import CycleRecord, FundingRecord, Ledger, LegSpec, OpenRequest, load_config
from rulebook.trading.live import OrderGateway, TradeNeeds
from rulebook.trading.live._executor import LiveExecutor, Venue

PRICE = 50_000.0


class Clock:
    """Monotonic seconds that only move when the code sleeps (no test waits for real)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += max(s, 0.01)


def view(at: int = 1_753_112_400_000, price: float = PRICE) -> SnapshotView:
    obs = [
        Observation.checked(ts=at, exchange="binance", coin="BTC", market="perp", symbol=PERP,
                    funding_rate=0.0001, funding_interval_h=8, next_funding_ts=at + 3_600_000,
                    mark=price, index=price, bid=price - 1, ask=price + 1, taker_fee=0.0005),
        Observation.checked(ts=at, exchange="binance", coin="BTC", market="spot", symbol=SPOT,
                    bid=price - 1, ask=price + 1, taker_fee=0.001),
    ]  # fmt: skip
    return SnapshotView.from_observations(obs)


class Alerts:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, kind: str, text: str) -> bool:
        self.sent.append((kind, text))
        return True

    def text(self) -> str:
        return "\n".join(t for _, t in self.sent)


def make(tmp_path: Path, server: FakeBinance | None = None, *, retries: int = 2):
    server = server or FakeBinance()
    client = server.client()
    clock = Clock()
    env = {"RULEBOOK_LIVE__LEG_TIMEOUT": "10s", "RULEBOOK_LIVE__LEG_RETRIES": str(retries),
           "RULEBOOK_LIVE__RECONCILE_EVERY": "1"}  # fmt: skip
    cfg = load_config(environ=env).model_copy(update={"ledger": str(tmp_path / "live.db")})
    gw = OrderGateway("binance", client, sleep=clock.sleep)
    alerts = Alerts()
    ledger = Ledger(tmp_path / "live.db")
    ex = LiveExecutor(cfg, ledger, {"binance": Venue("binance", client, gw, cfg.exchanges["binance"])},
                      notifier=alerts, clock=clock)  # type: ignore[arg-type]
    needs = TradeNeeds(markets={("binance", "BTC", "perp"), ("binance", "BTC", "spot")})
    assert ex.start(needs) == []
    return ex, server, alerts, ledger


def open_carry(ex: LiveExecutor, amount: float = 1000.0, t: int = 1_753_112_400_000):
    legs = (LegSpec("binance", "perp", "short"), LegSpec("binance", "spot", "long"))
    request = OpenRequest("carry", {"coin": "BTC"}, "sha", Subject("funding", "BTC", ("binance",)),
                          legs, amount)  # fmt: skip
    return ex.open(request, view(t), t)


def intents(ledger: Ledger) -> list[dict]:
    return sql(ledger, "select * from order_intents order by id")


def test_both_legs_fill_same_quantity_with_exchange_fees(tmp_path: Path) -> None:
    ex, server, alerts, ledger = make(tmp_path)
    res = open_carry(ex)
    assert res.decision == "open" and res.position is not None
    p = res.position
    # 1000 / max(50001 ask spot, 49999 bid perp) = 0.019999 -> 0.019 on the 0.001 grid
    assert [leg.size for leg in p.legs] == [0.019, 0.019]
    assert server.position == -0.019 and server.spot_btc == 0.019
    # fees as the exchange charged them: 0.019 x 50000 x (0.0005 perp, 0.001 spot)
    assert [leg.entry_fee for leg in p.legs] == pytest.approx([0.475, 0.95], rel=1e-12)
    rows = intents(ledger)
    assert [r["client_id"] for r in rows] == [f"rb{ex.live.nonce}p{p.id}l0o0",
                                              f"rb{ex.live.nonce}p{p.id}l1o0"]  # fmt: skip
    assert {r["status"] for r in rows} == {"filled"}
    # every order carried its client id to the exchange
    assert [o.client_id for o in server.orders] == [r["client_id"] for r in rows]


def test_one_leg_rejected_unwinds_the_other_reduce_only(tmp_path: Path) -> None:
    ex, server, alerts, ledger = make(tmp_path)
    server.fault("spot", "reject_funds")  # Binance -2010/-2019: ccxt InsufficientFunds
    res = open_carry(ex)
    assert res.decision == "blocked" and "InsufficientFunds" in (res.reason or "")
    # the perp leg had filled: it was reduced to zero with a reduce-only order, no retry
    # of the refused leg (a retry cannot change insufficient funds)
    assert server.position == 0 and server.spot_btc == 0
    unwind = [o for o in server.orders if o.client_id.endswith("u0")]
    assert len(unwind) == 1 and unwind[0].reduce_only and unwind[0].side == "BUY"
    assert "reducing binance perp by 0.019 BTC (reduce-only)" in alerts.text()
    assert sql(ledger, "select status from positions")[0]["status"] == "failed"
    assert not ex.positions


def test_partial_fill_retries_the_missing_part(tmp_path: Path) -> None:
    ex, server, alerts, ledger = make(tmp_path)
    server.fault("spot", "partial:0.5")
    res = open_carry(ex)
    assert res.decision == "open"
    assert server.position == -0.019 and server.spot_btc == pytest.approx(0.019)
    spot = [o for o in server.orders if o.kind == "spot"]
    assert [o.filled for o in spot] == [0.0095, 0.0095]
    assert spot[1].client_id.endswith("l1o1")  # a new attempt of the same intent
    assert "sending the missing 0.0095 again (attempt 1)" in alerts.text()
    assert res.position is not None and [lg.size for lg in res.position.legs] == [0.019, 0.019]


def test_partial_fill_that_retries_cannot_complete_reduces_the_other_leg(tmp_path: Path) -> None:
    ex, server, alerts, ledger = make(tmp_path, retries=1)
    server.fault("spot", "partial:0.5")
    server.fault("spot", "unfilled")
    res = open_carry(ex)
    # the spot leg holds 0.0095, off the perp's 0.001 grid: both legs meet at 0.009
    assert res.decision == "open" and res.position is not None
    assert server.position == -0.009 and server.spot_btc == pytest.approx(0.009, abs=1e-12)
    assert [lg.size for lg in res.position.legs] == pytest.approx([0.009, 0.009], abs=1e-12)
    assert "reducing binance perp by 0.01 BTC (reduce-only)" in alerts.text()
    assert "reducing binance spot by 0.0005 BTC" in alerts.text()


def test_timeout_after_accept_finds_the_order_instead_of_placing_twice(tmp_path: Path) -> None:
    ex, server, alerts, ledger = make(tmp_path)
    server.fault("perp", "timeout_after_accept")
    res = open_carry(ex)
    assert res.decision == "open"
    perp_orders = [o for o in server.orders if o.kind == "perp"]
    assert len(perp_orders) == 1  # found by client id in the order lists, not resent
    assert server.position == -0.019
    assert any(path.endswith("/openOrders") for _, path in server.calls)


def test_timeout_before_accept_resends_with_the_same_client_id(tmp_path: Path) -> None:
    ex, server, alerts, ledger = make(tmp_path)
    server.fault("perp", "timeout_before_accept")
    res = open_carry(ex)
    assert res.decision == "open"
    perp_orders = [o for o in server.orders if o.kind == "perp"]
    assert len(perp_orders) == 1 and perp_orders[0].client_id.endswith("l0o0")
    assert server.position == -0.019


def test_rate_limit_is_retried_with_the_same_client_id(tmp_path: Path) -> None:
    ex, server, alerts, ledger = make(tmp_path)
    server.fault("spot", "rate_limit")  # HTTP 429 / -1003: ccxt RateLimitExceeded
    res = open_carry(ex)
    assert res.decision == "open"
    spot = [o for o in server.orders if o.kind == "spot"]
    assert len(spot) == 1 and spot[0].client_id.endswith("l1o0")


def test_error_while_closing_is_retried_then_left_closing_with_an_alert(tmp_path: Path) -> None:
    ex, server, alerts, ledger = make(tmp_path, retries=0)
    p = open_carry(ex).position
    assert p is not None
    for _ in range(40):  # the perp's order endpoint is down for longer than leg_timeout
        server.fault("perp", "outage", intent="c")
    assert ex.close(p, view(), 1_753_116_000_000, "exit when").closed is False
    assert server.spot_btc == 0 and server.position == -0.019  # spot sold, perp still short
    assert "close INCOMPLETE, still open: binance perp 0.019 BTC" in alerts.text()
    assert sql(ledger, "select status from positions where id = ?", [p.id])[0]["status"] == "closing"
    server.faults.clear()
    # the next cycle finishes the close before anything else
    ex.begin_cycle(view(1_753_119_600_000), 1_753_119_600_000)
    assert server.position == 0 and not ex.positions
    closes = [o for o in server.orders if "c" in o.client_id[-2:]]
    assert all(o.reduce_only for o in closes if o.kind == "perp")


def test_restart_between_the_two_legs_completes_the_hedge(tmp_path: Path) -> None:
    """kill -9 after the perp leg filled, before the spot leg was sent: the intents were
    committed first, so the restart finds the perp order by client id and sends the
    spot leg; the hedge is complete (or, if that fails, unwound: never one-legged)."""
    ex, server, alerts, ledger = make(tmp_path)

    class Killed(BaseException):
        pass

    real = ex.trader._execute

    def die_on_spot(req, deadline):
        if req.market == "spot":
            raise Killed  # the process dies here: nothing after this line runs
        return real(req, deadline)

    ex.trader._execute = die_on_spot  # type: ignore[method-assign]
    with pytest.raises(Killed):
        open_carry(ex)
    assert server.position == -0.019 and server.spot_btc == 0  # one leg on the exchange
    ledger.close()
    # restart: a new process, the same ledger and exchange
    ex2, _, alerts2, ledger2 = make(tmp_path, server)
    assert server.position == -0.019 and server.spot_btc == pytest.approx(0.019)
    (p,) = ex2.positions.values()
    assert p.status == "open" and [lg.size for lg in p.legs] == [0.019, 0.019]
    assert "completed" in alerts2.text()
    statuses = {r["client_id"][-4:]: r["status"] for r in intents(ledger2)}
    assert statuses["l0o0"] == "filled"  # looked up by client id after the restart


def test_restart_that_cannot_complete_unwinds_to_no_position(tmp_path: Path) -> None:
    ex, server, alerts, ledger = make(tmp_path)

    class Killed(BaseException):
        pass

    real = ex.trader._execute

    def die_on_spot(req, deadline):
        if req.market == "spot":
            raise Killed
        return real(req, deadline)

    ex.trader._execute = die_on_spot  # type: ignore[method-assign]
    with pytest.raises(Killed):
        open_carry(ex)
    ledger.close()
    for _ in range(5):
        server.fault("spot", "reject_invalid")
    ex2, _, alerts2, ledger2 = make(tmp_path, server)
    assert server.position == 0 and server.spot_btc == 0  # a complete hedge or none
    assert not ex2.positions
    assert sql(ledger2, "select status from positions")[0]["status"] == "failed"


def test_position_closed_by_hand_stops_entries(tmp_path: Path) -> None:
    ex, server, alerts, ledger = make(tmp_path)
    assert open_carry(ex).decision == "open"
    server.position = 0.0  # the operator closed the perp on the exchange's website
    diffs = ex.reconcile(1_753_116_000_000)
    assert diffs == ["binance BTC/USDT:USDT: ledger -0.019, exchange +0 (difference +0.019)"]
    assert "entries stopped: reconciliation" in alerts.text()
    blocked = open_carry(ex, t=1_753_116_000_000)
    assert blocked.decision == "blocked" and "entries stopped" in (blocked.reason or "")
    rec = sql(ledger, "select * from reconciliations where ok = 0")
    assert rec[0]["expected"] == -0.019 and rec[0]["actual"] == 0.0
    server.position = -0.019  # put back: the next reconciliation resumes entries
    assert ex.reconcile(1_753_119_600_000) == []
    assert "entries resumed" in alerts.text()


def test_funding_the_exchange_paid_is_recorded_beside_the_ledgers_and_drift_is_an_event(
    tmp_path: Path,
) -> None:
    ex, server, alerts, ledger = make(tmp_path)
    p = open_carry(ex).position
    assert p is not None
    s = 1_753_112_400_000 + 3_600_000
    # the ledger's computed payment: short 0.019 x mark 50000 x rate 0.0001 = +0.095
    ledger.record_funding_payment(
        FundingRecord(p.id, "binance", "BTC", s, 0.0001, 50000.0, 0.019, 0.095)
    )
    # Binance reports 0.05 for that settlement (income FUNDING_FEE, received)
    server.funding = [{"symbol": "BTCUSDT", "incomeType": "FUNDING_FEE", "income": "0.05",
                       "asset": "USDT", "time": s + 2000, "tranId": 77, "info": ""}]  # fmt: skip
    ex.reconcile(s + 60_000)
    reported = sql(ledger, "select * from exchange_funding")
    assert [(r["position_id"], r["amount"]) for r in reported] == [(p.id, 0.05)]
    drift = sql(ledger, "select detail from events where kind = 'funding_drift'")
    assert len(drift) == 1
    assert "ledger +0.095000, exchange +0.050000 (drift -0.045000)" in drift[0]["detail"]
    assert ex.live.funding_totals()[p.id] == {"computed": 0.095, "reported": 0.05}
    ex.reconcile(s + 120_000)  # asked again: recorded once, reported once
    assert len(sql(ledger, "select * from exchange_funding")) == 1
    assert len(sql(ledger, "select * from events where kind = 'funding_drift'")) == 1


def test_a_paper_ledger_cannot_be_used_live(tmp_path: Path) -> None:
    from rulebook.trading import LedgerError
    from rulebook.trading._live_ledger import LiveLedger

    ledger = Ledger(tmp_path / "paper.db")
    ledger.record_cycle(CycleRecord(1, 1, "x", "live", 0, 0, 0, 0, 0.0, 0.0))
    with pytest.raises(LedgerError, match="a paper ledger"):
        LiveLedger(ledger)


def test_no_secret_in_events_or_notifications(tmp_path: Path) -> None:
    ex, server, alerts, ledger = make(tmp_path)
    from rulebook.trading.live import Redactor

    ex.redact = Redactor()
    ex.redact.add("test-secret-abcdef", "test-key-123456")
    ex.trader.gateways["binance"].redact = ex.redact
    server.fault("spot", "reject_funds")
    server.fault("perp", "reject_funds")
    open_carry(ex)
    texts = [r["detail"] for r in sql(ledger, "select detail from events")] + [t for _, t in alerts.sent]
    texts += [r["reason"] or "" for r in intents(ledger)]
    assert texts and not any("test-secret-abcdef" in t or "test-key-123456" in t for t in texts)


def test_kill_9_between_the_legs_leaves_a_complete_hedge_or_none(tmp_path: Path) -> None:
    """A real SIGKILL: a child process opens the hedge and dies right after the perp order
    reached the exchange. The restart (this process, the same ledger and exchange state)
    looks the order up by its client id and completes the hedge."""
    import subprocess
    import sys

    child = Path(__file__).parent / "live_kill_child.py"
    proc = subprocess.run([sys.executable, str(child), str(tmp_path)], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == -9, proc.stdout + proc.stderr
    server = FakeBinance.load(str(tmp_path / "exchange.json"))
    assert server.position == -0.019 and server.spot_btc == 0  # one leg on the exchange
    # the ledger holds both intents (committed before anything was sent), not yet resolved
    ledger = Ledger(tmp_path / "live.db")
    assert [r["status"] for r in intents(ledger)] == ["intent", "intent"]
    (row,) = sql(ledger, "select status from positions")
    assert row["status"] == "opening"
    ledger.close()
    ex, _, alerts, ledger = make(tmp_path, server)
    # a complete hedge: the spot leg's intent was never sent (not on the exchange), so the
    # restart sent the missing leg as a new attempt
    assert server.position == -0.019 and server.spot_btc == pytest.approx(0.019)
    (p,) = ex.positions.values()
    assert p.status == "open" and [lg.size for lg in p.legs] == [0.019, 0.019]
    statuses = [(r["client_id"][-4:], r["status"]) for r in intents(ledger)]
    assert statuses == [("l0o0", "filled"), ("l1o0", "missing"), ("l1o1", "filled")]
    assert [o.client_id[-4:] for o in server.orders] == ["l0o0", "l1o1"]


def test_borrowed_spot_leg_borrows_sells_on_margin_buys_back_and_repays(tmp_path: Path) -> None:
    """Negative funding: long perp, short spot sold with coins borrowed on cross margin."""
    ex, server, alerts, ledger = make(tmp_path)
    t = 1_753_112_400_000
    legs = (LegSpec("binance", "perp", "long"), LegSpec("binance", "spot", "short"))
    request = OpenRequest("neg", {"coin": "BTC"}, "sha", Subject("funding", "BTC", ("binance",)),
                          legs, 1000.0)  # fmt: skip
    res = ex.open(request, view(t), t)
    assert res.decision == "open" and res.position is not None
    assert server.borrows == [("BORROW", "BTC", 0.019)]
    assert server.position == 0.019 and server.margin_btc == 0.0 and server.margin_debt == 0.019
    margin_orders = [o for o in server.orders if o.kind == "margin"]
    assert [(o.side, o.type, o.filled) for o in margin_orders] == [("SELL", "LIMIT", 0.019)]
    assert res.position.legs[1].borrowed and res.position.legs[1].size == 0.019
    # read back from the margin account's trades: 0.019 x 50000 x 0.001 spot fee
    assert res.position.legs[1].entry_fee == pytest.approx(0.95, rel=1e-12)
    assert ex.close(res.position, view(t + 60_000), t + 60_000, "exit when").closed is True
    assert server.position == 0 and server.margin_debt == 0 and server.margin_btc == 0
    assert server.borrows == [("BORROW", "BTC", 0.019), ("REPAY", "BTC", 0.019)]
    kinds = [r["kind"] for r in sql(ledger, "select kind from events order by id")]
    assert "borrow" in kinds and "repay" in kinds


def test_a_borrow_rule_on_an_exchange_ccxt_cannot_borrow_on_is_refused_at_start(
    tmp_path: Path,
) -> None:
    from live_recorded import recorded_client

    client = recorded_client("backpack")  # ccxt has no cross-margin borrow for backpack
    client.load_markets = lambda reload=False, params={}: client.markets  # noqa: B006
    cfg = load_config(environ={}).model_copy(update={"ledger": str(tmp_path / "live.db")})
    ex = LiveExecutor(cfg, Ledger(tmp_path / "live.db"),
                      {"backpack": Venue("backpack", client, OrderGateway("backpack", client))})  # fmt: skip
    needs = TradeNeeds(markets={("backpack", "ETH", "perp"), ("backpack", "ETH", "spot"),
                                ("backpack", "SOL", "perp")},
                       borrow_always={("backpack", "ETH")},
                       rules={("backpack", "ETH"): {"eth_borrow"}, ("backpack", "SOL"): {"sol_x"}})  # fmt: skip
    problems = ex.start(needs)
    assert problems == [
        "backpack: no SOL perp market (needed by sol_x)",
        "backpack: rule(s) eth_borrow need a borrowed ETH: ccxt cannot borrow on backpack "
        "(no cross-margin borrow/repay)",
    ]


def test_only_the_accounts_the_legs_use_are_read(tmp_path: Path) -> None:
    server = FakeBinance()
    client = server.client()
    cfg = load_config(environ={}).model_copy(update={"ledger": str(tmp_path / "live.db")})
    ex = LiveExecutor(cfg, Ledger(tmp_path / "live.db"),
                      {"binance": Venue("binance", client, OrderGateway("binance", client))})  # fmt: skip
    assert ex.start(TradeNeeds(markets={("binance", "BTC", "perp")})) == []
    paths = {p for _, p in server.calls}
    assert "/fapi/v3/account" in paths and "/api/v3/account" not in paths
    assert ex.venues["binance"].free[("swap", "USDT")] == 100_000.0
