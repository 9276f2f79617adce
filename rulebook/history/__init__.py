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

__all__ = [
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
