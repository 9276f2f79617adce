"""The ledger's records: what its writer takes and its reader returns, one dataclass each.

Money is in the quote currency, times are milliseconds since the epoch, rates
are fractions. Nothing outside the ledger modules knows a table or a column;
these types are the whole interface.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BalanceRecord",
    "FundingAmount",
    "OrderIntent",
    "BorrowCharge",
    "CycleRecord",
    "EventRecord",
    "FillRecord",
    "FundingRecord",
    "LedgerStats",
    "LegRecord",
    "OpportunityRecord",
    "OrderRecord",
    "PositionRecord",
    "RulesetRecord",
]


@dataclass(frozen=True, slots=True)
class CycleRecord:
    """One complete cycle (written last, in the cycle's transaction)."""

    ts: int
    wall_ts: int
    ruleset_sha: str
    source: str
    observations: int
    opportunities: int
    opened: int
    closed: int
    funding: float
    equity: float
    id: int | None = None


@dataclass(frozen=True, slots=True)
class OpportunityRecord:
    """A fired binding of one cycle: the spec section 10 figures and what became of it."""

    cycle_ts: int
    rule: str
    bindings: Mapping[str, str]
    coin: str | None
    subject: str | None
    legs: list[dict[str, Any]]
    edge: float | None
    apr: float | None
    fees: float | None
    net_8h: float | None
    confidence: float | None
    risk: str | None
    amount: float | None
    decision: str | None
    reason: str | None
    position_id: int | None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order the executor placed (paper orders fill at once).

    `client_order_id` is what a live executor sends to the exchange, so that a
    retry after a lost response or a restart finds the order again.
    """

    ts: int
    position_id: int
    intent: str  # open | close | unwind | ...
    exchange: str
    coin: str
    market: str
    side: str  # buy | sell
    notional: float
    status: str  # filled | intent | sent | partial | rejected | ...
    reason: str | None = None
    client_order_id: str | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class FillRecord:
    order_id: int
    position_id: int
    ts: int
    exchange: str
    market: str
    side: str
    price: float
    size: float
    fee: float
    fee_rate: float
    price_source: str
    id: int | None = None


@dataclass(frozen=True, slots=True)
class FundingRecord:
    """One funding payment on one leg: positive when received.

    A (position, exchange, ts) is paid at most once: the ledger keeps the first.
    `rate_source` and `mark_source` say where the rate and the mark came from.
    """

    position_id: int
    exchange: str
    coin: str | None
    ts: int  # the settlement time
    rate: float
    mark: float
    size: float
    amount: float
    interval_h: float | None = None
    rate_source: str | None = None
    mark_source: str | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class BorrowCharge:
    """Interest charged on a borrowed spot leg for `seconds` up to `ts`."""

    position_id: int
    exchange: str
    ts: int
    rate_daily: float
    seconds: float
    amount: float
    id: int | None = None


@dataclass(frozen=True, slots=True)
class EventRecord:
    ts: int
    kind: str
    detail: str
    id: int | None = None


@dataclass(frozen=True, slots=True)
class BalanceRecord:
    exchange: str
    initial: float
    cash: float


@dataclass(frozen=True, slots=True)
class RulesetRecord:
    """A ruleset's texts as loaded, and what a hot reload changed (names of rules)."""

    sha256: str
    files: list[str]
    sources: dict[str, str]
    loaded_at: int
    previous_sha256: str | None = None
    added: list[str] | None = None
    removed: list[str] | None = None
    changed: list[str] | None = None


@dataclass(frozen=True, slots=True)
class LegRecord:
    """A leg as last recorded: its pnl parts are contributions (fees, borrow >= 0 paid)."""

    exchange: str
    market: str
    side: str
    size: float
    entry_price: float
    mark: float | None = None  # the last mark seen
    exit_price: float | None = None  # once closed
    funding: float = 0.0  # net received
    entry_fee: float = 0.0
    exit_fee: float = 0.0
    borrow: float = 0.0  # interest paid


@dataclass(frozen=True, slots=True)
class PositionRecord:
    """A position as the ledger holds it, with its pnl parts (pnl = their sum)."""

    id: int
    rule: str
    bindings: dict[str, str]
    ruleset_sha: str
    coin: str
    legs: list[LegRecord]
    notional: float
    status: str  # open | closed
    opened_at: int
    closed_at: int | None
    close_reason: str | None
    pnl_funding: float
    pnl_fees: float
    pnl_price: float
    pnl_borrow: float
    pnl: float
    updated_at: int | None = None


@dataclass(frozen=True, slots=True)
class LedgerStats:
    """The run's statistics (what `rulebook status` prints first)."""

    cycles: int
    first_cycle: int | None
    last_cycle: int | None
    # every fired binding of every cycle, and how many distinct (rule, bindings) those were
    opportunities_found: int
    opportunities_distinct: int
    positions_opened: int
    positions_closed: int
    active_positions: int
    trades_executed: int
    funding_payments: int
    funding: float
    fees: float
    price: float
    borrow: float
    realised_pnl: float
    unrealised_pnl: float
    cumulative_profit: float
    initial_balance: float
    cash: float
    exposure: float
    halts: int
    errors: int
    outages: int
    runner_pid: int | None = field(default=None)  # a runtime running on this ledger now


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """A live order as the ledger holds it: written (status "intent") before it is sent,
    then updated with what the exchange did. Quantities in coins, `amount` in the
    exchange's units, `fee` in the quote currency."""

    id: int
    ts: int
    position_id: int
    leg: int
    intent: str  # open | close | unwind
    attempt: int
    client_id: str
    exchange: str
    symbol: str
    market: str
    side: str  # buy | sell
    amount: float
    qty: float
    reduce_only: bool
    limit_price: float | None
    status: str  # intent | sent | filled | partial | rejected | unknown | missing
    order_id: str | None
    filled_qty: float | None
    average: float | None
    fee: float | None
    fee_detail: str | None
    reason: str | None
    updated_at: int


@dataclass(frozen=True, slots=True)
class FundingAmount:
    """A funding payment's time and amount (received +), the ledger's or an exchange's."""

    ts: int
    amount: float
