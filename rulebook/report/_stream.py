"""The report computed in passes over a run's records, in memory that does not grow with it.

`build_report` (`_build`) holds every position, fill, payment and cycle in lists.
Here the same figures come from iterators: a ledger's rows read from SQLite
cursors (`LedgerSource`), or a `ReportInput`'s lists (`ListSource`, which the
tests use to check that both give the same bytes). What is kept between passes
is bounded by the rules, coins and venues (the breakdowns), the days of the run
(the daily equity, for Sharpe and Sortino) and one position or one time's rows
(sorting ties exactly as the in-memory report sorts them); never by the number of
positions, fills, payments or cycles.

Every figure is the same arithmetic, in the same order, as `_figures`: a
`math.fsum` becomes an exact running sum (`ExactSum`: the correctly rounded sum
is unique, so it is the same float), a builtin `sum` is fed the same values in the
same order from a generator, and every sort is reproduced: the ledger sorts by
time, `_sorted_within` sorts each time's few rows as `sorted` sorts tuples.
tests/test_report_stream.py checks the bytes against `build_report`'s.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from . import _figures as F
from ._build import REPORT_VERSION, finite, payment_dict, position_dict
from ._model import EquityPoint, PaymentRecord, PositionRecord, ReportInput
from ._streamed import Report

__all__ = ["ExactSum", "ListSource", "RunSource", "stream_report"]

T = TypeVar("T")


class RunSource(Protocol):
    """A run's records as iterators, each in the order the in-memory report reads them."""

    initial_balance: float
    leverage: float
    lookahead: str | None
    source: str
    notes: list[str]

    def positions(self) -> Iterator[PositionRecord]:
        """Every position, in the report's order (a ledger's: by id)."""
        ...

    def positions_with_payments(self) -> Iterator[tuple[PositionRecord, list[PaymentRecord]]]:
        """Each position (report order) with its payments by (time, exchange)."""
        ...

    def openings(self) -> Iterator[tuple[int, float]]:
        """(opened_at, gross) of every position, by opening time."""
        ...

    def closings(self) -> Iterator[tuple[int, float]]:
        """(closed_at, gross) of every closed position, by closing time."""
        ...

    def payment_amounts(self) -> Iterator[tuple[int, float]]:
        """(ts, amount) of every payment (one of no position too), by time."""
        ...

    def fill_amounts(self) -> Iterator[tuple[int, float, float]]:
        """(ts, notional, fee) of every fill, by time."""
        ...

    def equity(self) -> Iterator[EquityPoint]:
        """One point per cycle, in time order."""
        ...

    def cycle_times(self) -> Iterator[int]:
        """The cycles' times, sorted."""
        ...


@dataclass
class ListSource:
    """A `ReportInput` as a `RunSource` (its lists, read in `build_report`'s order)."""

    run: ReportInput
    initial_balance: float = field(init=False)
    leverage: float = field(init=False)
    lookahead: str | None = field(init=False)
    source: str = field(init=False)
    notes: list[str] = field(init=False)

    def __post_init__(self) -> None:
        r = self.run
        self.initial_balance, self.leverage = r.initial_balance, r.leverage
        self.lookahead, self.source, self.notes = r.lookahead, r.source, r.notes

    def positions(self) -> Iterator[PositionRecord]:
        return iter(self.run.positions)

    def positions_with_payments(self) -> Iterator[tuple[PositionRecord, list[PaymentRecord]]]:
        by_position: dict[int, list[PaymentRecord]] = defaultdict(list)
        for pay in sorted(self.run.payments, key=lambda x: (x.position_id, x.ts, x.exchange)):
            by_position[pay.position_id].append(pay)
        return ((p, by_position.get(p.id, [])) for p in self.run.positions)

    def openings(self) -> Iterator[tuple[int, float]]:
        return ((p.opened_at, p.gross) for p in sorted(self.run.positions, key=lambda p: p.opened_at))

    def closings(self) -> Iterator[tuple[int, float]]:
        closed = [p for p in self.run.positions if p.closed_at is not None]
        return ((p.closed_at or 0, p.gross) for p in sorted(closed, key=lambda p: p.closed_at or 0))

    def payment_amounts(self) -> Iterator[tuple[int, float]]:
        return ((x.ts, x.amount) for x in sorted(self.run.payments, key=lambda x: x.ts))

    def fill_amounts(self) -> Iterator[tuple[int, float, float]]:
        return ((f.ts, f.notional, f.fee) for f in sorted(self.run.fills, key=lambda x: x.ts))

    def equity(self) -> Iterator[EquityPoint]:
        return iter(self.run.equity)

    def cycle_times(self) -> Iterator[int]:
        return iter(sorted(e.ts for e in self.run.equity))


class ExactSum:
    """A running sum kept exact (Shewchuk's non-overlapping partials, as `math.fsum`
    keeps them), so `value()` is the correctly rounded sum of everything added: the
    same float as `math.fsum` of those values, in any order. A few partials at most."""

    __slots__ = ("_partials",)

    def __init__(self) -> None:
        self._partials: list[float] = []

    def add(self, x: float) -> None:
        partials = self._partials
        i = 0
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo:
                partials[i] = lo
                i += 1
            x = hi
        partials[i:] = [x]

    def value(self) -> float:
        return math.fsum(self._partials)


@dataclass(frozen=True, slots=True)
class _Parts:
    """A position's pnl parts, each read once from its properties (the same floats)."""

    funding: float
    fees: float
    price: float
    borrow: float
    pnl: float
    closed: bool

    @classmethod
    def of(cls, p: PositionRecord) -> _Parts:
        return cls(p.funding, p.fees, p.price, p.borrow, p.pnl, p.closed_at is not None)


class _Group:
    """One row of a per-rule or per-coin breakdown, added to a position at a time
    (`_figures._row` over the group's list)."""

    __slots__ = ("closed", "fees", "funding", "borrow", "price", "trades", "wins")

    def __init__(self) -> None:
        self.funding, self.fees, self.price, self.borrow = (ExactSum() for _ in range(4))
        self.trades = self.wins = self.closed = 0

    def add(self, parts: _Parts) -> None:
        self.trades += 1
        self.funding.add(parts.funding)
        self.fees.add(parts.fees)
        self.price.add(parts.price)
        self.borrow.add(parts.borrow)
        if parts.closed:
            self.closed += 1
            self.wins += parts.pnl > 0

    def row(self, key: str) -> F.Breakdown:
        return F.Breakdown(
            key=key, trades=self.trades, funding=self.funding.value(), fees=self.fees.value(),
            price=self.price.value(), borrow=self.borrow.value(), wins=self.wins,
            closed=self.closed,
        )  # fmt: skip


@dataclass
class _Tally:
    """What one pass over the positions (report order) adds up."""

    all: _Group = field(default_factory=_Group)
    pnl: ExactSum = field(default_factory=ExactSum)
    rules: dict[str, _Group] = field(default_factory=lambda: defaultdict(_Group))
    coins: dict[str, _Group] = field(default_factory=lambda: defaultdict(_Group))
    venues: dict[str, list[float]] = field(
        default_factory=lambda: defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    )
    venue_trades: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def walk(self, positions: Iterable[PositionRecord]) -> Iterator[float]:
        """Add each position up; yield each closed one's hold in hours (for `sum`, as
        `totals` sums them)."""
        for p in positions:
            parts = _Parts.of(p)
            self.all.add(parts)
            self.pnl.add(parts.pnl)
            self.rules[p.rule].add(parts)
            self.coins[p.coin].add(parts)
            seen: set[str] = set()
            for leg in p.legs:  # `breakdown_by_venue`'s additions, in its order
                acc = self.venues[leg.exchange]
                acc[0] += leg.funding
                acc[1] += leg.fees
                acc[2] += leg.price
                acc[3] += leg.borrow
                if leg.exchange not in seen:
                    seen.add(leg.exchange)
                    self.venue_trades[leg.exchange] += 1
            if p.closed_at is not None:
                yield (p.closed_at - p.opened_at) / 3_600_000

    def per_venue(self) -> list[F.Breakdown]:
        return [
            F.Breakdown(ex, self.venue_trades[ex], *F._four(self.venues[ex]), wins=0, closed=0)
            for ex in sorted(self.venues)
        ]


def _sorted_within(items: Iterable[T], time: Callable[[T], int]) -> Iterator[T]:
    """`items` (in time order) with each time's run sorted: `sorted(items)` of tuples
    that start with the time, one time's rows in memory."""
    for _, run in itertools.groupby(items, key=time):
        yield from sorted(run)  # type: ignore[type-var]


def _events(src: RunSource) -> Iterator[tuple[int, int, float]]:
    """`exposure_series`' events, (time, +1 open / -1 close, gross), in its sorted
    order: the openings by time and the closings by time (each read a row at a time,
    the ledger sorting them), merged, each time's run sorted in memory."""
    first = lambda e: e[0]  # noqa: E731
    opens = _sorted_within(((t, 1, g) for t, g in src.openings()), first)
    closes = _sorted_within(((t, -1, g) for t, g in src.closings()), first)
    return heapq.merge(closes, opens)


def _peak_gross(src: RunSource) -> float:
    """`capital_used`'s peak before leverage: the highest gross after any event.
    The in-memory report samples after each opening time and each cycle; the gross
    grows only at an opening (a close subtracts a gross >= 0, and the events after
    its last sample are closes), so the two maxima are one float."""
    peak = gross = 0.0
    for _, sign, g in _events(src):
        gross += sign * g
        peak = max(peak, max(gross, 0.0))
    return peak


def _exposure(src: RunSource) -> Iterator[dict[str, Any]]:
    for t, g, n in F.exposure_at(_events(src), src.cycle_times()):
        yield {"ts": t, "gross": g, "positions": n}


def _cumulative(items: Iterator[tuple[int, float]]) -> Iterator[dict[str, Any]]:
    for ts, a in F.running_sums(_sorted_within(items, lambda x: x[0])):
        yield {"ts": ts, "amount": a}


@dataclass
class _Times:
    """Rows, distinct times and their range of a stream in time order: the span of
    its running sums (one point per time), so a plot reads them once."""

    rows: int = 0
    points: int = 0
    first: int = 0
    last: int = 0

    def add(self, t: int) -> None:
        if self.rows == 0:
            self.first = t
            self.points = 1
        elif t != self.last:
            self.points += 1
        self.last = t
        self.rows += 1

    def span(self) -> tuple[int, int, int]:
        return self.points, self.first, self.last


def stream_report(src: RunSource, extra: dict[str, Any] | None = None) -> Report:
    """`build_report` of the run, its long lists read again from `src` when written."""
    # the cycles: how many, first and last, final equity, daily equity, drawdown
    count, first, last, final = 0, None, None, None
    low = high = 0
    for e in src.equity():
        count += 1
        first = e.ts if first is None else first
        last, final = e.ts, e.equity
        low, high = (e.ts, e.ts) if count == 1 else (min(low, e.ts), max(high, e.ts))
    initial = src.initial_balance
    daily = F.daily_equity(src.equity(), initial)
    rets = F.daily_returns(daily, initial)
    if first is not None:
        dd = F.max_drawdown(itertools.chain([EquityPoint(first - 1, initial)], src.equity()))
    else:
        dd = F.max_drawdown([])
    days = 0.0
    if count > 1 and first is not None and last is not None:
        days = (last - first) / F.DAY_MS
    # the positions, one pass; the holds summed by `sum` in the in-memory order
    tally = _Tally()
    holds = sum(tally.walk(src.positions()))
    closed = tally.all.closed
    used = _peak_gross(src) / src.leverage
    fee_times = _Times()

    def notionals() -> Iterator[float]:
        for t, notional, _ in src.fill_amounts():
            fee_times.add(t)
            yield notional

    traded = math.fsum(notionals())
    pay_times = _Times()
    for t, _ in src.payment_amounts():
        pay_times.add(t)
    payments = pay_times.rows
    pnl = tally.pnl.value()
    roc = F._ratio(pnl, used)
    rob = F._ratio(pnl, initial)
    every = tally.all.row("")
    totals = F.Totals(
        pnl=pnl,
        funding=every.funding,
        fees=every.fees,
        price=every.price,
        borrow=every.borrow,
        initial_balance=initial,
        final_equity=final,
        capital_used=used,
        return_on_capital=roc,
        return_on_balances=rob,
        apr_on_capital=None if roc is None or not days else roc * F._YEAR_DAYS / days,
        apr_on_balances=None if rob is None or not days else rob * F._YEAR_DAYS / days,
        days=days,
        max_drawdown=dd.money,
        max_drawdown_fraction=dd.fraction,
        sharpe=F.sharpe(rets),
        sortino=F.sortino(rets),
        traded_notional=traded,
        turnover=F._ratio(traded, used),
        trades=every.trades,
        closed_trades=closed,
        open_trades=every.trades - closed,
        win_rate=F._ratio(every.wins, closed),
        average_hold_h=holds / closed if closed else None,
        fills=fee_times.rows,
        funding_payments=payments,
    )
    head: dict[str, Any] = {
        "version": REPORT_VERSION,
        "source": src.source,
        "lookahead": src.lookahead,
        "leverage": src.leverage,
        "from": first,
        "to": last,
        "cycles": count,
        "notes": list(src.notes),
        "totals": totals.to_dict(),
        "per_rule": [g.row(k).to_dict() for k, g in sorted(tally.rules.items())],
        "per_coin": [g.row(k).to_dict() for k, g in sorted(tally.coins.items())],
        "per_venue": [b.to_dict() for b in tally.per_venue()],
        "positions": None,
        "daily_equity": [{"day": d, "equity": e} for d, e in daily],
        "exposure": None,
        "equity": None,
        "cumulative_funding": None,
        "cumulative_fees": None,
    }
    if extra:
        head.update(extra)

    def positions() -> Iterator[dict[str, Any]]:
        for p, pays in src.positions_with_payments():
            yield position_dict(p, [payment_dict(x) for x in pays])

    lists: dict[str, Callable[[], Iterator[dict[str, Any]]]] = {
        "positions": positions,
        "exposure": lambda: _exposure(src),
        "equity": lambda: ({"ts": e.ts, "equity": e.equity} for e in src.equity()),
        "cumulative_funding": lambda: _cumulative(src.payment_amounts()),
        "cumulative_fees": lambda: _cumulative((t, fee) for t, _, fee in src.fill_amounts()),
    }
    spans = {
        "equity": (count, low, high),
        "exposure": (count, low, high),
        "cumulative_funding": pay_times.span(),
        "cumulative_fees": fee_times.span(),
    }
    return Report(finite(head), lists, spans)
