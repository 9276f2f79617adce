"""Notifications through apprise, against a local HTTP endpoint (never the internet)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from trading_helpers import T0, H, T, pair_rows, paper_runtime, sql, write_jsonl

from rulebook.lang import load_texts
from rulebook.market import ReplaySource
from rulebook.trading import Ledger, Notifier, RulesetHolder, TradingConfig


@pytest.fixture
def endpoint():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"json://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


RULES = """
rule sol_spread:
    when spread(SOL, bybit, binance) > 0.01%
    then hedge 1000 USDT, alert "spread {edge}"
    exit when spread(SOL, bybit, binance) < 0%
risk:
    max_single_position 600 USDT
"""


def test_open_close_risk_alert_and_halt_reach_the_endpoint(tmp_path, endpoint) -> None:
    url, received = endpoint
    rows = (
        pair_rows(T0, "SOL", (100.0, 0.0001), (100.2, 0.0004), T)
        + pair_rows(T, "SOL", (100.0, 0.0002), (100.2, 0.0001), T + 8 * H)
        + pair_rows(T + H, "SOL", (100.0, 0.0002), (100.2, 0.0001), T + 8 * H)
    )
    rec = write_jsonl(tmp_path / "rec.jsonl", rows)
    rs = load_texts({"s.rules": RULES}).ruleset
    notifier = Notifier([url], ["open", "close", "risk", "alert", "halt"])
    rt = paper_runtime(RulesetHolder(rs), TradingConfig(), Ledger(tmp_path / "l.db"), notifier)
    rt.run(ReplaySource(rec), on_cycle=lambda r: r.at == T and rt.request_stop("SIGINT"))
    titles = [m["title"] for m in received]
    assert titles == [
        "rulebook: alert",  # the alert action, T0
        "rulebook: position opened",  # T0, at the cut size
        "rulebook: risk limit",  # cut from 1000 to 600 USDT, T0
        "rulebook: position closed",  # the spread turned negative at T
        "rulebook: halted",  # SIGINT after the cycle at T
    ]
    bodies = [m["message"] for m in received]
    assert bodies[0] == "spread 0.03%"
    assert bodies[1].startswith("opened #1 sol_spread spread(SOL, bybit, binance)")
    assert bodies[1].endswith(", 600.00 per leg")
    assert "max_single_position: cut from 1000 USDT to 600 USDT" in bodies[2]
    assert "exit when of rule sol_spread" in bodies[3]
    assert bodies[4] == "halted by SIGINT; 0 position(s) left open"
    assert notifier.sent == 5 and notifier.failed == 0


def test_an_unreachable_channel_never_stops_trading(tmp_path) -> None:
    notifier = Notifier(["json://127.0.0.1:9/nothing-listens"], ["open"])
    rec = write_jsonl(
        tmp_path / "rec.jsonl", pair_rows(T0, "SOL", (100.0, 0.0001), (100.2, 0.0004), T)
    )
    rs = load_texts({"s.rules": RULES}).ruleset
    rt = paper_runtime(RulesetHolder(rs), TradingConfig(), Ledger(tmp_path / "l.db"), notifier)
    assert rt.run(ReplaySource(rec)).cycles == 1
    assert len(sql(rt.ledger, "select * from positions")) == 1
    assert notifier.failed == 1


@pytest.fixture
def failing_endpoint():
    """A local webhook that answers 500 to the first `fail` requests, then 200."""
    state = {"fail": 2, "requests": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            self.rfile.read(int(self.headers["Content-Length"]))
            state["requests"] += 1
            self.send_response(500 if state["requests"] <= state["fail"] else 200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"json://user:s3cret@127.0.0.1:{server.server_port}/hook", state
    server.shutdown()


def test_failed_notifications_are_counted_and_recorded_as_events(tmp_path, failing_endpoint):
    url, state = failing_endpoint
    rows = pair_rows(T0, "SOL", (100.0, 0.0001), (100.2, 0.0004), T) + pair_rows(
        T, "SOL", (100.0, 0.0002), (100.2, 0.0001), T + 8 * H
    )
    rec = write_jsonl(tmp_path / "rec.jsonl", rows)
    rs = load_texts({"s.rules": RULES}).ruleset
    notifier = Notifier([url], ["open", "close", "alert"])
    ledger = Ledger(tmp_path / "l.db")
    rt = paper_runtime(RulesetHolder(rs), TradingConfig(), ledger, notifier)
    assert rt.run(ReplaySource(rec)).cycles == 2
    # T0: alert + open (both answered 500); T: close (answered 200)
    assert state["requests"] == 3
    assert (notifier.sent, notifier.failed) == (1, 2)
    events = sql(ledger, "select kind, detail from events where kind = 'notify_failed'")
    assert [e["detail"].split(":")[0] for e in events] == [
        "alert notification failed",
        "open notification failed",
    ]
    assert all("500" in e["detail"] for e in events), events
    assert not any("s3cret" in e["detail"] for e in events)
    assert notifier.take_failures() == []  # each failure is recorded once
