"""The live executor: the paper executor's book and decisions, orders through ccxt.

    ex = LiveExecutor(config, ledger, venues, notifier=notifier, redact=redactor)
    problems = ex.start(needs)        # markets, leverage, borrow support, balances, recovery
    # then the runtime calls ex.settle / mark / close / open / persist each cycle

What it shares with paper trading: positions, legs and pnl parts (`PaperPosition`),
funding computed from settlements, marks, the risk decisions made before `open`
and the sizing function (`size_hedge`). What it adds: every order has a ledger
intent and a client order id first (`HedgeTrader`), fills are what the exchange
reports, a hedge never stays one-legged without an alert, and the book is
reconciled with the exchanges' positions, balances and funding payments.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import ccxt

from rulebook.market import PROFILES, MarketIndex, MarketRef, SnapshotView

from .._book import PaperLeg, PaperPosition
from .._config import ExchangeConfig, TradingConfig
from .._executor import CloseResult, Fill, OpenRequest, OpenResult, TradeEvent
from .._ledger import Ledger
from .._live_ledger import LiveLedger
from .._notify import Notifier
from .._paper import PaperExecutor, quote
from .._sizing import LegMarket, size_hedge
from ._exchange_reads import balance_amounts, funding_records, signed_positions
from ._hedge import HedgeLeg, HedgeResult, HedgeTrader, LegFill
from ._markets import TradeNeeds
from ._orders import OrderGateway, OrderRequest

__all__ = ["LiveExecutor", "Venue"]

#: how old an unresolved intent must be before a restart may call it never sent
RESTART_GRACE_S = 10.0


@dataclass(slots=True)
class Venue:
    """One exchange as the live executor trades it."""

    exchange: str
    client: ccxt.Exchange
    gateway: OrderGateway
    settings: ExchangeConfig = field(default_factory=ExchangeConfig)
    index: MarketIndex | None = None
    #: free balance per (account type, currency), from the last fetch_balance
    free: dict[tuple[str, str], float] = field(default_factory=dict)
    total: dict[tuple[str, str], float] = field(default_factory=dict)

    def ref(self, coin: str, market: str) -> MarketRef | None:
        if self.index is None:
            return None
        return self.index.perp(coin) if market == "perp" else self.index.spot(coin)

    def leg_market(self, coin: str, market: str) -> LegMarket | None:
        ref = self.ref(coin, market)
        if ref is None:
            return None
        mode = int(getattr(self.client, "precisionMode", 4) or 4)
        return LegMarket.from_ccxt(self.exchange, market, ref.market, mode, ref.scale)

    def quote_currency(self, coin: str, market: str) -> str | None:
        ref = self.ref(coin, market)
        return None if ref is None else ref.settle


def _account(market: str) -> str:
    return "swap" if market == "perp" else "spot"


class LiveExecutor(PaperExecutor):
    mode = "live"  # the application layer wires live market data by it
    def __init__(
        self,
        config: TradingConfig,
        ledger: Ledger,
        venues: Mapping[str, Venue],
        *,
        notifier: Notifier | None = None,
        redact: Callable[[object], str] = str,
        clock: Callable[[], float] = time.monotonic,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.live = LiveLedger(ledger)  # first: refuses a paper ledger before anything is written
        self.venues = dict(venues)
        self.notifier = notifier
        self.redact = redact
        self.now_ms = now_ms
        self.entries_stopped: dict[str, str] = {}  # why entries are stopped, by cause
        self.cycles = 0
        super().__init__(config, ledger)
        self.trader = HedgeTrader(
            {name: v.gateway for name, v in self.venues.items()},
            self.live,
            config.live,
            self._alert,
            clock=clock,
            now_ms=now_ms,
        )
        self.unhedged: set[int] = set()
        self.closing: dict[int, str] = {}  # position id -> close reason, for a close to finish
        self.traded: dict[str, set[str]] = {}  # perp symbols the ruleset trades, per exchange
        self.accounts: dict[str, set[str]] = {}  # swap / spot accounts the legs use, per exchange

    # -- state -------------------------------------------------------------------------
    def _load(self) -> None:
        """Open positions from the ledger; balances come from the exchanges (`start`)."""
        for exchange, (initial, cash) in self.ledger.balances().items():
            self.initial[exchange] = initial
            self.cash[exchange] = cash
        for p in self.ledger.open_positions():
            self._positions[p.id] = p

    def _alert(self, kind: str, text: str, position_id: int | None = None) -> None:
        """An event in the ledger now (committed) and a notification now: leg risk cannot
        wait for the end of the cycle."""
        text = self.redact(text)
        self.live.event(kind, text, self.now_ms())
        if self.notifier is not None:
            self.notifier.send(kind, text)

    def stop_entries(self, cause: str, why: str) -> None:
        if self.entries_stopped.get(cause) != why:
            self.entries_stopped[cause] = why
            self._alert("risk", f"entries stopped: {why}")

    def resume_entries(self, cause: str) -> None:
        if self.entries_stopped.pop(cause, None) is not None:
            self._alert("risk", f"entries resumed: {cause} is in order again")

    # -- start-up ----------------------------------------------------------------------
    def start(self, needs: TradeNeeds) -> list[str]:
        """Markets, leverage and margin mode, borrow support, balances, then what a
        previous run left in flight. Returns the problems that refuse a start."""
        problems: list[str] = []
        for p in self.positions.values():
            needs.add_positions((leg.exchange, p.coin, leg.market) for leg in p.legs)
        for exchange in needs.exchanges:
            venue = self.venues.get(exchange)
            if venue is None:
                problems.append(f"{exchange}: no client (keys missing?)")
                continue
            try:
                markets = venue.client.load_markets()
            except ccxt.BaseError as e:
                problems.append(f"{exchange}: cannot load markets: {venue.gateway._why(e)}")
                continue
            venue.index = MarketIndex(markets.values(), PROFILES[exchange].quotes)
        for exchange, coin, market in sorted(needs.markets):
            venue = self.venues.get(exchange)
            if venue is None or venue.index is None:
                continue
            if venue.ref(coin, market) is None:
                rules = ", ".join(sorted(needs.rules.get((exchange, coin), ()))) or "open positions"
                problems.append(f"{exchange}: no {coin} {market} market (needed by {rules})")
        for exchange, coin in sorted(needs.borrow_always | needs.borrow_maybe):
            venue = self.venues.get(exchange)
            if venue is None:
                continue
            if not (venue.client.has.get("borrowCrossMargin") and venue.client.has.get("repayCrossMargin")):
                rules = ", ".join(sorted(needs.rules.get((exchange, coin), ())))
                why = f"ccxt cannot borrow on {exchange} (no cross-margin borrow/repay)"
                if (exchange, coin) in needs.borrow_always:
                    problems.append(f"{exchange}: rule(s) {rules} need a borrowed {coin}: {why}")
                else:
                    self._alert("risk", f"{exchange}: entries of {rules} that need a borrowed "
                                f"{coin} (negative funding) will be blocked: {why}")  # fmt: skip
        if problems:
            return problems
        for exchange, coin, market in sorted(needs.markets):
            self.accounts.setdefault(exchange, set()).add(_account(market))
            if market == "perp":
                self._set_leverage(self.venues[exchange], coin)
                ref = self.venues[exchange].ref(coin, "perp")
                if ref is not None:
                    self.traded.setdefault(exchange, set()).add(ref.symbol)
        problems += self.refresh_balances()
        if problems:
            return problems
        self._seed_balances()
        self.recover()
        self.reconcile(self.now_ms())
        return []

    def _set_leverage(self, venue: Venue, coin: str) -> None:
        ref = venue.ref(coin, "perp")
        if ref is None:
            return
        s, client = venue.settings, venue.client
        if s.margin_mode is not None:
            if client.has.get("setMarginMode"):
                try:
                    client.set_margin_mode(s.margin_mode, ref.symbol)
                except ccxt.MarginModeAlreadySet:
                    pass
                except ccxt.BaseError as e:
                    self._alert("risk", f"{venue.exchange}: could not set margin mode "
                                f"{s.margin_mode} on {ref.symbol}: {venue.gateway._why(e)}; "
                                "check it on the exchange")  # fmt: skip
            else:
                self._alert("risk", f"{venue.exchange}: ccxt cannot set the margin mode; check "
                            f"that {ref.symbol} is {s.margin_mode} on the exchange")  # fmt: skip
        lev = s.leverage if s.leverage is not None else self.config.leverage
        if client.has.get("setLeverage"):
            try:
                client.set_leverage(lev, ref.symbol)
            except ccxt.BaseError as e:
                self._alert("risk", f"{venue.exchange}: could not set leverage {lev:g} on "
                            f"{ref.symbol}: {venue.gateway._why(e)}; check it on the exchange")  # fmt: skip
        elif s.leverage is not None:
            self._alert("risk", f"{venue.exchange}: ccxt cannot set leverage; check that "
                        f"{ref.symbol} is at {lev:g}x on the exchange")  # fmt: skip

    def refresh_balances(self) -> list[str]:
        problems = []
        for name, venue in self.venues.items():
            # only the accounts the legs use: an exchange may not serve the other
            for account in sorted(self.accounts.get(name) or ("swap", "spot")):
                try:
                    bal = venue.client.fetch_balance({"type": account})
                except ccxt.BaseError as e:
                    problems.append(f"{name}: cannot read the {account} balance: "
                                    f"{venue.gateway._why(e)}")  # fmt: skip
                    break
                for cur, (free, total) in balance_amounts(bal).items():
                    venue.free[(account, cur)] = free
                    venue.total[(account, cur)] = total
        return problems

    def _seed_balances(self) -> None:
        """The ledger's cash per exchange starts at the quote balance the exchange reports."""
        for name, venue in self.venues.items():
            if name in self.cash:
                continue
            cash = max(
                (venue.total.get((a, q), 0.0) for a in ("swap", "spot") for q in PROFILES[name].quotes),
                default=0.0,
            )
            self.ledger.record_account(name, cash)
            self.initial[name] = self.cash[name] = cash

    # -- legs ----------------------------------------------------------------------------
    def _hedge_legs(
        self, coin: str, specs: list[tuple[str, str, str]], prices: list[float]
    ) -> list[HedgeLeg] | str:
        legs = []
        for i, ((exchange, market, side), price) in enumerate(zip(specs, prices, strict=True)):
            venue = self.venues.get(exchange)
            rules = None if venue is None else venue.leg_market(coin, market)
            if venue is None or rules is None or rules.symbol is None:
                return f"no {coin} {market} market on {exchange}"
            borrowed = market == "spot" and side == "short"
            legs.append(HedgeLeg(i, exchange, market, side, rules.symbol, rules, coin, price, borrowed))
        return legs

    # -- step 4: entries -----------------------------------------------------------------
    def open(self, request: OpenRequest, view: SnapshotView, t: int) -> OpenResult:
        rule_name, bindings, ruleset_sha = request.rule_name, request.bindings, request.ruleset_sha
        subject, legs, amount = request.subject, request.legs, request.amount
        if self.entries_stopped:
            return OpenResult("blocked", amount, "entries stopped: "
                              + "; ".join(self.entries_stopped.values()), None)  # fmt: skip
        coin = subject.coin
        prices: list[float] = []
        fees: list[float] = []
        for spec in legs:
            q = quote(view, spec.exchange, coin, spec.market)
            got = q.fill(buy=spec.side == "long", slippage=self.config.slippage)
            if got is None:
                return OpenResult("blocked", amount,
                                  f"no price for {coin} {spec.market} on {spec.exchange}", None)  # fmt: skip
            prices.append(got[0])
            fees.append(self._fee_rate(spec.exchange, spec.market, q.fee_observed))
        planned = self._hedge_legs(coin, [(s.exchange, s.market, s.side) for s in legs], prices)
        if isinstance(planned, str):
            return OpenResult("blocked", amount, planned, None)
        for leg in planned:
            if leg.borrowed and not self.venues[leg.exchange].client.has.get("borrowCrossMargin"):
                return OpenResult("blocked", amount, f"needs a borrowed {coin} on {leg.exchange}, "
                                  "which ccxt cannot borrow there", None)  # fmt: skip
        size = size_hedge(amount, [lg.rules for lg in planned], prices)
        if not size.ok:
            return OpenResult("blocked", amount, size.blocked, None)
        need: dict[tuple[str, str, str], float] = {}
        for leg, price, fee in zip(planned, prices, fees, strict=True):
            cur = self.venues[leg.exchange].quote_currency(coin, leg.market) or "USDT"
            notional = size.qty * price
            lev = self.venues[leg.exchange].settings.leverage or self.config.leverage
            margin = notional if (leg.market == "spot" and not leg.borrowed) else notional / lev
            key = (leg.exchange, _account(leg.market), cur)
            need[key] = need.get(key, 0.0) + margin + notional * fee
        for (exchange, account, cur), needed in need.items():
            free = self.venues[exchange].free.get((account, cur), 0.0)
            if needed > free + 1e-9:
                return OpenResult("blocked", amount, f"balance: {exchange} {account} has "
                                  f"{free:.2f} {cur} free, needs {needed:.2f}", None)  # fmt: skip
        notional = size.qty * max(prices)
        p = PaperPosition(
            id=0, rule_name=rule_name, bindings=dict(bindings), ruleset_sha=ruleset_sha,
            subject=subject, notional=notional, opened_at=t, status="opening",
            legs=[PaperLeg(exchange=lg.exchange, market=lg.market, side=lg.side,
                           borrowed=lg.borrowed, size=0.0, entry_price=price, entry_fee=0.0,
                           mark=price, accrued_to=t)
                  for lg, price in zip(planned, prices, strict=True)],
        )  # fmt: skip
        p.id = self.live.insert_position(p, t)
        result = self.trader.open(p.id, planned, size.qty)
        return self._opened(p, planned, result, view, t, amount)

    def _opened(
        self,
        p: PaperPosition,
        planned: list[HedgeLeg],
        result: HedgeResult,
        view: SnapshotView,
        t: int,
        amount: float,
    ) -> OpenResult:
        self._apply_entry(p, result.fills)
        for name in sorted({lg.exchange for lg in planned}):
            self._spend(self.venues[name], planned, result.fills)
        if result.status == "none":
            p.status, p.closed_at, p.close_reason = "failed", t, f"not opened: {result.reason}"
            self.live.update_position(p, t)
            self._alert("risk", f"position {p.id} {p.rule_name} {p.subject.describe()} not "
                        f"opened: {result.reason}", p.id)  # fmt: skip
            return OpenResult("blocked", amount, f"not filled: {result.reason}", None)
        if result.status == "unhedged":
            p.status = "unhedged"
            self.unhedged.add(p.id)
            self.stop_entries(f"unhedged:{p.id}", f"position {p.id} is unhedged")
        else:
            p.status = "open"
        self._positions[p.id] = p
        self.live.update_position(p, t)
        self._write_fills(p, planned, result.fills, t, "open")
        self._events.append(TradeEvent("open", f"opened #{p.id} {p.rule_name} "
                                      f"{p.subject.describe()} live: " + ", ".join(
                                          f"{lg.side} {lg.market} {lg.exchange} {lg.size:g} @ "
                                          f"{lg.entry_price:g}" for lg in p.legs)
                                      + f", {p.notional:.2f} per leg", p.id))  # fmt: skip
        return OpenResult("open", p.notional, None, p)

    def _apply_entry(self, p: PaperPosition, fills: list[LegFill]) -> None:
        for leg, f in zip(p.legs, fills, strict=True):
            leg.size = f.qty
            if f.average is not None:
                leg.entry_price = f.average
                leg.mark = f.average
            leg.entry_fee = f.fee
        prices = [lg.entry_price for lg in p.legs]
        p.notional = max(f.qty for f in fills) * max(prices)

    def _spend(self, venue: Venue, planned: list[HedgeLeg], fills: list[LegFill]) -> None:
        """Keep the free balances current between fetches (fees and margin just used)."""
        for lg, f in zip(planned, fills, strict=True):
            if lg.exchange != venue.exchange or f.qty <= 0:
                continue
            cur = venue.quote_currency(lg.coin, lg.market) or "USDT"
            key = (_account(lg.market), cur)
            lev = venue.settings.leverage or self.config.leverage
            px = f.average or lg.price
            used = f.qty * px if (lg.market == "spot" and not lg.borrowed) else f.qty * px / lev
            venue.free[key] = venue.free.get(key, 0.0) - used - f.fee
            self.cash[lg.exchange] = self.cash.get(lg.exchange, 0.0) - f.fee

    def _write_fills(
        self, p: PaperPosition, planned: list[HedgeLeg], fills: list[LegFill], t: int, intent: str
    ) -> None:
        for leg, lg, f in zip(p.legs, planned, fills, strict=True):
            if f.added <= 0 and intent == "open":
                continue
            side = lg.order_side(intent == "open")
            price = leg.entry_price if intent == "open" else (leg.exit_price or leg.mark)
            rate = f.fee / (f.added * price) if f.added > 0 and price else 0.0
            fill = Fill(leg.exchange, leg.market, "buy" if side == "buy" else "sell", price, leg.size,
                        f.fee if intent == "open" else leg.exit_fee, rate,
                        f"exchange ({lg.symbol})")  # fmt: skip
            self._record_order_and_fill(p.id, p.coin, t, intent, leg.size * price, fill)

    # -- step 3: closes ---------------------------------------------------------------------
    def close(
        self,
        p: PaperPosition,
        view: SnapshotView,
        t: int,
        reason: str,
        *,
        force: bool = False,
        by_risk_limit: bool = False,
    ) -> CloseResult:
        """Close both legs on the exchanges (reduce-only on perps); closed when wholly closed."""
        prices = []
        for leg in p.legs:
            q = quote(view, leg.exchange, p.coin, leg.market)
            got = q.fill(buy=leg.side == "short", slippage=self.config.slippage)
            prices.append(got[0] if got is not None else leg.mark)
        planned = self._hedge_legs(p.coin, [(lg.exchange, lg.market, lg.side) for lg in p.legs], prices)
        if isinstance(planned, str):
            self._alert("error", f"position {p.id}: cannot close: {planned}", p.id)
            return CloseResult(False, planned)
        p.status = "closing"
        self.closing[p.id] = reason
        self.live.update_position(p, t)
        held = [leg.size for leg in p.legs]
        result = self.trader.close(p.id, planned, held)
        for leg, lg, f, before in zip(p.legs, planned, result.fills, held, strict=True):
            closed = before - f.qty
            last = self._last_fill(p.id, lg.index, "close")
            if closed > 0:
                price = last[0] if last[0] is not None else lg.price
                # the closed part's pnl is realised into cash; what is left keeps its entry
                self.cash[leg.exchange] = self.cash.get(leg.exchange, 0.0) + (
                    leg.sign * closed * (price - leg.entry_price) - f.fee
                )
                leg.exit_price = price
                leg.exit_fee += f.fee
            leg.size = f.qty
        if result.status != "closed":
            self.live.update_position(p, t)
            return CloseResult(False, f"close {result.status}: retried next cycle")
        for leg, before in zip(p.legs, held, strict=True):
            leg.size = before  # the position's record keeps the sizes it held
        self.closing.pop(p.id, None)
        self.unhedged.discard(p.id)
        self.resume_entries(f"unhedged:{p.id}")
        p.status, p.closed_at, p.close_reason = "closed", t, reason
        self._positions.pop(p.id, None)
        self.live.update_position(p, t)
        self._write_fills(p, planned, result.fills, t, "close")
        self._events.append(TradeEvent("risk" if by_risk_limit else "close",
                                      f"closed #{p.id} {p.rule_name} {p.subject.describe()} "
                                      f"live ({reason}): pnl {p.pnl:+.2f} (funding {p.funding:+.2f}, "
                                      f"fees {p.fees:+.2f}, price {p.price:+.2f})", p.id))  # fmt: skip
        return CloseResult(True)

    def _last_fill(self, position_id: int, leg: int, intent: str) -> tuple[float | None, float]:
        """Average price and coins of a leg's fills of one intent (all attempts)."""
        filled = [(r.filled_qty, r.average or 0.0) for r in self.live.intents(position_id)
                  if r.leg == leg and r.intent == intent and r.filled_qty]  # fmt: skip
        qty = sum(q for q, _ in filled)
        if qty <= 0:
            return None, 0.0
        return sum(q * avg for q, avg in filled) / qty, qty

    # -- before step 1: what is still in flight, and reconciliation --------------------------
    def begin_cycle(self, view: SnapshotView, t: int) -> None:
        self.cycles += 1
        self._finish_in_flight(view, t)
        if self.cycles % self.config.live.reconcile_every == 0:
            self.reconcile(t)

    def _finish_in_flight(self, view: SnapshotView, t: int) -> None:
        """Every cycle: unhedged positions are rebalanced, unfinished closes retried."""
        for pid in sorted(self.unhedged):
            p = self.positions.get(pid)
            if p is None:
                self.unhedged.discard(pid)
                continue
            planned = self._hedge_legs(p.coin, [(lg.exchange, lg.market, lg.side) for lg in p.legs],
                                       [lg.mark for lg in p.legs])  # fmt: skip
            if isinstance(planned, str):
                continue
            fills = [LegFill(qty=lg.size) for lg in p.legs]
            deadline = self.trader.clock() + self.config.live.leg_timeout
            result = self.trader.balance(pid, planned, fills, deadline, opening=False)
            for leg, f in zip(p.legs, result.fills, strict=True):
                leg.size = f.qty
            if result.status == "open":
                p.status = "open"
                self.unhedged.discard(pid)
                self.resume_entries(f"unhedged:{pid}")
                self._alert("risk", f"position {pid} is hedged again: "
                            + ", ".join(f"{lg.exchange} {lg.market} {lg.size:g}" for lg in p.legs),
                            pid)  # fmt: skip
            elif result.status == "none":
                p.status, p.closed_at, p.close_reason = "closed", t, "unwound (leg risk)"
                self._positions.pop(pid, None)
                self.unhedged.discard(pid)
                self.resume_entries(f"unhedged:{pid}")
            self.live.update_position(p, t)
        for pid, reason in sorted(self.closing.items()):
            p = self.positions.get(pid)
            if p is None:
                self.closing.pop(pid, None)
                continue
            self.close(p, view, t, reason)

    # -- reconciliation -------------------------------------------------------------------
    def expected_positions(self) -> dict[tuple[str, str], float]:
        """Signed coins per (exchange, perp symbol) the ledger holds open."""
        out: dict[tuple[str, str], float] = {}
        for p in self.positions.values():
            for leg in p.legs:
                if leg.market != "perp":
                    continue
                ref = self.venues[leg.exchange].ref(p.coin, "perp") if leg.exchange in self.venues else None
                if ref is None:
                    continue
                key = (leg.exchange, ref.symbol)
                out[key] = out.get(key, 0.0) + leg.sign * leg.size
        return out

    def reconcile(self, t: int) -> list[str]:
        """Ledger positions against the exchanges' (fetchPositions, fetchBalance), and the
        funding the exchanges report (fetchFundingHistory). Returns the differences."""
        tol = self.config.live.position_tolerance
        expected = self.expected_positions()
        diffs: list[str] = []
        for problem in self.refresh_balances():
            self._alert("outage", f"reconciliation: {problem}")
        for name, venue in self.venues.items():
            if venue.index is None:
                continue
            symbols = sorted({s for (e, s) in expected if e == name} | self.traded.get(name, set()))
            if not symbols:
                continue
            try:
                reported = venue.client.fetch_positions(symbols)
            except ccxt.BaseError as e:
                self._alert("outage", f"{name}: reconciliation skipped: cannot read positions: "
                            f"{venue.gateway._why(e)}")  # fmt: skip
                continue
            actual = signed_positions(reported, venue.client.markets or {})
            for sym in symbols:
                exp, act = expected.get((name, sym), 0.0), actual.get(sym, 0.0)
                limit = max(abs(exp) * tol, 1e-12)
                ok = abs(act - exp) <= limit
                self.live.record_reconciliation(ts=t, exchange=name, what=f"position {sym}",
                                                expected=exp, actual=act, ok=ok)  # fmt: skip
                if not ok:
                    diffs.append(f"{name} {sym}: ledger {exp:+g}, exchange {act:+g} "
                                 f"(difference {act - exp:+g})")  # fmt: skip
            diffs += self._reconcile_spot(name, venue, t, tol)
        if diffs:
            text = "reconciliation: " + "; ".join(diffs)
            self.stop_entries("reconciliation", text)
        else:
            self.resume_entries("reconciliation")
        self.reconcile_funding(t)
        return diffs

    def _reconcile_spot(self, name: str, venue: Venue, t: int, tol: float) -> list[str]:
        """Long spot legs need at least their coins in the spot balance."""
        want: dict[str, float] = {}
        for p in self.positions.values():
            for leg in p.legs:
                if leg.exchange == name and leg.market == "spot" and not leg.borrowed:
                    ref = venue.ref(p.coin, "spot")
                    base = str(ref.market.get("base") or p.coin) if ref is not None else p.coin
                    want[base] = want.get(base, 0.0) + leg.size
        diffs = []
        for base, exp in sorted(want.items()):
            act = venue.total.get(("spot", base), 0.0)
            ok = act >= exp * (1 - tol)
            self.live.record_reconciliation(ts=t, exchange=name, what=f"spot balance {base}",
                                            expected=exp, actual=act, ok=ok)  # fmt: skip
            if not ok:
                diffs.append(f"{name} spot {base}: ledger holds {exp:g}, balance is {act:g}")
        return diffs

    def reconcile_funding(self, t: int) -> list[str]:
        """Record the payments the exchanges report beside the ledger's computed ones;
        a payment that differs beyond the tolerance is a `funding_drift` event."""
        drifts: list[str] = []
        for pos in self.live.positions_to_reconcile(since=t - 3 * 86_400_000):
            for leg in pos.legs:
                if leg.market != "perp" or leg.exchange not in self.venues:
                    continue
                venue = self.venues[leg.exchange]
                ref = venue.ref(pos.coin, "perp")
                if ref is None or not venue.client.has.get("fetchFundingHistory"):
                    continue
                try:
                    history = venue.client.fetch_funding_history(ref.symbol, pos.opened_at)
                except ccxt.BaseError:
                    continue  # the next reconciliation asks again
                end = pos.closed_at or t
                for sym, ts, amount, currency, ref_id in funding_records(leg.exchange, history):
                    if sym != ref.symbol or not (pos.opened_at <= ts <= end):
                        continue
                    self.live.record_exchange_funding(
                        exchange=leg.exchange, symbol=sym, ts=ts, amount=amount,
                        currency=currency, ref=ref_id, position_id=pos.id,
                    )  # fmt: skip
                drifts += self._funding_drift(pos.id, leg.exchange, t)
        return drifts

    def _funding_drift(self, position_id: int, exchange: str, t: int) -> list[str]:
        tol = self.config.live.funding_tolerance
        reported = self.live.reported_funding(position_id, exchange)
        out = []
        for c in self.live.computed_funding(position_id, exchange):
            near = [r for r in reported if abs(int(r.ts) - int(c.ts)) <= 300_000]
            if not near:
                continue
            got = sum(float(r.amount) for r in near)
            want = float(c.amount)
            if abs(got - want) > max(abs(want) * tol, 0.01):
                text = (f"position {position_id} {exchange}: funding at {c.ts}: ledger "
                        f"{want:+.6f}, exchange {got:+.6f} (drift {got - want:+.6f})")  # fmt: skip
                key = f"funding_drift {position_id} {exchange} {c.ts}"
                if not self.live.has_event("funding_drift", text[:60]):
                    self.live.event("funding_drift", text, t)
                    if self.notifier is not None:
                        self.notifier.send("risk", self.redact(text))
                out.append(key)
        return out

    # -- restart -----------------------------------------------------------------------------
    def recover(self) -> None:
        """Complete or unwind what a previous run left in flight: every intent that may have
        reached an exchange is looked up by its client id, then each position is brought
        to a complete hedge or none."""
        pending = self.live.intents(unresolved=True)
        if pending:
            # An order sent a moment before the crash may not be listed yet: give the
            # exchanges a few seconds before deciding that an intent never left.
            age_s = (self.now_ms() - max(int(r.ts) for r in pending)) / 1000
            if age_s < RESTART_GRACE_S:
                next(iter(self.venues.values())).gateway.sleep(RESTART_GRACE_S - age_s)
        for row in pending:
            venue = self.venues.get(row.exchange)
            if venue is None:
                continue
            held = self.ledger.read.position(int(row.position_id))
            coin = held.coin if held is not None else ""
            rules = venue.leg_market(coin, row.market)
            if rules is None:
                continue
            req = OrderRequest(
                exchange=row.exchange, symbol=row.symbol, market=row.market,
                side=row.side, amount=row.amount, client_id=row.client_id, leg=rules,
                reduce_only=bool(row.reduce_only), limit_price=row.limit_price,
                sent_at=int(row.ts),
            )  # fmt: skip
            found = venue.gateway.find(req)
            if found.status == "accepted":
                fill = venue.gateway.read_back(req, found)
                self.live.update_intent(
                    row.id, status="filled" if fill.qty > 0 else "rejected",
                    order_id=found.order_id, filled_qty=fill.qty, average=fill.average,
                    fee=fill.fee, fee_detail=fill.fee_detail, reason="found after restart",
                )  # fmt: skip
            elif found.status == "missing":
                self.live.update_intent(row.id, status="missing",
                                        reason="not on the exchange after restart: never sent")  # fmt: skip
            else:
                self._alert("risk", f"position {row.position_id}: order {row.client_id} "
                            f"on {row.exchange} cannot be looked up ({found.reason}); "
                            "retrying at the next start", row.position_id)  # fmt: skip
        for p in self.live.positions_in_flight():
            self._recover_position(p)

    def _net_fills(self, p: PaperPosition) -> list[LegFill]:
        fills = [LegFill() for _ in p.legs]
        for r in self.live.intents(p.id):
            qty = float(r.filled_qty or 0.0)
            if qty <= 0 or r.leg >= len(fills):
                continue
            f = fills[r.leg]
            if r.intent == "open":
                f.qty += qty
                f.added += qty
                f.cost += qty * float(r.average or 0.0)
            else:
                f.qty = max(0.0, f.qty - qty)
            f.fee += float(r.fee or 0.0)
        return fills

    def _recover_position(self, p: PaperPosition) -> None:
        now = self.now_ms()
        marks = [lg.mark for lg in p.legs]
        planned = self._hedge_legs(p.coin, [(lg.exchange, lg.market, lg.side) for lg in p.legs], marks)
        if isinstance(planned, str):
            self._alert("risk", f"position {p.id} left {p.status} by the last run cannot be "
                        f"recovered: {planned}; check it on the exchange", p.id)  # fmt: skip
            return
        fills = self._net_fills(p)
        was = p.status
        deadline = self.trader.clock() + self.config.live.leg_timeout
        if was == "opening":
            result = self.trader.balance(p.id, planned, fills, deadline, opening=True)
        elif was == "closing":
            result = self.trader.close(p.id, planned, [f.qty for f in fills])
            if result.status == "closed":
                result = HedgeResult("none", result.fills)
        else:  # unhedged
            result = self.trader.balance(p.id, planned, fills, deadline, opening=False)
        if was == "opening":
            self._apply_entry(p, result.fills)
        for leg, f in zip(p.legs, result.fills, strict=True):
            leg.size = f.qty
        if result.status == "none" or all(f.qty <= 0 for f in result.fills):
            p.status, p.closed_at = "closed" if was != "opening" else "failed", now
            p.close_reason = p.close_reason or f"recovered after restart: {was}, nothing left open"
            self._alert("risk", f"position {p.id} ({was} at restart): nothing left open", p.id)
        elif result.status == "open":
            p.status = "open"
            self._positions[p.id] = p
            self._alert("risk", f"position {p.id} ({was} at restart): completed, "
                        + ", ".join(f"{lg.exchange} {lg.market} {lg.size:g}" for lg in p.legs), p.id)  # fmt: skip
        else:
            p.status = result.status if result.status in ("unhedged", "closing") else "unhedged"
            self._positions[p.id] = p
            if p.status == "unhedged":
                self.unhedged.add(p.id)
                self.stop_entries(f"unhedged:{p.id}", f"position {p.id} is unhedged")
            else:
                self.closing[p.id] = p.close_reason or "close after restart"
        self.live.update_position(p, now)

    # -- halt --close-all without a runtime ---------------------------------------------------
    def close_all(self, view: SnapshotView, t: int) -> tuple[int, int]:
        """Close every open live position now; returns (closed, left open)."""
        closed = 0
        for p in list(self.positions.values()):
            if self.close(p, view, t, "halt --close-all", force=True).closed:
                closed += 1
        return closed, len(self.positions)

    def persist(self, t: int) -> None:
        for p in self.positions.values():
            self.ledger.record_position(p, t)
        for exchange, cash in self.cash.items():
            self.ledger.record_cash(exchange, cash)
