"""Paper trading: the executor seam and the paper executor, the SQLite ledger
(one writer, one reader), the runtime loop and its configuration, hot reload of
the rules it runs, and what `rulebook run` and `rulebook status` print.

from rulebook.trading import load_config, Ledger, LedgerReader, PaperExecutor, Runtime
from rulebook.trading import Executor, OpenRequest, OpenResult, CloseResult, Settlement
from rulebook.trading import run_paper, print_status, ledger_status
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
from ._funding import settle_cycle, watch_position
from ._hot_reload import HotReload, position_rule_states
from ._ledger import SCHEMA_VERSION, Ledger, LedgerError
from ._ledger_read import LedgerReader
from ._notify import Notifier
from ._paper import PaperExecutor
from ._records import (
    BalanceRecord,
    BorrowCharge,
    CycleRecord,
    EventRecord,
    FillRecord,
    FundingRecord,
    LedgerStats,
    LegRecord,
    OpportunityRecord,
    OrderRecord,
    PositionRecord,
    RulesetRecord,
)
from ._reload import (
    ReloadFailure,
    ReloadReport,
    RulesetHolder,
    RulesetWatcher,
    diff_rulesets,
    rule_status,
)
from ._report import SHOWN_CLOSED, print_status
from ._runtime import CycleReport, RunSummary, Runtime
from ._session import run_paper
from ._sources import live_views, recording_span, replay_pacer, watched_markets
from ._status import ledger_status
from ._watch import ReloadSettings, RuleFileWatch

__all__ = [
    "SCHEMA_VERSION",
    "Balance",
    "BalanceRecord",
    "BorrowCharge",
    "CloseResult",
    "CycleRecord",
    "EventRecord",
    "Fill",
    "FillRecord",
    "FundingPayment",
    "FundingRecord",
    "LedgerReader",
    "LedgerStats",
    "LegRecord",
    "OpenRequest",
    "OpportunityRecord",
    "OrderRecord",
    "PaperExecutor",
    "PositionRecord",
    "RulesetRecord",
    "Settlement",
    "settle_cycle",
    "watch_position",
    "ConfigError",
    "CycleReport",
    "Executor",
    "HotReload",
    "Ledger",
    "LedgerError",
    "LegSpec",
    "Notifier",
    "OpenResult",
    "PaperLeg",
    "PaperPosition",
    "ReloadFailure",
    "ReloadReport",
    "ReloadSettings",
    "RuleFileWatch",
    "RulesetHolder",
    "RulesetWatcher",
    "RunSummary",
    "Runtime",
    "SHOWN_CLOSED",
    "TradeEvent",
    "TradingConfig",
    "diff_rulesets",
    "ledger_status",
    "live_views",
    "load_config",
    "position_rule_states",
    "print_status",
    "recording_span",
    "replay_pacer",
    "rule_status",
    "run_paper",
    "watched_markets",
]
