"""Market data: snapshots from six exchanges, recording and replay.

This package knows nothing about rules. It turns exchanges (live through
ccxt, or a recorded file) into :class:`SnapshotView` objects that the engine
queries by (exchange, coin).
"""

from __future__ import annotations

from ._duration import parse_duration
from ._fees import DEFAULT_TAKER_FEES, default_taker_fee
from ._intervals import DEFAULT_INTERVAL_H, parse_interval_h
from ._jsonl import JsonlRecorder, LineError, iter_jsonl, read_jsonl
from ._live import CycleResult, ExchangeFeed, LiveSource, make_exchange
from ._model import EXCHANGES, MARKETS, Observation
from ._record import record_snapshots
from ._replay import ReplaySource
from ._retry import TRANSIENT_ERRORS, RetryPolicy
from ._view import SnapshotView

__all__ = [
    "DEFAULT_INTERVAL_H",
    "DEFAULT_TAKER_FEES",
    "TRANSIENT_ERRORS",
    "CycleResult",
    "ExchangeFeed",
    "LiveSource",
    "RetryPolicy",
    "default_taker_fee",
    "make_exchange",
    "parse_duration",
    "parse_interval_h",
    "EXCHANGES",
    "MARKETS",
    "JsonlRecorder",
    "LineError",
    "Observation",
    "ReplaySource",
    "SnapshotView",
    "iter_jsonl",
    "read_jsonl",
    "record_snapshots",
]
