"""A lean book: open positions are rewritten only when their stored state moves;
their marks live in the ledger's marks table (one row per market, in place), and
every reader sees exactly what the executor holds (synthetic recordings)."""

from __future__ import annotations

import math
import random
import sqlite3

import pytest
from trading_helpers import H, T, paper_runtime, wavy_rows, with_settlements, write_jsonl

from rulebook.lang import load_texts
from rulebook.market import ReplaySource, Settlement, SettlementLog
from rulebook.trading import (
    Ledger,
    LedgerError,
    LedgerReader,
    PaperExecutor,
    RulesetHolder,
    TradingConfig,
)

RULES = """
rule pairs:
    for coin in [SOL, ETH], hi in [binance, bybit], lo in [binance, bybit]
    when spread(coin, hi, lo) > 0.02%
    then hedge 1000 USDT
    exit when spread(coin, hi, lo) < 0%

risk:
    max_total_exposure 1500 USDT
"""


def _runtime(ledger: Ledger):  # type: ignore[no-untyped-def]
    rs = load_texts({"s.rules": RULES}).ruleset
    return paper_runtime(RulesetHolder(rs), TradingConfig(), ledger, source="replay")


def _same_as_the_book(ledger: Ledger, executor: PaperExecutor) -> int:
    """Every open position as the reader gives it equals the executor's, exactly."""
    held = executor.positions
    got = ledger.read.positions(status="open")
    assert [p.id for p in got] == sorted(held)
    for p in got:
        mine = held[p.id]
        assert [leg.mark for leg in p.legs] == [leg.mark for leg in mine.legs]
        assert (p.pnl_funding, p.pnl_fees, p.pnl_price, p.pnl_borrow) == mine.parts()
        assert p.pnl == mine.pnl
    return len(got)


def test_the_reader_marks_open_positions_as_the_executor_does(tmp_path) -> None:
    rows = with_settlements(wavy_rows(120))
    ledger = Ledger(tmp_path / "paper.db")
    runtime = _runtime(ledger)
    held_cycles = 0
    for view in ReplaySource(write_jsonl(tmp_path / "rec.jsonl", rows)):
        runtime.cycle(view)
        held_cycles += _same_as_the_book(ledger, runtime.executor) > 0
    assert held_cycles > 40  # positions stayed open over many marked cycles
    # the rows of positions that only moved with their marks were not rewritten
    stale = ledger.read._rows(
        "select count(*) as n from positions where status = 'open' and updated_at < "
        "(select max(ts) from cycles)"
    )
    marks = ledger.read.marks()
    assert marks and all(math.isfinite(m) for m, _ in marks.values())
    # a restart rebuilds the same book, marks included
    again = PaperExecutor(TradingConfig(), ledger)
    assert {i: p.legs for i, p in again.positions.items()} == {
        i: p.legs for i, p in runtime.executor.positions.items()
    }
    stats = ledger.read.stats()
    assert stats.unrealised_pnl == pytest.approx(
        sum(p.pnl for p in runtime.executor.positions.values()), abs=1e-9
    )
    assert stale[0]["n"] > 0 and runtime.executor.positions  # held rows not rewritten
    ledger.close()


def test_an_open_position_is_rewritten_only_when_its_state_moves(tmp_path) -> None:
    ledger = Ledger(tmp_path / "paper.db")
    runtime = _runtime(ledger)
    rows = wavy_rows(30)
    writes: list[tuple[int, int]] = []
    for view in ReplaySource(write_jsonl(tmp_path / "rec.jsonl", rows)):
        before = {p.id: p.funding for p in runtime.executor.positions.values()}
        runtime.cycle(view)
        for r in ledger.read._rows("select id, updated_at from positions where status='open'"):
            if r["updated_at"] == view.at and r["id"] in before:
                writes.append((r["id"], view.at))
                # a held position's row moved this cycle: a payment moved its funding
                assert runtime.executor.positions[r["id"]].funding != before[r["id"]]
    assert writes, "some settlement was paid to a held position"
    ledger.close()


def test_a_non_finite_mark_is_refused_and_nothing_of_the_cycle_is_written(tmp_path) -> None:
    ledger = Ledger(tmp_path / "paper.db")
    with pytest.raises(LedgerError, match="refused to write nan into marks.mark"):
        with ledger.cycle():
            ledger.record_marks({("binance", "SOL", "perp"): 1.0}, 5)
            ledger.record_marks({("binance", "ETH", "perp"): math.nan}, 5)
    assert ledger.read.marks() == {}
    ledger.close()


def test_a_schema_2_ledger_is_upgraded_and_read_from_its_rows(tmp_path) -> None:
    """Before the marks table every open row held its marks: it still reads the same."""
    db = tmp_path / "old.db"
    ledger = Ledger(db)
    runtime = _runtime(ledger)
    for view in ReplaySource(write_jsonl(tmp_path / "rec.jsonl", wavy_rows(60))):
        runtime.cycle(view)
    want = {p.id: (p.pnl, [leg.mark for leg in p.legs]) for p in ledger.read.positions()}
    # what schema 2 held: every open row rewritten with its marks, no marks table
    with ledger.cycle():
        ledger.record_positions(runtime.executor.positions.values(), ledger.read.last_cycle_ts() or 0)
    ledger.close()
    con = sqlite3.connect(db)
    con.execute("drop table marks")
    con.execute("update meta set value = '2' where key = 'schema_version'")
    con.commit()
    con.close()
    ledger = Ledger(db)
    (up,) = ledger.read.events("ledger_upgraded")
    assert up.detail.startswith("ledger schema 2 upgraded to 3: added marks")
    got = {p.id: (p.pnl, [leg.mark for leg in p.legs]) for p in ledger.read.positions()}
    assert got == want
    ledger.close()
    with LedgerReader.open(db) as read:
        assert {p.id: p.pnl for p in read.positions()} == {k: v[0] for k, v in want.items()}


# -- the settlement log's quick check -----------------------------------------------------


def _random_log(rng: random.Random) -> tuple[SettlementLog, list[int]]:
    """Forecasts and records on an 8h or 1h grid, with outages (gaps) and late records."""
    log = SettlementLog(wait_ms=rng.choice([0, H // 2]), expect_records=rng.random() < 0.5)
    from rulebook.market import Observation

    ts = T - 9 * H
    interval = 8
    times = []
    for _ in range(rng.randint(5, 40)):
        ts += rng.choice([H, H, H, 3 * H, 9 * H])  # sometimes an outage
        if rng.random() < 0.1:
            interval = 1 if interval == 8 else 8
        step = interval * H
        nxt = (ts // step + 1) * step
        times.append(ts)
        log.observe(
            Observation.checked(
                ts=ts, exchange="binance", coin="SOL", market="perp", funding_rate=0.0001,
                funding_interval_h=interval, next_funding_ts=nxt, mark=100.0, index=100.0,
                bid=99.9, ask=100.1, volume_24h=1e9,
            )
        )  # fmt: skip
        if rng.random() < 0.3:
            s = (ts // step) * step
            log.add_records([Settlement.checked(ts=s, exchange="binance", coin="SOL",
                                        funding_rate=0.0002, funding_interval_h=interval,
                                        mark=100.0)])  # fmt: skip
        if rng.random() < 0.1:
            log.forget_before(ts - rng.choice([0, 8 * H, 24 * H]))
    return log, times


def test_quiet_means_settle_has_nothing_to_do() -> None:
    rng = random.Random(7)
    checked = quiet = 0
    for _ in range(300):
        log, times = _random_log(rng)
        for _ in range(20):
            after = rng.choice([*times, T, T + 8 * H, T - 8 * H]) // H * H
            upto = after + rng.choice([0, H, 2 * H, 8 * H, 30 * H])
            now = upto + rng.choice([0, H])
            got = log.settle("binance", "SOL", after=after, upto=upto, now=now,
                             fallback_mark=100.0)  # fmt: skip
            checked += 1
            if log.quiet("binance", "SOL", after=after, upto=upto):
                quiet += 1
                assert not got.settled and not got.missing and got.waiting is None
    assert quiet > checked // 5 and quiet < checked  # both answers were exercised
