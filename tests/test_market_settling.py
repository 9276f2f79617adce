"""The settlement rule of spec 11 step 1 (SettlementLog), against hand computations.

All data here is clearly synthetic: round rates and marks chosen so that every
expected amount is worked out by hand in the comments, to 1e-9.
"""

from __future__ import annotations

import pytest

from rulebook.market import (
    IntervalWatch,
    Observation,
    Settlement,
    SettlementLog,
    SnapshotView,
    funding_amount,
    interval_change_text,
)

H = 3_600_000
M = 60_000
T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC


def perp(ex, ts, rate, nxt, mark, interval=None, coin="SOL"):
    interval = interval if interval is not None else (1 if ex == "backpack" else 8)
    return Observation.checked(
        ts=ts,
        exchange=ex,
        coin=coin,
        market="perp",
        funding_rate=rate,
        funding_interval_h=interval,
        next_funding_ts=nxt,
        mark=mark,
    )


def rec(ex, ts, rate, mark=None, interval=None, coin="SOL"):
    return Settlement.checked(
        ts=ts, exchange=ex, coin=coin, funding_rate=rate, funding_interval_h=interval, mark=mark
    )


def next_hour(t):
    return (t // H + 1) * H


def hourly_backpack_world(every_ms):
    """Views every `every_ms` from T0 to T0+8h: Backpack SOL settles hourly, Binance 8h.

    Backpack shows 0.0009 for every coming hour (a forecast), but hour k (1..8)
    settles at 0.0001 * k with mark 100 + k. Binance shows 0.0005 for T0+8h and
    settles 0.0002 at mark 108.5. Each settlement record rides on the first view
    at or after it, as a replay delivers it."""
    views = []
    records = [
        rec("backpack", T0 + k * H, 0.0001 * k, mark=100.0 + k, interval=1) for k in range(1, 9)
    ]
    records.append(rec("binance", T0 + 8 * H, 0.0002, mark=108.5, interval=8))
    delivered: set[int] = set()
    for t in range(T0, T0 + 8 * H + 1, every_ms):
        obs = [
            perp("backpack", t, 0.0009, next_hour(t), 100.0 + (t - T0) / H + 0.5),
            perp("binance", t, 0.0005, T0 + 8 * H if t < T0 + 8 * H else T0 + 16 * H, 99.0),
        ]
        due = [r for i, r in enumerate(records) if r.ts <= t and i not in delivered]
        delivered.update(i for i, r in enumerate(records) if r.ts <= t)
        views.append(
            SnapshotView.from_observations(obs, at=t)
            if not due
            else SnapshotView(t, {o.key: o for o in obs}, settlements=due)
        )
    return views


def run(views, ex, side, size, opened=T0, wait_ms=10 * M):
    """Feed views in order and settle each cycle as the runtime does; payments made."""
    log = SettlementLog(wait_ms=wait_ms)
    after = opened
    paid = []
    for v in views:
        log.add_view(v)
        got = log.settle(ex, "SOL", after=after, upto=v.at, now=v.at)
        for s in got.settled:
            paid.append((s, s.amount(size, side)))
            after = s.ts
    return paid


@pytest.mark.parametrize("every", [30 * M, 2 * H])
def test_hourly_backpack_every_settlement_once_at_its_rate_and_mark(every):
    paid = run(hourly_backpack_world(every), "backpack", "short", 10.0)
    assert [s.ts for s, _ in paid] == [T0 + k * H for k in range(1, 9)]
    assert all(s.rate_source == "settled" and s.mark_source == "settlement" for s, _ in paid)
    assert all(s.interval_h == 1 for s, _ in paid)
    # the short receives 10 x (100 + k) x 0.0001 k for k = 1..8:
    # 0.001 x (100 x sum k + sum k^2) = 0.001 x (100 x 36 + 204) = 3.804
    for k, (_, amount) in enumerate(paid, start=1):
        assert amount == pytest.approx(10 * (100 + k) * 0.0001 * k, abs=1e-12)
    assert sum(a for _, a in paid) == pytest.approx(3.804, abs=1e-9)


@pytest.mark.parametrize("every", [30 * M, 2 * H])
def test_8h_binance_pays_once_in_the_same_world(every):
    paid = run(hourly_backpack_world(every), "binance", "long", 10.0)
    assert [(s.ts, s.rate, s.mark, s.interval_h) for s, _ in paid] == [
        (T0 + 8 * H, 0.0002, 108.5, 8)
    ]
    # the long pays 10 x 108.5 x 0.0002 = 0.217
    assert paid[0][1] == pytest.approx(-0.217, abs=1e-12)


def test_a_position_opened_after_a_settlement_does_not_get_it():
    paid = run(hourly_backpack_world(30 * M), "backpack", "short", 10.0, opened=T0 + 2 * H)
    assert [s.ts for s, _ in paid] == [T0 + k * H for k in range(3, 9)]


def test_settled_rate_not_the_shown_one_and_estimate_after_the_wait():
    s = T0 + 8 * H
    shown = perp("binance", s - M, 0.0003, s, 100.0)
    log = SettlementLog(wait_ms=10 * M)  # live: records are expected
    log.observe(shown)
    # no record yet: waits until 10 minutes after s
    assert log.settle("binance", "SOL", after=T0, upto=s + 5 * M, now=s + 5 * M).waiting == s
    # the record arrives: the settled rate is paid, not the shown 0.0003
    log.add_records([rec("binance", s, 0.0001, mark=101.0, interval=8)])
    got = log.settle("binance", "SOL", after=T0, upto=s + 5 * M, now=s + 5 * M).settled
    assert [(g.rate, g.rate_source, g.mark, g.mark_source) for g in got] == [
        (0.0001, "settled", 101.0, "settlement")
    ]
    # short 2 coins: 2 x 101 x 0.0001 = 0.0202
    assert got[0].amount(2.0, "short") == pytest.approx(0.0202, abs=1e-12)
    # without any record, after the wait: the estimate, from the last observation before s
    log2 = SettlementLog(wait_ms=10 * M)
    log2.observe(perp("binance", s - 3 * H, 0.0007, s, 98.0))
    log2.observe(shown)
    assert log2.settle("binance", "SOL", after=T0, upto=s, now=s).waiting == s
    # the wait runs from the exchange's first answer after s (here s + 1 min)
    log2.observe(perp("binance", s + M, 0.0002, s + 8 * H, 100.5))
    assert log2.settle("binance", "SOL", after=T0, upto=s + 10 * M, now=s + 10 * M).waiting == s
    got2 = log2.settle("binance", "SOL", after=T0, upto=s + 11 * M, now=s + 11 * M).settled
    assert [(g.rate, g.rate_source, g.mark, g.mark_source, g.interval_h) for g in got2] == [
        (0.0003, "estimated", 100.0, "perp", 8)
    ]


def test_an_observation_at_the_settlement_itself_is_not_its_forecast():
    s = T0 + 8 * H
    log = SettlementLog(wait_ms=0)
    log.observe(perp("binance", s - M, 0.0003, s, 100.0))
    log.observe(perp("binance", s, 0.0006, s, 100.0))  # ts == s: not "before s"
    got = log.settle("binance", "SOL", after=T0, upto=s, now=s).settled
    assert got[0].rate == 0.0003


def test_marks_that_move_between_settlement_and_cycle():
    s = T0 + 8 * H
    log = SettlementLog(wait_ms=0)
    log.observe(perp("bybit", s - M, 0.0004, s, 3738.74))
    log.observe(perp("bybit", s + 8 * H - M, 0.0002, s + 8 * H, 3374.98))  # the paying cycle
    # a record without a mark takes the last perp mark at or before s: 3738.74, not 3374.98
    log.add_records([rec("bybit", s, 0.0005, interval=8)])
    got = log.settle("bybit", "SOL", after=T0, upto=s + 8 * H - M, now=s + 8 * H - M).settled
    assert [(g.mark, g.mark_source) for g in got] == [(3738.74, "perp")]
    # a short of 0.5 coins receives 0.5 x 3738.74 x 0.0005 = 0.934685
    assert got[0].amount(0.5, "short") == pytest.approx(0.934685, abs=1e-12)


def test_interval_change_8h_to_1h_mid_position():
    log = SettlementLog(wait_ms=0)
    watch = IntervalWatch()
    views = [
        [perp("binance", T0 + 30 * M, 0.0001, T0 + 8 * H, 100.0, interval=8)],
        [perp("binance", T0 + 8 * H + 30 * M, 0.004, T0 + 9 * H, 100.0, interval=1)],
        [perp("binance", T0 + 9 * H + 30 * M, 0.004, T0 + 10 * H, 100.0, interval=1)],
        [perp("binance", T0 + 10 * H + 30 * M, 0.001, T0 + 18 * H, 100.0, interval=8)],
    ]
    records = {
        1: [rec("binance", T0 + 8 * H, 0.0001, mark=100.0, interval=8)],
        2: [rec("binance", T0 + 9 * H, 0.005, mark=101.0, interval=1)],
        3: [rec("binance", T0 + 10 * H, 0.003, mark=102.0, interval=1)],
    }
    after, paid, events = T0, [], []
    for i, obs in enumerate(views):
        at = obs[0].ts
        log.add_view(SnapshotView(at, {o.key: o for o in obs}, settlements=records.get(i, [])))
        got = log.settle("binance", "SOL", after=after, upto=at, now=at)
        assert got.missing == []
        for s in got.settled:
            paid.append(s)
            after = s.ts
            if (c := watch.see("leg", "binance", "SOL", s.ts, s.interval_h)) is not None:
                events.append(c.text())
        if (c := watch.see("leg", "binance", "SOL", at, obs[0].funding_interval_h)) is not None:
            events.append(c.text())
    assert [(s.ts - T0) // H for s in paid] == [8, 9, 10]
    assert [s.interval_h for s in paid] == [8, 1, 1]
    assert events == [
        "SOL on binance now settles every 1h, was 8h",
        "SOL on binance now settles every 8h, was 1h",
    ]
    # a short of 3 coins: 3 x (100 x 0.0001 + 101 x 0.005 + 102 x 0.003) = 3 x 0.821 = 2.463
    assert sum(s.amount(3.0, "short") for s in paid) == pytest.approx(2.463, abs=1e-9)


def test_interval_watch_ignores_older_news_and_seeds_without_an_event():
    w = IntervalWatch()
    w.seed("k", T0, 8.0)
    assert w.see("k", "binance", "BTC", T0 + H, 1.0).text() == (
        "BTC on binance now settles every 1h, was 8h"
    )
    assert w.see("k", "binance", "BTC", T0 + 30 * M, 8.0) is None  # an older 8h settlement
    assert w.see("k", "binance", "BTC", T0 + 2 * H, 1.0) is None
    assert interval_change_text("ETH", "gate", 0.5, 4.0) == (
        "ETH on gate now settles every 30min, was 4h"
    )


def test_outage_spanning_two_settlements_with_records_when_data_returns():
    # Backpack answers at 01:30, then not until 04:30; the exchange's history
    # (or a recording written from it) brings the records once it answers.
    log = SettlementLog(wait_ms=10 * M)
    log.observe(perp("backpack", T0 + 90 * M, 0.0009, T0 + 2 * H, 100.0))
    # while the exchange does not answer, its history cannot be read: nothing is given up
    got = log.settle("backpack", "SOL", after=T0 + H, upto=T0 + 4 * H, now=T0 + 4 * H)
    assert got.waiting == T0 + 2 * H and got.settled == []
    log2 = SettlementLog(wait_ms=10 * M)
    log2.observe(perp("backpack", T0 + 90 * M, 0.0009, T0 + 2 * H, 100.0))
    log2.observe(perp("backpack", T0 + 270 * M, 0.0009, T0 + 5 * H, 104.0))
    log2.add_records(
        [rec("backpack", T0 + k * H, 0.0001 * k, mark=100.0 + k, interval=1) for k in (2, 3, 4)]
    )
    got2 = log2.settle("backpack", "SOL", after=T0 + H, upto=T0 + 270 * M, now=T0 + 270 * M)
    assert [(s.ts, s.rate_source) for s in got2.settled] == [
        (T0 + 2 * H, "settled"),
        (T0 + 3 * H, "settled"),
        (T0 + 4 * H, "settled"),
    ]
    assert got2.missing == []
    # short 10: 10 x (102 x 0.0002 + 103 x 0.0003 + 104 x 0.0004) = 10 x 0.0929 = 0.929
    assert sum(s.amount(10.0, "short") for s in got2.settled) == pytest.approx(0.929, abs=1e-9)


def test_outage_without_records_pays_the_estimate_it_has_and_names_the_rest():
    log = SettlementLog(wait_ms=10 * M, expect_records=False)  # a replay without records
    log.observe(perp("backpack", T0 + 90 * M, 0.0009, T0 + 2 * H, 100.0))
    log.observe(perp("backpack", T0 + 270 * M, 0.0008, T0 + 5 * H, 104.0))
    got = log.settle("backpack", "SOL", after=T0 + H, upto=T0 + 270 * M, now=T0 + 270 * M)
    assert [(s.ts, s.rate, s.rate_source, s.mark) for s in got.settled] == [
        (T0 + 2 * H, 0.0009, "estimated", 100.0)
    ]
    # 03:00 and 04:00 happened (the hourly grid says so) but nothing showed their rate
    assert got.missing == [T0 + 3 * H, T0 + 4 * H]


def test_a_switch_back_to_8h_implies_no_missing_settlement():
    log = SettlementLog(wait_ms=0)
    log.add_records(
        [
            rec("binance", T0 + 9 * H, 0.004, mark=100.0, interval=1),
            rec("binance", T0 + 16 * H, 0.001, mark=100.0, interval=8),
        ]
    )
    got = log.settle("binance", "SOL", after=T0 + 8 * H, upto=T0 + 16 * H, now=T0 + 16 * H)
    assert [s.ts for s in got.settled] == [T0 + 9 * H, T0 + 16 * H] and got.missing == []


def test_a_late_settlement_waits_and_later_ones_wait_behind_it():
    log = SettlementLog(wait_ms=10 * M)
    log.observe(perp("backpack", T0 + 59 * M, 0.0002, T0 + H, 100.0))
    log.observe(perp("backpack", T0 + 61 * M, 0.0003, T0 + 2 * H, 100.0))
    log.observe(perp("backpack", T0 + 119 * M, 0.0003, T0 + 2 * H, 100.0))
    log.add_records([rec("backpack", T0 + 2 * H, 0.0004, mark=100.0, interval=1)])
    got = log.settle("backpack", "SOL", after=T0, upto=T0 + 2 * H + M, now=T0 + 2 * H + M)
    # 01:00 has no record; 60 minutes after the exchange answered again (01:01) the
    # wait (10 min) is over: estimated
    assert [(s.ts, s.rate_source) for s in got.settled] == [
        (T0 + H, "estimated"),
        (T0 + 2 * H, "settled"),
    ]
    log.wait_ms = 2 * H
    got = log.settle("backpack", "SOL", after=T0, upto=T0 + 2 * H + M, now=T0 + 2 * H + M)
    assert got.waiting == T0 + H and got.settled == []


def test_forget_before_keeps_what_open_legs_still_need():
    log = SettlementLog(wait_ms=0)
    for k in range(6):
        log.observe(perp("backpack", T0 + k * H + 30 * M, 0.0001, T0 + (k + 1) * H, 100.0 + k))
    log.forget_before(T0 + 3 * H)
    assert log.known_times("backpack", "SOL", T0, T0 + 9 * H) == [T0 + k * H for k in (3, 4, 5, 6)]
    now = T0 + 3 * H + 30 * M
    got = log.settle("backpack", "SOL", after=T0 + 2 * H, upto=now, now=now)
    assert [(s.ts, s.mark) for s in got.settled] == [(T0 + 3 * H, 102.0)]


def test_funding_amount_signs():
    assert funding_amount(0.0001, 100.0, 2.0, "short") == pytest.approx(0.02, abs=1e-15)
    assert funding_amount(0.0001, 100.0, 2.0, "long") == pytest.approx(-0.02, abs=1e-15)
    assert funding_amount(-0.0001, 100.0, 2.0, "short") == pytest.approx(-0.02, abs=1e-15)


def test_a_replay_without_records_pays_the_estimate_at_once_and_waits_where_records_come():
    s = T0 + 8 * H
    log = SettlementLog(wait_ms=10 * M, expect_records=False)
    log.observe(perp("binance", s - M, 0.0003, s, 100.0))
    got = log.settle("binance", "SOL", after=T0, upto=s, now=s)
    assert [(g.rate, g.rate_source) for g in got.settled] == [(0.0003, "estimated")]
    # once the recording has shown a record for the market, a missing one is waited for
    log.add_records([rec("binance", s, 0.0001, mark=100.0, interval=8)])
    log.observe(perp("binance", s + 8 * H - M, 0.0002, s + 8 * H, 100.0))
    got = log.settle("binance", "SOL", after=s, upto=s + 8 * H, now=s + 8 * H)
    assert got.waiting == s + 8 * H and log.has_records("binance", "SOL")
