"""Both legs of a hedge together, and leg risk: never one leg without an alert.

    trader = HedgeTrader(gateways, live_ledger, settings, alert)
    result = trader.open(position_id, legs, qty)      # LegFill per leg, status
    result = trader.close(position_id, legs, sizes)

Opening: an intent per leg is committed, then both orders go out at once
(one thread per leg, one client per exchange). When one leg fills and the
other is rejected, times out or fills partly, the position is brought back
to neutral within `leg_timeout`: the missing part is sent again (a new
attempt, a new client id) up to `leg_retries` times, unless the exchange
refused for a reason a retry cannot change; then the larger leg is reduced
to the smaller with a reduce-only order. Every step is an event and a
notification (`alert`); a leg that still cannot be matched is `unhedged`
and says so loudly every cycle until it is.

Closing: both legs at once, reduce-only on perps; a leg that does not close
is retried within the same bound, and what is left stays `closing` (alerted)
for the next cycle to finish.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal

import ccxt

from .._config import LiveConfig
from .._live_ledger import LiveLedger
from .._sizing import LegMarket, common_step
from ._orders import Fill, OrderGateway, OrderRequest, OrderState, client_order_id

__all__ = ["HedgeLeg", "HedgeResult", "HedgeTrader", "LegFill"]

# Refusals a second attempt cannot change: the missing part is not retried.
_FINAL_REASONS = ("InsufficientFunds", "InvalidOrder", "AuthenticationError", "PermissionDenied",
                  "BadSymbol", "NotSupported", "AccountSuspended")  # fmt: skip


@dataclass(frozen=True, slots=True)
class HedgeLeg:
    """One leg as the executor plans it."""

    index: int
    exchange: str
    market: str  # perp | spot
    side: str  # long | short
    symbol: str
    rules: LegMarket
    coin: str
    price: float  # the reference price (book side) for an IOC limit and the events
    borrowed: bool = False  # a short spot leg sold with borrowed coins

    def order_side(self, opening: bool) -> str:
        buy = (self.side == "long") == opening
        return "buy" if buy else "sell"


@dataclass(slots=True)
class LegFill:
    """A leg's net position from its orders: coins held, average entry, fees paid."""

    qty: float = 0.0
    cost: float = 0.0  # sum of qty x price of the fills that added to the leg
    added: float = 0.0
    fee: float = 0.0
    reasons: list[str] = field(default_factory=list)

    @property
    def average(self) -> float | None:
        return self.cost / self.added if self.added > 0 else None


@dataclass(slots=True)
class HedgeResult:
    status: str  # open | none | unhedged | closed | closing
    fills: list[LegFill]
    reason: str | None = None


Alert = Callable[[str, str, int | None], None]


class HedgeTrader:
    def __init__(
        self,
        gateways: Mapping[str, OrderGateway],
        ledger: LiveLedger,
        settings: LiveConfig,
        alert: Alert,
        *,
        clock: Callable[[], float] = time.monotonic,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.gateways = gateways
        self.ledger = ledger
        self.settings = settings
        self.alert = alert
        self.clock = clock
        self.now_ms = now_ms

    # -- orders ------------------------------------------------------------------
    def _request(
        self, position_id: int, leg: HedgeLeg, intent: str, side: str, qty: float
    ) -> tuple[int, OrderRequest]:
        attempt = self.ledger.next_attempt(position_id, leg.index, intent)
        cid = client_order_id(self.ledger.nonce, position_id, leg.index, intent, attempt)
        limit = None
        if self.settings.order_type == "ioc" or leg.market == "spot":
            # Spot legs are always IOC limits: a market buy is sized in the quote
            # currency on several exchanges, and both legs must hold the same coins.
            slip = self.settings.ioc_slippage
            px = leg.price * (1 + slip) if side == "buy" else leg.price * (1 - slip)
            limit = px / leg.rules.price_scale
            gw = self.gateways[leg.exchange]
            try:
                limit = float(gw.client.price_to_precision(leg.symbol, limit))
            except (ccxt.BaseError, KeyError, TypeError):
                pass
        reduce_only = intent in ("close", "unwind") and leg.market == "perp"
        req = OrderRequest(
            exchange=leg.exchange,
            symbol=leg.symbol,
            market=leg.market,
            side=side,
            amount=leg.rules.units(qty),
            client_id=cid,
            leg=leg.rules,
            reduce_only=reduce_only,
            limit_price=limit,
            margin_mode="cross" if leg.borrowed else None,
            sent_at=self.now_ms(),
        )
        iid = self.ledger.write_intent(
            position_id=position_id, leg=leg.index, intent=intent, attempt=attempt,
            client_id=cid, exchange=leg.exchange, symbol=leg.symbol, market=leg.market,
            side=side, amount=req.amount, qty=qty, reduce_only=reduce_only, limit_price=limit,
            ts=req.sent_at,
        )  # fmt: skip
        return iid, req

    def _execute(self, req: OrderRequest, deadline: float) -> tuple[OrderState, Fill | None]:
        """In a worker thread: send (with retries of the same id), then read back."""
        gw = self.gateways[req.exchange]
        state = gw.send(req, deadline, self.clock)
        if state.status != "accepted":
            return state, None
        fill = gw.read_back(req, state)
        while not fill.final and self.clock() < deadline:
            gw.sleep(0.5)  # an IOC or market order settles within moments
            fill = gw.read_back(req, state)
        return state, fill

    def _run(
        self, position_id: int, batch: Sequence[tuple[HedgeLeg, str, str, float]], deadline: float
    ) -> list[tuple[OrderState, Fill | None]]:
        """Write every intent (committed), then send them all at once."""
        prepared = [(leg, *self._request(position_id, leg, intent, side, qty))
                    for leg, intent, side, qty in batch]  # fmt: skip
        with ThreadPoolExecutor(max_workers=max(1, len(prepared))) as pool:
            futures = [pool.submit(self._execute, req, deadline) for _, _, req in prepared]
            results = [f.result() for f in futures]
        for (_leg, iid, _req), (state, fill) in zip(prepared, results, strict=True):
            self._record(iid, state, fill)
        return results

    def _record(self, iid: int, state: OrderState, fill: Fill | None) -> None:
        if fill is not None:
            status = "filled" if fill.qty > 0 else "rejected"
            self.ledger.update_intent(
                iid, status=status, order_id=state.order_id, filled_qty=fill.qty,
                average=fill.average, fee=fill.fee, fee_detail=fill.fee_detail,
                reason=None if fill.qty > 0 else "accepted but nothing filled",
            )  # fmt: skip
        else:
            self.ledger.update_intent(
                iid, status=state.status if state.status != "outage" else "unknown",
                order_id=state.order_id, reason=state.reason,
            )  # fmt: skip

    # -- opening -------------------------------------------------------------------
    def open(self, position_id: int, legs: Sequence[HedgeLeg], qty: float) -> HedgeResult:
        deadline = self.clock() + self.settings.leg_timeout
        fills = [LegFill() for _ in legs]
        for leg in legs:
            if leg.borrowed and not self._borrow(position_id, leg, qty, fills[leg.index]):
                return HedgeResult("none", fills, fills[leg.index].reasons[-1])
        results = self._run(
            position_id, [(leg, "open", leg.order_side(True), qty) for leg in legs], deadline
        )
        for leg, (state, fill) in zip(legs, results, strict=True):
            _add(fills[leg.index], state, fill, adding=True)
        return self.balance(position_id, legs, fills, deadline, opening=True)

    def balance(
        self,
        position_id: int,
        legs: Sequence[HedgeLeg],
        fills: list[LegFill],
        deadline: float,
        *,
        opening: bool,
    ) -> HedgeResult:
        """Bring the legs to the same quantity: complete the short leg, else reduce the long one."""
        tol = _tolerance(legs, max(f.qty for f in fills))
        target = max(f.qty for f in fills)
        attempts = 0
        while opening and attempts < self.settings.leg_retries and self.clock() < deadline:
            short = [lg for lg in legs if target - fills[lg.index].qty > tol]
            short = [lg for lg in short if not _final(fills[lg.index])]
            if not short:
                break
            attempts += 1
            batch = []
            for lg in short:
                missing = _floor(target - fills[lg.index].qty, lg.rules.step)
                if missing <= 0 or (lg.rules.min_qty and missing < lg.rules.min_qty):
                    continue
                self.alert("risk", f"position {position_id}: {lg.exchange} {lg.market} leg is "
                           f"{fills[lg.index].qty:g} of {target:g} {lg.coin}; sending the "
                           f"missing {missing:g} again (attempt {attempts})", position_id)  # fmt: skip
                batch.append((lg, "open", lg.order_side(True), missing))
            if not batch:
                break
            for (lg, *_), (state, fill) in zip(batch, self._run(position_id, batch, deadline),
                                               strict=True):  # fmt: skip
                _add(fills[lg.index], state, fill, adding=True)
        low = min(f.qty for f in fills)
        if max(f.qty for f in fills) - low > tol:
            # both legs down to the largest quantity on every leg's grid under the smaller
            # (a spot fill of 0.0095 against a 0.001 perp grid meets it at 0.009)
            low = _floor(low, common_step([lg.rules.step for lg in legs]))
            self._reduce_to(position_id, legs, fills, low, tol, deadline)
        low, high = min(f.qty for f in fills), max(f.qty for f in fills)
        if high - low > tol:
            text = (f"UNHEDGED position {position_id}: legs hold "
                    + ", ".join(f"{lg.exchange} {lg.market} {fills[lg.index].qty:g}" for lg in legs)
                    + f" {legs[0].coin}; retrying every cycle; act now if this persists")  # fmt: skip
            self.alert("risk", text, position_id)
            return HedgeResult("unhedged", fills, text)
        if high <= tol:
            why = "; ".join(r for f in fills for r in f.reasons) or "nothing filled"
            return HedgeResult("none", fills, why)
        return HedgeResult("open", fills)

    def _reduce_to(
        self,
        position_id: int,
        legs: Sequence[HedgeLeg],
        fills: list[LegFill],
        low: float,
        tol: float,
        deadline: float,
    ) -> None:
        """Reduce-only orders on the legs that hold more than `low`, within the deadline
        (with at least one attempt even when the deadline passed: an unwind is never skipped)."""
        tries = 0
        while tries <= self.settings.leg_retries:
            over = [lg for lg in legs if fills[lg.index].qty - low > tol]
            if not over or (tries > 0 and self.clock() >= deadline):
                return
            tries += 1
            batch = []
            for lg in over:
                excess = fills[lg.index].qty - low
                self.alert("risk", f"position {position_id}: reducing {lg.exchange} {lg.market} "
                           f"by {excess:g} {lg.coin} (reduce-only) to match the other leg's "
                           f"{low:g}", position_id)  # fmt: skip
                batch.append((lg, "unwind", lg.order_side(False), excess))
            for (lg, *_), (state, fill) in zip(batch, self._run(position_id, batch, deadline),
                                               strict=True):  # fmt: skip
                _add(fills[lg.index], state, fill, adding=False)

    # -- closing ---------------------------------------------------------------------
    def close(
        self, position_id: int, legs: Sequence[HedgeLeg], held: Sequence[float]
    ) -> HedgeResult:
        """Close what each leg holds; retry what did not close within the bound."""
        deadline = self.clock() + self.settings.leg_timeout
        fills = [LegFill(qty=h) for h in held]
        tries = 0
        while True:
            tol = _tolerance(legs, max(held) if held else 0.0)
            todo = [lg for lg in legs if fills[lg.index].qty > tol]
            if not todo:
                break
            if tries > self.settings.leg_retries or (tries > 0 and self.clock() >= deadline):
                break
            if tries > 0:
                self.alert("risk", f"position {position_id}: close incomplete, retrying "
                           + ", ".join(f"{lg.exchange} {lg.market} {fills[lg.index].qty:g}"
                                       for lg in todo), position_id)  # fmt: skip
            tries += 1
            batch = [(lg, "close", lg.order_side(False), fills[lg.index].qty) for lg in todo]
            for (lg, *_), (state, fill) in zip(batch, self._run(position_id, batch, deadline),
                                               strict=True):  # fmt: skip
                _add(fills[lg.index], state, fill, adding=False)
        for lg in legs:
            if lg.borrowed and fills[lg.index].qty <= _tolerance(legs, max(held or [0.0])):
                self._repay(position_id, lg, held[lg.index], fills[lg.index])
        left = [lg for lg in legs if fills[lg.index].qty > _tolerance(legs, max(held or [0.0]))]
        if left:
            text = (f"position {position_id}: close INCOMPLETE, still open: "
                    + ", ".join(f"{lg.exchange} {lg.market} {fills[lg.index].qty:g} {lg.coin}"
                                for lg in left)
                    + "; retrying next cycle")  # fmt: skip
            self.alert("risk", text, position_id)
            return HedgeResult("closing", fills, text)
        return HedgeResult("closed", fills)

    # -- borrowing ---------------------------------------------------------------------
    def _borrow(self, position_id: int, leg: HedgeLeg, qty: float, fill: LegFill) -> bool:
        client = self.gateways[leg.exchange].client
        try:
            client.borrow_cross_margin(client.markets[leg.symbol]["base"], qty)
        except ccxt.BaseError as e:
            why = self.gateways[leg.exchange]._why(e)
            fill.reasons.append(f"borrow of {qty:g} {leg.coin} on {leg.exchange} failed: {why}")
            self.alert("error", f"position {position_id}: {fill.reasons[-1]}", position_id)
            return False
        self.ledger.event("borrow", f"position {position_id}: borrowed {qty:g} {leg.coin} "
                          f"on {leg.exchange} (cross margin)")  # fmt: skip
        return True

    def _repay(self, position_id: int, leg: HedgeLeg, qty: float, fill: LegFill) -> None:
        client = self.gateways[leg.exchange].client
        try:
            client.repay_cross_margin(client.markets[leg.symbol]["base"], qty)
        except ccxt.BaseError as e:
            why = self.gateways[leg.exchange]._why(e)
            self.alert("error", f"position {position_id}: repaying {qty:g} {leg.coin} on "
                       f"{leg.exchange} failed: {why}; repay it by hand", position_id)  # fmt: skip
            return
        self.ledger.event("repay", f"position {position_id}: repaid {qty:g} {leg.coin} "
                          f"on {leg.exchange}")  # fmt: skip


def _add(acc: LegFill, state: OrderState, fill: Fill | None, *, adding: bool) -> None:
    if fill is None:
        acc.reasons.append(f"{state.status}: {state.reason}" if state.reason else state.status)
        return
    if fill.qty <= 0:
        acc.reasons.append("accepted but nothing filled")
    if adding:
        acc.qty += fill.qty
        acc.added += fill.qty
        acc.cost += fill.qty * (fill.average or 0.0)
    else:
        acc.qty = max(0.0, acc.qty - fill.qty)
    acc.fee += fill.fee


def _final(acc: LegFill) -> bool:
    """The last refusal was one a retry cannot change (funds, an invalid order)."""
    return bool(acc.reasons) and acc.reasons[-1].startswith("rejected") and any(
        r in acc.reasons[-1] for r in _FINAL_REASONS
    )


def _tolerance(legs: Sequence[HedgeLeg], qty: float) -> float:
    """Differences under half a step (or a millionth of the size) are neutral."""
    steps = [lg.rules.step for lg in legs if lg.rules.step]
    if steps:
        return min(steps) / 2
    return max(qty * 1e-6, 1e-12)


def _floor(qty: float, step: float | None) -> float:
    """Down to the step's grid, without float noise (0.0095, not 0.009500000000000001)."""
    if not step:
        return qty
    q = Decimal(repr(step)).normalize()
    return float((Decimal(math.floor(qty / step + 1e-9)) * q).quantize(q))
