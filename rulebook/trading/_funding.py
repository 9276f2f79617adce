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

from rulebook.market import IntervalWatch, SettledFunding, SettlementLog, SnapshotView

from ._book import PaperLeg, PaperPosition
from ._executor import Executor, Settlement, TradeEvent
from ._ledger import Ledger

__all__ = ["FundingStep"]

LegKey = tuple[int, str]  # (position id, exchange): a position has one perp leg per exchange


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
        returns the funding paid this cycle."""
        self.feed(view)
        total = 0.0
        log = self.log
        paid_to = self._after
        # per held market, the earliest settlement an open leg of it can still be paid
        # after (what the log keeps for it; of a market nothing holds, it keeps only
        # what a position opened this cycle can need)
        held_from: dict[tuple[str, str], int] = {}
        shown = log.shown
        see = self.intervals.see
        for p in list(executor.positions.values()):
            coin = p.subject.coin
            for leg in p.legs:
                if leg.market == "perp":
                    exchange = leg.exchange
                    key = (p.id, exchange)
                    after = paid_to.get(key, 0)
                    if after < p.opened_at:
                        after = p.opened_at
                    # most cycles settle nothing for most legs: a cheap check first
                    if not log.quiet(exchange, coin, after=after, upto=t):
                        total += self._settle_leg(executor, p, leg, t, t)
                        after = self.after(p, leg)
                    market = (exchange, coin)
                    if after < held_from.get(market, t):
                        held_from[market] = after
                    # the interval in force now (the view's perp), watched for a change
                    # (inline: this runs for every held perp leg every cycle)
                    now = shown(exchange, coin)
                    if now is not None:
                        change = see(key, exchange, coin, now[0], now[1])
                        if change is not None:
                            self._events.append(TradeEvent("interval", change.text(), p.id))
                elif leg.borrowed:
                    executor.accrue_borrow(p, leg, view, t)
        self._forget(executor, t, held_from)
        return total

    def settle_now(self, executor: Executor, position: PaperPosition, t: int) -> float:
        """Before a close: pay what still waits for its record at what is known now."""
        total = 0.0
        for leg in position.legs:
            if leg.market == "perp":
                total += self._settle_leg(executor, position, leg, t, t + 10**15)
        return total

    def _settle_leg(
        self, executor: Executor, p: PaperPosition, leg: PaperLeg, t: int, now: int
    ) -> float:
        key = (p.id, leg.exchange)
        got = self.log.settle(
            leg.exchange, p.coin, after=self.after(p, leg), upto=t, now=now,
            fallback_mark=leg.mark,
        )  # fmt: skip
        paid = 0.0
        for when in got.missing:
            if (key, when) not in self._missing_told:
                self._missing_told.add((key, when))
                self._events.append(TradeEvent(
                    "funding",
                    f"position {p.id}: no rate known for the settlement of {p.coin} on "
                    f"{leg.exchange} at {_utc(when)} (no settlement record, no observation "
                    "showed it): not paid",
                    p.id,
                ))  # fmt: skip
        for s in got.settled:
            payment = executor.settle_funding(p, leg, _settlement(s))
            self._after[key] = s.ts
            self._paid_ids.add(p.id)
            if payment is not None:
                paid += payment.amount
                self._tell_estimate(p, leg, s)
            change = self.intervals.see(key, leg.exchange, p.coin, s.ts, s.interval_h)
            if change is not None:
                self._events.append(TradeEvent("interval", change.text(), p.id))
        return paid

    def _tell_estimate(self, p: PaperPosition, leg: PaperLeg, s: SettledFunding) -> None:
        # Only news where settled rates were expected: a recording without any
        # records is estimated throughout, and each payment says so already.
        if s.rate_source != "estimated" or not self.log.has_records(leg.exchange, p.coin):
            return
        self._events.append(TradeEvent(
            "funding",
            f"position {p.id}: settlement of {p.coin} on {leg.exchange} at {_utc(s.ts)} paid "
            f"at the estimate {s.rate:.6%} (no settled rate within the wait)",
            p.id,
        ))  # fmt: skip

    def _forget(self, executor: Executor, t: int, held_from: dict[tuple[str, str], int]) -> None:
        # Keep, per market, what its open legs can still be paid from (`held_from`);
        # of the others what a position opened now can be paid from: settlements
        # after `t` (a position opened later is only paid settlements after its opening).
        self.log.forget_before(t, keep=held_from)
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
