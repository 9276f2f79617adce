"""The executor seam: what the runtime asks of whatever places its trades.

The runtime (`Runtime`) decides *what* to do each cycle (spec section 11: which
settlements are due, what to close, what to open); an `Executor` decides *how*
it happens and what it cost, and keeps the book of open positions. The runtime
receives its executor, it never builds one:

    ledger = Ledger("paper.db")
    executor = PaperExecutor(config, ledger)          # or a live one, or a fake
    runtime = Runtime(holder, config, ledger, executor=executor)

Tests inject a fake the way httpx tests inject a `MockTransport`: any object
with these methods will do (see tests/test_trading_seam.py).

For the engineer writing a live executor
----------------------------------------
- Every method is synchronous and is called inside the cycle's ledger
  transaction (`Ledger.cycle()`, opened by the runtime). A ccxt
  `async_support` executor runs its own event loop (one per executor, e.g. on a
  thread, or `loop.run_until_complete`) and returns when its orders reached a
  final state or its own deadline passed. It must never raise for an exchange
  failure: failures are results (`OpenResult.decision == "blocked"` with the
  reason, `CloseResult.closed is False` with the reason) plus `TradeEvent`s.
  An exception from an executor makes the runtime roll the whole cycle back
  and stop the run, which is right only for a bug or a broken ledger.
- `open` receives both legs at once and returns one `OpenResult`: either an
  open position with every `Fill` it got, or `blocked` with no position. A
  hedge whose legs filled unevenly (one rejected, one partly filled) is the
  executor's to bring back to neutral before it returns (retry, else reduce
  the filled leg), reporting each step as a `TradeEvent` of kind "error" or
  "risk"; the position it returns holds what actually filled, with `partial`
  set when the two legs' quantities differ.
- Everything the executor did goes to the ledger through the writer's named
  methods (`Ledger.record_order`, `record_fill`, `record_opening`,
  `record_position`, `record_funding_payment`, `record_borrow_charge`,
  `record_balance`); it never writes SQL. `record_order` takes a client order
  id, so an order can be found again after a lost response or a restart.
- `settle_funding` is called once per due settlement of a perp leg (the
  runtime finds them); a paper executor computes the payment, a live one may
  read what the exchange paid (ccxt `fetch_funding_history`) and record both.
- `positions` is the executor's book: the runtime reads it each cycle, closes
  through `close`, and attaches each position's rule (`PaperPosition.rule`).
  The same `PaperPosition` / `PaperLeg` types serve paper and live positions.
- `begin_cycle` comes first in every cycle: the place to finish what a previous
  cycle left in flight and to reconcile with the exchanges.
- `drain_events` hands over, once, what an operator should hear about; the
  runtime records them in the cycle's transaction and notifies after commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from rulebook.lang import Subject
from rulebook.market import SnapshotView

from ._book import PaperLeg, PaperPosition

__all__ = [
    "Balance",
    "CloseResult",
    "Executor",
    "Fill",
    "FundingPayment",
    "LegSpec",
    "OpenRequest",
    "OpenResult",
    "Settlement",
    "TradeEvent",
]


@dataclass(frozen=True, slots=True)
class LegSpec:
    """A leg to open: a side of one market on one exchange."""

    exchange: str
    market: str  # perp | spot
    side: str  # long | short


@dataclass(frozen=True, slots=True)
class OpenRequest:
    """A hedge to open, as the rules and the risk limits decided it.

    `amount` is the notional per leg in the quote currency (already cut to the
    room the risk limits leave); the executor sizes the legs from it.
    """

    rule_name: str
    bindings: Mapping[str, str]
    ruleset_sha: str
    subject: Subject
    legs: tuple[LegSpec, ...]
    amount: float


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of one leg: what was traded, at what price, for what fee."""

    exchange: str
    market: str
    side: Literal["buy", "sell"]
    price: float
    size: float  # coins
    fee: float  # money paid, >= 0
    fee_rate: float
    price_source: str  # bid | ask | mark+slippage | ... (paper); "exchange" (live)


@dataclass(frozen=True, slots=True)
class OpenResult:
    """What `Executor.open` made of a request."""

    decision: Literal["open", "blocked"]
    amount: float
    reason: str | None  # why blocked (no price, balance, exchange error, ...)
    position: PaperPosition | None  # the open position, None when blocked
    fills: tuple[Fill, ...] = ()
    partial: bool = False  # the legs filled different quantities (live only)


@dataclass(frozen=True, slots=True)
class CloseResult:
    """What `Executor.close` did: closed with its fills, or deferred with a reason."""

    closed: bool
    reason: str | None = None  # why not closed (no price, exchange error, ...)
    fills: tuple[Fill, ...] = ()


@dataclass(frozen=True, slots=True)
class Settlement:
    """One funding settlement of one perp leg, as the runtime found it due.

    `rate` is the rate that settles at `ts` (not normalised), `mark` the mark
    price it is paid on; the sources say where each came from (spec 11 step 1).
    """

    exchange: str
    coin: str
    ts: int
    rate: float
    mark: float
    interval_h: float | None = None
    rate_source: str = "observed"
    mark_source: str = "cycle"


@dataclass(frozen=True, slots=True)
class FundingPayment:
    """A payment made or received on one leg: positive when received."""

    position_id: int
    exchange: str
    ts: int
    amount: float


@dataclass(frozen=True, slots=True)
class Balance:
    """Money on one exchange in the quote currency."""

    initial: float
    cash: float  # initial plus everything realised (fees, funding, borrow, closed price pnl)
    free: float  # cash minus the margin the open legs reserve


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """Something an operator may want to hear about (open, close, risk, funding)."""

    kind: str
    text: str
    position_id: int | None = field(default=None)


@runtime_checkable
class Executor(Protocol):
    """What the runtime asks of an executor (paper, live, or a test's fake)."""

    @property
    def positions(self) -> Mapping[int, PaperPosition]:
        """The open positions by id (resumed from the ledger at start-up)."""
        ...

    def begin_cycle(self, view: SnapshotView, t: int) -> None:
        """Called first in every cycle, before step 1: a live executor finishes what is in
        flight (an unhedged leg, a close that did not complete) and reconciles; paper does
        nothing."""
        ...

    def open(self, request: OpenRequest, view: SnapshotView, t: int) -> OpenResult:
        """Open both legs of a hedge together, or nothing (`blocked`, with the reason)."""
        ...

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
        """Close both legs together; never one alone. `force` (halt --close-all) closes
        even without a current price; `by_risk_limit` makes the event a `risk` one."""
        ...

    def settle_funding(
        self, position: PaperPosition, leg: PaperLeg, settlement: Settlement
    ) -> FundingPayment | None:
        """Pay or receive one settlement on one perp leg, once: None when the ledger
        already holds it (a restart replaying a cycle)."""
        ...

    def accrue_borrow(self, position: PaperPosition, leg: PaperLeg, view: SnapshotView, t: int) -> float:
        """Charge interest on a borrowed spot leg up to `t`; returns the amount charged."""
        ...

    def mark(self, view: SnapshotView) -> None:
        """Mark every open leg to market; a leg without a price keeps its last mark."""
        ...

    def balances(self) -> Mapping[str, Balance]:
        """Money per exchange now."""
        ...

    def equity(self) -> float:
        """Cash on every exchange plus the open legs' unrealised price pnl."""
        ...

    def persist(self, t: int) -> None:
        """Write every open position and balance to the ledger (in the cycle's transaction)."""
        ...

    def drain_events(self) -> list[TradeEvent]:
        """What happened since the last call, each event handed over once."""
        ...
