"""Paper trading: the executor, the SQLite ledger, the runtime loop and its configuration.

from rulebook.trading import load_config, Ledger, Runtime
"""

from __future__ import annotations

from ._book import PaperLeg, PaperPosition, subject_key
from ._config import ConfigError, TradingConfig, load_config, parse_duration
from ._executor import Executor, LegSpec, OpenResult, TradeEvent
from ._ledger import Ledger, LedgerError

__all__ = [
    "ConfigError",
    "Executor",
    "Ledger",
    "LedgerError",
    "LegSpec",
    "OpenResult",
    "PaperLeg",
    "PaperPosition",
    "TradeEvent",
    "TradingConfig",
    "load_config",
    "parse_duration",
    "subject_key",
]
