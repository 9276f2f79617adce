"""Issue 14: implausible prices are rejected for the cycle (the guard itself).

The runtime's side (no fill, mark or payment at a rejected price, the event)
is in tests/test_harden_ledger.py.
"""

from __future__ import annotations

from rulebook.market import Observation, PriceBand, PriceGuard, Settlement, SnapshotView

T0 = 1753112400000
MIN = 60_000


def perp(ex: str, mark: float, ts: int = T0, coin: str = "BTC") -> Observation:
    return Observation.checked(
        ts=ts, exchange=ex, coin=coin, market="perp", funding_rate=0.0001,
        funding_interval_h=8, mark=mark, index=mark,
    )  # fmt: skip


def spot(ex: str, price: float, ts: int = T0, coin: str = "BTC") -> Observation:
    return Observation.checked(ts=ts, exchange=ex, coin=coin, market="spot", bid=price, ask=price)


def view(*obs: Observation, settlements: tuple[Settlement, ...] = ()) -> SnapshotView:
    at = max(o.ts for o in obs)
    return SnapshotView(at, {o.key: o for o in obs}, settlements=settlements, recorded=True)


def test_good_data_passes_unchanged():
    guard = PriceGuard()
    v = view(perp("binance", 100.0), perp("bybit", 100.5), spot("okx", 99.9))
    got, rejected = guard.check(v)
    assert got is v and rejected == []
    v2 = view(perp("binance", 103.0, T0 + MIN), perp("bybit", 103.5, T0 + MIN), spot("okx", 104, T0 + MIN))
    got, rejected = guard.check(v2)
    assert got is v2 and rejected == []


def test_a_jump_against_the_previous_observation_is_rejected_and_the_old_one_kept():
    guard = PriceGuard()
    first = spot("binance", 16541.77)
    guard.check(view(first))
    bad = spot("binance", 1e11, T0 + MIN)  # the 1e300, inside the line range
    got, rejected = guard.check(view(bad))
    assert [r.market for r in rejected] == ["spot"]
    assert "jumped" in rejected[0].text() and "band 50%" in rejected[0].text()
    assert got.spot("binance", "BTC") is first  # the cycle sees the accepted price
    # the bad line stays the latest in the replay state: still rejected, no second event
    got, rejected = guard.check(view(bad))
    assert rejected == [] and got.spot("binance", "BTC") is first


def test_a_price_far_from_the_other_venues_is_rejected_even_without_history():
    guard = PriceGuard()
    v = view(perp("binance", 100.0), perp("bybit", 101.0), perp("okx", 250.0))
    got, rejected = guard.check(v)
    assert [(r.exchange, r.market) for r in rejected] == [("okx", "perp")]
    assert "median" in rejected[0].why
    assert got.perp("okx", "BTC") is None  # nothing accepted before: no price at all


def test_one_other_venue_is_not_enough_to_judge():
    guard = PriceGuard()
    _, rejected = guard.check(view(perp("binance", 100.0), perp("bybit", 300.0)))
    assert rejected == []


def test_a_new_level_that_persists_is_accepted_after_confirm_observations():
    guard = PriceGuard(PriceBand(confirm=3))
    guard.check(view(perp("binance", 100.0)))
    seen = []
    for i in range(1, 5):
        got, rejected = guard.check(view(perp("binance", 1000.0 + i, T0 + i * MIN)))
        seen.append((bool(rejected), got.perp("binance", "BTC").mark))
    assert seen == [(True, 100.0), (True, 100.0), (False, 1003.0), (False, 1004.0)]


def test_the_band_is_configurable():
    guard = PriceGuard(PriceBand(jump=0.05))
    guard.check(view(perp("binance", 100.0)))
    _, rejected = guard.check(view(perp("binance", 106.0, T0 + MIN)))
    assert len(rejected) == 1 and "band 5%" in rejected[0].why


def test_a_settlement_mark_far_from_the_perp_loses_its_mark():
    guard = PriceGuard()
    p = perp("binance", 100.0)
    s_bad = Settlement.checked(ts=T0, exchange="binance", coin="BTC", funding_rate=0.0001, mark=5000.0)
    s_good = Settlement.checked(ts=T0, exchange="binance", coin="ETH", funding_rate=0.0001, mark=10.0)
    got, rejected = guard.check(view(p, perp("binance", 10.0, coin="ETH"), settlements=(s_bad, s_good)))
    assert [r.market for r in rejected] == ["settlement"]
    assert got.settlements[0].mark is None and got.settlements[0].funding_rate == 0.0001
    assert got.settlements[1] is s_good
