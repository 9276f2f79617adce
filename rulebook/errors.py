"""Every error rulebook raises on purpose, under one root.

Exception hierarchy (each kind is defined in, and exported by, its stage):

* RulebookError
  + PathError - rulebook.lang: a rule path is missing, unreadable or holds no rules
  + ConfigError - rulebook.trading: rulebook.toml or a RULEBOOK_* variable is invalid
  + LedgerError - rulebook.trading: a ledger cannot be opened, is not a rulebook ledger, or has
    another schema
    + LedgerInUse - rulebook.trading: another runtime holds the ledger (its pid and command)
  + SnapshotError - rulebook.app: a dry-run's snapshot cannot be had (file, --at, exchanges)
  + LiveRefused - rulebook.app: a live run or close must not start (keys, confirmation, venue)
  + ClientError - rulebook.trading.live: an exchange client cannot be made as configured
  + HistoryError - rulebook.history: a history file cannot be used
  + HistoryImportError - rulebook.history: a source cannot be imported into history
  + BacktestError - rulebook.backtest: a backtest cannot run (rules, data, ledger)
  + OverrideError - rulebook.backtest: a --set or --sweep is malformed or names no constant

Each message is written for the operator: it says what is wrong and where, so
the command line prints it as one line (`error: ...`) and never a traceback;
`except RulebookError` catches everything rulebook means to report. Errors of
the rules themselves are not exceptions but diagnostics (`rulebook.lang.Diagnostic`,
with a code and a location), and missing market data is a value (a binding is
skipped with its reason), not an error.

    from rulebook.errors import RulebookError, LedgerError
    try:
        Ledger("paper.db")
    except LedgerError as e:
        print(f"error: {e}")

The kinds load lazily from their stages, so importing this module costs nothing.
tests/test_errors.py checks that this tree is the real one.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rulebook.app import LiveRefused, SnapshotError
    from rulebook.backtest import BacktestError, OverrideError
    from rulebook.history import HistoryError, HistoryImportError
    from rulebook.lang import PathError
    from rulebook.trading import ConfigError, LedgerError, LedgerInUse
    from rulebook.trading.live import ClientError


class RulebookError(Exception):
    """The root of every error rulebook raises on purpose; its message is for the operator."""


# kind -> the public package that defines it
KINDS: dict[str, str] = {
    "PathError": "rulebook.lang",
    "ConfigError": "rulebook.trading",
    "LedgerError": "rulebook.trading",
    "LedgerInUse": "rulebook.trading",
    "SnapshotError": "rulebook.app",
    "LiveRefused": "rulebook.app",
    "ClientError": "rulebook.trading.live",
    "HistoryError": "rulebook.history",
    "HistoryImportError": "rulebook.history",
    "BacktestError": "rulebook.backtest",
    "OverrideError": "rulebook.backtest",
}


def __getattr__(name: str) -> Any:
    package = KINDS.get(name)
    if package is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(package), name)
    globals()[name] = value  # later look-ups skip this function
    return value


__all__ = [
    "BacktestError",
    "ClientError",
    "ConfigError",
    "HistoryError",
    "HistoryImportError",
    "LedgerError",
    "LedgerInUse",
    "LiveRefused",
    "OverrideError",
    "PathError",
    "RulebookError",
    "SnapshotError",
]
