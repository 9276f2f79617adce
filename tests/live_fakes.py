"""A fault-injecting Binance behind the real ccxt class: the same seam (`fetch`) as the
recorded-response tests, with a small order book of state instead of recordings.

    server = FakeBinance(prices={"BTCUSDT": 50_000.0})
    client = server.client()                  # ccxt.binance with fetch replaced
    server.fault("perp", "reject_funds")      # the next perp order is refused

Errors go through ccxt's own `handle_errors` with Binance's error bodies, so the
exception classes are the ones ccxt raises for the real exchange.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import ccxt

PERP = "BTC/USDT:USDT"
SPOT = "BTC/USDT"


def binance_markets() -> list[dict[str, Any]]:
    common = dict(
        base="BTC",
        quote="USDT",
        baseId="BTC",
        quoteId="USDT",
        active=True,
        info={"orderTypes": ["LIMIT", "MARKET"]},
        future=False,
        option=False,
    )
    perp = dict(
        id="BTCUSDT",
        symbol=PERP,
        settle="USDT",
        settleId="USDT",
        type="swap",
        spot=False,
        swap=True,
        margin=False,
        contract=True,
        linear=True,
        inverse=False,
        subType="linear",
        contractSize=1.0,
        precision={"amount": 0.001, "price": 0.1, "base": 1e-8, "quote": 1e-8},
        limits={"amount": {"min": 0.001, "max": 1000}, "cost": {"min": 5}},
        **common,
    )
    spot = dict(
        id="BTCUSDT",
        symbol=SPOT,
        settle=None,
        type="spot",
        spot=True,
        swap=False,
        margin=True,
        contract=False,
        linear=None,
        inverse=None,
        precision={"amount": 0.00001, "price": 0.01, "base": 1e-8, "quote": 1e-8},
        limits={"amount": {"min": 0.00001}, "cost": {"min": 5}},
        **common,
    )
    return [perp, spot]


@dataclass
class Order:
    id: int
    kind: str  # perp | spot
    symbol: str
    side: str
    type: str
    qty: float
    price: float | None
    client_id: str
    reduce_only: bool
    time: int
    filled: float = 0.0
    avg: float = 0.0
    status: str = "NEW"


@dataclass
class FakeBinance:
    prices: dict[str, float] = field(default_factory=lambda: {"BTCUSDT": 50_000.0})
    fee_rate: dict[str, float] = field(
        default_factory=lambda: {"perp": 0.0005, "spot": 0.001, "margin": 0.001})
    usdt: float = 100_000.0
    now: int = field(default_factory=lambda: int(time.time() * 1000))
    orders: list[Order] = field(default_factory=list)
    trades: list[dict[str, Any]] = field(default_factory=list)
    position: float = 0.0  # signed BTC on the perp
    spot_btc: float = 0.0
    margin_btc: float = 0.0  # coins on the cross-margin account (borrowed ones included)
    margin_debt: float = 0.0  # coins borrowed and not repaid
    borrows: list[tuple[str, str, float]] = field(default_factory=list)
    faults: list[tuple[str, str, str | None]] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    funding: list[dict[str, Any]] = field(default_factory=list)
    down: bool = False
    #: a file the exchange's state is saved to after every order (it outlives a killed process)
    state_file: str | None = None
    #: "perp": SIGKILL this process right after a perp order is on the exchange
    kill_after: str | None = None
    #: seconds a spot order takes to arrive (so a kill lands between the legs)
    spot_delay_s: float = 0.0
    _next_id: int = 1000

    # -- persistence (for the kill -9 test) ---------------------------------------
    def save(self) -> None:
        if self.state_file is None:
            return
        state = {"orders": [o.__dict__ for o in self.orders], "trades": self.trades,
                 "position": self.position, "spot_btc": self.spot_btc, "usdt": self.usdt,
                 "next_id": self._next_id}  # fmt: skip
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.state_file)

    @classmethod
    def load(cls, path: str) -> FakeBinance:
        with open(path) as fh:
            state = json.load(fh)
        server = cls(state_file=path)
        server.orders = [Order(**o) for o in state["orders"]]
        server.trades = state["trades"]
        server.position, server.spot_btc, server.usdt = state["position"], state["spot_btc"], state["usdt"]
        server._next_id = state["next_id"]
        return server

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # -- control ----------------------------------------------------------------
    def fault(self, kind: str, what: str, intent: str | None = None) -> None:
        """Next order on `kind` (perp|spot), optionally only of an intent letter (o/c/u):
        reject_funds, reject_invalid, partial:<fraction>, timeout_after_accept,
        timeout_before_accept, rate_limit, outage, unfilled."""
        self.faults.append((kind, what, intent))

    def _take_fault(self, kind: str, cid: str) -> str | None:
        for i, (k, what, intent) in enumerate(self.faults):
            letter = cid.rstrip("0123456789")[-1:] if cid else ""
            if k == kind and (intent is None or intent == letter):
                del self.faults[i]
                return what
        return None

    def client(self, **config: Any) -> ccxt.binance:
        ex = ccxt.binance({"apiKey": "test-key-123456", "secret": "test-secret-abcdef",
                           "options": {"fetchMarkets": {"types": ["spot", "linear"]},
                                       "leverageBrackets": {PERP: [["0", "0.004"]]}},
                           **config})  # fmt: skip
        ex.set_markets(binance_markets(), {
            "BTC": {"id": "BTC", "code": "BTC", "precision": 1e-8},
            "USDT": {"id": "USDT", "code": "USDT", "precision": 1e-8}})
        ex.load_markets = lambda reload=False, params={}: ex.markets  # noqa: B006
        ex.fetch = self.fetch
        ex.enableRateLimit = False
        self.ex = ex
        return ex

    # -- transport -----------------------------------------------------------------
    def _error(self, url: str, method: str, code: int, msg: str, status: int = 400) -> None:
        body = json.dumps({"code": code, "msg": msg})
        self.ex.handle_errors(
            status, "Bad Request", url, method, {}, body, json.loads(body), None, None
        )
        raise AssertionError(f"ccxt did not raise for {code}")

    def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        u = urlsplit(url)
        params = dict(parse_qsl(u.query))
        if body:
            params.update(parse_qsl(body))
        self.calls.append((method, u.path))
        if self.down:
            raise ccxt.ExchangeNotAvailable("binance 503 Service Unavailable")
        if u.path == "/sapi/v1/margin/borrow-repay":
            amount = float(params["amount"])
            if params["type"] == "BORROW":
                self.margin_debt = round(self.margin_debt + amount, 8)
                self.margin_btc = round(self.margin_btc + amount, 8)
            else:
                self.margin_debt = round(self.margin_debt - amount, 8)
                self.margin_btc = round(self.margin_btc - amount, 8)
            self.borrows.append((params["type"], params["asset"], amount))
            self.save()
            return {"tranId": self._new_id(), "clientTag": ""}
        kind = "perp" if u.path.startswith("/fapi") else (
            "margin" if u.path.startswith("/sapi/v1/margin") else "spot")  # fmt: skip
        route = (method, u.path.replace("/fapi/v1/", "/X/").replace("/api/v3/", "/X/")
                 .replace("/sapi/v1/margin/", "/X/"))  # fmt: skip
        if route == ("POST", "/X/order"):
            return self._create(url, method, kind, params)
        if route == ("GET", "/X/order"):
            o = self._find(kind, params)
            if o is None:
                self._error(url, method, -2013, "Order does not exist.")
            return self._order_json(o)
        if route == ("GET", "/X/openOrders"):
            return [
                self._order_json(o) for o in self.orders if o.kind == kind and o.status == "NEW"
            ]
        if route == ("GET", "/X/allOrders"):
            return [self._order_json(o) for o in self.orders if o.kind == kind]
        if route in (("GET", "/X/userTrades"), ("GET", "/X/myTrades")):
            return [t for t in self.trades if t["_kind"] == kind]
        if u.path == "/fapi/v3/positionRisk":
            return [{"symbol": "BTCUSDT", "positionSide": "BOTH", "positionAmt": str(self.position),
                     "entryPrice": str(self.prices["BTCUSDT"]), "markPrice": str(self.prices["BTCUSDT"]),
                     "unRealizedProfit": "0", "liquidationPrice": "0", "isolatedMargin": "0",
                     "notional": str(self.position * self.prices["BTCUSDT"]), "marginAsset": "USDT",
                     "isolatedWallet": "0", "initialMargin": "0", "maintMargin": "0",
                     "updateTime": str(self.now)}] if self.position else []  # fmt: skip
        if u.path == "/fapi/v3/account":
            return {"assets": [{"asset": "USDT", "walletBalance": str(self.usdt),
                                "availableBalance": str(self.usdt), "updateTime": self.now}],
                    "positions": []}  # fmt: skip
        if u.path == "/api/v3/account":
            return {"balances": [{"asset": "USDT", "free": str(self.usdt), "locked": "0"},
                                 {"asset": "BTC", "free": str(self.spot_btc), "locked": "0"}],
                    "updateTime": self.now}  # fmt: skip
        if u.path in ("/fapi/v1/leverage", "/fapi/v1/marginType"):
            return {
                "code": 200,
                "msg": "success",
                "symbol": "BTCUSDT",
                "leverage": params.get("leverage"),
            }
        if route == ("GET", "/X/ticker/24hr"):
            px = self.prices["BTCUSDT"]
            return {"symbol": "BTCUSDT", "lastPrice": str(px), "bidPrice": str(px - 1),
                    "askPrice": str(px + 1), "openPrice": str(px), "highPrice": str(px),
                    "lowPrice": str(px), "volume": "1", "quoteVolume": str(px),
                    "closeTime": self.now}  # fmt: skip
        if u.path == "/fapi/v1/income":
            return list(self.funding)
        raise ccxt.ExchangeError(f"FakeBinance has no route {method} {u.path}")

    def _find(self, kind: str, params: dict[str, str]) -> Order | None:
        for o in self.orders:
            if o.kind != kind:
                continue
            if "orderId" in params and str(o.id) == params["orderId"]:
                return o
            if "origClientOrderId" in params and o.client_id == params["origClientOrderId"]:
                return o
        return None

    def _create(self, url: str, method: str, kind: str, p: dict[str, str]) -> Any:
        cid = p.get("newClientOrderId", "")
        if any(o.client_id == cid and o.kind == kind for o in self.orders):
            self._error(url, method, -4116, "ClientOrderId is duplicated.")
        what = self._take_fault(kind, cid)
        if what == "rate_limit":
            self._error(url, method, -1003, "Too many requests; current limit is 2400.", 429)
        if what == "outage":
            raise ccxt.ExchangeNotAvailable("binance 503 Service Unavailable")
        if what == "reject_funds":  # Binance's spot and futures codes for it
            if kind == "perp":
                self._error(url, method, -2019, "Margin is insufficient.")
            self._error(
                url, method, -2010, "Account has insufficient balance for requested action."
            )
        if what == "reject_invalid":
            self._error(url, method, -4164, "Order's notional must be no smaller than 5.")
        if what == "timeout_before_accept":
            raise ccxt.RequestTimeout(
                "binance POST https://fapi.binance.com/fapi/v1/order timed out"
            )
        qty = float(p["quantity"])
        reduce_only = p.get("reduceOnly") == "true"
        if reduce_only and kind == "perp":
            side_sign = 1 if p["side"] == "BUY" else -1
            if self.position == 0 or (side_sign > 0) == (self.position > 0):
                self._error(url, method, -2022, "ReduceOnly Order is rejected.")
            qty = min(qty, abs(self.position))
        if kind == "spot" and self.spot_delay_s:
            time.sleep(self.spot_delay_s)
        o = Order(self._new_id(), kind, p["symbol"], p["side"], p["type"], qty,
                  float(p["price"]) if "price" in p else None, cid, reduce_only, self.now)  # fmt: skip
        self.orders.append(o)
        fraction = 1.0
        if what and what.startswith("partial:"):
            fraction = float(what.split(":")[1])
        if what == "unfilled":
            fraction = 0.0
        self._fill(o, round(o.qty * fraction, 8))
        self.save()
        if self.kill_after == kind:
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9: nothing after this runs
        if what == "timeout_after_accept":
            raise ccxt.RequestTimeout("binance POST order timed out (the order was accepted)")
        return self._order_json(o)

    def _fill(self, o: Order, qty: float) -> None:
        px = self.prices[o.symbol]
        if o.type == "LIMIT" and o.price is not None:
            marketable = (o.side == "BUY" and o.price >= px) or (o.side == "SELL" and o.price <= px)
            if not marketable:
                qty = 0.0
        o.filled, o.avg = qty, px
        # market and IOC orders never rest: what did not fill is expired
        o.status = "FILLED" if qty >= o.qty else "EXPIRED"
        sign = 1 if o.side == "BUY" else -1
        if qty <= 0:
            return
        fee = qty * px * self.fee_rate[o.kind]
        if o.kind == "perp":
            self.position = round(self.position + sign * qty, 8)
            self.usdt -= fee
        elif o.kind == "margin":
            self.margin_btc = round(self.margin_btc + sign * qty, 8)
            self.usdt -= sign * qty * px + fee
        else:
            self.spot_btc = round(self.spot_btc + sign * qty, 8)
            self.usdt -= sign * qty * px + fee
        trade = {"symbol": o.symbol, "id": self._new_id(), "orderId": o.id, "price": str(px),
                 "qty": str(qty), "quoteQty": str(qty * px), "commission": str(fee),
                 "commissionAsset": "USDT", "time": self.now, "_kind": o.kind}  # fmt: skip
        if o.kind == "perp":
            trade.update(side=o.side, buyer=o.side == "BUY", maker=False, positionSide="BOTH",
                         realizedPnl="0")  # fmt: skip
        else:
            trade.update(isBuyer=o.side == "BUY", isMaker=False, isBestMatch=True)
        self.trades.append(trade)

    def _order_json(self, o: Order) -> dict[str, Any]:
        d = {"orderId": o.id, "symbol": o.symbol, "status": o.status, "clientOrderId": o.client_id,
             "price": str(o.price or 0), "avgPrice": str(o.avg), "origQty": str(o.qty),
             "executedQty": str(o.filled), "cumQuote": str(o.filled * o.avg),
             "timeInForce": "IOC" if o.type == "LIMIT" else "GTC", "type": o.type,
             "reduceOnly": o.reduce_only, "side": o.side, "positionSide": "BOTH",
             "updateTime": o.time, "time": o.time}  # fmt: skip
        if o.kind != "perp":
            d["cummulativeQuoteQty"] = str(o.filled * o.avg)
            d["transactTime"] = o.time
        return d
