"""Placement, read-back, positions, balances and funding on ccxt's recorded responses.

Each test runs the real ccxt exchange class with its transport replaced by
ccxt's own recordings (tests/fixtures/ccxt-static/trading, MIT); the expected
values are read off the recorded `parsedResponse` by hand and converted the
way rulebook must (contracts to coins, fees in the coin to the quote).
"""

from __future__ import annotations

import pytest
from live_recorded import Replay, case, recorded_client

from rulebook.trading import LegMarket
from rulebook.trading.live import OrderGateway, OrderRequest, OrderState
from rulebook.trading.live._exchange_reads import (
    balance_amounts,
    funding_records,
    signed_positions,
)


def _request(exchange: str, client, symbol: str, market: str, side: str, amount: float,
             **kw) -> OrderRequest:  # fmt: skip
    leg = LegMarket.from_ccxt(exchange, market, client.markets[symbol])
    return OrderRequest(exchange=exchange, symbol=symbol, market=market, side=side,
                        amount=amount, client_id="rbtest01p1l0o0", leg=leg, **kw)  # fmt: skip


# -- placement ------------------------------------------------------------------------
PLACEMENT = [
    # exchange, case, symbol, market, side, amount, limit, expected id, filled, average
    ("binance", 0, "SOL/USDT", "spot", "buy", 0.05, 241.0, "9780331417", 0.0, None),
    ("bybit", 0, "LTC/USDT", "spot", "buy", 0.1, 60.0, "1609920528435648000", None, None),
    ("okx", 0, "BTC/USDT:USDT", "perp", "buy", 0.01, None, "2896576259728695296", None, None),
    (
        "gate",
        0,
        "人生K线/USDT:USDT",
        "perp",
        "buy",
        100,
        None,
        "299207900263708423",
        100.0,
        0.005416,
    ),
    ("bitget", 0, "LTC/USDT", "spot", "buy", 0.11, 50.0, "1136353550487961603", None, None),
    ("backpack", 0, "ADA/USDC:USDC", "perp", "buy", 1, None, "8338878740", 1.0, 0.8921),
    ("backpack", 4, "ETH/USDC:USDC", "perp", "buy", 0.001, None, "8284584794", 0.001, 4421.82),
]


@pytest.mark.parametrize("exchange,i,symbol,market,side,amount,limit,oid,filled,average", PLACEMENT)
def test_placement_reads_the_exchanges_answer(exchange, i, symbol, market, side, amount, limit,
                                              oid, filled, average) -> None:  # fmt: skip
    client = recorded_client(exchange)
    rec = case(exchange, "createOrder", i)
    Replay(client, default=rec["httpResponse"])
    gw = OrderGateway(exchange, client)
    state = gw.place(_request(exchange, client, symbol, market, side, amount, limit_price=limit))
    assert state.status == "accepted"
    assert state.order_id == oid == str(rec["parsedResponse"]["id"])
    assert state.filled_units == filled
    assert state.average == average


# -- read-back: fills, average price, fees actually charged -----------------------------
def _read_back(exchange: str, symbol: str, market: str, side: str, order_id: str,
               order_route, trades_case: int | None, order_case):  # fmt: skip
    client = recorded_client(exchange)
    replay = Replay(client)
    method, i = order_case
    if method is not None:
        body = case(exchange, method, i)["httpResponse"]
        call = {
            "fetchOrder": lambda: client.fetch_order(order_id, symbol),
            "fetchClosedOrders": lambda: client.fetch_closed_orders(symbol),
        }[method]
        replay.route(call, body)
    if trades_case is not None:
        replay.route(lambda: client.fetch_my_trades(symbol),
                     case(exchange, "fetchMyTrades", trades_case)["httpResponse"])  # fmt: skip
    gw = OrderGateway(exchange, client)
    req = _request(exchange, client, symbol, market, side, 1.0)
    return gw.read_back(req, OrderState("accepted", order_id=order_id))


def test_read_back_bitget_swap_from_its_trades() -> None:
    # closed order 1115965643967582214 and its one trade: 0.1 LTC at 72.25, fee 0.004335 USDT
    fill = _read_back("bitget", "LTC/USDT:USDT", "perp", "buy", "1115965643967582214", None, 1,
                      ("fetchClosedOrders", 0))  # fmt: skip
    assert fill.source == "trades" and fill.final
    assert fill.qty == pytest.approx(0.1, rel=1e-12)
    assert fill.average == pytest.approx(72.25, rel=1e-12)
    assert fill.fee == pytest.approx(0.004335, rel=1e-12)


def test_read_back_bitget_spot_fee_in_the_coin_is_valued_in_the_quote() -> None:
    # 0.0794 LTC at 69.265, fee 7.94e-05 LTC = 7.94e-05 x 69.265 USDT
    fill = _read_back("bitget", "LTC/USDT", "spot", "buy", "1109431644367261698", None, 0,
                      ("fetchClosedOrders", 1))  # fmt: skip
    assert fill.qty == pytest.approx(0.0794, rel=1e-12)
    assert fill.average == pytest.approx(69.265, rel=1e-12)
    assert fill.fee == pytest.approx(7.94e-05 * 69.265, rel=1e-9)
    assert fill.fee_detail == [{"currency": "LTC", "cost": 7.94e-05}]


def test_read_back_gate_two_trades_average_and_contracts_to_coins() -> None:
    # spot order 497245022561 filled in two trades: 0.0485 at 68.01 and 0.025 at 68.02
    fill = _read_back("gate", "LTC/USDT", "spot", "buy", "497245022561", None, 0,
                      ("fetchClosedOrders", 0))  # fmt: skip
    qty = 0.0485 + 0.025
    avg = (0.0485 * 68.01 + 0.025 * 68.02) / qty
    assert fill.qty == pytest.approx(qty, rel=1e-12)
    assert fill.average == pytest.approx(avg, rel=1e-12)
    assert fill.fee == pytest.approx((9.7e-05 + 5e-05) * avg, rel=1e-9)
    # swap order 402052804778: 1 contract of 0.1 LTC at 68.42, fee 0.003421 USDT
    fill = _read_back("gate", "LTC/USDT:USDT", "perp", "sell", "402052804778", None, 1,
                      ("fetchClosedOrders", 3))  # fmt: skip
    assert fill.qty == pytest.approx(0.1, rel=1e-12)
    assert fill.average == pytest.approx(68.42, rel=1e-12)
    assert fill.fee == pytest.approx(0.003421, rel=1e-12)


def test_read_back_from_the_order_when_no_trade_matches() -> None:
    # okx spot order 1339107111507525632: 0.1 LTC at 101.58, fee 0.0001 LTC
    fill = _read_back("okx", "LTC/USDT", "spot", "buy", "1339107111507525632", None, 0,
                      ("fetchOrder", 0))  # fmt: skip
    assert fill.source == "order"
    assert fill.qty == pytest.approx(0.1) and fill.average == pytest.approx(101.58)
    assert fill.fee == pytest.approx(0.0001 * 101.58, rel=1e-9)
    # binance spot order 3397148653: 0.1 LTC at 90.8 (the order carries no fee)
    fill = _read_back("binance", "LTC/USDT", "spot", "buy", "3397148653", None, 0,
                      ("fetchOrder", 0))  # fmt: skip
    assert fill.qty == pytest.approx(0.1) and fill.average == pytest.approx(90.8)
    assert fill.fee == 0.0


def test_read_back_trades_only_exchanges() -> None:
    # bybit swap trade of order 4dbe586c-...: 1.2 LTC at 72.25, fee 0.00867 USDT
    fill = _read_back("bybit", "LTC/USDT:USDT", "perp", "buy",
                      "4dbe586c-8706-4d73-a3b0-f60a60955e95", None, 1, (None, 0))  # fmt: skip
    assert (fill.qty, fill.average, fill.fee) == pytest.approx((1.2, 72.25, 0.00867))
    # binance swap trade of order 3524852987: 0.01 BTC at 36567.1, fee 0.1462684 USDT
    fill = _read_back("binance", "BTC/USDT:USDT", "perp", "buy", "3524852987", None, 1,
                      (None, 0))  # fmt: skip
    assert (fill.qty, fill.average, fill.fee) == pytest.approx((0.01, 36567.1, 0.1462684))
    # backpack (no order look-up in ccxt): trade 2959284 of order 5578417289,
    # 0.001 ETH at 4732.9, fee 1e-06 ETH
    fill = _read_back("backpack", "ETH/USDC", "spot", "buy", "5578417289", None, 1, (None, 0))
    assert fill.qty == pytest.approx(0.001) and fill.average == pytest.approx(4732.9)
    assert fill.fee == pytest.approx(1e-06 * 4732.9, rel=1e-9)


# -- positions --------------------------------------------------------------------------
POSITIONS = [
    # exchange, case, input, {symbol: signed coins} read off parsedResponse by hand
    ("binance", 1, (["BTC/USDT:USDT"],), {"BTC/USDT:USDT": 0.009}),
    ("bybit", 0, (["LTC/USDT:USDT"],), {"LTC/USDT:USDT": 1.2}),
    ("gate", 0, (["LTC/USDT:USDT"],), {"LTC/USDT:USDT": 1 * 0.1}),  # 1 contract of 0.1 LTC
    ("bitget", 0, (["LTC/USDT:USDT"],), {"LTC/USDT:USDT": 0.1}),
    ("bitget", 1, (None, {"uta": True}), {"BTC/USDT:USDT": 0.001}),
    ("backpack", 0, (), {"ETH/USDC:USDC": 0.002}),
]


@pytest.mark.parametrize("exchange,i,args,expected", POSITIONS)
def test_positions_in_signed_coins(exchange, i, args, expected) -> None:
    client = recorded_client(exchange)
    rec = case(exchange, "fetchPositions", i)
    Replay(client, default=rec["httpResponse"])
    got = signed_positions(client.fetch_positions(*args), client.markets)
    assert got == pytest.approx(expected, rel=1e-12)


def test_okx_positions_use_the_contract_size() -> None:
    # okx fetchPositions[0] (disabled in ccxt's runner; parsed here): 1 contract of LTC long;
    # with the stub's contractSize 1 that is 1 LTC
    client = recorded_client("okx")
    Replay(client, default=case("okx", "fetchPositions", 0)["httpResponse"])
    got = signed_positions(client.fetch_positions(["LTC/USDT:USDT"]), client.markets)
    assert got == {"LTC/USDT:USDT": pytest.approx(1.0)}


# -- balances ----------------------------------------------------------------------------
BALANCES = [
    ("binance", 1, ({"type": "swap"},), "USDT", (31.022612, 31.022612)),
    ("bybit", 0, (), "USDT", None),
    ("okx", 3, (), "USDC", None),
    ("bitget", 2, (), "USDT", (17.85159289, 23.35159289)),
    ("bitget", 3, ({"uta": True},), "USDT", (10000.0, 10000.0)),
    ("backpack", 0, (), "USDC", (112.847976936, 112.847976936)),
]


@pytest.mark.parametrize("exchange,i,args,currency,expected", BALANCES)
def test_balances_free_and_total(exchange, i, args, currency, expected) -> None:
    client = recorded_client(exchange)
    rec = case(exchange, "fetchBalance", i)
    Replay(client, default=rec["httpResponse"])
    got = balance_amounts(client.fetch_balance(*args))[currency]
    parsed = rec["parsedResponse"]
    want = expected or (parsed["free"][currency], parsed["total"][currency])
    assert got == pytest.approx(want, rel=1e-12)


# -- funding the exchanges report ---------------------------------------------------------
FUNDING = [
    ("binance", "BTC/USDT:USDT", 1707465600000, -0.04618913),
    ("bitget", "BTC/USDT:USDT", 1772812800000, -0.31399125),
    ("backpack", "ETH/USDC:USDC", 1757620800000, 2.2e-05),
]


@pytest.mark.parametrize("exchange,symbol,ts,amount", FUNDING)
def test_funding_history_payments(exchange, symbol, ts, amount) -> None:
    client = recorded_client(exchange)
    rec = case(exchange, "fetchFundingHistory", 0)
    Replay(client, default=rec["httpResponse"])
    got = funding_records(exchange, client.fetch_funding_history(*rec["input"]))
    assert got[0][:3] == (symbol, ts, pytest.approx(amount, rel=1e-12))


def test_bybit_funding_history_sign_is_turned_into_received() -> None:
    # Bybit's execution list: a long (side Buy) of 0.1 LTC; execFee = execValue x feeRate,
    # so at rate 0.0001 on 7.797 the long paid 0.0007797, at -0.000881 on 8.033 it received
    # 0.00708126. ccxt 4.5.90 passes execFee through as `amount`; rulebook records receipts.
    client = recorded_client("bybit")
    rec = case("bybit", "fetchFundingHistory", 0)
    Replay(client, default=rec["httpResponse"])
    got = funding_records("bybit", client.fetch_funding_history(*rec["input"]))
    assert [(g[1], g[2]) for g in got] == [
        (1710892800000, pytest.approx(-7.797 * 0.0001, rel=1e-12)),
        (1710921600000, pytest.approx(0.00708126, rel=1e-12)),  # -execFee (rounded by bybit)
    ]
