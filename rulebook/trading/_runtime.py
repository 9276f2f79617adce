"""The paper runtime: the cycle of spec section 11 over live or replayed snapshots.

    holder = RulesetHolder(ruleset)            # the reloader swaps holder.replace(new)
    ledger = Ledger("paper.db")
    runtime = Runtime(holder, config, ledger, notifier,
                      executor=PaperExecutor(config, ledger))   # or a live one, or a fake
    summary = runtime.run(ReplaySource("rec.jsonl"))

The runtime receives its executor (the `Executor` protocol of `_executor.py`)
and decides what to do; the executor does it and keeps the book.

Each cycle reads the ruleset once from the holder, then: settle funding and
accrue borrow; mark; close what exit clauses and risk limits say; evaluate
entries and open what the limits and balances allow. Everything is written in
one transaction; notifications go out after it commits.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rulebook.engine import (
    EIGHT_HOURS_S,
    RISK_LEVELS,
    Book,
    OpenPosition,
    Opportunity,
    PositionValues,
    SnapshotEnv,
    check_exit,
    check_exits,
    evaluate,
    position_key,
)
from rulebook.lang import AlertAction, Binding, CloseAction, CompiledRule, Ruleset, format_value
from rulebook.market import PriceGuard, SnapshotView

from ._book import PaperPosition
from ._config import TradingConfig
from ._executor import Executor, LegSpec, OpenRequest, TradeEvent
from ._funding import FundingStep
from ._holder import RulesetHolder
from ._ledger import CommitGroups, Ledger, LedgerError
from ._notify import Notifier
from ._recorded import RecordedRulesets
from ._records import CycleRecord, OpportunityRecord

__all__ = ["CycleReport", "RunSummary", "Runtime"]


@dataclass(slots=True)
class CycleReport:
    at: int
    opportunities: int
    opened: int
    closed: int
    funding: float
    equity: float
    open_positions: int


@dataclass(slots=True)
class RunSummary:
    cycles: int = 0
    skipped_cycles: int = 0  # already in the ledger (a resumed replay)
    halted: str | None = None  # why the run stopped early
    failed: str | None = None  # a cycle that could not complete (nothing of it was written)
    last: CycleReport | None = None


@dataclass(slots=True)
class _Halt:
    why: str
    close_all: bool
    request_id: int | None = None


#: a fired binding as the ledger's opportunity records know it: (rule, sorted bindings)
OpportunityKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True, slots=True)
class _RuleInfo:
    """What the entries read of a ruleset's rules every cycle, made once per ruleset."""

    ruleset: Ruleset
    rules: dict[str, CompiledRule]  # by name
    closing: frozenset[str]  # the rules with a `close` action
    alerting: frozenset[str]  # the rules with an `alert` action

    @classmethod
    def of(cls, rs: Ruleset) -> _RuleInfo:
        return cls(
            rs,
            {r.name: r for r in rs.rules},
            frozenset(
                r.name for r in rs.rules if any(isinstance(a, CloseAction) for a in r.actions)
            ),
            frozenset(
                r.name for r in rs.rules if any(isinstance(a, AlertAction) for a in r.actions)
            ),
        )


@dataclass(slots=True)
class _CycleState:
    opportunities: int = 0
    opened: int = 0
    closed: int = 0


class Runtime:
    def __init__(
        self,
        rulesets: RulesetHolder,
        config: TradingConfig,
        ledger: Ledger,
        notifier: Notifier | None = None,
        source: str = "live",
        *,
        executor: Executor,
    ) -> None:
        self.rulesets = rulesets
        self.config = config
        self.engine_config = config.engine_config()
        self.ledger = ledger
        self.notifier = notifier
        self.source = source
        self.executor = executor
        # Step 1's state: what is known of settlements, and how far each leg is paid.
        self.funding = FundingStep(
            ledger, int(config.settle_wait * 1000), expect_records=source == "live"
        )
        self._events: list[TradeEvent] = []  # this cycle's, in the order they happened
        # committed cycles' events not yet notified: a replay's cycles are committed in
        # groups (Ledger.group_cycles), and a notification never precedes its commit
        self._unsent: list[TradeEvent] = []
        self._last_done: int | None = None  # the last cycle completed (see _record_failure)
        self._halt: _Halt | None = None
        self._risk_seen: dict[OpportunityKey, str] = {}
        # per held position, the engine's view of it (made once: see _book)
        self._open_positions: dict[int, OpenPosition] = {}
        # per binding of the current ruleset, its opportunity key and its bindings as a
        # dict (see _opportunity_key)
        self._keys: dict[int, tuple[OpportunityKey, dict[str, str]]] = {}
        self._keys_of: str | None = None
        # the current ruleset's rules by name, and which close and which alert (made
        # once per ruleset: a reload gives a new Ruleset)
        self._rule_info: _RuleInfo | None = None
        # per held position, its rule and the binding its exit clause is asked about
        self._held_bindings: dict[int, tuple[CompiledRule, Binding | None]] = {}
        self._outages: dict[str, str] = {}
        self._known_rulesets: set[str] = set()
        # What the ledger last holds for each fired binding: (rule, bindings) ->
        # (decision, reason). An opportunity is recorded when it appears, changes
        # decision or disappears, not every cycle it stays the same (a held
        # position's `already_open` would otherwise be re-recorded each cycle).
        self._recorded_opportunities = ledger.read.standing_opportunities()
        self._live_sha: str | None = None
        # implausible prices are rejected for the cycle (docs/limits.md, [price_band])
        self.price_guard = PriceGuard(config.price_band.band())
        self._note_ruleset(rulesets.current())
        self._reattach_rules(rulesets.current())

    # -- start-up ----------------------------------------------------------------------
    def _note_ruleset(self, rs: Ruleset) -> None:
        if rs.sha256 not in self._known_rulesets:
            self.ledger.record_ruleset(rs.sha256, rs.files, rs.sources)
            self._known_rulesets.add(rs.sha256)
        if rs.sha256 != self._live_sha:  # at start-up, and after each reload
            self.ledger.set_live_ruleset(rs.sha256)
            self._live_sha = rs.sha256

    def _reattach_rules(self, current: Ruleset) -> None:
        """Give each resumed position the rule it was opened under (its exit clause)."""
        recorded = RecordedRulesets(self.ledger, current)
        for p in self.executor.positions.values():
            if p.rule is not None:
                continue
            p.rule = recorded.rule(p.ruleset_sha, p.rule_name)
            if p.rule is None:
                self.ledger.record_event(
                    "error",
                    f"position {p.id}: rule {p.rule_name} of ruleset {p.ruleset_sha[:12]} "
                    "cannot be recompiled; only the risk limits can close it",
                )

    # -- halting -------------------------------------------------------------------------
    def request_stop(self, why: str, close_all: bool = False) -> None:
        """Stop before the next cycle (a signal handler calls this; it only sets a flag)."""
        if self._halt is None or (close_all and not self._halt.close_all):
            self._halt = _Halt(why, close_all)

    def discard_stale_halts(self) -> None:
        """Halt requests made while no runtime ran do not stop a new run; say so."""
        pending = self.ledger.pending_halt()
        if pending is not None:
            self.ledger.mark_halts_handled()
            self.ledger.record_event(
                "halt_ignored",
                "halt request(s) made while no runtime was running were discarded at start-up",
            )

    def _poll_halt(self) -> _Halt | None:
        if self.ledger.uncommitted_cycles:
            # Inside a replay's open group of cycles the ledger reads one snapshot, taken
            # at the group's first read, and holds the write lock: no request can appear
            # in it before the group commits, so the read would only repeat the last one.
            return self._halt
        pending = self.ledger.pending_halt()
        if pending is not None:
            rid, close_all = pending
            why = "rulebook halt --close-all" if close_all else "rulebook halt"
            if self._halt is None or (close_all and not self._halt.close_all):
                self._halt = _Halt(why, close_all, rid)
        return self._halt

    # -- the cycle -----------------------------------------------------------------------
    def cycle(self, view: SnapshotView, close_all: bool = False) -> CycleReport:
        """One cycle at `view.at`, in the order of spec section 11, in one transaction."""
        rs = self.rulesets.current()  # read once: a reload takes effect next cycle
        self._note_ruleset(rs)
        # An implausible price is replaced by the market's last accepted one before
        # anything reads the view: no fill, mark or payment is made at it.
        view, rejected = self.price_guard.check(view)
        t = view.at
        ex = self.executor
        st = _CycleState()
        self._events = []  # a failed cycle's events went with its transaction
        ex.drain_events()
        with self.ledger.cycle():
            for r in rejected:
                self._events.append(TradeEvent("price_rejected", r.text()))
            ex.begin_cycle(view, t)
            self._take_events()
            funding = self.funding.settle(ex, view, t)  # 1
            self._events.extend(self.funding.drain_events())
            self._take_events()
            ex.mark(view)  # 2
            # one env for the exit checks (3) and the evaluation (4): one set of
            # market arrays per cycle, coded as the ruleset's evaluation codes them
            env = SnapshotEnv.for_ruleset(view, rs, self.engine_config)
            held = list(ex.positions.values())
            exits: list[tuple[str | None, bool]]
            if close_all:
                exits = [("halt --close-all", False)] * len(held)
            else:
                exits = self._exit_reasons(held, rs, env, t)
            for p, (reason, by_limit) in zip(held, exits, strict=True):  # 3
                if reason:
                    # a settlement still waiting for its record is paid before the close
                    funding += self.funding.settle_now(ex, p, t)
                    self._events.extend(self.funding.drain_events())
                    closing = ex.close(p, view, t, reason, force=close_all, by_risk_limit=by_limit)
                    self._take_events()
                    if closing.closed:
                        st.closed += 1
            if not close_all:
                self._entries(rs, view, env, t, st)  # 4
            self._outage_events(view)
            ex.persist(t)
            equity = ex.equity()
            self.ledger.record_cycle(
                CycleRecord(
                    ts=t,
                    wall_ts=int(time.time() * 1000),
                    ruleset_sha=rs.sha256,
                    source=self.source,
                    observations=len(view),
                    opportunities=st.opportunities,
                    opened=st.opened,
                    closed=st.closed,
                    funding=funding,
                    equity=equity,
                )
            )
            self._take_events()
            events, self._events = self._events, []
            self.ledger.record_events(
                [
                    (e.kind, e.text)
                    for e in events
                    # the positions, orders and fills tables hold these
                    if not (e.kind in ("open", "close") or (e.kind == "risk" and e.position_id))
                ],
                ts=t,
            )
        self._unsent.extend(events)
        if not self.ledger.uncommitted_cycles:  # committed (every cycle, unless grouped)
            self._send_unsent()
        return CycleReport(
            t, st.opportunities, st.opened, st.closed, funding, equity, len(ex.positions)
        )

    def _send_unsent(self) -> None:
        events, self._unsent = self._unsent, []
        self._notify(events)

    def _commit(self) -> None:
        """Commit an open group of cycles (a replay's), then send what they notify."""
        self.ledger.commit()
        self._send_unsent()

    def _take_events(self) -> None:
        """Move the executor's events into this cycle's, keeping their order."""
        self._events.extend(self.executor.drain_events())

    def _exit_reasons(
        self, held: list[PaperPosition], rs: Ruleset, env: SnapshotEnv, t: int
    ) -> list[tuple[str | None, bool]]:
        """Per position (in `held`'s order): why to close it now, if at all, and whether a
        risk limit says so. The risk limits first; then each rule's exit clause, asked
        once per rule for all of its positions that no limit closes (a position's exit
        depends on its own values only, so asking them together changes no answer)."""
        out: list[tuple[str | None, bool]] = []
        clauses: dict[int, tuple[CompiledRule, list[int], list[Binding], list[PositionValues]]]
        clauses = {}
        if len(self._held_bindings) > 2 * len(held) + 16:  # forget closed positions'
            ids = {p.id for p in held}
            self._held_bindings = {i: b for i, b in self._held_bindings.items() if i in ids}
        for i, p in enumerate(held):
            reason, by_limit, ask = self._limit_reason(p, rs, t)
            out.append((reason, by_limit))
            if ask is not None:
                rule = p.rule
                assert rule is not None
                group = clauses.get(id(rule))
                if group is None:
                    group = clauses[id(rule)] = (rule, [], [], [])
                group[1].append(i)
                group[2].append(ask[0])
                group[3].append(ask[1])
        for rule, where, bindings, values in clauses.values():
            for i, check in zip(where, check_exits(rule, bindings, env, values), strict=True):
                if check.close:
                    out[i] = (f"exit when of rule {held[i].rule_name}", False)
        return out

    def _limit_reason(
        self, p: PaperPosition, rs: Ruleset, t: int
    ) -> tuple[str | None, bool, tuple[Binding, PositionValues] | None]:
        """A risk limit's reason to close `p`, with True; else (None, False, and what to
        ask `p`'s exit clause: its binding and values, or None when it has none)."""
        risk = rs.risk
        rule = p.rule
        if (
            risk.stop_loss is None
            and risk.max_hold is None
            and (rule is None or rule.exit_when is None)
        ):
            return None, False, None  # nothing can close it this cycle but a `close` action
        held = p.held_s(t)
        parts = p.parts()  # one pass over the legs: pnl (p.pnl) and funding (p.funding)
        pnl = sum(parts)
        funding = parts[0]
        if risk.stop_loss is not None and pnl <= -risk.stop_loss * p.notional:
            limit = format_value("Rate", risk.stop_loss)
            why = f"stop_loss {limit}: pnl {pnl:.2f} <= -{risk.stop_loss * p.notional:.2f}"
            return why, True, None
        if risk.max_hold is not None and held >= risk.max_hold:
            limit = format_value("Duration", risk.max_hold)
            return f"max_hold {limit}: held {held / 3600:g}h", True, None
        if rule is not None and rule.exit_when is not None:
            got = self._held_bindings.get(p.id)
            if got is None or got[0] is not rule:  # looked up once per position and rule
                try:
                    got = (rule, rule.binding_for(p.bindings))
                except KeyError:
                    got = (rule, None)
                self._held_bindings[p.id] = got
            binding = got[1]
            if binding is None:
                return None, False, None
            return None, False, (binding, PositionValues(held, pnl, funding))
        return None, False, None

    def _exit_reason(
        self, p: PaperPosition, rs: Ruleset, env: SnapshotEnv, t: int
    ) -> tuple[str | None, bool]:
        """Why to close `p` now, if at all, and whether a risk limit says so: one
        position's `_exit_reasons`, asked alone (`check_exit`)."""
        reason, by_limit, ask = self._limit_reason(p, rs, t)
        if ask is not None and p.rule is not None:
            if check_exit(p.rule, ask[0], env, ask[1]).close:
                return f"exit when of rule {p.rule_name}", False
        return reason, by_limit

    def _book(self) -> Book:
        # One OpenPosition per held position, made again only when the position is new
        # or its notional moved (the book seldom changes from one cycle to the next).
        made = self._open_positions
        book = []
        for i, p in self.executor.positions.items():
            op = made.get(i)
            if op is None or op.notional != p.notional or op.subject is not p.subject:
                op = made[i] = OpenPosition(p.rule_name, p.bindings, p.subject, p.notional)
            book.append(op)
        if len(made) > len(book):
            held = self.executor.positions
            for i in [i for i in made if i not in held]:
                del made[i]
        return Book(book)

    def _opportunity_key(self, o: Opportunity) -> tuple[OpportunityKey, dict[str, str]]:
        """(rule, sorted bindings) of a fired binding, and its bindings as a dict (shared by
        its records: nothing changes them), made once per binding of a ruleset."""
        # `order` is the binding's place in the ruleset: unique, and the same every cycle
        got = self._keys.get(o.order)
        if got is None:
            bindings = o.bindings
            got = self._keys[o.order] = ((o.rule, tuple(sorted(bindings.items()))), bindings)
        return got

    def _entries(
        self, rs: Ruleset, view: SnapshotView, env: SnapshotEnv, t: int, st: _CycleState
    ) -> None:
        ev = evaluate(rs, view, self._book(), self.engine_config, env=env)
        fired = [o for o in ev.opportunities if o.fired]
        st.opportunities = len(fired)
        if self._keys_of != rs.sha256:  # a reload: its bindings are new objects
            self._keys, self._keys_of = {}, rs.sha256
        info = self._rule_info
        if info is None or info.ruleset is not rs:
            info = self._rule_info = _RuleInfo.of(rs)
        rules, closing_rules, alerting_rules = info.rules, info.closing, info.alerting
        seen: dict[OpportunityKey, tuple[str | None, str | None]] = {}
        if closing_rules:
            for o in fired:  # `close` actions first, so their room is free for entries
                if o.subject is not None and o.rule in closing_rules:
                    key = position_key(o.subject)
                    for p in list(self.executor.positions.values()):
                        if p.key == key:
                            self.funding.settle_now(self.executor, p, t)
                            self._events.extend(self.funding.drain_events())
                            closing = self.executor.close(p, view, t, f"close by rule {o.rule}")
                            self._take_events()
                            if closing.closed:
                                st.closed += 1
        recorded = self._recorded_opportunities
        records: list[OpportunityRecord] = []  # written at once, after the loop
        # per fired binding (one per held position, at least: its `already_open`), the
        # loop below runs every cycle: what it reads is bound once here
        keys = self._keys
        risk_seen = self._risk_seen
        for o in fired:
            if alerting_rules and o.rule in alerting_rules:
                for text in o.alerts:
                    self._events.append(TradeEvent("alert", text))
            position_id = None
            decision: str | None = o.decision
            reason = o.reason
            got = keys.get(o.order)  # as _opportunity_key, inline
            if got is None:
                got = self._opportunity_key(o)
            binding, bindings = got
            if decision in ("open", "cut") and o.subject is not None and o.amount is not None:
                request = OpenRequest(
                    rule_name=o.rule,
                    bindings=bindings,
                    ruleset_sha=rs.sha256,
                    subject=o.subject,
                    legs=tuple(LegSpec(lg.exchange, lg.market, lg.side) for lg in o.legs),
                    amount=o.amount,
                )
                res = self.executor.open(request, view, t)
                self._take_events()
                if res.position is not None:
                    res.position.rule = rules[o.rule]
                    position_id = res.position.id
                    st.opened += 1
                else:
                    decision, reason = res.decision, res.reason
            state = (decision, reason)
            seen[binding] = state
            if position_id or recorded.get(binding) != state:
                records.append(
                    self._opportunity_record(o, decision, reason, position_id, t, bindings)
                )
            if decision in ("cut", "blocked") or binding in risk_seen:
                self._risk_note(o, binding, decision, reason, bindings)
        # the gone ones in the order they were recorded (a set difference's order
        # changed from run to run with the strings' hash seed)
        self.ledger.record_opportunities(records, [k for k in recorded if k not in seen], t)
        self._recorded_opportunities = seen

    @staticmethod
    def _opportunity_record(
        o: Opportunity,
        decision: str | None,
        reason: str | None,
        position_id: int | None,
        t: int,
        bindings: dict[str, str] | None = None,
    ) -> OpportunityRecord:
        """The spec section 10 figures, as dry-run --json shows them (`o.to_dict()`'s
        values, read from the figures without the ones the ledger does not keep), plus
        what the executor made of the opportunity this cycle. `bindings`: `o.bindings`,
        when the caller has it already."""
        f = o.figures
        binding = o.binding
        if bindings is None:
            bindings = binding.as_dict()
        subject = binding.subject
        coin, kind = (subject.coin, subject.kind) if subject else (None, None)
        if f is None:
            return OpportunityRecord(
                t, o.rule, bindings, coin, kind, [], None, None, None, None, None,
                None, o.amount, decision, reason, position_id,
            )  # fmt: skip
        # the figures are floats: taken as they are, without a call (`_num` otherwise)
        edge, apr, fees, net, conf = f.edge, f.apr, f.fees, f.net(EIGHT_HOURS_S), f.confidence
        # positional, in the fields' order: a frozen record's keywords cost more
        return OpportunityRecord(
            t, o.rule, bindings, coin, kind, [leg.to_dict() for leg in f.legs],
            edge if type(edge) is float else _num(edge),
            apr if type(apr) is float else _num(apr),
            fees if type(fees) is float else _num(fees),
            net if type(net) is float else _num(net),
            conf if type(conf) is float else _num(conf),
            RISK_LEVELS[f.risk], o.amount, decision, reason, position_id,
        )  # fmt: skip

    def _risk_note(
        self,
        o: Opportunity,
        key: OpportunityKey,
        decision: str | None,
        reason: str | None,
        bindings: dict[str, str],
    ) -> None:
        """A cut or block is logged every cycle, but notified only when it changes."""
        if decision in ("cut", "blocked") and reason:
            if self._risk_seen.get(key) != reason:
                self._risk_seen[key] = reason
                self._events.append(
                    TradeEvent("risk", f"{o.rule} {bindings}: {decision}: {reason}")
                )
        else:
            self._risk_seen.pop(key, None)

    def _outage_events(self, view: SnapshotView) -> None:
        failures = dict(view.failures)
        for exchange, why in failures.items():
            if self._outages.get(exchange) is None:
                self._events.append(TradeEvent("outage", f"{exchange} unreachable: {why}"))
        for exchange in self._outages:
            if exchange not in failures:
                self._events.append(TradeEvent("recovered", f"{exchange} answers again"))
        self._outages = failures

    def _notify(self, events: list[TradeEvent]) -> None:
        if self.notifier is None:
            return
        for e in events:
            self.notifier.send(e.kind, e.text)
        # Failed channels (this cycle's, and the reloader's since) become events,
        # written after the cycle's commit, which a notification never precedes.
        take = getattr(self.notifier, "take_failures", None)  # test doubles may lack it
        for f in take() if take is not None else []:
            try:
                self.ledger.record_event("notify_failed", f.text(), ts=f.ts)
            except Exception:  # noqa: BLE001 - a failed channel must never stop trading
                pass

    # -- loops ---------------------------------------------------------------------------
    def run(
        self,
        views: Iterable[SnapshotView],
        *,
        pace: Callable[[int | None, int], None] | None = None,
        on_cycle: Callable[[CycleReport], None] | None = None,
        resume: bool = True,
        commits: CommitGroups | None = None,
    ) -> RunSummary:
        """Run a cycle per view until the views end or a halt; returns the summary.

        `resume` skips views at or before the ledger's last complete cycle, so a
        replay restarted after a crash continues where it stopped. `pace` is
        called between cycles with the previous and next cycle times (it sleeps
        for --speed, or waits for the live interval).

        `commits` (a replay's or backtest's, never a live run's): commit complete
        cycles in groups rather than one by one (`Ledger.group_cycles`); every wait
        (`pace`, a halt's poll) commits first, and so does the end of the run.
        """
        summary = RunSummary()
        done = self.ledger.last_cycle_ts() if resume else None
        self._write_pid()
        prev: int | None = None
        self._last_done = self.ledger.last_cycle_ts()
        self.ledger.group_cycles(commits)
        try:
            for view in views:
                if done is not None and view.at <= done:
                    summary.skipped_cycles += 1
                    # what it tells of settlements still counts: the first new cycle
                    # pays a settlement whose record or forecast came in a skipped one
                    self.funding.feed(view)
                    self.price_guard.check(view)  # the prices it accepted, for the next cycle
                    continue
                if pace is not None:
                    pace(prev, view.at)
                halt = self._poll_halt()
                if halt is not None and not halt.close_all:
                    break
                try:
                    report = self.cycle(view, close_all=halt is not None and halt.close_all)
                except Exception as e:  # noqa: BLE001 - stop cleanly; the cycle rolled back
                    summary.failed = self._record_failure(view.at, e)
                    break
                summary.cycles += 1
                summary.last = report
                self._last_done = view.at
                prev = view.at
                if on_cycle is not None:
                    on_cycle(report)
                if halt is not None:
                    break
        finally:
            close = getattr(views, "close", None)
            if callable(close):
                close()  # a live generator closes its exchange clients now, not at GC
            try:
                self.ledger.group_cycles(None)  # commits the last group
                self._send_unsent()
                self._write_pid(clear=True)
            except LedgerError as e:  # the ledger failed (full disk...): summary.failed says so
                summary.failed = summary.failed or str(e)
        if self._halt is not None:
            summary.halted = self._halt.why
            try:
                self._record_halt(self._halt)
            except LedgerError as e:
                summary.failed = summary.failed or str(e)
        return summary

    def _record_failure(self, at: int, error: Exception) -> str:
        """A cycle raised: its transaction rolled back; say so in the ledger and stop."""
        self._recorded_opportunities = {}  # that cycle's records were rolled back
        what = str(error) if isinstance(error, LedgerError) else f"{type(error).__name__}: {error}"
        try:
            self._commit()  # a replay's earlier cycles of the open group
            last = self.ledger.last_cycle_ts()
        except LedgerError:
            last = -1
        if last == self._last_done:
            kept = "every earlier cycle is in the ledger"
        else:  # a replay's group of cycles went with the failure: a restart redoes them
            kept = "the ledger holds the cycles up to its last commit, a restart resumes there"
        text = f"cycle at {at} failed and was not written: {what}; the run stopped, {kept}"
        try:
            self.ledger.record_event("error", text)
        except Exception:  # noqa: BLE001 - the ledger itself may be what failed
            pass
        self._notify([TradeEvent("error", text)])
        return text

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early for a halt; True when a halt is pending.
        A replay's open group of cycles is committed first: nothing waits uncommitted."""
        self._commit()
        end = time.monotonic() + seconds
        next_poll = 0.0
        while True:
            now = time.monotonic()
            if self._halt is not None:
                return True
            if now >= next_poll:
                if self._poll_halt() is not None:
                    return True
                next_poll = now + 0.25  # a cheap indexed read
            if now >= end:
                return False
            time.sleep(min(0.05, end - now))

    def _record_halt(self, halt: _Halt) -> None:
        open_left = len(self.executor.positions)
        text = f"halted by {halt.why}; {open_left} position(s) left open"
        with self.ledger.cycle():
            self.ledger.mark_halts_handled()
            self.ledger.record_event("halt", text, ts=int(time.time() * 1000))
        self._notify([TradeEvent("halt", text)])

    def _write_pid(self, clear: bool = False) -> None:
        self.ledger.record_runner(None if clear else os.getpid())


def _num(x: object) -> float | None:
    if type(x) is float:  # what the figures are: as it is
        return x
    return float(x) if isinstance(x, (int, float)) else None  # noqa: UP038
