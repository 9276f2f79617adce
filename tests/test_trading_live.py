"""The live loop (with a stand-in for LiveSource), outages, halts while waiting, and reloads."""

from __future__ import annotations

import threading
import time

from trading_helpers import T0, H, T, pair_rows, paper_runtime, sql, write_jsonl

from rulebook.app import live_views
from rulebook.lang import load_texts
from rulebook.market import Observation, ReplaySource, SnapshotView
from rulebook.trading import Ledger, RulesetHolder, Runtime, TradingConfig

RULES = """
rule sol_spread:
    when spread(SOL, bybit, binance) > 0.01%
    then hedge 1000 USDT
    exit when spread(SOL, bybit, binance) < 0%
"""


class FakeLive:
    """Answers like LiveSource: fetch_cycle() then view(); bybit fails on the 2nd cycle."""

    def __init__(self) -> None:
        self.n = 0
        self.closed = False

    async def fetch_cycle(self) -> None:
        self.n += 1

    def view(self) -> SnapshotView:
        at = T0 + self.n * 1000
        rows = pair_rows(at, "SOL", (100.0, 0.0001), (100.2, 0.0004), T)
        failures = {"bybit": "no answer within 10s"} if self.n == 2 else {}
        obs = [Observation.checked(**r) for r in rows]
        return SnapshotView.from_observations(obs, at=at, failures=failures)

    async def close(self) -> None:
        self.closed = True


def _runtime(tmp_path, rules: str = RULES) -> Runtime:
    rs = load_texts({"s.rules": rules}).ruleset
    return paper_runtime(RulesetHolder(rs), TradingConfig(), Ledger(tmp_path / "l.db"))


def test_live_loop_outage_and_close_all_halt_while_waiting(tmp_path) -> None:
    rt = _runtime(tmp_path)
    live = FakeLive()
    reports = []

    def on_cycle(report) -> None:
        reports.append(report)
        if len(reports) == 3:  # `rulebook halt` from elsewhere while the loop waits
            threading.Timer(0.3, lambda: Ledger(tmp_path / "l.db").request_halt(True)).start()

    t = time.monotonic()
    summary = rt.run(live_views(rt, live, every_s=1.0), on_cycle=on_cycle)
    # two full 1 s waits, then the halt cuts the third short: well under 3 s
    assert time.monotonic() - t < 2.8
    assert summary.halted == "rulebook halt --close-all"
    assert summary.cycles == 4  # three paced cycles, then the closing one at once
    assert live.closed
    kinds = [e["kind"] for e in sql(rt.ledger, "select kind from events order by id")]
    assert kinds == ["outage", "recovered", "halt"]
    (pos,) = sql(rt.ledger, "select status, close_reason from positions")
    assert (pos["status"], pos["close_reason"]) == ("closed", "halt --close-all")


def test_a_reload_keeps_the_exit_clause_a_position_was_opened_under(tmp_path) -> None:
    rows = (
        pair_rows(T0, "SOL", (100.0, 0.0001), (100.2, 0.0004), T)
        + pair_rows(T0 + H, "SOL", (100.0, 0.0001), (100.2, 0.0004), T)
        + pair_rows(T0 + 2 * H, "SOL", (100.0, 0.0003), (100.2, 0.0001), T)
    )
    rec = write_jsonl(tmp_path / "rec.jsonl", rows)
    rt = _runtime(tmp_path)
    # After the first cycle the rule is replaced by one without it (a reload).
    other = load_texts(
        {"o.rules": "rule other:\n  when spread(ETH, okx, gate) > 1% then hedge 10 USDT\n"}
    )
    rt.run(ReplaySource(rec), on_cycle=lambda r: rt.rulesets.replace(other.ruleset))
    (pos,) = sql(rt.ledger, "select status, close_reason, closed_at, ruleset_sha from positions")
    # the spread turned negative at T0+2h: the removed rule's exit clause still closed it
    assert (pos["status"], pos["closed_at"]) == ("closed", T0 + 2 * H)
    assert pos["close_reason"] == "exit when of rule sol_spread"
    shas = [r["sha256"] for r in sql(rt.ledger, "select sha256 from rulesets")]
    assert pos["ruleset_sha"] in shas and other.ruleset.sha256 in shas


def test_record_event_is_public_and_joins_no_cycle(tmp_path) -> None:
    led = Ledger(tmp_path / "l.db")
    led.record_event("reload", {"files": ["a.rules"], "sha256": "abc"})
    (e,) = sql(led, "select kind, detail from events")
    assert e["kind"] == "reload" and e["detail"] == '{"files": ["a.rules"], "sha256": "abc"}'
