"""The executor seam: the runtime drives whatever executor it is given.

A fake executor stands in the way httpx tests use a `MockTransport`: it records
every call the runtime makes and answers with what the test scripts, so these
tests check the runtime's side of the protocol (what it asks, with what, in
which order, and what it makes of the answers) without any paper arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from trading_helpers import T0, H, T, pair_rows, write_jsonl

from rulebook.lang import load_texts
from rulebook.market import ReplaySource, SnapshotView
from rulebook.trading import (
    Balance,
    CloseResult,
    Executor,
    Fill,
    FundingPayment,
    Ledger,
    OpenRequest,
    OpenResult,
    PaperExecutor,
    PaperLeg,
    PaperPosition,
    RulesetHolder,
    Runtime,
    Settlement,
    TradeEvent,
    TradingConfig,
)

SPREAD_RULE = """
rule sol_spread:
    when spread(SOL, bybit, binance) > 0.01%
    then hedge 1000 USDT
    exit when spread(SOL, bybit, binance) < 0%
"""


class FakeExecutor:
    """Answers `open` with `on_open(request)` (default: open at 100 on every leg) and
    `close` with `on_close(position)` (default: closed); records every call."""

    def __init__(
        self,
        on_open: Callable[[OpenRequest], str | None] = lambda r: None,
        on_close: Callable[[PaperPosition], str | None] = lambda p: None,
    ) -> None:
        self.calls: list[tuple[str, int, object]] = []  # (method, cycle time, argument)
        self._positions: dict[int, PaperPosition] = {}
        self._events: list[TradeEvent] = []
        self._on_open, self._on_close = on_open, on_close

    @property
    def positions(self) -> Mapping[int, PaperPosition]:
        return self._positions

    def begin_cycle(self, view: SnapshotView, t: int) -> None:
        self.calls.append(("begin_cycle", t, None))

    def open(self, request: OpenRequest, view: SnapshotView, t: int) -> OpenResult:
        self.calls.append(("open", t, request))
        blocked = self._on_open(request)
        if blocked is not None:
            return OpenResult("blocked", request.amount, blocked, None)
        legs = [
            PaperLeg(s.exchange, s.market, s.side, False, request.amount / 100, 100.0, 0.0, 100.0)
            for s in request.legs
        ]
        p = PaperPosition(
            len(self._positions) + 1, request.rule_name, dict(request.bindings),
            request.ruleset_sha, request.subject, legs, request.amount, t,
        )  # fmt: skip
        self._positions[p.id] = p
        self._events.append(TradeEvent("open", f"fake opened #{p.id}", p.id))
        fills = tuple(
            Fill(lg.exchange, lg.market, "buy" if lg.side == "long" else "sell", 100.0,
                 lg.size, 0.0, 0.0, "fake")
            for lg in legs
        )  # fmt: skip
        return OpenResult("open", request.amount, None, p, fills)

    def close(self, position, view, t, reason, *, force=False, by_risk_limit=False):
        self.calls.append(("close", t, (position.id, reason, force, by_risk_limit)))
        why = self._on_close(position)
        if why is not None:
            self._events.append(TradeEvent("error", f"close deferred: {why}", position.id))
            return CloseResult(False, why)
        position.status = "closed"
        del self._positions[position.id]
        return CloseResult(True)

    def settle_funding(self, position, leg, settlement: Settlement) -> FundingPayment | None:
        self.calls.append(("settle_funding", settlement.ts, (position.id, settlement)))
        return FundingPayment(position.id, leg.exchange, settlement.ts, 1.0)

    def accrue_borrow(self, position, leg, view, t) -> float:
        self.calls.append(("accrue_borrow", t, position.id))
        return 0.0

    def mark(self, view: SnapshotView) -> None:
        self.calls.append(("mark", view.at, None))

    def balances(self) -> Mapping[str, Balance]:
        return {"binance": Balance(10_000.0, 10_000.0, 9_000.0)}

    def equity(self) -> float:
        return 12_345.0

    def persist(self, t: int) -> None:
        self.calls.append(("persist", t, None))

    def drain_events(self) -> list[TradeEvent]:
        events, self._events = self._events, []
        return events


def _recording(tmp_path):
    rows = (
        # T0: spread 0.03% > 0.01%: open short bybit, long binance
        pair_rows(T0, "SOL", (100.0, 0.0001), (100.2, 0.0004), T)
        # T: both legs' settlement at T is due, at the rates shown at T0
        + pair_rows(T, "SOL", (101.0, 0.0001), (101.1, 0.0003), T + 8 * H)
        # T+8h: spread -0.01% < 0%: the exit clause closes
        + pair_rows(T + 8 * H, "SOL", (100.5, 0.0002), (100.8, 0.0001), T + 16 * H)
    )
    return write_jsonl(tmp_path / "rec.jsonl", rows)


def _runtime(tmp_path, executor: Executor) -> Runtime:
    rs = load_texts({"s.rules": SPREAD_RULE}).ruleset
    ledger = Ledger(tmp_path / "l.db")
    return Runtime(RulesetHolder(rs), TradingConfig(), ledger, source="replay", executor=executor)


def test_the_paper_executor_is_an_executor(tmp_path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    assert isinstance(PaperExecutor(TradingConfig(), ledger), Executor)
    assert isinstance(FakeExecutor(), Executor)


def test_the_runtime_asks_the_injected_executor_in_the_order_of_spec_11(tmp_path) -> None:
    fake = FakeExecutor()
    rt = _runtime(tmp_path, fake)
    assert rt.executor is fake
    summary = rt.run(ReplaySource(_recording(tmp_path)))
    assert summary.cycles == 3 and summary.failed is None
    assert [(m, t) for m, t, _ in fake.calls if m != "begin_cycle"] == [
        ("mark", T0), ("open", T0), ("persist", T0),
        # step 1 (settle each leg: short bybit, then long binance) before step 2 (mark)
        ("settle_funding", T), ("settle_funding", T), ("mark", T), ("persist", T),
        # then step 3 (close on the exit clause)
        ("settle_funding", T + 8 * H), ("settle_funding", T + 8 * H), ("mark", T + 8 * H),
        ("close", T + 8 * H), ("persist", T + 8 * H),
    ]  # fmt: skip
    # each cycle starts with begin_cycle
    assert [t for m, t, _ in fake.calls if m == "begin_cycle"] == [T0, T, T + 8 * H]
    assert fake.calls[0][0] == "begin_cycle"
    (request,) = [a for m, _, a in fake.calls if m == "open"]
    assert isinstance(request, OpenRequest)
    assert (request.rule_name, request.amount, request.subject.kind) == ("sol_spread", 1000.0, "spread")
    assert [(lg.exchange, lg.market, lg.side) for lg in request.legs] == [
        ("bybit", "perp", "short"),
        ("binance", "perp", "long"),
    ]
    # the runtime found each settlement due, at the rate shown before it, on the cycle's mark
    settlements = [a[1] for m, _, a in fake.calls if m == "settle_funding"]
    assert [(s.exchange, s.ts, s.rate, s.mark) for s in settlements] == [
        ("bybit", T, 0.0004, 101.1),
        ("binance", T, 0.0001, 101.0),
        ("bybit", T + 8 * H, 0.0003, 100.8),
        ("binance", T + 8 * H, 0.0001, 100.5),
    ]
    (close,) = [a for m, _, a in fake.calls if m == "close"]
    assert close == (1, "exit when of rule sol_spread", False, False)
    # what the executor answered is what the ledger records
    cycles = rt.ledger.read.cycles()
    assert [(c.ts, c.opened, c.closed, c.funding, c.equity) for c in cycles] == [
        (T0, 1, 0, 0.0, 12_345.0),
        (T, 0, 0, 2.0, 12_345.0),  # two fake payments of 1.0
        (T + 8 * H, 0, 1, 2.0, 12_345.0),
    ]
    (opp,) = [o for o in rt.ledger.read.opportunities() if o.cycle_ts == T0]
    assert (opp.decision, opp.position_id) == ("open", 1)


def test_a_blocked_open_is_recorded_with_the_executors_reason(tmp_path) -> None:
    fake = FakeExecutor(on_open=lambda r: "InsufficientFunds: bybit margin 12.00 free")
    rt = _runtime(tmp_path, fake)
    rt.run(ReplaySource(_recording(tmp_path)))
    read = rt.ledger.read
    first = [o for o in read.opportunities() if o.cycle_ts == T0]
    assert [(o.decision, o.reason, o.position_id) for o in first] == [
        ("blocked", "InsufficientFunds: bybit margin 12.00 free", None)
    ]
    assert read.positions() == [] and fake.positions == {}
    # a block is a risk note, recorded once while it stays the same
    assert [e.detail.endswith("blocked: InsufficientFunds: bybit margin 12.00 free")
            for e in read.events("risk")] == [True]  # fmt: skip


def test_a_deferred_close_keeps_the_position_and_records_the_executors_event(tmp_path) -> None:
    fake = FakeExecutor(on_close=lambda p: "NetworkError: bybit timed out")
    rt = _runtime(tmp_path, fake)
    rt.run(ReplaySource(_recording(tmp_path)))
    assert list(fake.positions) == [1]
    assert rt.ledger.read.cycles()[-1].closed == 0
    (e,) = rt.ledger.read.events("error")
    assert e.ts == T + 8 * H and e.detail == "close deferred: NetworkError: bybit timed out"


def test_an_executor_that_raises_rolls_the_cycle_back_and_stops(tmp_path) -> None:
    class Broken(FakeExecutor):
        def mark(self, view: SnapshotView) -> None:
            super().mark(view)
            if view.at == T:
                raise RuntimeError("exchange client crashed")

    rt = _runtime(tmp_path, Broken())
    summary = rt.run(ReplaySource(_recording(tmp_path)))
    assert summary.cycles == 1
    assert summary.failed is not None and "exchange client crashed" in summary.failed
    assert [c.ts for c in rt.ledger.read.cycles()] == [T0]


@pytest.mark.parametrize("missing", ["settle_funding", "drain_events"])
def test_an_object_without_the_protocol_is_not_an_executor(missing: str) -> None:
    attrs = {name: getattr(FakeExecutor, name) for name in dir(FakeExecutor)
             if not name.startswith("__") and name != missing}  # fmt: skip
    assert not isinstance(type("Partial", (), attrs)(), Executor)
