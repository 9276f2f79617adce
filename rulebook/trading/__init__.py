"""Paper trading: the executor, the SQLite ledger, the runtime loop and its
configuration, and notifications. No terminal output: what `rulebook run` and
`rulebook status` print is in `rulebook.app`; hot reload is `rulebook.reload`.

from rulebook.trading import load_config, Ledger, Runtime, RulesetHolder
"""

from __future__ import annotations

from ._book import PaperLeg, PaperPosition
from ._config import ConfigError, TradingConfig, load_config
from ._executor import Executor, LegSpec, OpenResult, TradeEvent
from ._holder import RulesetHolder
from ._ledger import Ledger, LedgerError
from ._live_ledger import LiveLedger, ledger_mode, reported_funding
from ._notify import Notifier, NotifyFailure
from ._recorded import RecordedRulesets
from ._runtime import CycleReport, RunSummary, Runtime
from ._sizing import HedgeSize, LegMarket, common_step, size_hedge

__all__ = [
    "ConfigError",
    "CycleReport",
    "Executor",
    "HedgeSize",
    "Ledger",
    "LedgerError",
    "LegMarket",
    "LegSpec",
    "LiveLedger",
    "Notifier",
    "NotifyFailure",
    "OpenResult",
    "PaperLeg",
    "PaperPosition",
    "RecordedRulesets",
    "RulesetHolder",
    "RunSummary",
    "Runtime",
    "TradeEvent",
    "TradingConfig",
    "common_step",
    "ledger_mode",
    "load_config",
    "reported_funding",
    "size_hedge",
]
