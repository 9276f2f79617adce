"""Spec 11 step 1 in the runtime: replays paid as exchanges pay, against hand computations.

Every recording here is clearly synthetic: round rates and marks so each amount
is worked out by hand in the comments (money to 1e-9). The cases of issue 10
item 7: hourly Backpack against 8h Binance with cycles every 30 min and every
2 h; settled rates that differ from the shown ones; marks that move between
settlement and cycle; an interval change from 8h to 1h mid-position; a restart
between two settlements; an outage spanning two settlements.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trading_helpers import paper_runtime
from typer.testing import CliRunner

from rulebook.cli import app
from rulebook.lang import load_texts
from rulebook.market import ReplaySource
from rulebook.trading import Ledger, LedgerReader, RulesetHolder, Runtime, TradingConfig

H = 3_600_000
M = 60_000
T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC

CROSS = """
rule bp_cross:
    when spread(SOL, backpack, binance) > 0.01%
    then hedge 1000 USDT
"""


def perp(ex, ts, rate, nxt, mark, interval):
    return {"ts": ts, "exchange": ex, "coin": "SOL", "market": "perp", "funding_rate": rate,
            "funding_interval_h": interval, "next_funding_ts": nxt, "mark": mark,
            "index": mark, "bid": mark, "ask": mark, "volume_24h": 1e9, "taker_fee": 0.0005}


def record(ex, ts, rate, interval, mark=None):
    row = {"ts": ts, "exchange": ex, "coin": "SOL", "market": "settlement",
           "funding_rate": rate, "funding_interval_h": interval}
    if mark is not None:
        row["mark"] = mark
    return row


def write(path: Path, rows: list[dict]) -> Path:
    rows = sorted(rows, key=lambda r: (r["ts"], r["exchange"], r["market"]))
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def runtime(tmp_path, rules=CROSS, db="paper.db", **config) -> Runtime:
    result = load_texts({"s.rules": rules})
    assert result.ok, [d.message for d in result.diagnostics]
    return paper_runtime(RulesetHolder(result.ruleset), TradingConfig(**config),
                         Ledger(tmp_path / db), source="replay")


def payments(db: Path):
    with LedgerReader.open(db) as read:
        return read.funding_payments()


def hourly_world(every_ms: int, record_marks: bool = True) -> list[dict]:
    """Backpack SOL shows 0.09% for every coming hour but hour k (1..8) settles
    0.01% x k; its mark is 100 + hours since T0. Binance shows 0.05% for T0+8h, marks
    100, and settles 0.02% at mark 108.5 (a mark of its own, unlike the observations)."""
    rows = []
    for t in range(T0, T0 + 8 * H + 1, every_ms):
        rows.append(perp("backpack", t, 0.0009, (t // H + 1) * H, 100.0 + (t - T0) / H, 1))
        nxt = T0 + 8 * H if t < T0 + 8 * H else T0 + 16 * H
        rows.append(perp("binance", t, 0.0005, nxt, 100.0, 8))
    for k in range(1, 9):
        rows.append(record("backpack", T0 + k * H, 0.0001 * k, 1,
                           100.0 + k if record_marks else None))
    rows.append(record("binance", T0 + 8 * H, 0.0002, 8, 108.5 if record_marks else None))
    return rows


@pytest.mark.parametrize("every", [30 * M, 2 * H])
def test_hourly_backpack_and_8h_binance_every_settlement_once(tmp_path, every):
    rec = write(tmp_path / "rec.jsonl", hourly_world(every))
    rt = runtime(tmp_path)
    rt.run(ReplaySource(rec))
    pays = payments(tmp_path / "paper.db")
    # opened at T0 at bid = ask = 100 on both: 10 SOL short on backpack, 10 long on binance
    bp = [p for p in pays if p.exchange == "backpack"]
    bn = [p for p in pays if p.exchange == "binance"]
    assert [p.ts for p in bp] == [T0 + k * H for k in range(1, 9)]
    assert all((p.rate_source, p.mark_source, p.interval_h) == ("settled", "settlement", 1)
               for p in bp)
    # short: 10 x (100 + k) x 0.0001 k; sum = 0.001 x (100 x 36 + 204) = 3.804
    for k, p in enumerate(bp, start=1):
        assert (p.rate, p.mark, p.size) == pytest.approx((0.0001 * k, 100.0 + k, 10.0))
        assert p.amount == pytest.approx(10 * (100 + k) * 0.0001 * k, abs=1e-9)
    assert sum(p.amount for p in bp) == pytest.approx(3.804, abs=1e-9)
    # long: pays 10 x 108.5 x 0.0002 = 0.217 once, at the settled rate, not the shown 0.05%
    assert [(p.ts, p.rate, p.mark, p.interval_h) for p in bn] == [(T0 + 8 * H, 0.0002, 108.5, 8)]
    assert bn[0].amount == pytest.approx(-0.217, abs=1e-9)
    with LedgerReader.open(tmp_path / "paper.db") as read:
        (pos,) = read.positions()
        assert pos.pnl_funding == pytest.approx(3.804 - 0.217, abs=1e-9)
        cycles = read.cycles()
    assert sum(c.funding for c in cycles) == pytest.approx(3.587, abs=1e-9)


def test_marks_that_move_between_settlement_and_cycle(tmp_path):
    # records without a mark, cycles every 2 h: each takes the last perp mark at or
    # before it. Hour k's mark is that of the observation at 2 x floor(k / 2) hours:
    # 100, 102, 102, 104, 104, 106, 106, 108 (not the mark of the cycle that pays it).
    rec = write(tmp_path / "rec.jsonl", hourly_world(2 * H, record_marks=False))
    runtime(tmp_path).run(ReplaySource(rec))
    bp = [p for p in payments(tmp_path / "paper.db") if p.exchange == "backpack"]
    marks = [100.0, 102.0, 102.0, 104.0, 104.0, 106.0, 106.0, 108.0]
    assert [(p.mark, p.mark_source) for p in bp] == [(m, "perp") for m in marks]
    # 10 x (0.01 + 0.0204 + 0.0306 + 0.0416 + 0.052 + 0.0636 + 0.0742 + 0.0864) = 3.788
    assert sum(p.amount for p in bp) == pytest.approx(3.788, abs=1e-9)


def test_without_records_the_estimate_is_paid_and_says_so(tmp_path):
    rows = [r for r in hourly_world(30 * M) if r["market"] != "settlement"]
    rec = write(tmp_path / "rec.jsonl", rows)
    runtime(tmp_path).run(ReplaySource(rec))
    bp = [p for p in payments(tmp_path / "paper.db") if p.exchange == "backpack"]
    # the forecast of hour k: 0.09% shown at k - 30 min; mark at k: 100 + k
    assert [(p.rate, p.rate_source, p.mark, p.mark_source) for p in bp] == [
        (0.0009, "estimated", 100.0 + k, "perp") for k in range(1, 9)]
    # 10 x 0.0009 x (800 + 36) = 7.524
    assert sum(p.amount for p in bp) == pytest.approx(7.524, abs=1e-9)


INTERVAL = """
rule carry:
    when funding(SOL, binance) > 0.01%
    then hedge 1000 USDT
"""


def test_interval_change_8h_to_1h_mid_position_is_an_event_and_a_notification(tmp_path):
    rows = []
    # carry: short binance perp, long binance spot (bid = ask = 100: 10 SOL each)
    for t in range(T0, T0 + 11 * H + 1, 30 * M):
        if t < T0 + 8 * H:
            nxt, interval, rate = T0 + 8 * H, 8, 0.0003
        elif t < T0 + 10 * H:  # the cap was hit: hourly from 08:00
            nxt, interval, rate = (t // H + 1) * H, 1, 0.004
        else:  # and back to 8h from 10:00
            nxt, interval, rate = T0 + 18 * H, 8, 0.0004
        rows.append(perp("binance", t, rate, nxt, 100.0, interval))
        rows.append({"ts": t, "exchange": "binance", "coin": "SOL", "market": "spot",
                     "bid": 100.0, "ask": 100.0, "taker_fee": 0.001})
    rows += [record("binance", T0 + 8 * H, 0.0003, 8, 100.0),
             record("binance", T0 + 9 * H, 0.005, 1, 101.0),
             record("binance", T0 + 10 * H, 0.003, 1, 102.0)]
    rec = write(tmp_path / "rec.jsonl", rows)
    rt = runtime(tmp_path, INTERVAL)
    sent = []
    rt.notifier = type("N", (), {"send": lambda self, kind, text: sent.append((kind, text))})()
    rt.run(ReplaySource(rec))
    pays = payments(tmp_path / "paper.db")
    assert [(p.ts, p.interval_h, p.rate) for p in pays] == [
        (T0 + 8 * H, 8, 0.0003), (T0 + 9 * H, 1, 0.005), (T0 + 10 * H, 1, 0.003)]
    # short 10: 10 x (100 x 0.0003 + 101 x 0.005 + 102 x 0.003) = 10 x 0.841 = 8.41
    assert sum(p.amount for p in pays) == pytest.approx(8.41, abs=1e-9)
    with LedgerReader.open(tmp_path / "paper.db") as read:
        events = [(e.ts, e.detail) for e in read.events("interval")]
    assert events == [(T0 + 8 * H, "SOL on binance now settles every 1h, was 8h"),
                      (T0 + 10 * H, "SOL on binance now settles every 8h, was 1h")]
    assert ("interval", "SOL on binance now settles every 1h, was 8h") in sent


def test_the_engine_normalises_by_the_current_interval(tmp_path):
    # 0.4% per 1h is 3.2% per 8h: after the switch the engine's funding figure is
    # eight times the rate, before it the 8h rate itself (spec 5: r x 8 / I)
    from rulebook.engine import evaluate

    rows = [perp("binance", T0, 0.0003, T0 + 8 * H, 100.0, 8),
            perp("binance", T0 + 8 * H + 30 * M, 0.004, T0 + 9 * H, 100.0, 1)]
    rows += [{"ts": r["ts"], "exchange": "binance", "coin": "SOL", "market": "spot",
              "bid": 100.0, "ask": 100.0} for r in rows]
    rec = write(tmp_path / "rec.jsonl", rows)
    v8, v1 = list(ReplaySource(rec))
    assert v8.funding_8h("binance", "SOL") == pytest.approx(0.0003)
    assert v1.funding_8h("binance", "SOL") == pytest.approx(0.032)
    rs = load_texts({"a.rules": 'when funding(SOL, binance) > 1% then alert "hot"\n'}).ruleset
    assert [o.fired for o in evaluate(rs, v8, include_unfired=True).opportunities] == [False]
    (o,) = evaluate(rs, v1).opportunities
    assert o.fired and o.to_dict()["edge"] == pytest.approx(0.032)


def test_a_restart_between_two_settlements_pays_each_once(tmp_path):
    rows = hourly_world(30 * M)
    whole = write(tmp_path / "whole.jsonl", rows)
    first = write(tmp_path / "first.jsonl", [r for r in rows if r["ts"] <= T0 + 4 * H + 30 * M])
    runtime(tmp_path, db="straight.db").run(ReplaySource(whole))
    runtime(tmp_path, db="resumed.db").run(ReplaySource(first))  # stops between 04:00 and 05:00
    summary = runtime(tmp_path, db="resumed.db").run(ReplaySource(whole))
    assert summary.skipped_cycles == 10 and summary.cycles == 7
    straight = [(p.exchange, p.ts, p.rate, p.mark, p.amount) for p in
                payments(tmp_path / "straight.db")]
    resumed = [(p.exchange, p.ts, p.rate, p.mark, p.amount) for p in
               payments(tmp_path / "resumed.db")]
    assert resumed == straight and len(resumed) == 9


def _outage_rows(with_records: bool) -> list[dict]:
    """Backpack answers at 00:00..01:30 and again from 04:30 (binance all along); the
    02:00, 03:00 and 04:00 settlements fall in the outage. Records, where written, are
    written when the exchange answers again (after its 04:30 observation), as
    `rulebook snapshot` writes them."""
    rows = []
    for t in range(T0, T0 + 6 * H + 1, 30 * M):
        if not T0 + 90 * M < t < T0 + 270 * M:
            rows.append(perp("backpack", t, 0.0009, (t // H + 1) * H, 100.0 + (t - T0) / H, 1))
        rows.append(perp("binance", t, 0.0005, T0 + 8 * H, 100.0, 8))
    late = []
    for k in range(1, 7):
        r = record("backpack", T0 + k * H, 0.0001 * k, 1, 100.0 + k)
        if k in (2, 3, 4):
            late.append(r)
        else:
            rows.append(r)
    rows = sorted(rows, key=lambda r: (r["ts"], r["exchange"], r["market"]))
    if not with_records:
        return [r for r in rows if r["market"] != "settlement"]
    at = next(i for i, r in enumerate(rows)
              if r["exchange"] == "backpack" and r["ts"] == T0 + 270 * M)
    return rows[: at + 1] + late + rows[at + 1:]


def test_outage_spanning_two_settlements_paid_settled_once_data_returns(tmp_path):
    rec = tmp_path / "rec.jsonl"
    rec.write_text("".join(json.dumps(r) + "\n" for r in _outage_rows(True)))
    runtime(tmp_path).run(ReplaySource(rec))
    bp = [p for p in payments(tmp_path / "paper.db") if p.exchange == "backpack"]
    assert [(p.ts, p.rate_source) for p in bp] == [(T0 + k * H, "settled") for k in range(1, 7)]
    with LedgerReader.open(tmp_path / "paper.db") as read:
        paid_at = {c.ts: c.funding for c in read.cycles()}
    # 02:00, 03:00 and 04:00 are paid in the cycle the exchange answered again (04:30):
    # 10 x (102 x 0.0002 + 103 x 0.0003 + 104 x 0.0004) = 0.929
    assert paid_at[T0 + 270 * M] == pytest.approx(0.929, abs=1e-9)
    assert sum(p.amount for p in bp) == pytest.approx(
        10 * sum((100 + k) * 0.0001 * k for k in range(1, 7)), abs=1e-9)


def test_outage_without_records_estimates_what_it_saw_and_reports_the_rest(tmp_path):
    rec = tmp_path / "rec.jsonl"
    rec.write_text("".join(json.dumps(r) + "\n" for r in _outage_rows(False)))
    runtime(tmp_path).run(ReplaySource(rec))
    bp = [p for p in payments(tmp_path / "paper.db") if p.exchange == "backpack"]
    # 02:00 was shown at 01:30 (0.09%); the mark at or before 02:00 is that of 01:30 (101.5)
    assert [(p.ts, p.rate_source, p.mark) for p in bp] == [
        (T0 + H, "estimated", 101.0), (T0 + 2 * H, "estimated", 101.5),
        (T0 + 5 * H, "estimated", 105.0), (T0 + 6 * H, "estimated", 106.0)]
    with LedgerReader.open(tmp_path / "paper.db") as read:
        told = [e.detail for e in read.events("funding")]
    assert len(told) == 2
    assert "at 2025-01-01 03:00 UTC" in told[0] and "not paid" in told[0]
    assert "at 2025-01-01 04:00 UTC" in told[1]


def test_status_json_and_the_position_table_show_each_payment(tmp_path):
    rec = write(tmp_path / "rec.jsonl", hourly_world(2 * H))
    runtime(tmp_path).run(ReplaySource(rec))
    db = str(tmp_path / "paper.db")
    res = CliRunner().invoke(app, ["status", "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    (pos,) = json.loads(res.output)["positions"]
    pays = pos["funding_payments"]
    assert len(pays) == 9
    assert pays[0] == {"ts": T0 + H, "exchange": "backpack", "interval_h": 1.0,
                       "rate": pytest.approx(0.0001), "mark": 101.0, "size": 10.0,
                       "amount": pytest.approx(0.101, abs=1e-12), "source": "settled",
                       "mark_source": "settlement"}
    res = CliRunner().invoke(app, ["status", "--db", db, "--position", str(pos["id"])])
    assert res.exit_code == 0, res.output
    for text in ("2025-01-01 01:00", "backpack", "binance", "1h", "8h", "settled", "0.0100%",
                 "101.00", "+0.1010", "-0.2170", "+3.5870"):
        assert text in res.output, text
    res = CliRunner().invoke(app, ["status", "--db", db, "--position", "99"])
    assert res.exit_code != 0 and "no position 99" in res.output


def test_live_pays_the_settled_rate_from_the_exchange_history(tmp_path):
    """The live loop asks Backpack's funding-rate history (ccxt's recorded response,
    through the real ccxt class) after the settlement of a held leg, and pays it."""
    from ccxt_static import case, client, perp_stub, spot_stub
    from trading_helpers import paper_runtime

    from rulebook.app import live_views
    from rulebook.market import ExchangeFeed, Observation, SnapshotView

    s10 = 1757584800000  # 2025-09-11 10:00 UTC: the first recorded settlement (6.196e-06)
    history = case("backpack", "fetchFundingRateHistory")["httpResponse"]
    ex = client("backpack", [perp_stub("backpack", "ETH", "USDC", "ETH_USDC_PERP"),
                             spot_stub("ETH", "USDC", "ETH_USDC")],
                {"/api/v1/fundingRates": history})

    class Live:  # synthetic observations; the history is the recorded one
        def __init__(self) -> None:
            self.feeds = {"backpack": ExchangeFeed("backpack", ["ETH"], exchange=ex)}
            self.n = 0

        async def fetch_cycle(self) -> None:
            self.n += 1

        def view(self) -> SnapshotView:
            at = s10 - 30 * M + (self.n - 1) * 31 * M  # 09:30, then 10:01
            nxt = s10 if at < s10 else s10 + H
            obs = [Observation.checked(ts=at, exchange="backpack", coin="ETH", market="perp",
                               funding_rate=0.0002, funding_interval_h=1, next_funding_ts=nxt,
                               mark=4300.0, bid=4300.0, ask=4300.0, taker_fee=0.0005),
                   Observation.checked(ts=at, exchange="backpack", coin="ETH", market="spot",
                               bid=4300.0, ask=4300.0, taker_fee=0.001)]
            return SnapshotView.from_observations(obs, at=at)

        async def close(self) -> None:
            await ex.close()

    rules = "rule c:\n  when funding(ETH, backpack) > 0.01%\n  then hedge 1000 USDC\n"
    rs = load_texts({"c.rules": rules}).ruleset
    rt = paper_runtime(RulesetHolder(rs), TradingConfig(), Ledger(tmp_path / "l.db"))
    rt.run(live_views(rt, Live(), every_s=0.01),
           on_cycle=lambda r: rt.request_stop("test") if r.at >= s10 else None)
    assert any("/api/v1/fundingRates" in u for u in ex.calls)
    (pay,) = payments(tmp_path / "l.db")
    # short perp of 1000 / 4300 ETH at the settled 0.0006196%, mark 4300 (the perp
    # observation at or before 10:00; Backpack's history has no mark): 0.006196
    assert (pay.ts, pay.rate, pay.rate_source, pay.mark, pay.mark_source) == (
        s10, 6.196e-06, "settled", 4300.0, "perp")
    assert pay.amount == pytest.approx(0.006196, abs=1e-12)
