"""The engine end to end over hand-built snapshots; every figure computed by hand."""

from __future__ import annotations

import json
import math

import pytest
from engine_helpers import T0, borrow, perp, ruleset, spot, view

from rulebook.engine import Book, EngineConfig, OpenPosition, evaluate
from rulebook.lang import Subject

SEED = "when spread(SOL, backpack, binance) > 0.05% and confidence > 0.7 then hedge 1000 USDT\n"


def seed_view(**kw):
    # Backpack SOL +0.01% per 1h (= 0.08% per 8h); Binance SOL -0.02% per 8h.
    return view(perp("backpack", "SOL", 0.0001, 1), perp("binance", "SOL", -0.0002, 8), **kw)


def test_seed_example_spec_json():
    ev = evaluate(ruleset(SEED), seed_view())
    d = ev.to_dict()
    assert d["at"] == T0
    assert len(d["ruleset"]) == 64
    assert d["skipped"] == []
    (o,) = d["opportunities"]
    assert o["rule"] == "test:1"
    assert o["bindings"] == {}
    assert o["coin"] == "SOL" and o["subject"] == "spread"
    assert o["legs"] == [
        {"exchange": "backpack", "market": "perp", "side": "short"},
        {"exchange": "binance", "market": "perp", "side": "long"},
    ]
    assert o["edge"] == pytest.approx(0.0010)  # 0.08% - (-0.02%)
    assert o["apr"] == pytest.approx(1.095)  # 0.10% x 1095
    assert o["fees"] == pytest.approx(0.0020)  # 2 x (0.05% backpack + 0.05% binance), defaults
    assert o["net_8h"] == pytest.approx(-0.0010)  # 0.10% - 0.20%
    assert o["breakeven_h"] == pytest.approx(16.0)  # 0.20% / 0.10% x 8h
    assert o["confidence"] == pytest.approx(1.0)  # equal marks, ages 0
    assert o["risk"] == "low"  # confidence 1 >= 0.8 and 16h <= 24h
    assert o["amount"] == 1000.0
    assert o["expected_8h"] == pytest.approx(1.0)  # 1000 x 0.001
    assert o["expected_net_8h"] == pytest.approx(-1.0)  # 1000 x -0.001
    assert o["fired"] is True and o["decision"] == "open" and o["reason"] is None
    json.dumps(d)  # serialisable as is


def test_spread_with_negative_funding_both_sides_and_reversed_names():
    rs = ruleset(
        "set v = okx, gate\n"
        "rule r:\n for hi in v, lo in v\n when abs(spread(ETH, hi, lo)) > 0.01%\n then hedge 100 USDT\n"
    )
    # okx -0.01% per 8h, gate -0.05% per 8h (4h interval: -0.025% x 8/4)
    ev = evaluate(rs, view(perp("okx", "ETH", -0.0001), perp("gate", "ETH", -0.00025, 4)))
    assert [o.bindings for o in ev.opportunities] == [
        {"hi": "okx", "lo": "gate"},
        {"hi": "gate", "lo": "okx"},
    ]
    for o in ev.opportunities:
        # short the one that pays less (okx), long gate; edge 0.04%
        assert [(leg.exchange, leg.side) for leg in o.legs] == [("okx", "short"), ("gate", "long")]
        assert o.figures.edge == pytest.approx(0.0004)
    # same legs under two names: the second is already open
    assert [o.decision for o in ev.opportunities] == ["open", "already_open"]


def test_funding_subject_positive_funding_short_perp_long_spot():
    rs = ruleset("when funding(BTC, binance) > 0.01% then hedge 2000 USDT\n")
    v = view(perp("binance", "BTC", 0.0003, mark=100.1, index=100.0), spot("binance", "BTC"))
    (o,) = evaluate(rs, v).opportunities
    assert [leg.to_dict() for leg in o.legs] == [
        {"exchange": "binance", "market": "perp", "side": "short"},
        {"exchange": "binance", "market": "spot", "side": "long"},
    ]
    f = o.figures
    assert f.edge == pytest.approx(0.0003)
    assert f.fees == pytest.approx(0.003)  # 2 x (0.05% perp + 0.10% spot)
    # |100.1 - 100| / 100 = 0.1% -> price_score 1 - 0.1/0.5 = 0.8
    assert f.confidence == pytest.approx(0.8)
    assert f.breakeven_s == pytest.approx(80 * 3600)  # 0.3% / 0.03% x 8h = 80h
    assert o.to_dict()["risk"] == "high"  # 80h > 72h
    assert o.expected_8h == pytest.approx(0.6)  # 2000 x 0.03%
    assert o.expected_net_8h == pytest.approx(-5.4)  # 2000 x (0.03% - 0.3%)


def test_funding_subject_negative_funding_borrows_spot():
    rs = ruleset("when funding(BTC, okx) < -0.01% then hedge 1000 USDT\n")
    # funding -0.06% per 8h; borrow 0.03% a day = 0.01% per 8h -> edge 0.05%
    v = view(perp("okx", "BTC", -0.0006), spot("okx", "BTC"), borrow("okx", "BTC", 0.0003))
    (o,) = evaluate(rs, v).opportunities
    assert [(leg.market, leg.side) for leg in o.legs] == [("perp", "long"), ("spot", "short")]
    assert o.figures.edge == pytest.approx(0.0005)
    assert o.figures.uses == ("okx perp", "okx spot", "okx borrow")


def test_negative_funding_without_borrow_market_is_skipped():
    rs = ruleset("when funding(BTC, okx) < -0.01% then hedge 1000 USDT\n")
    ev = evaluate(rs, view(perp("okx", "BTC", -0.0006), spot("okx", "BTC")))
    assert ev.opportunities == []
    assert [s.reason for s in ev.skipped] == ["no borrow market for BTC on okx"]


def test_basis_subject_legs_follow_funding():
    rs = ruleset("when basis(SOL, bybit) > 0.1% then hedge 500 USDT\n")
    # mark 100.3 vs spot mid 100: basis 0.3%; funding +0.02% -> short perp, long spot
    v = view(
        perp("bybit", "SOL", 0.0002, mark=100.3, index=100.2), spot("bybit", "SOL", 99.99, 100.01)
    )
    (o,) = evaluate(rs, v).opportunities
    assert o.subject == Subject("basis", "SOL", ("bybit",))
    assert [(leg.market, leg.side) for leg in o.legs] == [("perp", "short"), ("spot", "long")]
    assert o.figures.edge == pytest.approx(0.0002)
    # fees 2 x (0.055% bybit perp + 0.10% spot) = 0.31%
    assert o.figures.fees == pytest.approx(0.0031)
    # |100.3 - 100.2| / 100.2 = 0.0998% -> price_score 1 - 0.1996 = 0.8004
    assert o.figures.confidence == pytest.approx(1 - (0.1 / 100.2) / 0.005)


def test_borrow_subject_positive_and_negative_funding():
    rs = ruleset("when borrow(ETH, gate) < 0.05% then hedge 1000 USDT\n")
    # borrow 0.03%/day = 0.01% per 8h
    neg = view(perp("gate", "ETH", -0.0004), spot("gate", "ETH"), borrow("gate", "ETH", 0.0003))
    (o,) = evaluate(rs, neg).opportunities
    assert [(leg.market, leg.side) for leg in o.legs] == [("perp", "long"), ("spot", "short")]
    assert o.figures.edge == pytest.approx(0.0003)  # 0.04% - 0.01%
    pos = view(perp("gate", "ETH", 0.0002), spot("gate", "ETH"), borrow("gate", "ETH", 0.0003))
    (o,) = evaluate(rs, pos).opportunities
    assert [(leg.market, leg.side) for leg in o.legs] == [("perp", "long"), ("spot", "short")]
    assert o.figures.edge == pytest.approx(-0.0003)  # -0.02% - 0.01%
    assert o.figures.breakeven_s == math.inf
    assert o.to_dict()["breakeven_h"] is None  # JSON has no infinity


@pytest.mark.parametrize(
    ("age_s", "fresh"),
    [(0, 1.0), (60, 1.0), (180, 0.5), (240, 0.25), (300, 0.0), (400, 0.0)],
)
def test_confidence_freshness_boundaries(age_s, fresh):
    rs = ruleset(SEED.replace("and confidence > 0.7 ", ""))
    # a newer observation elsewhere makes "now" T0 + age; the subject's are at T0
    now = T0 + age_s * 1000
    v = view(
        perp("backpack", "SOL", 0.0001, 1),
        perp("binance", "SOL", -0.0002, 8),
        perp("okx", "BTC", 0.0001, ts=now),
    )
    assert v.at == now
    (o,) = evaluate(rs, v).opportunities
    assert o.figures.fresh_score == pytest.approx(fresh)
    assert o.figures.confidence == pytest.approx(fresh)  # price_score 1


def test_oldest_observation_decides_freshness():
    rs = ruleset(SEED.replace("and confidence > 0.7 ", ""))
    # backpack 120 s old, binance fresh: (300 - 120) / 240 = 0.75
    v = view(perp("backpack", "SOL", 0.0001, 1), perp("binance", "SOL", -0.0002, ts=T0 + 120_000))
    (o,) = evaluate(rs, v).opportunities
    assert o.figures.oldest_age_s == 120
    assert o.figures.confidence == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("mark_b", "score"),
    [
        (100.0, 1.0),
        # |100 - 100.25| / 100.125 = 0.2497% -> 1 - 0.4994 = 0.5006
        (100.25, 1 - (0.25 / 100.125) / 0.005),
        # 0.5 / 100.25 = 0.4988% -> just above 0
        (100.5, 1 - (0.5 / 100.25) / 0.005),
        (101.0, 0.0),  # 0.995% > 0.5%
    ],
)
def test_confidence_price_deviation(mark_b, score):
    rs = ruleset(SEED)
    v = view(perp("backpack", "SOL", 0.0001, 1), perp("binance", "SOL", -0.0002, mark=mark_b))
    ev = evaluate(rs, v, include_unfired=True)
    (o,) = ev.opportunities
    assert o.figures.confidence == pytest.approx(score)
    assert o.fired is (score > 0.7)
    if not o.fired:
        assert o.decision is None


def test_coin_missing_on_one_exchange_is_skipped_with_reason():
    rs = ruleset(
        "set coins = SOL, BTC\nset v = binance, gate\n"
        "rule r:\n for c in coins, a in v, b in v\n when spread(c, a, b) > 0.01%\n then hedge 100 USDT\n"
    )
    v = view(
        perp("binance", "SOL", 0.0003),
        perp("gate", "SOL", 0.0001),
        perp("binance", "BTC", 0.0001),
        perp("gate", "ETH", 0.0001),
    )
    ev = evaluate(rs, v)
    assert [(o.bindings["a"], o.bindings["b"]) for o in ev.opportunities] == [("binance", "gate")]
    assert [(s.bindings, s.reason) for s in ev.skipped] == [
        ({"c": "BTC", "a": "binance", "b": "gate"}, "BTC not listed on gate"),
        ({"c": "BTC", "a": "gate", "b": "binance"}, "BTC not listed on gate"),
    ]


def test_missing_data_never_fires_even_under_not():
    rs = ruleset('when not funding(SOL, gate) > 0% then alert "x"\n')
    ev = evaluate(rs, view(perp("binance", "SOL", 0.0001)), include_unfired=True)
    assert ev.opportunities == []
    # no gate observation at all in this view: the reason says the exchange gave nothing
    assert [s.reason for s in ev.skipped] == ["no data from gate"]


def test_taker_fee_order_observation_config_default():
    rs = ruleset(SEED.replace("and confidence > 0.7 ", ""))
    v = view(perp("backpack", "SOL", 0.0001, 1, fee=0.0002), perp("binance", "SOL", -0.0002))
    cfg = EngineConfig(taker_fees={"backpack": {"perp": 0.0009}, "binance": {"perp": 0.0004}})
    (o,) = evaluate(rs, v, config=cfg).opportunities
    # backpack from its observation (0.02%), binance from config (0.04%): 2 x 0.06% = 0.12%
    assert [(t.fee, t.source) for t in o.figures.taker_fees] == [
        (0.0002, "observation"),
        (0.0004, "config"),
    ]
    assert o.figures.fees == pytest.approx(0.0012)


def test_config_rejects_unknown_exchange():
    with pytest.raises(ValueError, match="unknown exchange 'binanse'"):
        EngineConfig(taker_fees={"binanse": {"perp": 0.0004}})


def test_all_lists_unfired_with_null_decision():
    rs = ruleset("when spread(SOL, backpack, binance) > 1% then hedge 1000 USDT\n")
    assert evaluate(rs, seed_view()).opportunities == []
    (o,) = evaluate(rs, seed_view(), include_unfired=True).opportunities
    assert o.fired is False and o.decision is None and o.reason is None


def test_explain_records_sub_expressions():
    ev = evaluate(ruleset(SEED), seed_view(), explain=True)
    steps = {s.text: s.value for s in ev.opportunities[0].explanation.steps}
    assert steps["spread(SOL, backpack, binance)"] == "0.1%"
    assert steps["confidence"] == "1"
    assert ev.to_dict()["opportunities"][0]["explain"]["fired"] is True


def test_book_position_on_same_subject_is_already_open():
    book = Book([OpenPosition("old", {}, Subject("spread", "SOL", ("binance", "backpack")), 1000)])
    (o,) = evaluate(ruleset(SEED), seed_view(), book=book).opportunities
    assert o.decision == "already_open"
    assert "opened by rule old" in o.reason


def test_exit_clause_uses_position_values_and_market():
    from rulebook.engine import PositionValues, SnapshotEnv, check_exit

    rs = ruleset(
        "rule r:\n when spread(SOL, backpack, binance) > 0.05%\n then hedge 1000 USDT\n"
        " exit when spread(SOL, backpack, binance) < 0.01% or held > 48h or pnl < -20 USDT\n"
    )
    rule = rs.rules[0]
    env = SnapshotEnv(seed_view())  # spread 0.10%: only the position values can close
    b = rule.bindings[0]
    assert (
        check_exit(rule, b, env, PositionValues(held=47 * 3600, pnl=0, collected=0)).close is False
    )
    assert (
        check_exit(rule, b, env, PositionValues(held=49 * 3600, pnl=0, collected=0)).close is True
    )
    assert check_exit(rule, b, env, PositionValues(held=0, pnl=-21, collected=0)).close is True
    gone = SnapshotEnv(view(perp("binance", "SOL", 0.0001)))
    chk = check_exit(rule, b, gone, PositionValues(held=0, pnl=0, collected=0))
    assert chk == type(chk)(False, "no data from backpack")


def test_seed_second_example_apr():
    # backpack 0.01%/1h = 0.08% per 8h; binance -0.07% per 8h: spread 0.15%, APR 164.25%
    v = view(perp("backpack", "SOL", 0.0001, 1), perp("binance", "SOL", -0.0007, 8))
    (o,) = evaluate(ruleset(SEED), v).to_dict()["opportunities"]
    assert o["edge"] == pytest.approx(0.0015)
    assert o["apr"] == pytest.approx(1.6425)
    assert o["expected_8h"] == pytest.approx(1.5)  # 1000 x 0.15%
    assert o["expected_net_8h"] == pytest.approx(-0.5)  # 1000 x (0.15% - 0.20%)
    assert o["breakeven_h"] == pytest.approx(0.002 / 0.0015 * 8)  # 10.67h


def test_unfired_binding_without_legs_is_listed_not_skipped():
    # funding +0.01% on okx does not fire `> 0.05%`; okx has no spot, so the
    # carry subject has no figures: listed with --all, figures null, not skipped
    rs = ruleset("when funding(BTC, okx) > 0.05% then hedge 1000 USDT\n")
    ev = evaluate(rs, view(perp("okx", "BTC", 0.0001)), include_unfired=True)
    assert ev.skipped == []
    (o,) = ev.to_dict()["opportunities"]
    assert o["fired"] is False and o["decision"] is None
    assert o["edge"] is None and o["legs"] == [] and o["risk"] is None
    # the same binding firing cannot be opened: skipped, with the missing leg named
    fired = evaluate(
        ruleset("when funding(BTC, okx) > 0% then hedge 1000 USDT\n"),
        view(perp("okx", "BTC", 0.0001)),
    )
    assert [s.reason for s in fired.skipped] == ["no spot market for BTC on okx"]


def test_index_missing_falls_back_to_spot_mid():
    rs = ruleset("when funding(ETH, gate) > 0% then hedge 1000 USDT\n")
    # mark 100.2, no index, spot mid 100: |100.2 - 100| / 100 = 0.2% -> 1 - 0.4 = 0.6
    v = view(
        perp("gate", "ETH", 0.0001, mark=100.2, index=None), spot("gate", "ETH", 99.99, 100.01)
    )
    (o,) = evaluate(rs, v).opportunities
    assert o.figures.confidence == pytest.approx(0.6)
    assert "no index" in o.figures.details().price_basis


def test_alert_figures_are_rounded_for_people():
    from rulebook.engine._evaluate import _percent

    # 0.056345% per 8h x 1095 = 61.698% APR
    assert _percent(0.00056345, 4) == "0.0563%"
    assert _percent(0.61698, 1) == "61.7%"
    assert _percent(0.0, 4) == "0%"
    assert _percent(-0.0012, 4) == "-0.12%"
