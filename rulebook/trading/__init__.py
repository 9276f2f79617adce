"""Paper trading: the executor seam (`Executor`) and the paper executor, the SQLite
ledger (one writer, `Ledger`; one reader, `LedgerReader`), the runtime loop and its
configuration, and notifications. No terminal output: what `rulebook run` and
`rulebook status` print is in `rulebook.app`; hot reload is `rulebook.reload`.

from rulebook.trading import load_config, Ledger, LedgerReader, PaperExecutor, Runtime
from rulebook.trading import Executor, OpenRequest, OpenResult, CloseResult, Settlement
"""

from __future__ import annotations

from ._book import PaperLeg, PaperPosition
from ._config import ConfigError, TradingConfig, load_config
from ._executor import (
    Balance,
    CloseResult,
    Executor,
    Fill,
    FundingPayment,
    LegSpec,
    OpenRequest,
    OpenResult,
    Settlement,
    TradeEvent,
)
from ._funding import FundingStep
from ._holder import RulesetHolder
from ._ledger import REPLAY_COMMITS, SCHEMA_VERSION, CommitGroups, Ledger, LedgerError
from ._ledger_read import LedgerReader
from ._live_ledger import LiveLedger, ledger_mode, reported_funding
from ._lock import LedgerInUse, LockHolder, RuntimeLock
from ._notify import Notifier, NotifyFailure
from ._paper import PaperExecutor
from ._recorded import RecordedRulesets
from ._records import (
    BalanceRecord,
    BorrowCharge,
    CycleRecord,
    EventRecord,
    FillRecord,
    FundingAmount,
    FundingRecord,
    LedgerStats,
    LegRecord,
    OpportunityRecord,
    OrderIntent,
    OrderRecord,
    PositionRecord,
    RulesetRecord,
)
from ._runtime import CycleReport, RunSummary, Runtime
from ._sizing import HedgeSize, LegMarket, common_step, size_hedge

__all__ = [
    "REPLAY_COMMITS",
    "SCHEMA_VERSION",
    "Balance",
    "BalanceRecord",
    "BorrowCharge",
    "CloseResult",
    "CommitGroups",
    "ConfigError",
    "CycleRecord",
    "CycleReport",
    "EventRecord",
    "Executor",
    "Fill",
    "FillRecord",
    "FundingPayment",
    "FundingAmount",
    "FundingRecord",
    "Ledger",
    "LedgerError",
    "LedgerInUse",
    "LockHolder",
    "RuntimeLock",
    "LedgerReader",
    "LedgerStats",
    "LegRecord",
    "HedgeSize",
    "LegMarket",
    "LegSpec",
    "LiveLedger",
    "Notifier",
    "NotifyFailure",
    "OpenRequest",
    "OpenResult",
    "OpportunityRecord",
    "OrderIntent",
    "OrderRecord",
    "PaperExecutor",
    "PaperLeg",
    "PaperPosition",
    "PositionRecord",
    "RecordedRulesets",
    "RulesetHolder",
    "RulesetRecord",
    "RunSummary",
    "Runtime",
    "Settlement",
    "TradeEvent",
    "TradingConfig",
    "common_step",
    "ledger_mode",
    "load_config",
    "FundingStep",
    "reported_funding",
    "size_hedge",
]
