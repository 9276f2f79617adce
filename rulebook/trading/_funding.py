"""Step 1 of the cycle (spec section 11): pay every settlement of every held perp leg.

    step = FundingStep(ledger, wait_ms=600_000, expect_records=True)   # live
    step.feed(view)                            # every view, also those a resume skips
    total = step.settle(executor, view, t)     # pays what is due, in time order
    step.settle_now(executor, position, t)     # before a close: nothing left waiting
    events = step.drain_events()

The rule itself (which settlements, at which rate and mark, the estimate after
a bounded wait) is `rulebook.market.SettlementLog`; this module keeps, per
leg, the last settlement paid, asks the executor to pay each new one, and
turns interval changes and settlements nothing showed into events. Choices:
docs/settlement.md.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from rulebook.market import IntervalWatch, SettledFunding, SettlementLog, SnapshotView

from ._book import PaperLeg, PaperPosition
from ._executor import Executor, Settlement, TradeEvent
from ._ledger import Ledger

__all__ = ["FundingStep"]

LegKey = tuple[int, str]  # (position id, exchange): a position has one perp leg per exchange

_NEVER = np.iinfo(np.int64).min

#: a held market's settlements and marks are forgotten up to the start of the step of
#: this grid (ms: 8 hours) its earliest leg is paid in (`FundingStep._forget`)
FORGET_GRID = 8 * 3_600_000


class _Legs:
    """The held legs of one book, in book order, with what each cycle needs of the perp
    legs as arrays: how far each is paid (`after`), the market's `slot` in the log,
    the log's last `quiet_state` of the leg and the `versions` count it was read at,
    and the interval watch's (time, interval) of the leg (NaN: none), with whether
    that is newer than what `IntervalWatch` holds (`w_dirty`)."""

    def __init__(self, book: tuple[PaperPosition, ...], ids: tuple[int, ...]) -> None:
        self.book = book  # held here, so the ids below stay these positions'
        self.ids = ids
        #: every perp leg and borrowed leg, in the order the step visits them, each
        #: with its place in `perp` (-1: a borrowed leg)
        self.visit: list[tuple[int, PaperPosition, PaperLeg]] = []
        self.perp: list[tuple[PaperPosition, PaperLeg]] = []
        perp_at: list[int] = []
        self.borrowed_at: list[int] = []
        for p in book:
            for leg in p.legs:
                if leg.market == "perp":
                    perp_at.append(len(self.visit))
                    self.visit.append((len(self.perp), p, leg))
                    self.perp.append((p, leg))
                elif leg.borrowed:
                    self.borrowed_at.append(len(self.visit))
                    self.visit.append((-1, p, leg))
        self.keys: list[LegKey] = [(p.id, leg.exchange) for p, leg in self.perp]
        self.index = {key: i for i, key in enumerate(self.keys)}
        self.order = np.array(perp_at, dtype=np.intp)  # each perp leg's place in `visit`
        n = len(self.perp)
        self.after = np.zeros(n, dtype=np.int64)
        self.slot = np.full(n, -1, dtype=np.intp)
        self.c_ver = np.full(n, -1, dtype=np.int64)  # -1: not read yet
        self.c_nxt = np.zeros(n, dtype=np.int64)
        self.c_gate = np.zeros(n, dtype=bool)
        self.w_ts = np.full(n, _NEVER, dtype=np.int64)
        self.w_h = np.full(n, np.nan)
        self.w_dirty = np.zeros(n, dtype=bool)
        #: what `_due` found of each leg it visits: what its market shows now ((time,
        #: interval); None: nothing, or no interval), and whether its last
        #: `quiet_state` still stands and says it is not quiet
        self.shown: list[tuple[int, float] | None] = [None] * n
        self.loud: list[bool] = [False] * n

    #: the arrays a leg still held keeps when the book changes
    STATE = ("after", "slot", "c_ver", "c_nxt", "c_gate", "w_ts", "w_h", "w_dirty")


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


class FundingStep:
    """Pays settlements per the rule; remembers, per leg, how far it has been paid."""

    def __init__(self, ledger: Ledger, wait_ms: int, *, expect_records: bool) -> None:
        """`expect_records`: live, where the exchanges' histories supply a record for
        every settlement; a replay waits only where its recording carries records."""
        self.log = SettlementLog(wait_ms=wait_ms, expect_records=expect_records)
        self.intervals = IntervalWatch()
        self._after: dict[LegKey, int] = {}
        self._paid_ids: set[int] = set()  # the positions `_after` has legs of
        self._missing_told: set[tuple[LegKey, int]] = set()
        self._estimates_told: set[tuple[str, str]] = set()
        self._events: list[TradeEvent] = []
        self._legs: _Legs | None = None  # the book's legs, as arrays (see `settle`)
        # A restart resumes each leg after its last paid settlement, and knows
        # the interval that settled then (so a change during the downtime is news).
        for (pid, exchange), (ts, interval_h) in ledger.read.last_funding_payments().items():
            self._after[(pid, exchange)] = ts
            self._paid_ids.add(pid)
            if interval_h is not None:
                self.intervals.seed((pid, exchange), ts, interval_h)

    # -- feeding -------------------------------------------------------------------
    def feed(self, view: SnapshotView) -> None:
        """What a view tells of settlements (records, forecasts, marks); no payment."""
        self.log.add_view(view)

    def after(self, position: PaperPosition, leg: PaperLeg) -> int:
        """The time after which the leg's next settlement is due."""
        return max(position.opened_at, self._after.get((position.id, leg.exchange), 0))

    # -- paying --------------------------------------------------------------------
    def settle(self, executor: Executor, view: SnapshotView, t: int) -> float:
        """Feed `view`, pay every due settlement of every perp leg, accrue borrow interest;
        returns the funding paid this cycle.

        Per perp leg this is: ask the log whether (after, t] is quiet, settle it if
        not, watch the interval its market shows now. Most legs, most cycles, have
        nothing to do, and that is known from arrays: a leg whose last
        `quiet_state` still stands (its market's `versions` count has not moved,
        and its next settlement is after `t`) is quiet, and a market showing the
        interval the watch holds is no news. Only the other legs (and borrowed
        legs, which accrue every cycle) are visited one by one, in book order."""
        self.feed(view)
        total = 0.0
        log = self.log
        legs = self._legs_of(executor)
        visit = self._due(legs, t)
        if not visit:
            self._forget(executor, t, legs)
            return total
        ver = log.versions()  # read-only, kept up to date until the next feed
        after_of, slot_of, shown, loud = legs.after, legs.slot, legs.shown, legs.loud
        c_nxt, c_gate, c_ver = legs.c_nxt, legs.c_gate, legs.c_ver
        w_ts, w_h, w_dirty = legs.w_ts, legs.w_h, legs.w_dirty
        for j in visit:
            i, p, leg = legs.visit[j]
            if i < 0:  # a borrowed leg
                executor.accrue_borrow(p, leg, view, t)
                continue
            exchange, coin = leg.exchange, p.subject.coin
            after = int(after_of[i])
            if loud[i]:  # the leg's last quiet_state stands, and says it is not quiet
                nxt, gate = 0, False
            else:
                nxt, gate = log.quiet_state(exchange, coin, after)
            if not (t < nxt and gate):  # not quiet: settle (after, t]
                paid, (nxt, gate) = self._settle_leg(executor, p, leg, t, t, i)
                total += paid  # (nxt, gate): quiet_state at the time paid up to now
            c_nxt[i], c_gate[i] = nxt, gate
            slot = int(slot_of[i])  # `_due` read it after this cycle's feed
            c_ver[i] = ver[slot] if slot >= 0 else -1
            # the interval in force now (the view's perp), watched for a change
            now = shown[i]
            if now is None or now[0] < w_ts[i]:
                continue  # nothing shown, or older than what the watch holds: no news
            if now[1] == w_h[i]:  # the interval the watch holds: no news (as `see`)
                w_ts[i] = now[0]
                w_dirty[i] = True
                continue
            self._flush(legs, i)
            change = self.intervals.see((p.id, exchange), exchange, coin, now[0], now[1])
            self._reload(legs, i)
            if change is not None:
                self._events.append(TradeEvent("interval", change.text(), p.id))
        self._forget(executor, t, legs)
        return total

    def _legs_of(self, executor: Executor) -> _Legs:
        """The book's legs, made again (keeping what is known of each leg still held)
        only when the book changed."""
        book = tuple(executor.positions.values())
        ids = tuple(map(id, book))
        old = self._legs
        if old is not None and old.ids == ids:
            return old
        new = _Legs(book, ids)
        # per new perp leg, its place among the old ones (the same position object), or -1
        src: list[int] = []
        old_index: dict[LegKey, int] = {} if old is None else old.index
        old_perp = [] if old is None else old.perp
        for key, (p, _) in zip(new.keys, new.perp, strict=True):
            k = old_index.get(key)
            src.append(-1 if k is None or old_perp[k][0] is not p else k)
        if old is not None:
            dirty = old.w_dirty.copy()  # what the watch must hold of the legs dropped
            if src:
                at = np.array(src, dtype=np.intp)
                have = at >= 0
                if have.any():
                    take = at[have]
                    for name in _Legs.STATE:
                        getattr(new, name)[have] = getattr(old, name)[take]
                    dirty[take] = False  # still held: the new arrays carry it
            for d in np.flatnonzero(dirty).tolist():
                self._flush(old, d)
        for i, j in enumerate(src):
            if j < 0:
                p, leg = new.perp[i]
                new.after[i] = self.after(p, leg)
                self._reload(new, i)
        self._legs = new
        return new

    def _due(self, legs: _Legs, t: int) -> list[int]:
        """The places in `legs.visit` to visit one by one this cycle, in order: every
        borrowed leg, and every perp leg that may have something to settle or whose
        market shows news of its interval. For every other perp leg the watch takes
        the market's time here (news of the interval it holds). What each leg's
        market shows is left in `legs.shown` for the visit."""
        n = len(legs.perp)
        if not n:
            return legs.borrowed_at
        log = self.log
        slot = legs.slot
        unknown = np.flatnonzero(slot < 0)
        for i in unknown.tolist():  # markets no view had brought when the leg was read
            p, leg = legs.perp[i]
            slot[i] = log.slot(leg.exchange, p.subject.coin)
        ver = log.versions()
        at = np.maximum(slot, 0)
        read = (slot >= 0) & (ver[at] == legs.c_ver)
        # the last quiet_state still stands and says quiet at t
        quiet = read & (t < legs.c_nxt) & legs.c_gate
        # the interval each leg's market shows now (`shown`), where it shows one
        has = np.zeros(n, dtype=bool)
        ts = np.zeros(n, dtype=np.int64)
        hours = np.full(n, np.nan)
        shown = log.shown_rows()
        if shown is not None and shown[0].size and shown[1].size:
            rows, all_ts, all_hours = shown
            row = np.where(slot < rows.size, rows[np.minimum(at, rows.size - 1)], -1)
            row[slot < 0] = -1
            has = row >= 0
            r = np.maximum(row, 0)
            ts = np.where(has, all_ts[r], 0)
            hours = np.where(has, all_hours[r], np.nan)
            has &= hours == hours
        legs.loud = (read & ~quiet).tolist()
        newer = has & (ts >= legs.w_ts)  # `see` takes it (older news is ignored)
        same = newer & (hours == legs.w_h)  # and it is the interval held: no news
        visit = ~quiet | (newer & ~same)
        same &= ~visit
        legs.w_ts[same] = ts[same]
        legs.w_dirty |= same
        seen = np.flatnonzero(visit & has)
        at_shown = legs.shown = [None] * n
        for i, ts_i, h_i in zip(
            seen.tolist(), ts[seen].tolist(), hours[seen].tolist(), strict=True
        ):
            at_shown[i] = (ts_i, h_i)
        out: list[int] = legs.order[visit].tolist()
        if legs.borrowed_at:
            out = sorted([*out, *legs.borrowed_at])
        return out

    def _flush(self, legs: _Legs, i: int) -> None:
        """Give `IntervalWatch` leg i's (time, interval) where the arrays are newer."""
        if legs.w_dirty[i]:
            self.intervals.note(legs.keys[i], int(legs.w_ts[i]), float(legs.w_h[i]))
            legs.w_dirty[i] = False

    def _reload(self, legs: _Legs, i: int) -> None:
        """Leg i's (time, interval) as `IntervalWatch` holds it."""
        got = self.intervals.last(legs.keys[i])
        legs.w_ts[i], legs.w_h[i] = (_NEVER, np.nan) if got is None else got
        legs.w_dirty[i] = False

    def settle_now(self, executor: Executor, position: PaperPosition, t: int) -> float:
        """Before a close: pay what still waits for its record at what is known now."""
        total = 0.0
        for leg in position.legs:
            if leg.market == "perp":
                total += self._settle_leg(executor, position, leg, t, t + 10**15)[0]
        return total

    def _settle_leg(
        self, executor: Executor, p: PaperPosition, leg: PaperLeg, t: int, now: int,
        i: int | None = None,
    ) -> tuple[float, tuple[int, bool]]:  # fmt: skip
        """Settle (after, t] of one perp leg at `now`: pay, report what is missing, watch
        the intervals that settled. `i`: the leg's place in `self._legs` (looked up
        when not given). Returns the funding paid, and the log's `quiet_state` of the
        leg at the time it is paid up to now."""
        exchange, coin = leg.exchange, p.subject.coin
        key = (p.id, exchange)
        legs = self._legs
        if legs is not None:
            if i is None:
                i = legs.index.get(key)
                if i is not None and legs.perp[i][0] is not p:
                    i = None
            if i is not None:
                self._flush(legs, i)  # the watch sees the payments' intervals below
        got, state = self.log.settle_with_state(
            exchange, coin, after=self.after(p, leg), upto=t, now=now, fallback_mark=leg.mark
        )
        paid = 0.0
        for when in got.missing:
            if (key, when) not in self._missing_told:
                self._missing_told.add((key, when))
                self._events.append(TradeEvent(
                    "funding",
                    f"position {p.id}: no rate known for the settlement of {coin} on "
                    f"{exchange} at {_utc(when)} (no settlement record, no observation "
                    "showed it): not paid",
                    p.id,
                ))  # fmt: skip
        if got.settled:
            records: bool | None = None  # whether the market has records (asked once)
            for s in got.settled:
                payment = executor.settle_funding(p, leg, _settlement(s))
                self._after[key] = s.ts
                self._paid_ids.add(p.id)
                if payment is not None:
                    paid += payment.amount
                    if s.rate_source == "estimated":
                        if records is None:
                            records = self.log.has_records(exchange, coin)
                        if records:
                            self._tell_estimate(p, leg, s)
                change = self.intervals.see(key, exchange, coin, s.ts, s.interval_h)
                if change is not None:
                    self._events.append(TradeEvent("interval", change.text(), p.id))
        if legs is not None and i is not None:
            legs.after[i] = self.after(p, leg)
            legs.c_ver[i] = -1  # read it again
            self._reload(legs, i)
        return paid, state

    def _tell_estimate(self, p: PaperPosition, leg: PaperLeg, s: SettledFunding) -> None:
        # Only news where settled rates were expected (the caller asks: an estimated
        # payment on a market with records): a recording without any records is
        # estimated throughout, and each payment says so already.
        self._events.append(TradeEvent(
            "funding",
            f"position {p.id}: settlement of {p.coin} on {leg.exchange} at {_utc(s.ts)} paid "
            f"at the estimate {s.rate:.6%} (no settled rate within the wait)",
            p.id,
        ))  # fmt: skip

    def _forget(self, executor: Executor, t: int, legs: _Legs) -> None:
        # Keep, per market, what its open legs can still be paid from (the earliest
        # `after` of its legs, and never past `t`), from the start of its `FORGET_GRID`
        # step: a held market is forgotten once a step, not at every payment, and keeps
        # at most a step more than its legs can read (what is kept is never less than
        # what they read, so nothing they are paid changes). Of the others keep what a
        # position opened now can be paid from: settlements after `t` (a position opened
        # later is only paid settlements after its opening). Every held market is named,
        # also one whose legs are paid up to `t`: it stays a `_Series` (its legs read it
        # again next cycle), rather than going back into a slot.
        keep: dict[tuple[str, str], int] = {}
        held = None
        if legs.perp:
            slot = legs.slot
            after = np.minimum(legs.after, t)
            after -= after % FORGET_GRID
            by_slot = slot >= 0
            s, a = slot[by_slot], after[by_slot]
            if s.size:
                order = np.lexsort((a, s))
                s, a = s[order], a[order]
                first = np.ones(s.size, dtype=bool)
                first[1:] = s[1:] != s[:-1]
                held = (s[first], a[first])
            if s.size < slot.size:
                for i in np.flatnonzero(~by_slot).tolist():
                    p, leg = legs.perp[i]
                    market = (leg.exchange, p.subject.coin)
                    keep[market] = min(keep.get(market, t), int(after[i]))
        self.log.forget_before(t, keep=keep, held=held)
        gone = self._paid_ids - executor.positions.keys()
        if gone:
            for key in [k for k in self._after if k[0] in gone]:
                del self._after[key]
                self.intervals.drop(key)
            self._paid_ids -= gone

    def drain_events(self) -> list[TradeEvent]:
        events, self._events = self._events, []
        return events


def _settlement(s: SettledFunding) -> Settlement:
    return Settlement(
        exchange=s.exchange,
        coin=s.coin,
        ts=s.ts,
        rate=s.rate,
        mark=s.mark,
        interval_h=s.interval_h,
        rate_source=s.rate_source,
        mark_source=s.mark_source,
    )
