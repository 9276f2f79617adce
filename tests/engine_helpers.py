"""Hand-built observations for engine tests (clearly synthetic, hand-computed scenarios)."""

from __future__ import annotations

from rulebook.lang import load_texts
from rulebook.market import Observation, SnapshotView

T0 = 1753112400000  # 2025-07-21 15:40 UTC, the spec's example timestamp


def perp(
    exchange: str,
    coin: str,
    rate: float,
    interval_h: float = 8,
    *,
    ts: int = T0,
    mark: float | None = 100.0,
    index: float | None = 100.0,
    fee: float | None = None,
    volume: float | None = 1e8,
) -> Observation:
    return Observation.checked(
        ts=ts,
        exchange=exchange,
        coin=coin,
        market="perp",
        funding_rate=rate,
        funding_interval_h=interval_h,
        next_funding_ts=ts + 600_000,
        mark=mark,
        index=index,
        volume_24h=volume,
        taker_fee=fee,
    )


def spot(
    exchange: str,
    coin: str,
    bid: float = 99.99,
    ask: float = 100.01,
    *,
    ts: int = T0,
    fee: float | None = None,
) -> Observation:
    return Observation.checked(
        ts=ts, exchange=exchange, coin=coin, market="spot", bid=bid, ask=ask, taker_fee=fee
    )


def borrow(exchange: str, coin: str, daily: float, *, ts: int = T0) -> Observation:
    return Observation.checked(
        ts=ts, exchange=exchange, coin=coin, market="borrow", borrow_rate_daily=daily
    )


def view(*obs: Observation, at: int | None = None) -> SnapshotView:
    return SnapshotView.from_observations(obs, at=at)


def ruleset(text: str, name: str = "test.rules"):
    res = load_texts({name: text})
    assert res.ok, [str(d) for d in res.diagnostics]
    assert res.ruleset is not None
    return res.ruleset
