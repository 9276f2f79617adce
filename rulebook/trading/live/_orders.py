"""Orders on one exchange through ccxt: send, find by client id, read back fills.

    gw = OrderGateway("bybit", client, redact)
    state = gw.place(OrderRequest(...))          # never raises: a state says what happened
    state = gw.find(request)                     # after a lost response: by client order id
    fill = gw.read_back(request, state)          # filled coins, average price, fees in quote

ccxt's errors mean different things, so each is handled as its meaning says:

    InsufficientFunds, InvalidOrder, AuthenticationError   -> rejected, with the reason
    DuplicateOrderId                                       -> the order exists: find it
    RateLimitExceeded, DDoSProtection                      -> wait, retry the same client id
    RequestTimeout, NetworkError                           -> unknown: find it, else retry
    ExchangeNotAvailable (OnMaintenance)                   -> outage: unknown, caller decides

A retry always reuses the request's client order id, so an order whose
response was lost is found (or refused as a duplicate) instead of placed twice.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import ccxt

from rulebook.market import PROFILES

from .._sizing import LegMarket

__all__ = [
    "Fill",
    "OrderGateway",
    "OrderRequest",
    "OrderState",
    "client_order_id",
    "wire_client_id",
]

_INTENT_LETTER = {"open": "o", "close": "c", "unwind": "u"}


def client_order_id(nonce: str, position_id: int, leg: int, intent: str, attempt: int) -> str:
    """`rb<nonce>p<position>l<leg><o|c|u><attempt>`: from the ledger, alphanumeric and
    short enough for every exchange (OKX: 32 alphanumerics, Gate: 28 after `t-`).

    The nonce is the ledger's own (meta `client_nonce`), so two ledgers on one
    account never reuse an id."""
    return f"rb{nonce}p{position_id}l{leg}{_INTENT_LETTER[intent]}{attempt}"


def wire_client_id(exchange: str, cid: str) -> str | int:
    """The client id as the exchange takes it: some (Backpack) want an unsigned 32-bit
    integer, derived from the id's hash (same id, same integer)."""
    profile = PROFILES.get(exchange)
    if profile is not None and profile.client_id == "uint31":
        return int(hashlib.sha256(cid.encode()).hexdigest()[:8], 16) & 0x7FFFFFFF
    return cid


def _same_client_id(exchange: str, seen: Any, cid: str) -> bool:
    if seen is None:
        return False
    wire = str(wire_client_id(exchange, cid))
    text = str(seen)
    return text == wire or text == f"t-{wire}"  # Gate returns its `t-` prefix


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One order rulebook sends: a leg's side in the exchange's amount units."""

    exchange: str
    symbol: str
    market: str  # perp | spot
    side: str  # buy | sell
    amount: float  # exchange units (contracts, coins)
    client_id: str
    leg: LegMarket
    reduce_only: bool = False
    #: None: a market order; else a marketable IOC limit at this price
    limit_price: float | None = None
    #: "cross" for a borrowed spot leg's margin order
    margin_mode: str | None = None
    sent_at: int = 0  # ms, for looking it up afterwards

    def params(self) -> dict[str, Any]:
        """The ccxt unified params: each exchange class maps `clientOrderId` to its own
        field (newClientOrderId, orderLinkId, clOrdId, text, clientOid, clientId)."""
        p: dict[str, Any] = {"clientOrderId": wire_client_id(self.exchange, self.client_id)}
        if self.reduce_only and self.market == "perp":
            p["reduceOnly"] = True
        if self.limit_price is not None:
            p["timeInForce"] = "IOC"
        if self.margin_mode is not None:
            p["marginMode"] = self.margin_mode
        return p


@dataclass(frozen=True, slots=True)
class OrderState:
    """What is known of an order after a call: `status` is ours, not ccxt's.

    accepted (the exchange has it), rejected (it refused; `reason`), unknown (no
    answer: it may or may not exist), outage (the exchange is down)."""

    status: str
    order_id: str | None = None
    reason: str | None = None
    filled_units: float | None = None
    average: float | None = None
    exchange_status: str | None = None  # ccxt's: open, closed, canceled, expired, rejected
    retry_after_s: float | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    """An order's fills as the exchange reports them, in coins and the quote currency."""

    qty: float  # coins filled
    average: float | None
    fee: float  # in the quote currency, >= 0 when paid
    fee_detail: list[dict[str, Any]] = field(default_factory=list)
    final: bool = True  # False: the order may still fill (not closed/canceled yet)
    source: str = "trades"  # trades | order


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if v == v and abs(v) != float("inf") else None


class OrderGateway:
    """One exchange's orders. `redact` masks keys in every text it returns."""

    def __init__(
        self,
        exchange: str,
        client: ccxt.Exchange,
        redact: Callable[[object], str] = str,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.exchange = exchange
        self.client = client
        self.redact = redact
        self.sleep = sleep

    def _why(self, e: BaseException) -> str:
        text = self.redact(str(e)).strip().replace("\n", " ")
        if len(text) > 300:
            text = text[:297] + "..."
        return f"{type(e).__name__}: {text}" if text else type(e).__name__

    # -- sending -----------------------------------------------------------------
    def place(self, req: OrderRequest) -> OrderState:
        """Send once; classify what came back. Never raises for an exchange error."""
        kind = "limit" if req.limit_price is not None else "market"
        try:
            order = self.client.create_order(
                req.symbol, kind, req.side, req.amount, req.limit_price, req.params()
            )
        except ccxt.DuplicateOrderId as e:
            return OrderState("unknown", reason=f"duplicate client id: {self._why(e)}")
        except (ccxt.InsufficientFunds, ccxt.InvalidOrder, ccxt.AuthenticationError,
                ccxt.BadRequest, ccxt.OperationRejected, ccxt.NotSupported) as e:  # fmt: skip
            return OrderState("rejected", reason=self._why(e))
        except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as e:
            wait = max(1.0, 2 * float(getattr(self.client, "rateLimit", 1000) or 1000) / 1000)
            return OrderState("rate_limited", reason=self._why(e), retry_after_s=wait)
        except ccxt.ExchangeNotAvailable as e:
            return OrderState("outage", reason=self._why(e))
        except ccxt.NetworkError as e:  # a timeout: the order may have arrived
            return OrderState("unknown", reason=self._why(e))
        except ccxt.ExchangeError as e:
            return OrderState("rejected", reason=self._why(e))
        return self._state(order)

    def _state(self, order: Mapping[str, Any]) -> OrderState:
        status = order.get("status")
        if status == "rejected":
            return OrderState("rejected", order_id=order.get("id"), reason="rejected by exchange",
                              exchange_status=status)  # fmt: skip
        return OrderState(
            "accepted",
            order_id=None if order.get("id") is None else str(order["id"]),
            filled_units=_num(order.get("filled")),
            average=_num(order.get("average")),
            exchange_status=status,
        )

    @staticmethod
    def _lookup_params(req: OrderRequest) -> dict[str, Any]:
        """A borrowed spot leg's orders live on the margin account: ask there."""
        return {"marginMode": req.margin_mode} if req.margin_mode else {}

    # -- finding -----------------------------------------------------------------
    def find(self, req: OrderRequest) -> OrderState:
        """Look the order up by its client id (open orders, then closed ones).

        `accepted` when found, `missing` when the exchange answered and has no such
        order, `unknown`/`outage` when it could not be asked."""
        since = req.sent_at - 60_000 if req.sent_at else None
        has = self.client.has
        calls: list[str] = []
        if has.get("fetchOpenOrders"):
            calls.append("fetch_open_orders")
        if has.get("fetchClosedOrders"):
            calls.append("fetch_closed_orders")
        elif has.get("fetchOrders"):
            calls.append("fetch_orders")
        try:
            for name in calls:
                for order in getattr(self.client, name)(
                    req.symbol, since, None, self._lookup_params(req)
                ):
                    if _same_client_id(self.exchange, order.get("clientOrderId"), req.client_id):
                        return self._state(order)
        except ccxt.ExchangeNotAvailable as e:
            return OrderState("outage", reason=self._why(e))
        except ccxt.NetworkError as e:
            return OrderState("unknown", reason=self._why(e))
        except ccxt.ExchangeError as e:
            return OrderState("unknown", reason=self._why(e))
        return OrderState("missing")

    def send(self, req: OrderRequest, deadline: float, clock: Callable[[], float]) -> OrderState:
        """Place with the retries each error allows, until accepted, rejected or the
        deadline (monotonic seconds): a rate limit waits and retries the same client id; a
        lost answer looks the order up first and resends only when it is not there."""
        state = self.place(req)
        while True:
            if state.status in ("accepted", "rejected"):
                return state
            if clock() >= deadline:
                return state
            if state.status == "rate_limited":
                self.sleep(min(state.retry_after_s or 1.0, max(0.0, deadline - clock())))
                state = self.place(req)
                continue
            # unknown or outage: does the exchange have it?
            found = self.find(req)
            if found.status == "accepted":
                return found
            if found.status == "missing":
                if state.status == "outage":  # give a failing exchange a moment first
                    self.sleep(min(1.0, max(0.0, deadline - clock())))
                state = self.place(req)  # it never arrived: send it again, same id
                continue
            self.sleep(min(1.0, max(0.0, deadline - clock())))
            state = replace(found, reason=found.reason or state.reason)

    # -- reading back -------------------------------------------------------------
    def read_back(self, req: OrderRequest, state: OrderState) -> Fill:
        """Filled coins, average price and fees: from the order's trades (what was
        charged), else from the order itself."""
        order: Mapping[str, Any] | None = None
        if state.order_id is not None and self.client.has.get("fetchOrder") is True:
            try:
                order = self.client.fetch_order(
                    state.order_id, req.symbol, self._lookup_params(req)
                )
            except ccxt.BaseError:
                order = None
        if order is None:
            order = self._listed(req, state.order_id)
        final = order is None or order.get("status") in ("closed", "canceled", "expired", "rejected")
        oid = state.order_id if order is None else str(order.get("id"))
        trades: list[Mapping[str, Any]] = []
        try:
            since = req.sent_at - 60_000 if req.sent_at else None
            trades = [
                t for t in self.client.fetch_my_trades(
                    req.symbol, since, None, self._lookup_params(req))
                if oid is not None and str(t.get("order")) == oid
            ]  # fmt: skip
        except ccxt.BaseError:
            trades = []
        per_unit = req.leg.coins_per_unit
        if trades:
            units = sum(_num(t.get("amount")) or 0.0 for t in trades)
            cost = sum((_num(t.get("amount")) or 0.0) * (_num(t.get("price")) or 0.0) for t in trades)
            average = cost / units if units > 0 else None
            fee, detail = self._fees(req, trades, average)
            return Fill(units * per_unit, _unscale(average, req), fee, detail, final, "trades")
        src = order if order is not None else {}
        filled = _num(src.get("filled"))
        if filled is None:
            filled = state.filled_units or 0.0
        average = _num(src.get("average")) or state.average
        fee, detail = self._fees(req, [src] if src.get("fee") else [], average)
        return Fill(filled * per_unit, _unscale(average, req), fee, detail, final, "order")

    def _listed(self, req: OrderRequest, order_id: str | None) -> Mapping[str, Any] | None:
        """The order from the closed (else all, else open) order lists, by id or client id."""
        since = req.sent_at - 60_000 if req.sent_at else None
        lists = (("fetchClosedOrders", "fetch_closed_orders"), ("fetchOrders", "fetch_orders"),
                 ("fetchOpenOrders", "fetch_open_orders"))  # fmt: skip
        for has, method in lists:
            if not self.client.has.get(has):
                continue
            try:
                orders = getattr(self.client, method)(
                    req.symbol, since, None, self._lookup_params(req)
                )
            except ccxt.BaseError:
                continue
            for o in orders:
                if (order_id is not None and str(o.get("id")) == order_id) or _same_client_id(
                    self.exchange, o.get("clientOrderId"), req.client_id
                ):
                    return o
        return None

    def _fees(
        self, req: OrderRequest, items: list[Mapping[str, Any]], price: float | None
    ) -> tuple[float, list[dict[str, Any]]]:
        """Fees charged, in the quote currency: a fee in the coin is valued at the fill
        price; one in a third currency (BNB) is kept in the detail and not summed."""
        market = self.client.markets.get(req.symbol, {}) if self.client.markets else {}
        quote = {market.get("quote"), market.get("settle")} - {None}
        base = market.get("base")
        total = 0.0
        detail: list[dict[str, Any]] = []
        for item in items:
            fees = item.get("fees") or ([item["fee"]] if item.get("fee") else [])
            for f in fees:
                cost = _num(f.get("cost"))
                cur = f.get("currency")
                if cost is None:
                    continue
                detail.append({"currency": cur, "cost": cost})
                if cur in quote or cur is None:
                    total += cost
                elif cur == base and price is not None:
                    total += cost * price
        return total, detail


def _unscale(average: float | None, req: OrderRequest) -> float | None:
    """A price per exchange unit of the base to a price per coin (a 1000PEPE market's / 1000)."""
    return None if average is None else average * req.leg.price_scale
