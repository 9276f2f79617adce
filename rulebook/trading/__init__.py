"""Paper trading: the executor, the SQLite ledger, the runtime loop and its configuration.

from rulebook.trading import load_config, Ledger, Runtime
"""

from __future__ import annotations

from ._book import PaperLeg, PaperPosition
from ._config import ConfigError, TradingConfig, load_config, parse_duration
from ._executor import Executor, LegSpec, OpenResult, TradeEvent
from ._ledger import Ledger, LedgerError
from ._notify import Notifier
from ._runtime import CycleReport, RulesetHolder, RunSummary, Runtime

__all__ = [
    "ConfigError",
    "CycleReport",
    "Executor",
    "Ledger",
    "LedgerError",
    "LegSpec",
    "Notifier",
    "OpenResult",
    "PaperLeg",
    "PaperPosition",
    "RulesetHolder",
    "RunSummary",
    "Runtime",
    "TradeEvent",
    "TradingConfig",
    "load_config",
    "parse_duration",
]
