"""Market data: snapshots from six exchanges, recording and replay.

This package knows nothing about rules. It turns exchanges (live through
ccxt, or a recorded file) into :class:`SnapshotView` objects that the engine
queries by (exchange, coin).
"""

from __future__ import annotations

from ._jsonl import JsonlRecorder, LineError, iter_jsonl, read_jsonl
from ._model import EXCHANGES, MARKETS, Observation
from ._replay import ReplaySource
from ._view import SnapshotView

__all__ = [
    "EXCHANGES",
    "MARKETS",
    "JsonlRecorder",
    "LineError",
    "Observation",
    "ReplaySource",
    "SnapshotView",
    "iter_jsonl",
    "read_jsonl",
]
