"""Market data: snapshots from six exchanges, recording and replay, and one profile
per exchange (`PROFILES`, defined in `rulebook/_exchanges.py`).

This package knows nothing about rules. It turns exchanges (live through
ccxt, or a recorded file) into :class:`SnapshotView` objects that the engine
queries by (exchange, coin).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rulebook._exchanges import PROFILES, ExchangeProfile, IntervalField, TakerFees

from ._duration import parse_duration
from ._fees import DEFAULT_TAKER_FEES, default_taker_fee
from ._filetype import COLUMNAR_SUFFIXES, PARQUET_HINT, is_columnar, require_parquet
from ._intervals import DEFAULT_INTERVAL_H, parse_interval_h
from ._jsonl import (
    JsonlRecorder,
    LineError,
    Record,
    iter_jsonl,
    open_recording,
    read_jsonl,
    read_settlements,
)
from ._model import (
    EXCHANGES,
    MARKETS,
    Observation,
    basis_rate,
    borrow_per_8h,
    mid_price,
    normalise_funding,
)
from ._plausible import PriceBand, PriceGuard, Rejection
from ._replay import ReplaySource
from ._settlement import Settlement
from ._settling import (
    DEFAULT_SETTLE_WAIT_MS,
    IntervalChange,
    IntervalWatch,
    MarkSource,
    RateSource,
    SettledFunding,
    SettlementLog,
    SettleResult,
    funding_amount,
    interval_change_text,
)
from ._view import SnapshotView

if TYPE_CHECKING:
    from ._columnar import (
        ColumnBatch,
        ConvertResult,
        ObservationColumns,
        convert,
        fold_into_columnar,
        has_observations,
        iter_column_batches,
        iter_columns,
        iter_parquet,
        iter_records,
        read_columnar_rows,
        series_ends,
        spool_path,
        time_span,
        write_columnar,
    )
    from ._live import CycleResult, ExchangeFeed, LiveSource, make_exchange
    from ._record import cycle_reporter, parse_markets, record_snapshots
    from ._retry import TRANSIENT_ERRORS, RetryPolicy
    from ._settled_live import SettlementFetch, SettlementFetcher
    from ._symbols import MarketIndex, MarketRef

# The live side imports ccxt, which takes about half a second: more than the
# rest of rulebook together. Commands that never go live (validate, a dry-run
# of a file, status, replays) should not pay for it, so these names load
# their module on first use.
_LIVE: dict[str, str] = {
    # the columnar format loads numpy on import, and pyarrow when a file is read
    "ColumnBatch": "._columnar",
    "ConvertResult": "._columnar",
    "ObservationColumns": "._columnar",
    "convert": "._columnar",
    "fold_into_columnar": "._columnar",
    "has_observations": "._columnar",
    "series_ends": "._columnar",
    "spool_path": "._columnar",
    "iter_column_batches": "._columnar",
    "iter_columns": "._columnar",
    "iter_parquet": "._columnar",
    "iter_records": "._columnar",
    "read_columnar_rows": "._columnar",
    "time_span": "._columnar",
    "write_columnar": "._columnar",
    "CycleResult": "._live",
    "ExchangeFeed": "._live",
    "LiveSource": "._live",
    "make_exchange": "._live",
    "cycle_reporter": "._record",
    "parse_markets": "._record",
    "record_snapshots": "._record",
    "TRANSIENT_ERRORS": "._retry",
    "RetryPolicy": "._retry",
    # settled rates fetched live: asyncio, about 0.1 s
    "SettlementFetch": "._settled_live",
    "SettlementFetcher": "._settled_live",
    "MarketIndex": "._symbols",
    "MarketRef": "._symbols",
}


def __getattr__(name: str) -> Any:
    module = _LIVE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


__all__ = [
    "COLUMNAR_SUFFIXES",
    "PARQUET_HINT",
    "ColumnBatch",
    "ConvertResult",
    "ObservationColumns",
    "convert",
    "fold_into_columnar",
    "has_observations",
    "is_columnar",
    "require_parquet",
    "iter_column_batches",
    "iter_columns",
    "iter_parquet",
    "iter_records",
    "read_columnar_rows",
    "series_ends",
    "spool_path",
    "time_span",
    "write_columnar",
    "DEFAULT_INTERVAL_H",
    "DEFAULT_TAKER_FEES",
    "TRANSIENT_ERRORS",
    "CycleResult",
    "ExchangeFeed",
    "LiveSource",
    "RetryPolicy",
    "cycle_reporter",
    "default_taker_fee",
    "make_exchange",
    "parse_duration",
    "parse_interval_h",
    "parse_markets",
    "EXCHANGES",
    "PROFILES",
    "IntervalField",
    "TakerFees",
    "ExchangeProfile",
    "MarketIndex",
    "MarketRef",
    "MARKETS",
    "JsonlRecorder",
    "LineError",
    "Observation",
    "Record",
    "Settlement",
    "SettlementFetch",
    "SettlementFetcher",
    "DEFAULT_SETTLE_WAIT_MS",
    "IntervalChange",
    "IntervalWatch",
    "MarkSource",
    "RateSource",
    "SettledFunding",
    "SettlementLog",
    "SettleResult",
    "funding_amount",
    "interval_change_text",
    "normalise_funding",
    "mid_price",
    "basis_rate",
    "borrow_per_8h",
    "PriceBand",
    "PriceGuard",
    "Rejection",
    "ReplaySource",
    "SnapshotView",
    "iter_jsonl",
    "read_jsonl",
    "read_settlements",
    "open_recording",
    "record_snapshots",
]
