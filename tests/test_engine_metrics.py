"""Spec section 6 formulas against numbers computed by hand."""

from __future__ import annotations

import math

import pytest

from rulebook.engine import _metrics as M
from rulebook.engine._metrics import Leg


def test_normalise_backpack_hourly_and_binance_8h():
    # 0.01% an hour x 8 / 1 = 0.08% per 8h (the spec's Backpack example)
    assert M.normalise_funding(0.0001, 1) == pytest.approx(0.0008)
    # -0.02% per 8h stays -0.02%
    assert M.normalise_funding(-0.0002, 8) == pytest.approx(-0.0002)
    # 4h interval: 0.03% x 8 / 4 = 0.06%
    assert M.normalise_funding(0.0003, 4) == pytest.approx(0.0006)


def test_apr_seed_examples():
    assert M.apr(0.0010) == pytest.approx(1.095)  # 0.10% x 3 x 365 = 109.5%
    assert M.apr(0.0015) == pytest.approx(1.6425)  # 0.15% x 1095 = 164.25%


def test_spread_legs_short_the_higher_funding():
    # backpack 0.08%, binance -0.02%: short backpack, long binance, edge 0.10%
    legs, edge = M.spread_legs("backpack", "binance", 0.0008, -0.0002)
    assert legs == (Leg("backpack", "perp", "short"), Leg("binance", "perp", "long"))
    assert edge == pytest.approx(0.0010)
    # the same pair named the other way round: same legs, same edge
    legs2, edge2 = M.spread_legs("binance", "backpack", -0.0002, 0.0008)
    assert legs2 == legs and edge2 == pytest.approx(0.0010)
    # both negative: -0.01% vs -0.05%: short the -0.01% one (pays less), edge 0.04%
    legs3, edge3 = M.spread_legs("okx", "gate", -0.0001, -0.0005)
    assert legs3 == (Leg("okx", "perp", "short"), Leg("gate", "perp", "long"))
    assert edge3 == pytest.approx(0.0004)


def test_carry_positive_and_negative_funding():
    # funding +0.03%: short perp, long spot, edge = 0.03% (no borrow needed)
    assert M.carry_legs("okx", 0.0003) == (Leg("okx", "perp", "short"), Leg("okx", "spot", "long"))
    assert M.carry_edge(0.0003, None) == pytest.approx(0.0003)
    # funding -0.05%, borrow 0.06%/day = 0.02% per 8h: long perp, short spot,
    # edge = 0.05% - 0.02% = 0.03%
    assert M.carry_legs("okx", -0.0005) == (Leg("okx", "perp", "long"), Leg("okx", "spot", "short"))
    assert M.carry_edge(-0.0005, 0.0006 / 3) == pytest.approx(0.0003)
    with pytest.raises(ValueError):
        M.carry_edge(-0.0005, None)


def test_borrow_subject_edge_signs():
    assert M.borrow_legs("bybit") == (Leg("bybit", "perp", "long"), Leg("bybit", "spot", "short"))
    # funding -0.04%, borrow 0.01%: the long perp receives 0.04%, pays 0.01% -> 0.03%
    assert M.borrow_edge(-0.0004, 0.0001) == pytest.approx(0.0003)
    # funding +0.02%: the long perp pays it -> -0.02% - 0.01% = -0.03%
    assert M.borrow_edge(0.0002, 0.0001) == pytest.approx(-0.0003)


def test_fees_are_four_taker_trades():
    # 2 x (0.05% + 0.10%) = 0.30%: open and close both legs
    assert M.round_trip_fees(0.0005, 0.0010) == pytest.approx(0.0030)


def test_net_and_breakeven_spec_example():
    # edge 0.10%, fees 0.20%: net(8h) = 0.1% - 0.2% = -0.1%; net(24h) = 0.3% - 0.2% = 0.1%
    assert M.net_rate(0.001, 0.002, 8 * 3600) == pytest.approx(-0.001)
    assert M.net_rate(0.001, 0.002, 24 * 3600) == pytest.approx(0.001)
    # breakeven = 0.2% / 0.1% x 8h = 16h
    assert M.breakeven_s(0.001, 0.002) == pytest.approx(16 * 3600)
    assert M.breakeven_s(0.0, 0.002) == math.inf
    assert M.breakeven_s(-0.001, 0.002) == math.inf


def test_price_score_boundaries():
    assert M.price_score(0.0) == 1.0
    assert M.price_score(0.0025) == pytest.approx(0.5)  # half of 0.5%
    assert M.price_score(0.005) == 0.0  # exactly 0.5%
    assert M.price_score(0.006) == 0.0  # beyond: clamped at 0
    # marks 100 and 100.5: |diff| 0.5 / mean 100.25 = 0.4988%
    dev = M.pair_deviation(100.0, 100.5)
    assert dev == pytest.approx(0.5 / 100.25)
    assert M.price_score(dev) == pytest.approx(1 - (0.5 / 100.25) / 0.005)  # 0.002494
    # mark 182.31 vs index 182.25: 0.06 / 182.25 = 0.0329%; score 1 - 0.0658 = 0.9342
    assert M.index_deviation(182.31, 182.25) == pytest.approx(0.06 / 182.25)


def test_fresh_score_boundaries():
    assert M.fresh_score(0) == 1.0
    assert M.fresh_score(60) == 1.0  # at most 60 s: full
    assert M.fresh_score(180) == pytest.approx(0.5)  # (300 - 180) / 240
    assert M.fresh_score(299) == pytest.approx(1 / 240)
    assert M.fresh_score(300) == 0.0
    assert M.fresh_score(3600) == 0.0
    assert M.fresh_score(-5) == 1.0  # clock skew counts as fresh


@pytest.mark.parametrize(
    ("confidence", "breakeven_h", "level"),
    [
        (0.8, 24, 0),  # both boundaries inclusive: low
        (0.79, 24, 1),
        (0.8, 24.01, 1),
        (0.5, 72, 1),  # 0.5 is not < 0.5, 72h is not > 72h: medium
        (0.49, 1, 2),
        (0.99, 72.01, 2),
        (0.99, math.inf, 2),  # never breaks even: high
    ],
)
def test_risk_levels(confidence, breakeven_h, level):
    assert M.risk_level(confidence, breakeven_h * 3600) == level
