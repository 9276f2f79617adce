"""The orders rulebook sends have the request shapes ccxt's own tests record.

For each exchange, a recorded request case of the kind rulebook sends (a market
order on a linear perp, reduce-only when it closes) is sent again through
`OrderGateway` with rulebook's parameters; the body the real ccxt class builds
must equal the recorded one, except for the fields rulebook sets on purpose
(its client order id, reduce-only) and the ones ccxt makes up per request
(timestamps, signatures, its own generated client ids).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import pytest
from live_recorded import Replay, cases, recorded_client

from rulebook.trading import LegMarket
from rulebook.trading.live import OrderGateway, OrderRequest, wire_client_id

CID = "rbab12cdp7l1c0"


def _recorded(exchange: str, description: str) -> dict[str, Any]:
    for c in cases(exchange, "createOrder", "request"):
        if c["description"] == description:
            return c
    raise KeyError(description)


def _body(exchange: str, raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return dict(raw)
    if exchange == "binance":
        return dict(parse_qsl(raw))
    got = json.loads(raw)
    return got[0] if isinstance(got, list) else got


def _send(
    exchange: str, symbol: str, side: str, amount: float, reduce_only: bool
) -> dict[str, Any]:
    client = recorded_client(exchange)
    replay = Replay(client, default={})
    leg = LegMarket.from_ccxt(exchange, "perp", client.markets[symbol])
    req = OrderRequest(exchange=exchange, symbol=symbol, market="perp", side=side, amount=amount,
                       client_id=CID, leg=leg, reduce_only=reduce_only)  # fmt: skip
    OrderGateway(exchange, client).place(req)
    posts = [r for r in replay.requests if r[0] == "POST"]
    assert posts, replay.requests
    return _body(exchange, posts[-1][2])


# exchange, recorded case, symbol, side, amount, reduce_only,
# client id field, fields the recorded case sets that rulebook does not (hedge mode, margin mode)
SHAPES = [
    (
        "binance",
        "Swap market buy order",
        "LTC/USDT:USDT",
        "buy",
        0.1,
        False,
        "newClientOrderId",
        {},
    ),
    (
        "bybit",
        "swap market sell reduceOnly order",
        "ADA/USDT:USDT",
        "sell",
        81,
        True,
        "orderLinkId",
        {},
    ),
    (
        "okx",
        "Swap market buy with posSide = long",
        "LTC/USDT:USDT",
        "buy",
        1,
        False,
        "clOrdId",
        {"posSide", "tag"},
    ),  # tag: ccxt's broker id, sent with its own client ids
    ("gate", "swap market sell", "XRP/USDT:USDT", "sell", 1, False, "text", {}),
    (
        "bitget",
        "Swap oneWayMode market sell order with reduceOnly",
        "BTC/USDT:USDT",
        "sell",
        0.001,
        True,
        "clientOid",
        {"marginMode"},
    ),
    (
        "bitget",
        "swap market buy +hedged",
        "BTC/USDT:USDT",
        "buy",
        0.001,
        False,
        "clientOid",
        {"tradeSide"},
    ),
    ("backpack", "order with\\n client order Id", "ADA/USDC:USDC", "buy", 1, False, "clientId", {}),
]
_VOLATILE = {"timestamp", "signature", "recvWindow"}


@pytest.mark.parametrize("exchange,description,symbol,side,amount,reduce_only,cid_field,not_ours",
                         SHAPES)  # fmt: skip
def test_order_request_matches_the_recorded_shape(exchange, description, symbol, side, amount,
                                                   reduce_only, cid_field, not_ours) -> None:  # fmt: skip
    recorded = _recorded(exchange, description.replace("\\n", "\n"))
    want = _body(exchange, recorded["output"])
    got = _send(exchange, symbol, side, amount, reduce_only)
    wire = wire_client_id(exchange, CID)
    assert str(got.pop(cid_field)) in (str(wire), f"t-{wire}")  # Gate prefixes `t-`
    want.pop(cid_field, None)  # ccxt's own generated id, or the case's
    for key in _VOLATILE | set(not_ours):
        want.pop(key, None)
        got.pop(key, None)
    assert got == want


def test_reduce_only_is_sent_as_each_exchange_expects() -> None:
    """A closing order carries the reduce-only flag in the form ccxt's recorded cases use."""
    # binance: the recorded reduce-only case's query has reduceOnly=true
    rec = _body(
        "binance",
        _recorded("binance", "Swap limit buy with reduce only (closing short position)")["output"],
    )
    got = _send("binance", "LTC/USDT:USDT", "buy", 0.1, True)
    assert got["reduceOnly"] == rec["reduceOnly"] == "true"
    # okx: the recorded close has "reduceOnly": true
    rec = _body("okx", _recorded("okx", "Close an inverse swap position with a market reduceOnly "
                                        "order")["output"])  # fmt: skip
    got = _send("okx", "LTC/USDT:USDT", "sell", 1, True)
    assert got["reduceOnly"] is rec["reduceOnly"] is True
    # bybit and bitget: in the shape tests above (reduceOnly true / "YES")
    got = _send("bitget", "BTC/USDT:USDT", "sell", 0.001, True)
    assert got["reduceOnly"] == "YES"
    # gate has no recorded reduce-only request; ccxt sets reduce_only on the contract order
    got = _send("gate", "XRP/USDT:USDT", "buy", 1, True)
    assert got["reduce_only"] is True and got["size"] == 1


def test_backpack_client_id_is_a_stable_uint32() -> None:
    a = wire_client_id("backpack", CID)
    assert isinstance(a, int) and 0 <= a < 2**31 and a == wire_client_id("backpack", CID)
    assert wire_client_id("backpack", CID + "1") != a
    assert wire_client_id("okx", CID) == CID and CID.isalnum() and len(CID) <= 32
