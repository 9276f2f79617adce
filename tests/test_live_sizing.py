"""Hedge sizing: one coin quantity on both legs, on both markets' grids (hand-computed)."""

from __future__ import annotations

import pytest

from rulebook.trading import HedgeSize, LegMarket, common_step, size_hedge


def test_common_step_is_the_decimal_lcm() -> None:
    assert common_step([0.001, 0.01]) == 0.01
    assert common_step([0.1, 0.25]) == 0.5
    assert common_step([0.001, None]) == 0.001
    assert common_step([None, None]) is None
    assert common_step([1e-05, 0.001]) == 0.001


def test_same_quantity_on_both_legs_rounded_down_to_both_grids() -> None:
    a = LegMarket("binance", "perp", step=0.001, min_qty=0.001, min_cost=5.0)
    b = LegMarket("bybit", "perp", step=0.01, min_qty=0.01, min_cost=5.0)
    # 1000 / max(182.31, 182.40) = 5.482456...; on the 0.01 grid: 5.48 on both legs
    got = size_hedge(1000.0, [a, b], [182.31, 182.40])
    assert got == HedgeSize(5.48, (5.48, 5.48), 0.01, None)
    assert got.qty * 182.40 <= 1000.0


def test_contracts_convert_to_coins_and_back() -> None:
    # OKX BTC-USDT-SWAP: one contract is 0.01 BTC, amount step 0.01 contracts (0.0001 BTC);
    # Gate BTC_USDT: one contract is 0.0001 BTC, step 1 contract (0.0001 BTC)
    okx = LegMarket.from_ccxt(
        "okx",
        "perp",
        {
            "symbol": "BTC/USDT:USDT",
            "contract": True,
            "contractSize": 0.01,
            "precision": {"amount": 0.01},
            "limits": {"amount": {"min": 0.01}, "cost": {}},
        },
    )
    gate = LegMarket.from_ccxt(
        "gate",
        "perp",
        {
            "symbol": "BTC/USDT:USDT",
            "contract": True,
            "contractSize": 0.0001,
            "precision": {"amount": 1},
            "limits": {"amount": {"min": 1}, "cost": {}},
        },
    )
    assert okx.step == pytest.approx(0.0001, abs=1e-15) and gate.step == pytest.approx(
        0.0001, abs=1e-15
    )
    # 1000 / 60000 = 0.0166666 BTC -> 0.0166 BTC = 1.66 OKX contracts = 166 Gate contracts
    got = size_hedge(1000.0, [okx, gate], [60000.0, 59990.0])
    assert got.ok and got.qty == 0.0166
    assert got.amounts == (1.66, 166.0)


def test_a_thousand_unit_market_scales_quantity_and_price() -> None:
    # Binance 1000PEPE/USDT:USDT for coin PEPE: one unit is 1000 PEPE, step 1 unit
    leg = LegMarket.from_ccxt(
        "binance",
        "perp",
        {
            "symbol": "1000PEPE/USDT:USDT",
            "contract": True,
            "contractSize": 1,
            "precision": {"amount": 1},
            "limits": {"amount": {"min": 1}, "cost": {"min": 5}},
        },
        scale=1 / 1000,
    )
    assert leg.coins_per_unit == 1000.0 and leg.step == 1000.0
    # price per PEPE 0.00001: 1000 USDT is 100,000,000 PEPE = 100,000 units
    got = size_hedge(1000.0, [leg], [0.00001])
    assert got.qty == 100_000_000 and got.amounts == (100_000.0,)


def test_blocked_when_rounding_makes_the_hedge_too_small() -> None:
    a = LegMarket("binance", "perp", step=0.001, min_qty=0.001, min_cost=100.0)
    b = LegMarket("okx", "perp", step=0.01, min_qty=0.01)
    # 15 / 60000 = 0.00025 BTC: under one 0.01 step
    got = size_hedge(15.0, [a, b], [60000.0, 60000.0])
    assert not got.ok and got.qty == 0.0
    assert got.blocked == (
        "too small: 15.00 per leg is 0.00025 coins, under one step (0.01) of the legs' "
        "common grid (perp on binance 0.001, perp on okx 0.01)"
    )
    # 1000 / 60000 = 0.01666 -> 0.01 BTC = 600 USDT: fine; min cost 700 blocks it
    c = LegMarket("gate", "perp", step=0.01, min_cost=700.0)
    got = size_hedge(1000.0, [a, c], [60000.0, 60000.0])
    assert got.blocked == (
        "too small after rounding: 0.01 coins at 60000 is 600.00, under the minimum "
        "cost 700 of perp on gate"
    )
    d = LegMarket("bybit", "spot", step=0.001, min_qty=0.02)
    got = size_hedge(1000.0, [a, d], [60000.0, 60000.0])
    assert got.blocked == (
        "too small after rounding: 0.016 coins is under the minimum amount 0.02 of spot on bybit"
    )


def test_without_market_rules_paper_gets_the_same_quantity_on_both_legs() -> None:
    got = size_hedge(
        1000.0, [LegMarket("binance", "perp"), LegMarket("binance", "spot")], [200.0, 250.0]
    )
    assert got.qty == 4.0 and got.amounts == (4.0, 4.0)


def test_bad_inputs_are_blocked_not_raised() -> None:
    leg = LegMarket("binance", "perp")
    assert size_hedge(float("nan"), [leg], [1.0]).blocked
    assert size_hedge(100.0, [leg], [0.0]).blocked == "no usable price for perp on binance"
