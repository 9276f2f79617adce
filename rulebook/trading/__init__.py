"""Paper trading: the executor, the SQLite ledger, the runtime loop and its configuration.

from rulebook.trading import load_config, Ledger, Runtime
"""

from __future__ import annotations

from ._book import PaperLeg, PaperPosition
from ._config import ConfigError, TradingConfig, load_config
from ._executor import Executor, LegSpec, OpenResult, TradeEvent
from ._ledger import Ledger, LedgerError
from ._notify import Notifier
from ._runtime import CycleReport, RulesetHolder, RunSummary, Runtime
from ._sources import live_views, recording_span, replay_pacer, watched_markets
from ._status import ledger_status

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
    "ledger_status",
    "live_views",
    "load_config",
    "recording_span",
    "replay_pacer",
    "watched_markets",
]
