"""`--explain` is the default evaluation run with a trace: on random views with
data gaps, both list the same bindings with the same figures, decisions and
reasons, and each explanation agrees with its binding's outcome."""

from __future__ import annotations

import random

from engine_helpers import T0, borrow, perp, ruleset, spot, view
from hypothesis import given, settings
from hypothesis import strategies as st

from rulebook.engine import evaluate

COINS = ["BTC", "ETH", "SOL", "1000PEPE"]
VENUES = ["backpack", "binance", "bybit", "okx", "gate", "bitget"]

# Every construct the vector compiler handles, with data gaps on purpose.
RULES = """
set coins = BTC, ETH, SOL, 1000PEPE
set venues = backpack, binance, bybit, okx, gate, bitget
let lim = 0.01%

rule cross:
    for c in coins, a in venues, b in venues
    when spread(c, a, b) > lim and confidence > 0.3 and (net(24h) > 0% or breakeven < 72h)
    then hedge 1000 USDT

rule carry:
    for c in coins, x in venues
    when funding(c, x) > 0% and basis(c, x) >= -0.1% and risk != high
    then hedge 500 USDT

rule negative:
    for c in coins, x in venues
    when funding(c, x) < -0.01% or borrow(c, x) < 0.005%
    then hedge 200 USDT

rule borrowed:
    for c in coins, x in venues
    when borrow(c, x) < 0.02% and edge > 0%
    then hedge 300 USDT

rule shapes:
    for c in coins, a in venues, b in venues
    when not (a == binance) and abs(spread(c, a, b)) / 2 > min(lim, 0.02%)
        and max(funding(c, a), funding(c, b)) > -1% and apr(edge) > 5%
        and price(c, a) / price(c, b) > 0.99 and volume(c, a) > 1000 and next_funding(c, a) < 9h
    then hedge 100 USDT, alert "{c} {edge}"

rule literal:
    when funding(BTC, okx) - funding(ETH, okx) > -1% and fees < 1%
    then alert "btc-eth"

rule sized:
    for c in coins, x in venues
    when funding(c, x) > 0%
    then hedge 1 USDT * price(c, x) / 100 + 10 USDT

rule zero_division:
    for c in coins, x in venues
    when funding(c, x) / funding(c, x) > 0
    then alert "x"
"""


def random_view(seed: int):
    rnd = random.Random(seed)
    obs = []
    for c in COINS:
        for x in VENUES:
            if rnd.random() < 0.15:
                continue  # not listed
            ts = T0 - rnd.choice([0, 30_000, 120_000, 400_000])
            rate = rnd.choice([0.0, rnd.uniform(-0.002, 0.002)])
            mark = None if rnd.random() < 0.05 else 100 * (1 + rnd.uniform(-0.004, 0.004))
            index = None if rnd.random() < 0.2 else 100.0
            obs.append(
                perp(
                    x,
                    c,
                    rate,
                    rnd.choice([1, 4, 8]),
                    ts=ts,
                    mark=mark,
                    index=index,
                    fee=rnd.choice([None, 0.0002]),
                    volume=rnd.choice([None, 5e6]),
                )
            )
            if rnd.random() < 0.8:
                obs.append(spot(x, c, 99.95, 100.05, ts=ts))
            if rnd.random() < 0.5:
                obs.append(borrow(x, c, rnd.uniform(0, 0.0009), ts=ts))
    obs.append(perp("okx", "XRP", 0.0001, ts=T0))  # "now" is T0 whatever was dropped
    return view(*obs)


RS = ruleset(RULES)


def without_explain(d: dict) -> dict:
    return {
        **d,
        "opportunities": [{k: v for k, v in o.items() if k != "explain"} for o in d["opportunities"]],
        "skipped": [{k: v for k, v in s.items() if k != "explain"} for s in d["skipped"]],
    }


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.booleans())
def test_explain_agrees_with_default(seed, include_unfired):
    v = random_view(seed)
    default = evaluate(RS, v, include_unfired=include_unfired)
    explained = evaluate(RS, v, include_unfired=include_unfired, explain=True)
    assert without_explain(explained.to_dict()) == default.to_dict()
    for o in explained.opportunities:
        assert o.explanation is not None
        assert o.explanation.fired is o.fired and o.explanation.no_data is None
        assert o.explanation.steps[-1].value == ("true" if o.fired else "false")
    for s in explained.skipped:
        why = s.explanation
        assert why is not None
        if why.fired is None:  # the when clause lacked data: the same reason
            assert why.no_data == s.reason
            assert why.steps[-1].value == f"no data: {s.reason}"
        else:  # it held, but the legs or the hedge amount lack data
            assert why.fired is True and why.no_data is None


def test_random_views_exercise_every_outcome():
    # guard against a vacuous equality: fired, unfired and skipped all occur
    ev = evaluate(RS, random_view(9), include_unfired=True)
    assert any(o.fired for o in ev.opportunities)
    assert any(not o.fired for o in ev.opportunities)
    reasons = {s.reason for s in ev.skipped}
    assert any("not listed" in r for r in reasons)
    assert any("division by zero" in r for r in reasons)
    assert any("borrow" in r for r in reasons)
    assert any("no mark price" in r for r in reasons)
