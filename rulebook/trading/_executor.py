"""The paper executor: fills, fees, balances, funding, borrow interest, closes.

It changes the in-memory book and writes the ledger rows of what it did; the
caller wraps a whole cycle in `ledger.cycle()` so the writes land together.
Every choice the spec leaves open is listed in docs/trading.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from rulebook.engine import resolve_taker_fee
from rulebook.lang import Subject
from rulebook.market import SnapshotView

from ._book import PaperLeg, PaperPosition
from ._config import TradingConfig
from ._ledger import Ledger

__all__ = ["Executor", "LegSpec", "OpenResult", "Quote", "TradeEvent"]

MS_PER_DAY = 86_400_000


@dataclass(frozen=True, slots=True)
class LegSpec:
    """A leg to open: a side of one market on one exchange."""

    exchange: str
    market: str  # perp | spot
    side: str  # long | short


@dataclass(frozen=True, slots=True)
class Quote:
    bid: float | None
    ask: float | None
    ref: float | None  # perp mark, spot mid (or the one side there is)
    fee_observed: float | None

    def fill(self, buy: bool, slippage: float) -> tuple[float, str] | None:
        """The fill price and where it came from: the book side, else ref -/+ slippage."""
        if buy and self.ask is not None:
            return self.ask, "ask"
        if not buy and self.bid is not None:
            return self.bid, "bid"
        if self.ref is None:
            return None
        if buy:
            return self.ref * (1 + slippage), "mark+slippage"
        return self.ref * (1 - slippage), "mark-slippage"


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """Something an operator may want to hear about (open, close, risk, funding)."""

    kind: str
    text: str
    position_id: int | None = None


@dataclass(frozen=True, slots=True)
class OpenResult:
    decision: str  # open | cut | blocked
    amount: float
    reason: str | None
    position: PaperPosition | None


def quote(view: SnapshotView, exchange: str, coin: str, market: str) -> Quote:
    if market == "perp":
        o = view.perp(exchange, coin)
        if o is None:
            return Quote(None, None, None, None)
        ref = o.mark if o.mark is not None else o.mid()
        return Quote(o.bid, o.ask, ref, o.taker_fee)
    o = view.spot(exchange, coin)
    if o is None:
        return Quote(None, None, None, None)
    ref = o.mid()
    if ref is None:
        ref = o.bid if o.bid is not None else o.ask
    return Quote(o.bid, o.ask, ref, o.taker_fee)


class Executor:
    """Holds the open book and the paper balances; every change goes to the ledger."""

    def __init__(self, config: TradingConfig, ledger: Ledger) -> None:
        self.config = config
        self.ledger = ledger
        self.positions: dict[int, PaperPosition] = {}
        self.cash: dict[str, float] = {}
        self.initial: dict[str, float] = {}
        self.events: list[TradeEvent] = []  # drained by the runtime after each commit
        self._configured_fees = config.engine_config().taker_fees
        self._load()

    # -- state -------------------------------------------------------------------------
    def _load(self) -> None:
        """Balances and open positions from the ledger; the config seeds a new ledger only."""
        stored = self.ledger.balances()
        with self.ledger.cycle():
            for exchange, balance in self.config.balances().items():
                if exchange not in stored:
                    self.ledger.insert(
                        "balances", {"exchange": exchange, "initial": balance, "cash": balance}
                    )
                    stored[exchange] = (balance, balance)
        for exchange, (initial, cash) in stored.items():
            self.initial[exchange] = initial
            self.cash[exchange] = cash
        for row in self.ledger.open_position_rows():
            p = PaperPosition.from_row(row)
            self.positions[p.id] = p

    def margin(self, exchange: str) -> float:
        """Collateral the open legs on an exchange reserve (notional / leverage each)."""
        lev = self.config.leverage
        return sum(
            p.notional / lev
            for p in self.positions.values()
            for leg in p.legs
            if leg.exchange == exchange
        )

    def free(self, exchange: str) -> float:
        return self.cash.get(exchange, 0.0) - self.margin(exchange)

    def exposure(self) -> float:
        return sum(p.notional for p in self.positions.values())

    def equity(self) -> float:
        """Cash on every exchange plus the open legs' unrealised price pnl."""
        return sum(self.cash.values()) + sum(p.price for p in self.positions.values())

    def _fee_rate(self, exchange: str, market: str, observed: float | None) -> float:
        """The observation's fee, else the configuration's, else the engine's default."""
        return resolve_taker_fee(exchange, market, observed, self._configured_fees)[0]

    # -- step 1: funding and borrow interest ---------------------------------------
    def settle(self, view: SnapshotView, t: int) -> float:
        """Settle funding due at or before t, accrue borrow interest; returns funding total."""
        total = 0.0
        for p in self.positions.values():
            for leg in p.legs:
                if leg.market == "perp":
                    total += self._settle_leg(p, leg, view, t)
                elif leg.borrowed:
                    self._accrue_borrow(p, leg, view, t)
        return total

    def _settle_leg(self, p: PaperPosition, leg: PaperLeg, view: SnapshotView, t: int) -> float:
        paid = 0.0
        due, rate = leg.next_funding_ts, leg.funding_rate
        if due is not None and rate is not None and p.opened_at < due <= t:
            obs = view.perp(leg.exchange, p.coin)
            mark = obs.mark if obs is not None and obs.mark is not None else leg.mark
            # The short receives a positive rate: a long pays size * mark * rate.
            amount = -leg.sign * leg.size * mark * rate
            cur = self.ledger.execute(
                "insert or ignore into funding_payments "
                "(position_id, exchange, ts, rate, mark, size, amount) values (?,?,?,?,?,?,?)",
                [p.id, leg.exchange, due, rate, mark, leg.size, amount],
            )
            if cur.rowcount == 1:  # 0: this settlement is already in the ledger
                leg.funding += amount
                self.cash[leg.exchange] += amount
                paid = amount
        self._watch_funding(p, leg, view, t)
        return paid

    def _watch_funding(self, p: PaperPosition, leg: PaperLeg, view: SnapshotView, t: int) -> None:
        """Remember the next settlement and the rate that will settle then."""
        obs = view.perp(leg.exchange, p.coin)
        if obs is None or obs.next_funding_ts is None or obs.funding_rate is None:
            return  # keep what we knew: an outage does not forget a pending settlement
        if leg.next_funding_ts is not None and leg.next_funding_ts <= t:
            leg.next_funding_ts = None  # consumed (or not ours: opened after it)
        if obs.next_funding_ts > t or leg.next_funding_ts is None:
            leg.next_funding_ts = obs.next_funding_ts
            leg.funding_rate = obs.funding_rate

    def _accrue_borrow(self, p: PaperPosition, leg: PaperLeg, view: SnapshotView, t: int) -> None:
        # Interest on the borrowed coins over the time since the last accrual, at the
        # rate seen then, valued at the current spot price.
        q = quote(view, leg.exchange, p.coin, "spot")
        price = q.ref if q.ref is not None else leg.mark
        rate = leg.borrow_rate_daily
        elapsed = t - leg.accrued_to
        if rate is not None and elapsed > 0:
            amount = leg.size * price * rate * elapsed / MS_PER_DAY
            leg.borrow += amount
            self.cash[leg.exchange] -= amount
            self.ledger.insert(
                "borrow_charges",
                {
                    "position_id": p.id,
                    "exchange": leg.exchange,
                    "ts": t,
                    "rate_daily": rate,
                    "seconds": elapsed / 1000,
                    "amount": amount,
                },
            )
        leg.accrued_to = max(leg.accrued_to, t)
        b = view.borrow_obs(leg.exchange, p.coin)
        if b is not None and b.borrow_rate_daily is not None:
            leg.borrow_rate_daily = b.borrow_rate_daily

    # -- step 2: mark to market ------------------------------------------------------
    def mark(self, view: SnapshotView) -> None:
        """Mark every open leg; a leg without a price keeps its last mark."""
        for p in self.positions.values():
            for leg in p.legs:
                q = quote(view, leg.exchange, p.coin, leg.market)
                if q.ref is not None:
                    leg.mark = q.ref

    # -- step 3: closes --------------------------------------------------------------
    def close(
        self,
        p: PaperPosition,
        view: SnapshotView,
        t: int,
        reason: str,
        force: bool = False,
        by_risk_limit: bool = False,
    ) -> bool:
        """Close both legs together at the book (or mark -/+ slippage).

        `by_risk_limit` (stop_loss, max_hold) makes the notification a `risk` one.

        Without a price for a leg the close waits for a later cycle, so the hedge is
        never left half open; `force` (halt --close-all) uses the leg's last mark.
        """
        fills: list[tuple[PaperLeg, float, str, float]] = []
        for leg in p.legs:
            q = quote(view, leg.exchange, p.coin, leg.market)
            got = q.fill(buy=leg.side == "short", slippage=self.config.slippage)
            if got is None:
                if not force:
                    self.events.append(
                        TradeEvent(
                            "error",
                            f"position {p.id}: close ({reason}) deferred: no price for "
                            f"{p.coin} {leg.market} on {leg.exchange}",
                            p.id,
                        )
                    )
                    return False
                buy = leg.side == "short"
                slip = self.config.slippage
                got = (leg.mark * (1 + slip if buy else 1 - slip), "last mark (forced)")
            price, source = got
            fills.append(
                (leg, price, source, self._fee_rate(leg.exchange, leg.market, q.fee_observed))
            )
        for leg, price, source, fee_rate in fills:
            fee = leg.size * price * fee_rate
            leg.exit_price = price
            leg.exit_fee = fee
            self.cash[leg.exchange] += leg.price_pnl - fee
            side = "buy" if leg.side == "short" else "sell"
            self._order_and_fill(
                p.id, p.coin, t, "close", leg, side, leg.size * price, price, fee, fee_rate, source
            )
        p.status = "closed"
        p.closed_at = t
        p.close_reason = reason
        del self.positions[p.id]
        self.ledger.update("positions", "id", p.id, p.row(t))
        self.events.append(
            TradeEvent(
                "risk" if by_risk_limit else "close",
                f"closed #{p.id} {p.rule_name} {p.subject.describe()} ({reason}): "
                f"pnl {p.pnl:+.2f} (funding {p.funding:+.2f}, fees {p.fees:+.2f}, "
                f"price {p.price:+.2f}, borrow {p.borrow:+.2f})",
                p.id,
            )
        )
        return True

    # -- step 4: entries -----------------------------------------------------------------
    def open(
        self,
        *,
        rule_name: str,
        bindings: dict[str, str],
        ruleset_sha: str,
        subject: Subject,
        legs: list[LegSpec],
        amount: float,
        view: SnapshotView,
        t: int,
    ) -> OpenResult:
        """Open both legs together, or nothing: blocked when a price or balance is missing.

        Risk limits are decided before this call (the runtime asks its RiskBudget);
        this checks what only the executor knows: quotes and paper balances.
        """
        planned: list[tuple[LegSpec, float, str, float, float]] = []
        need: dict[str, float] = {}
        for spec in legs:
            q = quote(view, spec.exchange, subject.coin, spec.market)
            got = q.fill(buy=spec.side == "long", slippage=self.config.slippage)
            if got is None:
                return OpenResult(
                    "blocked",
                    amount,
                    f"no price for {subject.coin} {spec.market} on {spec.exchange}",
                    None,
                )
            price, source = got
            fee_rate = self._fee_rate(spec.exchange, spec.market, q.fee_observed)
            planned.append((spec, price, source, fee_rate, q.ref if q.ref is not None else price))
            need[spec.exchange] = (
                need.get(spec.exchange, 0.0) + amount / self.config.leverage + amount * fee_rate
            )
        for exchange, needed in need.items():
            free = self.free(exchange)
            if needed > free + 1e-9:
                return OpenResult(
                    "blocked",
                    amount,
                    f"balance: {exchange} has {max(free, 0):.2f} free, needs {needed:.2f}",
                    None,
                )
        paper_legs: list[PaperLeg] = []
        for spec, price, _source, fee_rate, ref in planned:
            size = amount / price
            paper_legs.append(
                PaperLeg(
                    exchange=spec.exchange,
                    market=spec.market,
                    side=spec.side,
                    borrowed=spec.market == "spot" and spec.side == "short",
                    size=size,
                    entry_price=price,
                    entry_fee=size * price * fee_rate,
                    mark=ref,
                    accrued_to=t,
                )
            )
        p = PaperPosition(
            id=0,
            rule_name=rule_name,
            bindings=dict(bindings),
            ruleset_sha=ruleset_sha,
            subject=subject,
            legs=paper_legs,
            notional=amount,
            opened_at=t,
        )
        for leg in paper_legs:
            if leg.market == "perp":
                self._watch_funding(p, leg, view, t)
            elif leg.borrowed:
                b = view.borrow_obs(leg.exchange, subject.coin)
                leg.borrow_rate_daily = None if b is None else b.borrow_rate_daily
        p.id = self.ledger.insert("positions", p.row(t))
        for leg, (spec, price, source, fee_rate, _ref) in zip(paper_legs, planned, strict=True):
            self.cash[leg.exchange] -= leg.entry_fee
            side = "buy" if spec.side == "long" else "sell"
            self._order_and_fill(
                p.id,
                subject.coin,
                t,
                "open",
                leg,
                side,
                amount,
                price,
                leg.entry_fee,
                fee_rate,
                source,
            )
        self.positions[p.id] = p
        self.events.append(
            TradeEvent(
                "open",
                f"opened #{p.id} {rule_name} {subject.describe()}: "
                + ", ".join(
                    f"{lg.side} {lg.market} {lg.exchange} @ {lg.entry_price:g}" for lg in paper_legs
                )
                + f", {amount:.2f} per leg",
                p.id,
            )
        )
        return OpenResult("open", amount, None, p)

    # -- ledger ----------------------------------------------------------------------
    def _order_and_fill(
        self,
        position_id: int,
        coin: str,
        t: int,
        intent: str,
        leg: PaperLeg,
        side: str,
        notional: float,
        price: float,
        fee: float,
        fee_rate: float,
        source: str,
    ) -> None:
        order_id = self.ledger.insert(
            "orders",
            {
                "ts": t,
                "position_id": position_id,
                "intent": intent,
                "exchange": leg.exchange,
                "coin": coin,
                "market": leg.market,
                "side": side,
                "notional": notional,
                "status": "filled",
                "reason": None,
            },
        )
        self.ledger.insert(
            "fills",
            {
                "order_id": order_id,
                "position_id": position_id,
                "ts": t,
                "exchange": leg.exchange,
                "market": leg.market,
                "side": side,
                "price": price,
                "size": leg.size,
                "fee": fee,
                "fee_rate": fee_rate,
                "price_source": source,
            },
        )

    def persist(self, t: int) -> None:
        """Write every open position and every balance (inside the cycle's transaction)."""
        for p in self.positions.values():
            self.ledger.update("positions", "id", p.id, p.row(t))
        for exchange, cash in self.cash.items():
            self.ledger.update("balances", "exchange", exchange, {"cash": cash})
