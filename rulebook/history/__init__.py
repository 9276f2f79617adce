"""Funding history: import third-party datasets, fetch from exchanges, and turn a
history into what the rules see at each cycle of a backtest.

    from rulebook.history import import_history, write_history, read_history
    result = import_history(["all_exchanges.csv"])          # format detected
    write_history("history.jsonl", result.records)
    history, problems = read_history(["history.jsonl"])
    stats = write_recording(history, "seen.jsonl", lookahead="last-settled")

The history format (settlement records plus the price observations there
are) is described in docs/backtest.md and in `_format`'s docstring.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._cycles import LOOKAHEAD_TEXT, LOOKAHEADS, RecordingStats, build_recording, write_recording
from ._format import (
    History,
    HistoryError,
    PriceSeries,
    SettlementSeries,
    read_history,
    write_history,
)
from ._importers import FORMATS, HistoryImportError, ImportResult, detect_format, import_history

if TYPE_CHECKING:
    from ._fetch import FetchStats, fetch_history, resume_points

# The fetcher imports ccxt (half a second): loaded on first use.
_LAZY = {"FetchStats": "._fetch", "fetch_history": "._fetch", "resume_points": "._fetch"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "FetchStats",
    "fetch_history",
    "resume_points",
    "FORMATS",
    "LOOKAHEADS",
    "LOOKAHEAD_TEXT",
    "History",
    "HistoryError",
    "HistoryImportError",
    "ImportResult",
    "PriceSeries",
    "RecordingStats",
    "SettlementSeries",
    "build_recording",
    "detect_format",
    "import_history",
    "read_history",
    "write_history",
    "write_recording",
]
