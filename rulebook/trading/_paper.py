"""The paper executor: fills, fees, balances, funding, borrow interest, closes.

It implements the `Executor` protocol: it changes its in-memory book and
records what it did through the ledger writer's named methods; the runtime
wraps a whole cycle in `ledger.cycle()` so the writes land together. Every
choice the spec leaves open is listed in docs/trading.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from rulebook.engine import resolve_taker_fee
from rulebook.market import SnapshotView, mid_price

from ._book import PaperLeg, PaperPosition
from ._config import TradingConfig
from ._executor import (
    Balance,
    CloseResult,
    Fill,
    FundingPayment,
    LegSpec,
    OpenRequest,
    OpenResult,
    Settlement,
    TradeEvent,
)
from ._ledger import Ledger
from ._records import BorrowCharge, FundingRecord, OrderRecord
from ._sizing import LegMarket, size_hedge

Side = Literal["buy", "sell"]

__all__ = ["PaperExecutor", "Quote", "quote"]

MS_PER_DAY = 86_400_000

#: up to this many open positions, equity sums `PaperPosition.price` (the rule itself);
#: above it, numpy arrays of the whole book (`_HeldMarkets.prices`), whose fixed cost of
#: ~1-5 us per numpy call is more than a few positions cost in Python
#: (tests/test_paper_marking.py holds both to the rule, on books of every size)
SMALL_BOOK = 32


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


def _quote(view: SnapshotView, exchange: str, coin: str, market: str) -> Quote:
    """`quote(view, exchange, coin, market)`, read from the view without making an
    observation (`SnapshotView.quote_figures`); the ref is `_ref_of` of its figures,
    which is `quote`'s (tests/test_paper_quotes.py compares the two)."""
    kind = "perp" if market == "perp" else "spot"  # as `quote`: perp, else the spot
    got = view.quote_figures((exchange, coin, kind))
    if got is None:
        return Quote(None, None, None, None)
    mark, bid, ask, fee = got
    return Quote(bid, ask, _ref_of(kind, mark, bid, ask), fee)


class PaperExecutor:
    """Holds the open book and the paper balances; every change goes to the ledger."""

    def __init__(self, config: TradingConfig, ledger: Ledger) -> None:
        self.config = config
        self.ledger = ledger
        self._positions: dict[int, PaperPosition] = {}
        self.cash: dict[str, float] = {}
        self.initial: dict[str, float] = {}
        self._events: list[TradeEvent] = []
        self._configured_fees = config.engine_config().taker_fees
        # What this cycle changed, for `persist`: the positions whose stored state
        # (funding, borrow interest, accrual) moved, and each held market's mark.
        # A position that only moved with its marks is not rewritten: the ledger's
        # marks table has the marks (see Ledger.record_marks).
        self._dirty: set[int] = set()
        self._marks: dict[tuple[str, str, str], float] = {}
        self._held: _HeldMarkets | None = None  # for `mark`
        self._load()

    # -- state -------------------------------------------------------------------------
    def _load(self) -> None:
        """Balances and open positions from the ledger; the config seeds a new ledger only."""
        stored = self.ledger.balances()
        with self.ledger.cycle():
            for exchange, balance in self.config.balances().items():
                if exchange not in stored:
                    self.ledger.record_account(exchange, balance)
                    stored[exchange] = (balance, balance)
        for exchange, (initial, cash) in stored.items():
            self.initial[exchange] = initial
            self.cash[exchange] = cash
        for p in self.ledger.open_positions():
            self._positions[p.id] = p

    @property
    def positions(self) -> Mapping[int, PaperPosition]:
        return self._positions

    def drain_events(self) -> list[TradeEvent]:
        events, self._events = self._events, []
        return events

    def margin(self, exchange: str) -> float:
        """Collateral the open legs on an exchange reserve (notional / leverage each)."""
        lev = self.config.leverage
        return sum(
            p.notional / lev
            for p in self._positions.values()
            for leg in p.legs
            if leg.exchange == exchange
        )

    def _free_of(self, exchanges: Iterable[str]) -> dict[str, float]:
        """`free(exchange)` of each of `exchanges`, in one pass over the book: each
        exchange's margin is summed in `margin`'s order, from `sum`'s start (0)."""
        lev = self.config.leverage
        margin: dict[str, float] = dict.fromkeys(exchanges, 0)
        for p in self._positions.values():
            for leg in p.legs:
                ex = leg.exchange
                if ex in margin:
                    margin[ex] = margin[ex] + p.notional / lev
        return {ex: self.cash.get(ex, 0.0) - m for ex, m in margin.items()}

    def free(self, exchange: str) -> float:
        return self.cash.get(exchange, 0.0) - self.margin(exchange)

    def balances(self) -> dict[str, Balance]:
        return {
            ex: Balance(self.initial.get(ex, 0.0), cash, self.free(ex))
            for ex, cash in self.cash.items()
        }

    def exposure(self) -> float:
        return sum(p.notional for p in self._positions.values())

    def equity(self) -> float:
        """Cash on every exchange plus the open legs' unrealised price pnl.

        Each position's `price` is computed for all legs at once (the same
        operations, in the same order, as `PaperPosition.price`), then summed over
        the positions in book order as before (tests/test_paper_marking.py). A small
        book (at most `SMALL_BOOK` positions) is summed by `PaperPosition.price`
        itself: numpy's fixed cost per call is more than a few legs cost in Python."""
        if len(self._positions) <= SMALL_BOOK:
            return sum(self.cash.values()) + sum(p.price for p in self._positions.values())
        prices: list[float] = self._held_markets().prices().tolist()
        return sum(self.cash.values()) + sum(prices)

    def _fee_rate(self, exchange: str, market: str, observed: float | None) -> float:
        """The observation's fee, else the configuration's, else the engine's default."""
        return resolve_taker_fee(exchange, market, observed, self._configured_fees)[0]

    def begin_cycle(self, view: SnapshotView, t: int) -> None:
        """Nothing is ever in flight on paper."""

    # -- step 1: funding and borrow interest ---------------------------------------
    def settle_funding(
        self, position: PaperPosition, leg: PaperLeg, settlement: Settlement
    ) -> FundingPayment | None:
        # The short receives a positive rate: a long pays size * mark * rate.
        s = settlement
        amount = -leg.sign * leg.size * s.mark * s.rate
        new = self.ledger.record_funding_payment(
            FundingRecord(
                position_id=position.id,
                exchange=leg.exchange,
                coin=position.coin,
                ts=s.ts,
                rate=s.rate,
                mark=s.mark,
                size=leg.size,
                amount=amount,
                interval_h=s.interval_h,
                rate_source=s.rate_source,
                mark_source=s.mark_source,
            )
        )
        if not new:  # this settlement is already in the ledger
            return None
        leg.funding += amount
        self.cash[leg.exchange] += amount
        self._dirty.add(position.id)
        return FundingPayment(position.id, leg.exchange, s.ts, amount)

    def accrue_borrow(
        self, position: PaperPosition, leg: PaperLeg, view: SnapshotView, t: int
    ) -> float:
        # Interest on the borrowed coins over the time since the last accrual, at the
        # rate seen then, valued at the current spot price.
        q = quote(view, leg.exchange, position.coin, "spot")
        price = q.ref if q.ref is not None else leg.mark
        rate = leg.borrow_rate_daily
        elapsed = t - leg.accrued_to
        amount = 0.0
        if rate is not None and elapsed > 0:
            amount = leg.size * price * rate * elapsed / MS_PER_DAY
            leg.borrow += amount
            self.cash[leg.exchange] -= amount
            self.ledger.record_borrow_charge(
                BorrowCharge(
                    position_id=position.id,
                    exchange=leg.exchange,
                    ts=t,
                    rate_daily=rate,
                    seconds=elapsed / 1000,
                    amount=amount,
                )
            )
        leg.accrued_to = max(leg.accrued_to, t)
        b = view.borrow_obs(leg.exchange, position.coin)
        if b is not None and b.borrow_rate_daily is not None:
            leg.borrow_rate_daily = b.borrow_rate_daily
        self._dirty.add(position.id)  # the accrual moved on (and the rate may have)
        return amount

    # -- step 2: mark to market ------------------------------------------------------
    def mark(self, view: SnapshotView) -> None:
        """Mark every open leg; a leg without a price keeps its last mark.

        Every held market's price is read from the view's columns in one
        vectorised lookup (`_HeldMarkets`), and only the legs whose mark moved are
        touched: the same marks as asking the view for each leg's (mark, bid, ask)
        and `_ref_of` (tests/test_paper_marking.py compares the two)."""
        held = self._held_markets()
        if not held.legs:
            return
        refs = held.refs(view)
        now = np.fromiter((leg.mark for leg in held.legs), dtype=np.float64, count=len(held.legs))
        moved_legs = np.flatnonzero((refs == refs) & (refs != now))
        if not moved_legs.size:
            return
        moved = self._marks  # the markets a leg's mark moved in: persist writes them
        legs, keys = held.legs, held.keys
        for i, ref in zip(moved_legs.tolist(), refs[moved_legs].tolist(), strict=True):
            legs[i].mark = ref
            moved[keys[i]] = ref

    def _held_markets(self) -> _HeldMarkets:
        """The open legs and their markets, made again only when the book changed."""
        book = tuple(self._positions.values())
        held = self._held
        if held is None or held.ids != tuple(map(id, book)):
            held = self._held = _HeldMarkets(book)
        return held

    # -- step 3: closes --------------------------------------------------------------
    def close(
        self,
        position: PaperPosition,
        view: SnapshotView,
        t: int,
        reason: str,
        *,
        force: bool = False,
        by_risk_limit: bool = False,
    ) -> CloseResult:
        """Close both legs together at the book (or mark -/+ slippage).

        Without a price for a leg the close waits for a later cycle, so the hedge is
        never left half open; `force` (halt --close-all) uses the leg's last mark.
        """
        p = position
        planned: list[tuple[PaperLeg, float, str, float]] = []
        for leg in p.legs:
            q = _quote(view, leg.exchange, p.coin, leg.market)
            got = q.fill(buy=leg.side == "short", slippage=self.config.slippage)
            if got is None:
                if not force:
                    why = f"no price for {p.coin} {leg.market} on {leg.exchange}"
                    self._events.append(
                        TradeEvent(
                            "error", f"position {p.id}: close ({reason}) deferred: {why}", p.id
                        )
                    )
                    return CloseResult(False, why)
                buy = leg.side == "short"
                slip = self.config.slippage
                got = (leg.mark * (1 + slip if buy else 1 - slip), "last mark (forced)")
            price, source = got
            planned.append(
                (leg, price, source, self._fee_rate(leg.exchange, leg.market, q.fee_observed))
            )
        fills: list[Fill] = []
        for leg, price, source, fee_rate in planned:
            fee = leg.size * price * fee_rate
            leg.exit_price = price
            leg.exit_fee = fee
            self.cash[leg.exchange] += leg.price_pnl - fee
            side: Side = "buy" if leg.side == "short" else "sell"
            fill = Fill(leg.exchange, leg.market, side, price, leg.size, fee, fee_rate, source)
            self._record_order_and_fill(p.id, p.coin, t, "close", leg.size * price, fill)
            fills.append(fill)
        p.status = "closed"
        p.closed_at = t
        p.close_reason = reason
        del self._positions[p.id]
        self.ledger.record_position(p, t)
        # p.funding, p.fees, p.price, p.borrow in one pass (the same sums); p.pnl is theirs
        funding, fees, price_pnl, borrow = parts = p.parts()
        self._events.append(
            TradeEvent(
                "risk" if by_risk_limit else "close",
                f"closed #{p.id} {p.rule_name} {p.subject.describe()} ({reason}): "
                f"pnl {sum(parts):+.2f} (funding {funding:+.2f}, fees {fees:+.2f}, "
                f"price {price_pnl:+.2f}, borrow {borrow:+.2f})",
                p.id,
            )
        )
        return CloseResult(True, None, tuple(fills))

    # -- step 4: entries -----------------------------------------------------------------
    def open(self, request: OpenRequest, view: SnapshotView, t: int) -> OpenResult:
        """Open both legs together, or nothing: blocked when a price or balance is missing.

        Risk limits are decided before this call (the runtime asks its RiskBudget);
        this checks what only the executor knows: quotes and paper balances.
        """
        r = request
        coin = r.subject.coin
        amount = r.amount
        planned: list[tuple[LegSpec, float, str, float, float]] = []
        need: dict[str, float] = {}
        for spec in r.legs:
            q = _quote(view, spec.exchange, coin, spec.market)
            got = q.fill(buy=spec.side == "long", slippage=self.config.slippage)
            if got is None:
                return OpenResult(
                    "blocked", amount, f"no price for {coin} {spec.market} on {spec.exchange}", None
                )
            price, source = got
            fee_rate = self._fee_rate(spec.exchange, spec.market, q.fee_observed)
            planned.append((spec, price, source, fee_rate, q.ref if q.ref is not None else price))
            need[spec.exchange] = (
                need.get(spec.exchange, 0.0) + amount / self.config.leverage + amount * fee_rate
            )
        free_of = self._free_of(need)
        for exchange, needed in need.items():
            free = free_of[exchange]
            if needed > free + 1e-9:
                return OpenResult(
                    "blocked",
                    amount,
                    f"balance: {exchange} has {max(free, 0):.2f} free, needs {needed:.2f}",
                    None,
                )
        # The live executor's sizing (rulebook.trading.size_hedge): both legs hold the same
        # coins, amount / the higher fill price; paper has no exchange grid to round to.
        sized = size_hedge(
            amount, [LegMarket(s.exchange, s.market) for s in r.legs], [p[1] for p in planned]
        )
        if not sized.ok:
            return OpenResult("blocked", amount, sized.blocked, None)
        paper_legs: list[PaperLeg] = []
        for spec, price, _source, fee_rate, ref in planned:
            size = sized.qty
            leg = PaperLeg(
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
            if leg.borrowed:
                b = view.borrow_obs(leg.exchange, coin)
                leg.borrow_rate_daily = None if b is None else b.borrow_rate_daily
            paper_legs.append(leg)
        p = PaperPosition(
            id=0,
            rule_name=r.rule_name,
            bindings=dict(r.bindings),
            ruleset_sha=r.ruleset_sha,
            subject=r.subject,
            legs=paper_legs,
            notional=amount,
            opened_at=t,
        )
        p.id = self.ledger.record_opening(p, t)
        fills: list[Fill] = []
        for leg, (spec, price, source, fee_rate, _ref) in zip(paper_legs, planned, strict=True):
            self.cash[leg.exchange] -= leg.entry_fee
            side: Side = "buy" if spec.side == "long" else "sell"
            fill = Fill(leg.exchange, leg.market, side, price, leg.size, leg.entry_fee, fee_rate,
                        source)  # fmt: skip
            self._record_order_and_fill(p.id, coin, t, "open", amount, fill)
            fills.append(fill)
        self._positions[p.id] = p
        self._events.append(
            TradeEvent(
                "open",
                f"opened #{p.id} {r.rule_name} {r.subject.describe()}: "
                + ", ".join(
                    f"{lg.side} {lg.market} {lg.exchange} @ {lg.entry_price:g}" for lg in paper_legs
                )
                + f", {amount:.2f} per leg",
                p.id,
            )
        )
        return OpenResult("open", amount, None, p, tuple(fills))

    # -- ledger ----------------------------------------------------------------------
    def _record_order_and_fill(
        self, position_id: int, coin: str, t: int, intent: str, notional: float, fill: Fill
    ) -> None:
        order_id = self.ledger.record_order(
            OrderRecord(
                ts=t,
                position_id=position_id,
                intent=intent,
                exchange=fill.exchange,
                coin=coin,
                market=fill.market,
                side=fill.side,
                notional=notional,
                status="filled",
            )
        )
        self.ledger.record_fill(order_id, position_id, t, fill)

    def persist(self, t: int) -> None:
        """Write what the cycle changed (inside the cycle's transaction): the positions
        whose stored state moved, every held market's mark, every balance."""
        dirty = [self._positions[i] for i in sorted(self._dirty) if i in self._positions]
        self.ledger.record_positions(dirty, t)
        self.ledger.record_marks(self._marks, t)
        self._dirty = set()
        self._marks = {}
        for exchange, cash in self.cash.items():
            self.ledger.record_cash(exchange, cash)


class _HeldMarkets:
    """The open legs of one book, with their markets coded for the view's columns."""

    def __init__(self, book: tuple[PaperPosition, ...]) -> None:
        self.book = book  # held here, so the ids below stay these positions'
        self.ids = tuple(map(id, book))
        self.legs: list[PaperLeg] = []
        self.keys: list[tuple[str, str, str]] = []  # per leg: (exchange, coin, market)
        for p in book:
            coin = p.subject.coin
            for leg in p.legs:
                self.legs.append(leg)
                self.keys.append((leg.exchange, coin, leg.market))
        #: what `prices` needs (made on its first call: a small book's equity does not
        #: ask): per position its first leg's place in `legs` and its number of legs, per
        #: leg its sign times size and its entry price (fixed from the opening)
        self._pnl: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        markets = list(dict.fromkeys(self.keys))
        self.markets = markets
        at = {k: i for i, k in enumerate(markets)}
        self.market_of = np.array([at[k] for k in self.keys], dtype=np.intp)
        self.perp = np.array([k[2] == "perp" for k in markets], dtype=bool)
        #: the categories of the last columns, and each market's code in them (-1: none)
        self._coded: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], np.ndarray] | None
        self._coded = None

    def _codes(self, ex: tuple[str, ...], co: tuple[str, ...], mk: tuple[str, ...]) -> np.ndarray:
        """Each market's code (exchange, coin, market) in these categories, -1: absent."""
        coded = self._coded
        if coded is None or coded[0] != ex or coded[1] != co or coded[2] != mk:
            at_ex, at_co, at_mk = _category_index(ex, co, mk)
            codes = np.array(
                [
                    (at_ex[e] * len(co) + at_co[c]) * len(mk) + at_mk[m]
                    if e in at_ex and c in at_co and m in at_mk
                    else -1
                    for e, c, m in self.markets
                ],
                dtype=np.int64,
            )
            coded = self._coded = (ex, co, mk, codes)
        return coded[3]

    def prices(self) -> np.ndarray:
        """Each position's `price` (its legs' price pnl at their exit price, else their
        mark), computed as `PaperPosition.price` computes it: 0.0, plus each leg's
        `sign * size * (px - entry)` in leg order."""
        if self._pnl is None:
            book = self.book
            self._pnl = (
                np.array(np.cumsum([0, *(len(p.legs) for p in book)])[:-1], dtype=np.intp),
                np.array([len(p.legs) for p in book], dtype=np.intp),
                np.array([(1 if leg.side == "long" else -1) * leg.size for leg in self.legs],
                         dtype=np.float64),  # fmt: skip
                np.array([leg.entry_price for leg in self.legs], dtype=np.float64),
            )
        first, count, sign_size, entry = self._pnl
        px = np.fromiter(
            (leg.mark if leg.exit_price is None else leg.exit_price for leg in self.legs),
            dtype=np.float64, count=len(self.legs),
        )  # fmt: skip
        each = sign_size * (px - entry)
        total = np.zeros(len(self.book))
        for j in range(int(count.max(initial=0))):
            has = count > j
            total[has] += each[first[has] + j]
        return total

    def refs(self, view: SnapshotView) -> np.ndarray:
        """Each leg's mark in `view` (NaN: no price there), as `_ref_of` of its market's
        (mark, bid, ask)."""
        cols = view.columns()
        nan = np.full(len(self.legs), np.nan)
        if not len(cols):
            return nan
        codes = self._codes(cols.exchanges, cols.coins, cols.markets)
        rows = np.where(codes >= 0, _row_table(view)[np.maximum(codes, 0)], -1)
        found = rows >= 0
        take = np.where(found, rows, 0)
        mark = np.where(found, cols.mark[take], np.nan)
        bid = np.where(found, cols.bid[take], np.nan)
        ask = np.where(found, cols.ask[take], np.nan)
        both = (bid == bid) & (ask == ask)
        mid = (bid + ask) / 2.0  # mid_price
        ref = np.where(
            self.perp,
            np.where(both & (mark != mark), mid, mark),
            np.where(both, mid, np.where(bid == bid, bid, ask)),
        )
        return ref[self.market_of]


#: the last categories (exchanges, coins, markets) and each one's place in them
_last_categories: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...],
                        tuple[dict[str, int], dict[str, int], dict[str, int]]] | None = None  # fmt: skip


def _category_index(
    ex: tuple[str, ...], co: tuple[str, ...], mk: tuple[str, ...]
) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Each exchange's, coin's and market's place in these categories (kept for the last
    categories asked: a replay's views share them while no market is added)."""
    global _last_categories
    last = _last_categories
    if last is not None and last[0] == ex and last[1] == co and last[2] == mk:
        return last[3]
    index = (
        {e: i for i, e in enumerate(ex)},
        {c: i for i, c in enumerate(co)},
        {m: i for i, m in enumerate(mk)},
    )
    _last_categories = (ex, co, mk, index)
    return index


#: the last read-only columns' codes and categories, and their row per market code
_last_table: tuple[tuple[object, ...], np.ndarray] | None = None


def _row_table(view: SnapshotView) -> np.ndarray:
    """Each market code's row in `view.columns()` (-1: none; the code of (exchange, coin, market)
    as `_HeldMarkets._codes` makes it). Kept while the columns' code arrays are the same
    read-only objects and categories (a replay's consecutive views share them while no
    market is added)."""
    global _last_table
    cols = view.columns()
    same = (cols.exchange, cols.coin, cols.market, cols.exchanges, cols.coins, cols.markets)
    last = _last_table
    if last is not None and all(a is b for a, b in zip(last[0], same, strict=True)):
        return last[1]
    n_co, n_mk = len(cols.coins), len(cols.markets)
    row_code = (cols.exchange.astype(np.int64) * n_co + cols.coin) * n_mk + cols.market
    table = np.full(len(cols.exchanges) * n_co * n_mk, -1, dtype=np.intp)
    table[row_code] = np.arange(row_code.size)
    if not (cols.exchange.flags.writeable or cols.coin.flags.writeable
            or cols.market.flags.writeable):  # fmt: skip
        table.setflags(write=False)
        _last_table = (same, table)
    return table


def _ref_of(
    market: str, mark: float | None, bid: float | None, ask: float | None
) -> float | None:
    """What a leg is marked at, from its market's (mark, bid, ask): the perp's mark
    (else its mid), the spot's mid (else the side there is); `quote(...).ref` without
    an observation or a Quote (tests/test_view_columns.py compares the two). The rule
    `_HeldMarkets.refs` computes for every held market at once
    (tests/test_paper_marking.py holds the two equal)."""
    if bid is not None and ask is not None:
        mid: float = mid_price(bid, ask)
        return mark if market == "perp" and mark is not None else mid
    if market == "perp":
        return mark
    return bid if bid is not None else ask
