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

Speed (``docs/performance.md``, "The funding step"): a view is fed from its
columns, and a series no open leg holds is a slot in a few numpy arrays
(`_Compact`), so a cycle's perps cost numpy operations, not a Python call
each; a series becomes a `_Series` again when anything reads it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ._model import Observation
from ._settlement import Settlement
from ._view import PerpRow, SnapshotView, ViewColumns

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
    prev_ts: int, prev_interval_h: float, nxt: int, nxt_interval_h: float | None, upto: int
) -> list[int]:
    """Times on the previous settlement's interval grid strictly between it and nxt, up
    to upto (the previous one: at ``prev_ts``, on a non-zero ``prev_interval_h``).

    None when nxt's own interval covers the gap: a switch from 1h back to 8h
    leaves a gap of up to 8h that no settlement fell in."""
    step = round(prev_interval_h * 3_600_000)
    gap = nxt - prev_ts
    if nxt_interval_h is not None and nxt_interval_h * 3_600_000 >= gap - step // 10:
        return []
    out = []
    s = prev_ts + step
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

    def last(self, key: object) -> tuple[int, float] | None:
        """The (time, interval) last taken for ``key``, if any."""
        return self._known.get(key)

    def note(self, key: object, ts: int, interval_h: float) -> None:
        """Take (ts, interval_h) as ``see`` does when it is news of the interval already
        held: a caller that did several such ``see`` at once (all at one interval, in
        time order) writes the latest here."""
        self._known[key] = (ts, interval_h)


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

    def observe(
        self, ts: int, nxt: int | None, rate: float | None, interval_h: float | None,
        mark: float | None,
    ) -> None:  # fmt: skip
        """One perp observation: a forecast of its next settlement, and a mark."""
        if nxt is not None and rate is not None and ts < nxt:
            held = self.forecasts.get(nxt)
            if held is None:
                self.sorted_times = None
            if held is None or ts >= held.shown_at:  # the last one before s wins
                self.forecasts[nxt] = _Forecast(ts, rate, interval_h)
        # every perp observation: its mark, and that the exchange answered then
        mark_ts = self.mark_ts
        if mark_ts and ts <= mark_ts[-1]:
            if ts == mark_ts[-1]:  # the same observation seen again in a later view
                self.marks[-1], self.intervals[-1] = mark, interval_h
                return
            i = bisect.bisect_right(mark_ts, ts)  # late: keep the lists sorted
            mark_ts.insert(i, ts)
            self.marks.insert(i, mark)
            self.intervals.insert(i, interval_h)
            return
        mark_ts.append(ts)
        self.marks.append(mark)
        self.intervals.append(interval_h)

    def forget_before(self, ts: int) -> None:
        """Drop settlements before ``ts``, and perp observations older than the last one
        with a mark at or before it."""
        known = self.known()
        if known and known[0] < ts:
            k = bisect.bisect_left(known, ts)
            for s in known[:k]:
                self.records.pop(s, None)
                self.forecasts.pop(s, None)
            self.sorted_times = known[k:]  # still every time left, sorted
        i = bisect.bisect_right(self.mark_ts, ts) - 1
        while i > 0 and self.marks[i] is None:
            i -= 1
        if i > 0:
            del self.mark_ts[:i], self.marks[:i], self.intervals[:i]


#: a time before every time (no observation yet, never forgotten)
_NEVER = np.iinfo(np.int64).min
#: `SettlementLog.quiet_state`'s "no settlement known after": later than every time
NO_SETTLEMENT = 2**62


def _none(x: float) -> float | None:
    x = float(x)
    return None if x != x else x  # NaN is None


class _Compact:
    """Series of a small fixed shape, one slot each in numpy arrays.

    A series holding at most two perp observations (slots ``a`` then ``b``:
    time, mark, interval), at most two forecasts (slots ``f1``, ``f2``: the
    settlement time, when it was shown, the rate, the interval) and no
    settlement record lives here rather than as a `_Series`, so that a view's
    perps update every such series with a few numpy operations. It is a form
    of storage only: `SettlementLog` turns a slot back into the very `_Series`
    it stands for (`series`) before anything reads it or feeds it what the
    slots cannot hold. NaN stands for None in the float slots.

    A series no open leg holds keeps one observation and one forecast between
    cycles (the cycle's `forget_before`); the cycle's view adds the second of
    each; the forget takes them back to one.
    """

    FLOATS = ("a_mark", "a_int", "b_mark", "b_int", "f1_rate", "f1_int", "f2_rate", "f2_int",
              "lfc_int")  # fmt: skip
    INTS = ("a_ts", "b_ts", "f1_next", "f1_shown", "f2_next", "f2_shown",
            "ver", "last_ts", "lfc_next", "fcut")  # fmt: skip
    F1 = ("f1_next", "f1_shown", "f1_rate", "f1_int")
    F2 = ("f2_next", "f2_shown", "f2_rate", "f2_int")

    def __init__(self) -> None:
        self.size = 0  # slots in use: one per series id, kept for good
        self.cap = 0
        self.here = np.zeros(0, dtype=bool)  # the series lives in the slot (not a _Series)
        self.had = np.zeros(0, dtype=bool)  # its `had_records`
        self.nm = np.zeros(0, dtype=np.int8)  # observations held: 0, 1 (a) or 2 (a, b)
        self.nf = np.zeros(0, dtype=np.int8)  # forecasts held: 0, 1 (f1) or 2 (f1, f2)
        self.a_ts = self.b_ts = self.f1_next = self.f1_shown = self.f2_next = self.f2_shown = (
            np.zeros(0, dtype=np.int64)
        )
        self.a_mark = self.a_int = self.b_mark = self.b_int = np.zeros(0)
        self.f1_rate = self.f1_int = self.f2_rate = self.f2_int = np.zeros(0)
        # What `SettlementLog` tracks of a series kept as a `_Series` (slot `here` False),
        # so that a cycle can tell without Python per series what may have changed:
        # `ver` counts the changes that may change `quiet`'s answer (see
        # SettlementLog.versions); `last_ts` is its latest perp observation's time;
        # (`lfc_next`, `lfc_int`) the settlement time and interval of the last forecast
        # fed to it (-1: none known, so the next one counts as a change); `fcut` the
        # last `forget_before` time applied to it, and `fdirty` whether anything fed
        # since could make forgetting at that time again change it.
        self.ver = self.last_ts = self.lfc_next = self.fcut = np.zeros(0, dtype=np.int64)
        self.lfc_int = np.zeros(0)
        self.fdirty = np.zeros(0, dtype=bool)
        self._grow(64)

    def _grow(self, cap: int) -> None:
        n = self.size
        for name in ("here", "had", "nm", "nf", "fdirty", *self.FLOATS, *self.INTS):
            old = getattr(self, name)
            new = (
                np.zeros(cap, dtype=old.dtype) if old.dtype != np.float64 else np.full(cap, np.nan)
            )
            new[:n] = old[:n]
            setattr(self, name, new)
        self.cap = cap

    def new_slot(self, here: bool) -> int:
        if self.size == self.cap:
            self._grow(self.cap * 2)
        i = self.size
        self.size += 1
        self.here[i], self.had[i], self.nm[i], self.nf[i] = here, False, 0, 0
        self.ver[i] = 0
        return i

    def track(self, i: int, s: _Series) -> None:
        """Slot ``i``'s series is (from now on) the `_Series` ``s``: start tracking it
        afresh, and count a change (whatever was known of it before is stale)."""
        self.ver[i] += 1
        self.last_ts[i] = s.mark_ts[-1] if s.mark_ts else _NEVER
        self.lfc_next[i] = -1
        self.fcut[i] = _NEVER
        self.fdirty[i] = True

    def series(self, i: int) -> _Series:
        """The `_Series` slot ``i`` stands for (a new one: the slot is left as it is)."""
        s = _Series(had_records=bool(self.had[i]))
        nm = int(self.nm[i])
        if nm >= 1:
            s.mark_ts.append(int(self.a_ts[i]))
            s.marks.append(_none(self.a_mark[i]))
            s.intervals.append(_none(self.a_int[i]))
        if nm == 2:
            s.mark_ts.append(int(self.b_ts[i]))
            s.marks.append(_none(self.b_mark[i]))
            s.intervals.append(_none(self.b_int[i]))
        nf = int(self.nf[i])
        if nf >= 1:
            s.forecasts[int(self.f1_next[i])] = _Forecast(
                int(self.f1_shown[i]), float(self.f1_rate[i]), _none(self.f1_int[i])
            )
        if nf == 2:
            s.forecasts[int(self.f2_next[i])] = _Forecast(
                int(self.f2_shown[i]), float(self.f2_rate[i]), _none(self.f2_int[i])
            )
        return s

    def take(self, i: int, s: _Series) -> bool:
        """Put ``s`` in slot ``i`` if it has the shape; False (and nothing done) if not."""
        if s.records or len(s.mark_ts) > 2 or len(s.forecasts) > 2:
            return False
        nan = float("nan")
        self.had[i] = s.had_records
        self.nm[i] = len(s.mark_ts)
        for slot, j in (("a", 0), ("b", 1))[: len(s.mark_ts)]:
            getattr(self, slot + "_ts")[i] = s.mark_ts[j]
            mark, interval = s.marks[j], s.intervals[j]
            getattr(self, slot + "_mark")[i] = nan if mark is None else mark
            getattr(self, slot + "_int")[i] = nan if interval is None else interval
        self.nf[i] = len(s.forecasts)
        for names, (nxt, fc) in zip((self.F1, self.F2), s.forecasts.items(), strict=False):
            getattr(self, names[0])[i] = nxt
            getattr(self, names[1])[i] = fc.shown_at
            getattr(self, names[2])[i] = fc.rate
            getattr(self, names[3])[i] = nan if fc.interval_h is None else fc.interval_h
        self.here[i] = True
        self.ver[i] += 1
        return True

    def forget_before(self, cut: np.ndarray | int) -> None:
        """`_Series.forget_before` for every series in a slot (``cut``: one time, or
        one per slot)."""
        idx = np.flatnonzero(self.here[: self.size])
        if not idx.size:
            return
        if isinstance(cut, np.ndarray):
            cut = cut[idx]
        nf = self.nf[idx]
        gone1 = (nf >= 1) & (self.f1_next[idx] < cut)
        gone2 = (nf == 2) & (self.f2_next[idx] < cut)
        move = idx[gone1 & ~gone2 & (nf == 2)]  # f2 is left: it becomes f1
        if move.size:
            for one, two in zip(self.F1, self.F2, strict=True):
                getattr(self, one)[move] = getattr(self, two)[move]
        self.nf[idx] = nf - gone1 - gone2
        # observations: of a and b, b alone is left when it is at or before the cut
        # and has a mark (an older one is then no mark any settlement can take)
        b = self.b_mark[idx]
        shift = idx[(self.nm[idx] == 2) & (self.b_ts[idx] <= cut) & (b == b)]
        if shift.size:
            self.a_ts[shift] = self.b_ts[shift]
            self.a_mark[shift] = self.b_mark[shift]
            self.a_int[shift] = self.b_int[shift]
            self.nm[shift] = 1


class _Pending:
    """Perp observations of series kept as `_Series`, not yet written into them.

    A row of a view that `_Series.observe` would simply append to a series (its
    time at or after the series' last, its forecast, if any, the one the series
    took last, at the same interval: what `SettlementLog._feed` calls plain) is
    kept here, per slot, in numpy: up to `K` rows (time, mark, interval) and the
    last forecast shown (settlement time, when shown, rate, interval). They are
    written into the series, exactly as `observe` would have written them one by
    one, before anything reads it (`SettlementLog._get`, a forget that changes
    it, a row that is not plain). Storage only, like `_Compact`."""

    K = 16

    def __init__(self) -> None:
        self.cap = 0
        self.n = np.zeros(0, dtype=np.int64)
        self.ts = np.zeros((0, self.K), dtype=np.int64)
        self.mark = np.zeros((0, self.K))
        self.hours = np.zeros((0, self.K))
        self.fc = np.zeros(0, dtype=bool)
        self.fc_next = np.zeros(0, dtype=np.int64)
        self.fc_shown = np.zeros(0, dtype=np.int64)
        self.fc_rate = np.zeros(0)
        self.fc_int = np.zeros(0)

    def grow(self, cap: int) -> None:
        for name in ("n", "ts", "mark", "hours", "fc", "fc_next", "fc_shown", "fc_rate", "fc_int"):
            old = getattr(self, name)
            new = np.zeros((cap, *old.shape[1:]), dtype=old.dtype)
            new[: self.cap] = old
            setattr(self, name, new)
        self.cap = cap

    def add(self, sid: np.ndarray, ts: np.ndarray, mark: np.ndarray, hours: np.ndarray,
            shows: np.ndarray, nxt: np.ndarray, rate: np.ndarray) -> None:  # fmt: skip
        """Plain rows (one per slot), each slot with room for one more."""
        col = self.n[sid]
        self.ts[sid, col] = ts
        self.mark[sid, col] = mark
        self.hours[sid, col] = hours
        self.n[sid] = col + 1
        f = sid[shows]
        self.fc[f] = True
        self.fc_next[f] = nxt[shows]
        self.fc_shown[f] = ts[shows]
        self.fc_rate[f] = rate[shows]
        self.fc_int[f] = hours[shows]

    #: up to this many slots, `write` reads each slot's rows on their own (a few
    #: numpy calls per slot); more are read in bulk (a few numpy calls for them all)
    FEW = 4

    def write(self, ids: list[int], series: list[_Series]) -> None:
        """Each slot's rows into its series, as `_Series.observe` of each row in turn
        writes them; then the slots are empty. (A few slots are read one by one;
        more in bulk: one conversion per field for all the slots, not one per row.)"""
        if len(ids) <= self.FEW:
            for i, s in zip(ids, series, strict=True):
                n = self.n.item(i)
                t_j = self.ts[i, :n].tolist()
                m_j = [None if x != x else x for x in self.mark[i, :n].tolist()]
                h_j = [None if x != x else x for x in self.hours[i, :n].tolist()]
                fc = None
                if self.fc.item(i):
                    h = self.fc_int.item(i)
                    fc = (self.fc_next.item(i), self.fc_shown.item(i), self.fc_rate.item(i),
                          None if h != h else h)  # fmt: skip
                repeats = any(a == b for a, b in zip(t_j, t_j[1:], strict=False))
                _write_rows(s, t_j, m_j, h_j, repeats, fc)
                self.n[i] = 0
                self.fc[i] = False
            return
        at = np.array(ids, dtype=np.intp)
        counts = self.n[at]
        held = np.arange(self.K)[None, :] < counts[:, None]
        ts_2d = self.ts[at]
        # a slot whose rows hold one time twice (the same observation seen again)
        repeats = ((ts_2d[:, 1:] == ts_2d[:, :-1]) & held[:, 1:]).any(axis=1).tolist()
        ts = ts_2d[held].tolist()
        marks, hours = _nones(self.mark[at][held]), _nones(self.hours[at][held])
        ends = np.cumsum(counts).tolist()
        fc_of = self.fc[at].tolist()
        fc_next, fc_shown = self.fc_next[at].tolist(), self.fc_shown[at].tolist()
        fc_rate, fc_int = self.fc_rate[at].tolist(), _nones(self.fc_int[at])
        start = 0
        for j, s in enumerate(series):
            end = ends[j]
            _write_rows(
                s, ts[start:end], marks[start:end], hours[start:end], repeats[j],
                (fc_next[j], fc_shown[j], fc_rate[j], fc_int[j]) if fc_of[j] else None,
            )  # fmt: skip
            start = end
        self.n[at] = 0
        self.fc[at] = False


def _write_rows(
    s: _Series, t_j: list[int], m_j: list[float | None], h_j: list[float | None],
    repeats: bool, fc: tuple[int, int, float, float | None] | None,
) -> None:  # fmt: skip
    """One slot's pending rows (times, marks, intervals: at least one; `repeats`: one
    time twice) and its last forecast shown (settlement time, when shown, rate,
    interval) into its series, as `_Series.observe` of each row in turn writes them."""
    mark_ts = s.mark_ts
    if not repeats and (not mark_ts or t_j[0] > mark_ts[-1]):
        mark_ts.extend(t_j)  # all later, none seen twice: each is appended
        s.marks.extend(m_j)
        s.intervals.extend(h_j)
    else:
        for t, m, h in zip(t_j, m_j, h_j, strict=True):
            if mark_ts and t == mark_ts[-1]:  # the same observation seen again
                s.marks[-1], s.intervals[-1] = m, h
            else:  # a plain row is never older than the last one
                mark_ts.append(t)
                s.marks.append(m)
                s.intervals.append(h)
    if fc is not None:  # the last one shown wins (every plain row is at or after it)
        nxt = fc[0]
        if nxt not in s.forecasts:
            s.sorted_times = None
        s.forecasts[nxt] = _Forecast(fc[1], fc[2], fc[3])


def _nones(a: np.ndarray) -> list[float | None]:
    """The values as Python floats, NaN as None."""
    out: list[float | None] = a.tolist()
    if np.isnan(a).any():
        out = [None if x != x else x for x in out]
    return out


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
        #: the series kept as `_Series` (the others are in `_slots`)
        self._series: dict[tuple[str, str], _Series] = {}
        #: a slot of `_slots` per (exchange, coin) a view's columns brought, and back
        self._sid: dict[tuple[str, str], int] = {}
        self._keys: list[tuple[str, str]] = []
        self._slots = _Compact()
        #: the slot of each (exchange code, coin code) of the last columns fed, -1 = none
        self._table: tuple[tuple[str, ...], tuple[str, ...], np.ndarray] | None = None
        #: the last view's perps: row per slot (-1 = not in the view), times, intervals
        self._shown: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        #: series kept as `_Series` that no view's columns brought (no slot id)
        self._nosid: set[tuple[str, str]] = set()
        #: the last read-only columns' perp rows and their slots (`_layout_of`)
        self._layout: (
            tuple[tuple[np.ndarray, np.ndarray, np.ndarray], tuple[str, ...], tuple[str, ...],
                  tuple[str, ...], int, np.ndarray, np.ndarray, np.ndarray] | None
        ) = None  # fmt: skip
        #: plain rows not yet written into their `_Series`, and the slots that have some
        self._pend = _Pending()
        self._pending: set[int] = set()

    def _write_pending(self, i: int, s: _Series) -> None:
        if i in self._pending:
            self._pend.write([i], [s])
            self._pending.discard(i)

    def _write_all_pending(self, ids: list[int]) -> None:
        """`_write_pending` of many slots at once (those of them with rows pending)."""
        pending = self._pending
        todo = [i for i in ids if i in pending]
        if todo:
            keys, series_of = self._keys, self._series
            self._pend.write(todo, [series_of[keys[i]] for i in todo])
            pending.difference_update(todo)

    def _known_series(self, key: tuple[str, str]) -> _Series | None:
        """What the log knows of ``key`` as a `_Series`, leaving how it keeps it as it is
        (a copy where rows are pending or it is in a slot; for tests)."""
        s = self._series.get(key)
        i = self._sid.get(key)
        if s is None:
            return None if i is None or not self._slots.here[i] else self._slots.series(i)
        if i is None or i not in self._pending:
            return s
        copy = _Series(dict(s.records), s.had_records, dict(s.forecasts), list(s.mark_ts),
                       list(s.marks), list(s.intervals))  # fmt: skip
        copy.forecasts = {k: _Forecast(f.shown_at, f.rate, f.interval_h)
                          for k, f in s.forecasts.items()}  # fmt: skip
        n, fc = int(self._pend.n[i]), bool(self._pend.fc[i])
        self._pend.write([i], [copy])
        self._pend.n[i], self._pend.fc[i] = n, fc  # still pending in the log itself
        return copy

    def _get(self, key: tuple[str, str]) -> _Series | None:
        """The series of ``key`` as a `_Series` (made from its slot if it is in one)."""
        s = self._series.get(key)
        if s is not None:
            if self._pending:
                i = self._sid.get(key)
                if i is not None:
                    self._write_pending(i, s)
        else:
            i = self._sid.get(key)
            if i is not None and self._slots.here[i]:
                s = self._series[key] = self._slots.series(i)
                self._slots.here[i] = False  # from now on the _Series is the series
                self._slots.track(i, s)
        return s

    def _of(self, exchange: str, coin: str) -> _Series:
        key = (exchange, coin)
        s = self._get(key)
        if s is None:
            s = self._series[key] = _Series()
            i = self._sid.get(key)
            if i is None:
                self._nosid.add(key)
            else:
                self._slots.track(i, s)
        return s

    # -- feeding ------------------------------------------------------------------
    def add_view(self, view: SnapshotView) -> None:
        """A view's perp observations (forecasts, marks) and the records it carries.

        Read from the view's columns: what `observe` does for each perp, done
        with numpy for the series in slots, and by `_Series.observe` for the
        others (or when a slot cannot hold what comes)."""
        self._feed(view.columns())
        self.add_records(view.settlements)

    def observe(self, o: Observation | PerpRow) -> None:
        """One perp observation: a forecast of its next settlement, and a mark."""
        if o.market != "perp":
            return
        series = self._of(o.exchange, o.coin)
        series.observe(o.ts, o.next_funding_ts, o.funding_rate, o.funding_interval_h, o.mark)
        i = self._sid.get((o.exchange, o.coin))
        if i is not None:
            self._slots.track(i, series)

    def _slots_of(self, cols: ViewColumns, rows: np.ndarray) -> np.ndarray:
        """The slot of each of these rows' (exchange, coin), made for a new one."""
        ex, co = cols.exchanges, cols.coins
        table = self._table
        if table is None or table[0] != ex or table[1] != co:
            grid = np.full((len(ex), len(co)), -1, dtype=np.intp)
            at_ex = {e: i for i, e in enumerate(ex)}
            at_co = {c: i for i, c in enumerate(co)}
            for (exchange, coin), i in self._sid.items():
                if exchange in at_ex and coin in at_co:
                    grid[at_ex[exchange], at_co[coin]] = i
            table = self._table = (ex, co, grid)
        grid = table[2]
        e_code, c_code = cols.exchange[rows].astype(np.intp), cols.coin[rows].astype(np.intp)
        sid = grid[e_code, c_code]
        if (sid < 0).any():
            for j in np.flatnonzero(sid < 0).tolist():
                e, c = int(e_code[j]), int(c_code[j])
                key = (ex[e], co[c])
                got = self._sid.get(key)
                if got is None:  # a series held as a _Series already (observe) stays one
                    held = self._series.get(key)
                    got = self._sid[key] = self._slots.new_slot(here=held is None)
                    self._keys.append(key)
                    if held is not None:
                        self._nosid.discard(key)
                        self._slots.track(got, held)
                grid[e, c] = sid[j] = got
        return np.asarray(sid, dtype=np.intp)

    def _layout_of(self, cols: ViewColumns) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The perp rows of these columns, each row's slot, and each slot's row (-1:
        none; `shown_rows`). Kept while the columns' code arrays are the same read-only
        objects (a replay's consecutive views share them while no market is added:
        the same rows, keys and so slots) and no slot was made since."""
        kept = self._layout
        codes = (cols.exchange, cols.coin, cols.market)
        if (
            kept is not None
            and kept[0][0] is codes[0] and kept[0][1] is codes[1] and kept[0][2] is codes[2]
            and kept[1] is cols.exchanges and kept[2] is cols.coins and kept[3] is cols.markets
            and kept[4] == self._slots.size
        ):  # fmt: skip
            return kept[5], kept[6], kept[7]
        rows = np.flatnonzero(cols.market == cols.markets.index("perp"))
        sid = self._slots_of(cols, rows)
        shown = np.full(self._slots.size, -1, dtype=np.intp)
        shown[sid] = np.arange(sid.size)
        for a in (rows, sid, shown):
            a.setflags(write=False)
        if not any(a.flags.writeable for a in codes):  # no one can change them
            self._layout = (
                codes, cols.exchanges, cols.coins, cols.markets, self._slots.size, rows, sid, shown
            )
        return rows, sid, shown

    def _feed(self, cols: ViewColumns) -> None:
        slots = self._slots
        markets = cols.markets
        if "perp" not in markets:
            self._shown = None
            return
        rows, sid, shown = self._layout_of(cols)
        ts = cols.ts[rows].astype(np.int64, copy=False)
        nxt, rate = cols.next_funding_ts[rows], cols.funding_rate[rows]
        hours, mark = cols.funding_interval_h[rows], cols.mark[rows]
        self._shown = (shown, ts, hours)
        # Which rows the slots can take: `_Series.observe` on the shape a slot holds.
        nm, nf = slots.nm[sid], slots.nf[sid]
        last = np.where(nm == 2, slots.b_ts[sid], slots.a_ts[sid])
        with np.errstate(invalid="ignore"):
            shows = (nxt == nxt) & (rate == rate) & (ts < nxt)  # a forecast of nxt
        nxt_ms = np.where(shows, nxt, 0.0).astype(np.int64)
        is1 = shows & (nf >= 1) & (slots.f1_next[sid] == nxt_ms)
        is2 = shows & (nf == 2) & (slots.f2_next[sid] == nxt_ms)
        new_fc = shows & ~is1 & ~is2
        later = (nm == 0) | (ts > last)  # appended (a forecast's shown_at <= last)
        again = (nm >= 1) & (ts == last)  # the same observation seen again
        fits = slots.here[sid] & ((later & (nm < 2)) | again) & ~(new_fc & (nf == 2))
        if not fits.all():
            rest = np.flatnonzero(~fits)
            r_sid, r_ts, r_shows, r_nxt, r_hours = (
                sid[rest], ts[rest], shows[rest], nxt_ms[rest], hours[rest]
            )
            # Whether a row may change what `quiet` answers for the series (it counts
            # a change, `versions`): any row of a series not kept as a _Series yet, a
            # late one, and one that shows a forecast other than the last one fed
            # (another settlement time, or another interval). Anything else only adds
            # a mark or moves a forecast's rate and time shown, which `quiet` never reads.
            lfc_int = slots.lfc_int[r_sid]
            same_int = (r_hours == lfc_int) | ((r_hours != r_hours) & (lfc_int != lfc_int))
            plain = (
                ~slots.here[r_sid]
                & (r_ts >= slots.last_ts[r_sid])
                & (~r_shows | ((r_nxt == slots.lfc_next[r_sid]) & same_int))
            )
            pend = self._pend
            if pend.cap < slots.cap:
                pend.grow(slots.cap)
            deferred = plain & (pend.n[r_sid] < _Pending.K)  # kept to be written when read
            if deferred.any():
                p_sid = r_sid[deferred]
                pend.add(p_sid, r_ts[deferred], mark[rest][deferred], r_hours[deferred], r_shows[deferred],
                         r_nxt[deferred], rate[rest][deferred])  # fmt: skip
                self._pending.update(p_sid.tolist())
            direct = ~deferred  # one by one, each series' pending rows written first
            if self._pending:
                self._write_all_pending(r_sid[direct].tolist())
            keys = self._keys
            for i, t_, n_, r_, h_, m_ in zip(
                r_sid[direct].tolist(), r_ts[direct].tolist(), nxt[rest][direct].tolist(),
                rate[rest][direct].tolist(), r_hours[direct].tolist(), mark[rest][direct].tolist(),
                strict=True,
            ):  # fmt: skip
                series = self._get(keys[i])  # a slot that cannot take the row is made one
                assert series is not None
                series.observe(
                    t_, None if n_ != n_ else int(n_), None if r_ != r_ else r_,
                    None if h_ != h_ else h_, None if m_ != m_ else m_,
                )  # fmt: skip
            # what is tracked of them (after the slots made _Series above started afresh)
            seen_to = slots.last_ts[r_sid]
            late = r_ts < seen_to
            slots.last_ts[r_sid] = np.maximum(seen_to, r_ts)
            fc = r_shows & ~late
            slots.lfc_next[r_sid[fc]] = r_nxt[fc]
            slots.lfc_int[r_sid[fc]] = r_hours[fc]
            slots.lfc_next[r_sid[late]] = -1
            cut = slots.fcut[r_sid]
            slots.fdirty[r_sid[(r_ts <= cut) | (r_shows & (r_nxt < cut))]] = True
            slots.ver[r_sid[~plain]] += 1
            take = np.flatnonzero(fits)
            sid, ts, nxt_ms, rate, hours, mark, nm, nf, is1, is2, new_fc, later = (
                a[take]
                for a in (sid, ts, nxt_ms, rate, hours, mark, nm, nf, is1, is2, new_fc, later)
            )
        # the observation: into a (first), b (second), or over the last one (again)
        into_a = np.where(later, nm == 0, nm == 1)
        for slot, where in (("a", into_a), ("b", ~into_a)):
            if not where.any():  # (most cycles every row goes to one of them)
                continue
            i = sid[where]
            getattr(slots, slot + "_ts")[i] = ts[where]
            getattr(slots, slot + "_mark")[i] = mark[where]
            getattr(slots, slot + "_int")[i] = hours[where]
        slots.nm[sid] = nm + later
        # the forecast: over the one of the same settlement, or a new one after those held
        into1 = is1 | (new_fc & (nf == 0))
        into2 = is2 | (new_fc & (nf == 1))
        for names, where in ((_Compact.F1, into1), (_Compact.F2, into2)):
            if not where.any():
                continue
            i = sid[where]
            getattr(slots, names[0])[i] = nxt_ms[where]
            getattr(slots, names[1])[i] = ts[where]
            getattr(slots, names[2])[i] = rate[where]
            getattr(slots, names[3])[i] = hours[where]
        slots.nf[sid] = nf + new_fc

    def add_records(self, records: Iterable[Settlement]) -> None:
        for r in records:
            # the first record of a settlement is kept: it is what was paid against
            series = self._of(r.exchange, r.coin)
            if r.ts not in series.records:
                series.sorted_times = None
            series.records.setdefault(r.ts, r)
            series.had_records = True
            i = self._sid.get((r.exchange, r.coin))
            if i is not None:  # a record may change what `quiet` says
                self._slots.ver[i] += 1
                self._slots.fdirty[i] = True

    def shown(self, exchange: str, coin: str) -> tuple[int, float | None] | None:
        """The time and interval of (exchange, coin)'s perp in the last view fed
        (`add_view`), or None when that view has none."""
        i = self._sid.get((exchange, coin))
        if i is None or self._shown is None:
            return None
        rows, ts, hours = self._shown
        if i >= rows.size or rows[i] < 0:
            return None
        r = rows[i]
        return int(ts[r]), _none(hours[r])

    # -- reading ------------------------------------------------------------------
    def record(self, exchange: str, coin: str, s: int) -> Settlement | None:
        series = self._get((exchange, coin))
        return None if series is None else series.records.get(s)

    def has_records(self, exchange: str, coin: str) -> bool:
        """Whether any settlement record of (exchange, coin) has been seen (and kept)."""
        series = self._get((exchange, coin))
        return series is not None and (bool(series.records) or series.had_records)

    def known_times(self, exchange: str, coin: str, after: int, upto: int) -> list[int]:
        """Settlement times in (after, upto] known from a record or a forecast."""
        series = self._get((exchange, coin))
        return [] if series is None else series.times(after, upto)

    def resolve(
        self, exchange: str, coin: str, s: int, now: int, fallback_mark: float | None = None
    ) -> SettledFunding | None:
        """The rate and mark of the settlement at ``s``, or None while it waits for its record.

        ``fallback_mark`` (the leg's last mark) is used only when no perp
        observation at or before ``s`` is known; without it, a settlement with
        no mark waits."""
        series = self._get((exchange, coin))
        if series is None:
            return None
        got = self._resolved(series, s, now, fallback_mark)
        return None if got is None else SettledFunding(exchange, coin, s, *got)

    def _resolved(
        self, series: _Series, s: int, now: int, fallback_mark: float | None
    ) -> tuple[float | None, float, float, RateSource, MarkSource] | None:
        """`resolve` on a series: (interval, rate, mark, rate source, mark source)."""
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
            if self.expect_records or series.had_records:
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
        return interval, rate, mark, rate_src, mark_src

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
        return self.settle_with_state(
            exchange, coin, after=after, upto=upto, now=now, fallback_mark=fallback_mark
        )[0]

    def settle_with_state(
        self,
        exchange: str,
        coin: str,
        *,
        after: int,
        upto: int,
        now: int,
        fallback_mark: float | None = None,
    ) -> tuple[SettleResult, tuple[int, bool]]:
        """`settle`, and `quiet_state` at the time paid up to after it (the last
        settlement paid, else ``after``): what the funding step asks next of the leg,
        read from the same look-ups."""
        out = SettleResult()
        series = self._get((exchange, coin))
        if series is None:
            return out, (NO_SETTLEMENT, True)
        known = series.known()  # sorted, each time once
        records, forecasts = series.records, series.forecasts
        lo = bisect.bisect_right(known, after)
        hi = bisect.bisect_right(known, upto)
        # the previous settlement (the one paid last), for the gaps: its time and interval
        prev: tuple[int, float | None] | None = None
        if after in records or after in forecasts:
            got = self._resolved(series, after, now, fallback_mark)
            if got is not None:
                prev = (after, got[0])
        paid_to, nxt_at = after, lo  # quiet_state's: the time paid to, the next one's place
        for k in range(lo, hi):
            s = known[k]
            got = self._resolved(series, s, now, fallback_mark)
            if got is None:
                out.waiting = s
                break
            if prev is not None and prev[1]:
                out.missing.extend(_implied(prev[0], prev[1], s, got[0], upto))
            out.settled.append(SettledFunding(exchange, coin, s, *got))
            prev = (s, got[0])
            paid_to, nxt_at = s, k + 1
        else:
            if hi < len(known) and prev is not None and prev[1]:
                beyond = known[hi]
                out.missing.extend(
                    _implied(prev[0], prev[1], beyond, series.interval_of(beyond), upto)
                )
        # quiet_state(paid_to): the first settlement known after it, and whether no gap
        # before that could be hidden
        if nxt_at == len(known):
            return out, (NO_SETTLEMENT, True)
        nxt = known[nxt_at]
        if paid_to not in records and paid_to not in forecasts:
            return out, (nxt, True)
        h = series.interval_of(nxt)
        return out, (nxt, h is not None and h * 3_600_000 >= nxt - paid_to)

    def quiet(self, exchange: str, coin: str, *, after: int, upto: int) -> bool:
        """True when ``settle`` over (after, upto] has, at any ``now``, nothing to pay,
        nothing waiting and nothing missing, known without resolving anything: no
        settlement is known in (after, upto], and the next known one lies within its
        own interval of ``after`` (so no gap an outage could hide). False means only
        "ask ``settle``". The paper runtime asks this (through `quiet_state`) for
        every held perp leg, and calls ``settle`` for the few legs it is False for."""
        nxt, gate = self.quiet_state(exchange, coin, after)
        return upto < nxt and gate

    def quiet_state(self, exchange: str, coin: str, after: int) -> tuple[int, bool]:
        """``(nxt, gate)`` such that ``quiet(after=after, upto=u)`` is
        ``u < nxt and gate`` for every ``u``: ``nxt`` is the first settlement known
        after ``after`` (`NO_SETTLEMENT` if none), ``gate`` whether no gap before it
        could be hidden. It stays so while the series' count in `versions` does not
        move (a record, a forecast of another settlement time or interval, a late
        observation move it; a forget only drops what lies before ``after``)."""
        series = self._get((exchange, coin))
        if series is None:
            return NO_SETTLEMENT, True
        known = series.known()
        i = bisect.bisect_right(known, after)
        if i == len(known):
            return NO_SETTLEMENT, True  # nothing known after: nothing to pay, no gap
        nxt = known[i]
        if after not in series.records and after not in series.forecasts:
            return nxt, True  # settle() has no previous settlement to find a gap from
        h = series.interval_of(nxt)
        return nxt, h is not None and h * 3_600_000 >= nxt - after

    def slot(self, exchange: str, coin: str) -> int:
        """The index of (exchange, coin) in `versions` and `shown_rows` (-1: no view has
        brought it yet)."""
        i = self._sid.get((exchange, coin))
        return -1 if i is None else i

    def versions(self) -> np.ndarray:
        """Per `slot`, a count that moves whenever what `quiet_state` answers for that
        market may have changed (read-only; valid until the next feed)."""
        return self._slots.ver[: self._slots.size]

    def shown_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """`shown` for every market at once: (row per `slot`, -1 = not in the last view;
        the rows' times; their intervals, NaN = none), or None before any view. The
        row array may be shorter than `versions` (a slot made after that view)."""
        return self._shown

    def current_interval(self, exchange: str, coin: str) -> tuple[int, float] | None:
        """The latest perp observation's interval and its time, if known."""
        series = self._get((exchange, coin))
        if series is None:
            return None
        for i in range(len(series.mark_ts) - 1, -1, -1):
            h = series.intervals[i]
            if h is not None:
                return series.mark_ts[i], h
        return None

    # -- memory ------------------------------------------------------------------
    def forget_before(
        self,
        ts: int,
        keep: Mapping[tuple[str, str], int] | None = None,
        *,
        held: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Drop settlements before ``ts``, and perp observations older than the last one
        with a mark at or before it; for an (exchange, coin) in ``keep``, before its own
        time there instead (what the open legs of that market can still be paid from).
        ``held`` says the same as ``keep`` for markets by `slot`: (slots, times), each
        slot once.

        A series neither names goes back into a slot if it fits one. A series kept
        whose time is the one it was last forgotten at, and that was fed nothing
        since that could lie before it, is left alone: forgetting it again would
        change nothing (`_Series.forget_before` at one time is idempotent)."""
        keep = keep or {}
        slots, sid = self._slots, self._sid
        n = slots.size
        cut = np.full(n, ts, dtype=np.int64)
        kept = np.zeros(n, dtype=bool)
        if held is not None:
            cut[held[0]] = held[1]
            kept[held[0]] = True
        for key, t in keep.items():
            i = sid.get(key)
            if i is not None:
                cut[i] = t
                kept[i] = True
        todo = ~slots.here[:n] & (~kept | slots.fdirty[:n] | (slots.fcut[:n] != cut))
        keys, series_of = self._keys, self._series
        todo_ids = np.flatnonzero(todo).tolist()
        if self._pending:
            self._write_all_pending(todo_ids)
        for i in todo_ids:
            key = keys[i]
            series = series_of[key]
            t = int(cut[i])
            series.forget_before(t)
            slots.fcut[i] = t
            slots.fdirty[i] = False
            if not kept[i] and slots.take(i, series):
                del series_of[key]
        for key in self._nosid:
            series_of[key].forget_before(keep.get(key, ts))
        slots.forget_before(cut)
