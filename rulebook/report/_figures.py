"""The report's figures: pure functions of a run's records (see docs/backtest.md).

Every figure is defined once, here; the terminal, JSON, CSV and HTML outputs
all show these numbers. Definitions:

* daily equity: the equity of the last cycle of each UTC day, carried over
  days without a cycle; the day before the first is the initial balance.
* daily return: equity(d) / equity(d-1) - 1.
* Sharpe: mean / sample standard deviation of daily returns, x sqrt(365)
  (crypto trades every day; no risk-free rate). Sortino: mean / downside
  deviation sqrt(mean(min(r, 0)^2)), x sqrt(365). None when undefined.
* max drawdown: the largest fall of cycle equity from its running peak, in
  money and as a fraction of that peak.
* capital used: the peak, over cycles, of the open legs' entry notional /
  leverage: the collateral the strategy actually tied up.
* return on capital used = pnl / capital used; return on balances = pnl /
  initial balances; APR = return x 365 / days of the run (simple, not
  compounded).
* turnover: traded notional (every fill) / capital used.
* trades: positions; win rate: closed positions with pnl > 0 / closed ones;
  average hold: mean of closed_at - opened_at.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from ._model import EquityPoint, FillRecord, PositionRecord, ReportInput

__all__ = [
    "DAY_MS",
    "Breakdown",
    "Drawdown",
    "Totals",
    "breakdown",
    "breakdown_by_position",
    "breakdown_by_venue",
    "capital_used",
    "cumulative",
    "fees_over_time",
    "daily_equity",
    "daily_returns",
    "exposure_at",
    "exposure_series",
    "group_positions",
    "max_drawdown",
    "running_sums",
    "sharpe",
    "sortino",
    "totals",
]

DAY_MS = 86_400_000
_YEAR_DAYS = 365.0


def daily_equity(points: Iterable[EquityPoint], initial: float) -> list[tuple[int, float]]:
    """(UTC day start in ms, equity at that day's last cycle), every day from the first
    cycle's to the last's, a day without a cycle carrying the previous equity.
    `points` is read once (a list, or a ledger's cycles streamed)."""
    last_of_day: dict[int, float] = {}
    for p in points:
        last_of_day[p.ts // DAY_MS * DAY_MS] = p.equity
    if not last_of_day:
        return []
    first, last = min(last_of_day), max(last_of_day)
    out: list[tuple[int, float]] = []
    carried = initial
    for day in range(first, last + DAY_MS, DAY_MS):
        carried = last_of_day.get(day, carried)
        out.append((day, carried))
    return out


def daily_returns(daily: Sequence[tuple[int, float]], initial: float) -> list[float]:
    """equity(d) / equity(d-1) - 1, the first day against the initial balance."""
    out: list[float] = []
    prev = initial
    for _, eq in daily:
        out.append(eq / prev - 1.0 if prev else 0.0)
        prev = eq
    return out


def sharpe(returns: Sequence[float], periods: float = _YEAR_DAYS) -> float | None:
    n = len(returns)
    if n < 2:
        return None
    mean = sum(returns) / n
    var = sum((r - mean) ** 2 for r in returns) / (n - 1)
    if var <= 0:
        return None
    return mean / math.sqrt(var) * math.sqrt(periods)


def sortino(returns: Sequence[float], periods: float = _YEAR_DAYS) -> float | None:
    n = len(returns)
    if n < 2:
        return None
    mean = sum(returns) / n
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / n)
    if downside <= 0:
        return None
    return mean / downside * math.sqrt(periods)


@dataclass(frozen=True, slots=True)
class Drawdown:
    money: float  # >= 0
    fraction: float  # of the peak, >= 0
    peak_ts: int | None
    trough_ts: int | None


def max_drawdown(points: Iterable[EquityPoint]) -> Drawdown:
    """The largest fall from the running peak; `points` is read once."""
    best = Drawdown(0.0, 0.0, None, None)
    peak: EquityPoint | None = None
    for p in points:
        if peak is None or p.equity > peak.equity:
            peak = p
            continue
        fall = peak.equity - p.equity
        if fall > best.money:
            frac = fall / peak.equity if peak.equity > 0 else 0.0
            best = Drawdown(fall, frac, peak.ts, p.ts)
    return best


def exposure_series(
    positions: Sequence[PositionRecord], times: Iterable[int]
) -> list[tuple[int, float, int]]:
    """(cycle time, gross entry notional of the legs held after it, positions held)."""
    events: list[tuple[int, int, float]] = []  # (time, +1 open / -1 close, gross)
    for p in positions:
        events.append((p.opened_at, 1, p.gross))
        if p.closed_at is not None:
            events.append((p.closed_at, -1, p.gross))
    events.sort()
    return list(exposure_at(iter(events), sorted(times)))


def exposure_at(
    events: Iterator[tuple[int, int, float]], times: Iterable[int]
) -> Iterator[tuple[int, float, int]]:
    """`exposure_series` from its sorted events and sorted times, each read once."""
    gross, count = 0.0, 0
    event = next(events, None)
    for t in times:
        while event is not None and event[0] <= t:
            _, sign, g = event
            gross += sign * g
            count += sign
            event = next(events, None)
        yield t, max(gross, 0.0), count


def capital_used(
    positions: Sequence[PositionRecord], times: Iterable[int], leverage: float = 1.0
) -> float:
    """Peak collateral of the open legs over the cycles: max gross notional / leverage.

    A position opened and closed between two given times still counts: its own
    open time is always evaluated."""
    ts = set(times) | {p.opened_at for p in positions}
    peak = max((g for _, g, _ in exposure_series(positions, ts)), default=0.0)
    return peak / leverage


def group_positions(
    positions: Sequence[PositionRecord], key: Callable[[PositionRecord], str]
) -> dict[str, list[PositionRecord]]:
    groups: dict[str, list[PositionRecord]] = defaultdict(list)
    for p in positions:
        groups[key(p)].append(p)
    return dict(sorted(groups.items()))


@dataclass(frozen=True, slots=True)
class Breakdown:
    """One row of a per-rule, per-coin, per-venue or per-position table."""

    key: str
    trades: int
    funding: float
    fees: float
    price: float
    borrow: float
    wins: int
    closed: int

    @property
    def pnl(self) -> float:
        return self.funding + self.fees + self.price + self.borrow

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.closed if self.closed else None

    def to_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "trades": self.trades,
            "pnl": self.pnl,
            "funding": self.funding,
            "fees": self.fees,
            "price": self.price,
            "borrow": self.borrow,
            "win_rate": self.win_rate,
        }


def _row(key: str, ps: Sequence[PositionRecord]) -> Breakdown:
    closed = [p for p in ps if p.closed_at is not None]
    return Breakdown(
        key=key,
        trades=len(ps),
        funding=math.fsum(p.funding for p in ps),
        fees=math.fsum(p.fees for p in ps),
        price=math.fsum(p.price for p in ps),
        borrow=math.fsum(p.borrow for p in ps),
        wins=sum(p.pnl > 0 for p in closed),
        closed=len(closed),
    )


def breakdown(
    positions: Sequence[PositionRecord], key: Callable[[PositionRecord], str]
) -> list[Breakdown]:
    return [_row(k, ps) for k, ps in group_positions(positions, key).items()]


def breakdown_by_position(positions: Sequence[PositionRecord]) -> list[Breakdown]:
    return [_row(str(p.id), [p]) for p in positions]


def breakdown_by_venue(positions: Sequence[PositionRecord]) -> list[Breakdown]:
    """Per exchange, from the legs on it: a spread position's two legs count for their two
    venues. `trades` counts the positions with a leg there; wins are not split by leg."""
    parts: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    trades: dict[str, set[int]] = defaultdict(set)
    for p in positions:
        for leg in p.legs:
            acc = parts[leg.exchange]
            acc[0] += leg.funding
            acc[1] += leg.fees
            acc[2] += leg.price
            acc[3] += leg.borrow
            trades[leg.exchange].add(p.id)
    return [
        Breakdown(ex, len(trades[ex]), *_four(parts[ex]), wins=0, closed=0) for ex in sorted(parts)
    ]


def _four(acc: list[float]) -> tuple[float, float, float, float]:
    """funding, fees, price, borrow of an accumulator."""
    return acc[0], acc[1], acc[2], acc[3]


@dataclass(frozen=True, slots=True)
class Totals:
    pnl: float
    funding: float
    fees: float
    price: float
    borrow: float
    initial_balance: float
    final_equity: float | None
    capital_used: float
    return_on_capital: float | None
    return_on_balances: float | None
    apr_on_capital: float | None
    apr_on_balances: float | None
    days: float
    max_drawdown: float
    max_drawdown_fraction: float
    sharpe: float | None
    sortino: float | None
    traded_notional: float
    turnover: float | None
    trades: int
    closed_trades: int
    open_trades: int
    win_rate: float | None
    average_hold_h: float | None
    fills: int
    funding_payments: int

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def totals(run: ReportInput) -> Totals:
    ps = run.positions
    times = [p.ts for p in run.equity]
    pnl = math.fsum(p.pnl for p in ps)
    used = capital_used(ps, times, run.leverage)
    days = (times[-1] - times[0]) / DAY_MS if len(times) > 1 else 0.0
    daily = daily_equity(run.equity, run.initial_balance)
    rets = daily_returns(daily, run.initial_balance)
    dd = max_drawdown(
        [EquityPoint(times[0] - 1, run.initial_balance), *run.equity] if times else []
    )
    closed = [p for p in ps if p.closed_at is not None]
    holds = [(p.closed_at - p.opened_at) / 3_600_000 for p in closed if p.closed_at is not None]
    traded = math.fsum(f.notional for f in run.fills)
    roc = _ratio(pnl, used)
    rob = _ratio(pnl, run.initial_balance)
    return Totals(
        pnl=pnl,
        funding=math.fsum(p.funding for p in ps),
        fees=math.fsum(p.fees for p in ps),
        price=math.fsum(p.price for p in ps),
        borrow=math.fsum(p.borrow for p in ps),
        initial_balance=run.initial_balance,
        final_equity=run.equity[-1].equity if run.equity else None,
        capital_used=used,
        return_on_capital=roc,
        return_on_balances=rob,
        apr_on_capital=None if roc is None or not days else roc * _YEAR_DAYS / days,
        apr_on_balances=None if rob is None or not days else rob * _YEAR_DAYS / days,
        days=days,
        max_drawdown=dd.money,
        max_drawdown_fraction=dd.fraction,
        sharpe=sharpe(rets),
        sortino=sortino(rets),
        traded_notional=traded,
        turnover=_ratio(traded, used),
        trades=len(ps),
        closed_trades=len(closed),
        open_trades=len(ps) - len(closed),
        win_rate=_ratio(sum(p.pnl > 0 for p in closed), len(closed)),
        average_hold_h=sum(holds) / len(holds) if holds else None,
        fills=len(run.fills),
        funding_payments=len(run.payments),
    )


def cumulative(items: Iterable[tuple[int, float]]) -> list[tuple[int, float]]:
    """Running sums of (time, amount) in time order, one point per time."""
    return list(running_sums(sorted(items)))


def running_sums(items: Iterable[tuple[int, float]]) -> Iterator[tuple[int, float]]:
    """`cumulative` of items already sorted, read once: the sum after each time's last."""
    acc = 0.0
    point: tuple[int, float] | None = None
    for t, a in items:
        acc += a
        if point is not None and point[0] != t:
            yield point
        point = (t, acc)
    if point is not None:
        yield point


def fees_over_time(fills: Sequence[FillRecord]) -> list[tuple[int, float]]:
    """Cumulative fees paid (a positive amount) over time."""
    return cumulative((f.ts, f.fee) for f in fills)
