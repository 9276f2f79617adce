"""The settlement rule of spec section 11, step 1, as data in and payments out.

    log = SettlementLog(wait_ms=600_000)
    log.add_view(view)                               # every view, in time order
    got = log.settle("binance", "BTC", after=last_paid, upto=t, now=t)
    for s in got.settled:                            # each settlement once, in time order
        amount = s.amount(size, side)

What the rule says, and where each piece is here:

* **Which settlements.** Every settlement of the exchange and coin with time
  ``s`` in ``(after, upto]``, however many fall between two cycles. The
  caller passes ``after`` = the later of the position's opening and the last
  settlement it was paid, so a settlement is paid once and none is skipped.
  A settlement is known from its settlement record or from an observation
  that showed ``next_funding_ts = s``.
* **At which rate and mark.** From the settlement record (``settled``); a
  record without a mark takes the mark of the last perp observation at or
  before ``s``. Without a record, from the last observation before ``s``
  that showed ``next_funding_ts = s`` (``estimated``), at the same mark.
* **Waiting for the record.** An exchange publishes the settled rate a few
  seconds to minutes after ``s``; until ``now - s`` reaches ``wait_ms`` a
  settlement without a record waits (and so does every later one of that
  leg, to keep the order), after that it is paid at the estimate. A replay
  (``expect_records=False``) waits only on markets whose recording carries
  records.
* **Which interval.** The record's, else the forecast's, else that of the
  last perp observation at or before ``s``: the interval that settled.

Nothing here reads a clock, a file or the network; the runtime feeds views in
and pays what comes out (``docs/settlement.md``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from ._model import Observation
from ._settlement import Settlement
from ._view import PerpRow, SnapshotView

__all__ = [
    "DEFAULT_SETTLE_WAIT_MS",
    "IntervalChange",
    "IntervalWatch",
    "MarkSource",
    "RateSource",
    "SettledFunding",
    "SettleResult",
    "SettlementLog",
    "funding_amount",
    "interval_change_text",
]

RateSource = Literal["settled", "estimated"]
#: settlement: the record's own mark; perp: the last perp observation at or
#: before the settlement; position: the leg's last known mark (nothing else known)
MarkSource = Literal["settlement", "perp", "position"]

#: how long after a settlement the runtime waits for its record before paying the estimate
DEFAULT_SETTLE_WAIT_MS = 10 * 60 * 1000


def funding_amount(rate: float, mark: float, size: float, side: str) -> float:
    """Money one leg receives at one settlement: size x mark x rate, to the short when
    the rate is positive, from it otherwise (spec 11)."""
    sign = 1.0 if side == "long" else -1.0
    return -sign * size * mark * rate


@dataclass(frozen=True, slots=True)
class SettledFunding:
    """One settlement of one perp: the rate, the mark, the interval, and their sources."""

    exchange: str
    coin: str
    ts: int  # the settlement time
    interval_h: float | None  # the interval that settled
    rate: float  # per interval, not normalised
    mark: float
    rate_source: RateSource
    mark_source: MarkSource

    def amount(self, size: float, side: str) -> float:
        return funding_amount(self.rate, self.mark, size, side)


@dataclass(slots=True)
class SettleResult:
    settled: list[SettledFunding] = field(default_factory=list)
    #: the first settlement still waiting for its record (later ones wait behind it)
    waiting: int | None = None
    #: settlement times the interval implies but nothing showed (no record, no forecast)
    missing: list[int] = field(default_factory=list)


def _implied(
    prev: SettledFunding | None, nxt: int, nxt_interval_h: float | None, upto: int
) -> list[int]:
    """Times on prev's interval grid strictly between prev and nxt, up to upto.

    None when nxt's own interval covers the gap: a switch from 1h back to 8h
    leaves a gap of up to 8h that no settlement fell in."""
    if prev is None or not prev.interval_h:
        return []
    step = round(prev.interval_h * 3_600_000)
    gap = nxt - prev.ts
    if nxt_interval_h is not None and nxt_interval_h * 3_600_000 >= gap - step // 10:
        return []
    out = []
    s = prev.ts + step
    while s < nxt - step // 10 and s <= upto:  # a tenth of a step: clock jitter of a grid
        out.append(s)
        s += step
    return out


@dataclass(frozen=True, slots=True)
class IntervalChange:
    exchange: str
    coin: str
    was_h: float
    now_h: float

    def text(self) -> str:
        return interval_change_text(self.coin, self.exchange, self.now_h, self.was_h)


def _hours(h: float) -> str:
    if h >= 1 and float(h).is_integer():
        return f"{int(h)}h"
    minutes = h * 60
    return f"{minutes:g}min" if h < 1 else f"{h:g}h"


def interval_change_text(coin: str, exchange: str, now_h: float, was_h: float) -> str:
    """'BTC on binance now settles every 1h, was 8h'."""
    return f"{coin} on {exchange} now settles every {_hours(now_h)}, was {_hours(was_h)}"


class IntervalWatch:
    """The funding interval each held leg settles on; a change is an :class:`IntervalChange`.

    Fed from two places: the perp observations (the interval in force now) and
    the payments (the interval that settled). Older news never overrides newer:
    an 8h settlement paid late does not undo an observed switch to 1h.
    """

    def __init__(self) -> None:
        self._known: dict[object, tuple[int, float]] = {}

    def seed(self, key: object, ts: int, interval_h: float) -> None:
        """What a restart knows (the last payment's interval), without an event."""
        held = self._known.get(key)
        if held is None or ts >= held[0]:
            self._known[key] = (ts, interval_h)

    def see(
        self, key: object, exchange: str, coin: str, ts: int, interval_h: float | None
    ) -> IntervalChange | None:
        if interval_h is None:
            return None
        held = self._known.get(key)
        if held is not None and ts < held[0]:
            return None
        self._known[key] = (ts, interval_h)
        if held is None or abs(held[1] - interval_h) < 1e-9:
            return None
        return IntervalChange(exchange, coin, held[1], interval_h)

    def drop(self, key: object) -> None:
        self._known.pop(key, None)


@dataclass(slots=True)
class _Forecast:
    shown_at: int  # the observation's ts
    rate: float
    interval_h: float | None


@dataclass(slots=True)
class _Series:
    """What is known of one (exchange, coin)'s settlements and perp marks."""

    records: dict[int, Settlement] = field(default_factory=dict)
    had_records: bool = False  # some were seen, even if forgotten since
    forecasts: dict[int, _Forecast] = field(default_factory=dict)
    # every perp observation (mark or not), in time order: parallel lists for bisect
    mark_ts: list[int] = field(default_factory=list)
    marks: list[float | None] = field(default_factory=list)
    intervals: list[float | None] = field(default_factory=list)
    # the settlement times of records and forecasts, sorted; None once they change
    sorted_times: list[int] | None = None

    def known(self) -> list[int]:
        """Every settlement time a record or forecast tells of, sorted (kept until a
        record or forecast of a new time comes in, or some are forgotten)."""
        if self.sorted_times is None:
            self.sorted_times = sorted(set(self.records) | set(self.forecasts))
        return self.sorted_times

    def times(self, after: int, upto: int) -> list[int]:
        known = set(self.records) | set(self.forecasts)
        return sorted(s for s in known if after < s <= upto)

    def interval_of(self, s: int) -> float | None:
        rec = self.records.get(s)
        if rec is not None and rec.funding_interval_h is not None:
            return rec.funding_interval_h
        fc = self.forecasts.get(s)
        return None if fc is None else fc.interval_h

    def perp_at(self, s: int) -> tuple[float, float | None] | None:
        """Mark and interval of the last perp observation at or before s."""
        i = bisect.bisect_right(self.mark_ts, s) - 1
        while i >= 0 and self.marks[i] is None:
            i -= 1
        if i < 0:
            return None
        mark = self.marks[i]
        assert mark is not None
        return mark, self.intervals[i]

    def first_seen(self, s: int) -> int | None:
        """Time of the first perp observation at or after s: when the exchange answered."""
        i = bisect.bisect_left(self.mark_ts, s)
        return self.mark_ts[i] if i < len(self.mark_ts) else None


class SettlementLog:
    """Settlement records, forecasts and perp marks per (exchange, coin), fed in time order.

    Memory grows with the settlements and marks seen; ``forget_before`` drops
    what no open leg can still need.
    """

    def __init__(
        self, wait_ms: int = DEFAULT_SETTLE_WAIT_MS, *, expect_records: bool = True
    ) -> None:
        """``expect_records``: wait for every settlement's record (live: the
        exchange's history supplies them). False (a replay): wait only on
        markets whose recording has shown settlement records; a recording
        without any is paid at the estimate at once, as nothing will come."""
        if wait_ms < 0:
            raise ValueError(f"wait_ms must not be negative, got {wait_ms}")
        self.wait_ms = wait_ms
        self.expect_records = expect_records
        self._series: dict[tuple[str, str], _Series] = {}

    def _of(self, exchange: str, coin: str) -> _Series:
        key = (exchange, coin)
        s = self._series.get(key)
        if s is None:
            s = self._series[key] = _Series()
        return s

    # -- feeding ------------------------------------------------------------------
    def add_view(self, view: SnapshotView) -> None:
        """A view's perp observations (forecasts, marks) and the records it carries."""
        for o in view.perps():  # a columnar view makes no Observation for these
            self.observe(o)
        self.add_records(view.settlements)

    def observe(self, o: Observation | PerpRow) -> None:
        """One perp observation: a forecast of its next settlement, and a mark."""
        if o.market != "perp":
            return
        s = self._of(o.exchange, o.coin)
        nxt = o.next_funding_ts
        if nxt is not None and o.funding_rate is not None and o.ts < nxt:
            held = s.forecasts.get(nxt)
            if held is None:
                s.sorted_times = None
            if held is None or o.ts >= held.shown_at:  # the last one before s wins
                s.forecasts[nxt] = _Forecast(o.ts, o.funding_rate, o.funding_interval_h)
        # every perp observation: its mark, and that the exchange answered then
        if s.mark_ts and o.ts <= s.mark_ts[-1]:
            if o.ts == s.mark_ts[-1]:  # the same observation seen again in a later view
                s.marks[-1], s.intervals[-1] = o.mark, o.funding_interval_h
                return
            i = bisect.bisect_right(s.mark_ts, o.ts)  # late: keep the lists sorted
            s.mark_ts.insert(i, o.ts)
            s.marks.insert(i, o.mark)
            s.intervals.insert(i, o.funding_interval_h)
            return
        s.mark_ts.append(o.ts)
        s.marks.append(o.mark)
        s.intervals.append(o.funding_interval_h)

    def add_records(self, records: Iterable[Settlement]) -> None:
        for r in records:
            # the first record of a settlement is kept: it is what was paid against
            series = self._of(r.exchange, r.coin)
            if r.ts not in series.records:
                series.sorted_times = None
            series.records.setdefault(r.ts, r)
            series.had_records = True

    # -- reading ------------------------------------------------------------------
    def record(self, exchange: str, coin: str, s: int) -> Settlement | None:
        series = self._series.get((exchange, coin))
        return None if series is None else series.records.get(s)

    def has_records(self, exchange: str, coin: str) -> bool:
        """Whether any settlement record of (exchange, coin) has been seen (and kept)."""
        series = self._series.get((exchange, coin))
        return series is not None and (bool(series.records) or series.had_records)

    def known_times(self, exchange: str, coin: str, after: int, upto: int) -> list[int]:
        """Settlement times in (after, upto] known from a record or a forecast."""
        series = self._series.get((exchange, coin))
        return [] if series is None else series.times(after, upto)

    def resolve(
        self, exchange: str, coin: str, s: int, now: int, fallback_mark: float | None = None
    ) -> SettledFunding | None:
        """The rate and mark of the settlement at ``s``, or None while it waits for its record.

        ``fallback_mark`` (the leg's last mark) is used only when no perp
        observation at or before ``s`` is known; without it, a settlement with
        no mark waits."""
        series = self._series.get((exchange, coin))
        if series is None:
            return None
        perp = series.perp_at(s)
        rec = series.records.get(s)
        rate_src: RateSource
        if rec is not None:
            rate, rate_src = rec.funding_rate, "settled"
            interval = rec.funding_interval_h
        else:
            fc = series.forecasts.get(s)
            if fc is None:
                return None
            waits = self.expect_records or series.had_records
            if waits:
                # The wait runs from when the exchange answered after s: during an
                # outage its history cannot be read, so nothing is given up yet.
                seen = series.first_seen(s)
                if seen is None or now - seen < self.wait_ms:
                    return None
            rate, rate_src = fc.rate, "estimated"
            interval = fc.interval_h
        if interval is None and perp is not None:
            interval = perp[1]
        mark_src: MarkSource
        if rec is not None and rec.mark is not None:
            mark, mark_src = rec.mark, "settlement"
        elif perp is not None:
            mark, mark_src = perp[0], "perp"
        elif fallback_mark is not None:
            mark, mark_src = fallback_mark, "position"
        else:
            return None
        return SettledFunding(exchange, coin, s, interval, rate, mark, rate_src, mark_src)

    def settle(
        self,
        exchange: str,
        coin: str,
        *,
        after: int,
        upto: int,
        now: int,
        fallback_mark: float | None = None,
    ) -> SettleResult:
        """Every settlement in (after, upto] that can be paid now, in time order.

        Stops at the first one still waiting for its record, so a leg's
        payments are made in order and ``after`` can advance to the last paid.

        Settlements nothing tells of (an outage without records: no record and
        no observation showed them) but that the interval implies, between two
        known settlements, are listed in ``missing``: the runtime reports them,
        it cannot pay a rate it never saw."""
        out = SettleResult()
        series = self._series.get((exchange, coin))
        if series is None:
            return out
        known = series.known()
        prev: SettledFunding | None = None
        if after in series.records or after in series.forecasts:
            prev = self.resolve(exchange, coin, after, now, fallback_mark)
        beyond = next((s for s in known if s > upto), None)
        for s in [s for s in known if after < s <= upto]:
            got = self.resolve(exchange, coin, s, now, fallback_mark)
            if got is None:
                out.waiting = s
                return out
            out.missing.extend(_implied(prev, s, got.interval_h, upto))
            out.settled.append(got)
            prev = got
        if beyond is not None:
            out.missing.extend(_implied(prev, beyond, series.interval_of(beyond), upto))
        return out

    def quiet(self, exchange: str, coin: str, *, after: int, upto: int) -> bool:
        """True when ``settle`` over (after, upto] has, at any ``now``, nothing to pay,
        nothing waiting and nothing missing, known without resolving anything: no
        settlement is known in (after, upto], and the next known one lies within its
        own interval of ``after`` (so no gap an outage could hide). False means only
        "ask ``settle``". The paper runtime asks this for every held perp leg every
        cycle, and calls ``settle`` for the few legs it is False for."""
        series = self._series.get((exchange, coin))
        if series is None:
            return True
        known = series.known()
        i = bisect.bisect_right(known, after)
        if i == len(known):
            return True  # nothing known after: nothing to pay, no gap to report
        nxt = known[i]
        if nxt <= upto:
            return False
        if after not in series.records and after not in series.forecasts:
            return True  # settle() has no previous settlement to find a gap from
        h = series.interval_of(nxt)
        return h is not None and h * 3_600_000 >= nxt - after

    def current_interval(self, exchange: str, coin: str) -> tuple[int, float] | None:
        """The latest perp observation's interval and its time, if known."""
        series = self._series.get((exchange, coin))
        if series is None:
            return None
        for i in range(len(series.mark_ts) - 1, -1, -1):
            h = series.intervals[i]
            if h is not None:
                return series.mark_ts[i], h
        return None

    # -- memory ------------------------------------------------------------------
    def forget_before(self, ts: int) -> None:
        """Drop settlements before ``ts``, and perp observations older than the last one
        with a mark at or before it."""
        for series in self._series.values():
            for table in (series.records, series.forecasts):
                for s in [s for s in table if s < ts]:
                    del table[s]
                    series.sorted_times = None
            i = bisect.bisect_right(series.mark_ts, ts) - 1
            while i > 0 and series.marks[i] is None:
                i -= 1
            if i > 0:
                del series.mark_ts[:i], series.marks[:i], series.intervals[:i]
