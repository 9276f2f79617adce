"""`rulebook history fetch`: funding history and prices from an exchange, through ccxt.

    stats = await fetch_history("binance", ["BTC", "ETH"], since_ms, until_ms, Path("h.jsonl"))

For each coin it pages through, oldest first:

* ``fetch_funding_rate_history`` on the coin's linear perp: the settled rates,
  written as settlement records; each interval is the spacing to the
  previous settlement (across a gap, the usual spacing), as the importers do;
* mark and index OHLCV of the perp (``params={"price": "mark" | "index"}``)
  and the spot OHLCV: a candle's *open* is the price at its start, written as
  perp (mark, index) and spot (bid = ask = open) price observations.

ccxt's own rate limiter spaces the requests (``enableRateLimit``), transient
errors are retried with backoff, and every page is appended to the output as
soon as it arrives. A second run on the same output resumes each series after
the last time it holds, so an interrupted fetch loses at most one page.
Where the exchange does not offer a series (no spot market, no index
candles), that is said and nothing is written for it.

A ``.parquet`` output (docs/columnar.md) cannot be appended to line by line:
the pages go to a JSON Lines spool beside it (``OUT.parquet.partial.jsonl``),
which is folded into the Parquet file when the fetch ends, however it ends.
A spool left by a killed run is resumed from and folded in by the next run.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ccxt

__all__ = ["FetchStats", "fetch_history", "resume_points"]

_H = 3_600_000
_TIMEFRAME_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": _H, "4h": 4 * _H, "8h": 8 * _H}


@dataclass(slots=True)
class FetchStats:
    settlements: int = 0
    perp_prices: int = 0
    spot_prices: int = 0
    requests: int = 0
    notes: list[str] = field(default_factory=list)
    resumed: dict[str, int] = field(default_factory=dict)  # series -> resumed after this ts


def resume_points(path: Path) -> dict[tuple[str, str, str], int]:
    """The last time each (exchange, coin, kind) series holds in an existing output
    (a Parquet one: with what its spool holds)."""
    from rulebook.market import is_columnar

    last: dict[tuple[str, str, str], int] = {}
    if is_columnar(path):
        from rulebook.market import series_ends, spool_path

        if path.exists():
            last.update(series_ends(path))
        for key, ts in resume_points(spool_path(path)).items():
            last[key] = max(last.get(key, 0), ts)
        return last
    if not path.exists():
        return last
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                d = json.loads(line)
                key = (d["exchange"], d["coin"], d["market"])
                last[key] = max(last.get(key, 0), int(d["ts"]))
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line of a killed run: re-fetched
    return last


def _end_torn_line(path: Path) -> None:
    """A killed run may leave a last line without its newline: end it, so the next
    record starts a line of its own (the torn one is then reported and skipped)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) != b"\n":
            fh.write(b"\n")


def _append(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps({k: v for k, v in r.items() if v is not None},
                                separators=(",", ":"), allow_nan=False) + "\n")  # fmt: skip
        fh.flush()
        os.fsync(fh.fileno())


def _interval(before: list[int], page: list[int], i: int, exchange: str) -> float:
    """The interval that settled at page[i]: the time since the settlement before it.

    The first settlement of a series takes the spacing to the next; across a gap
    (more than twice the interval before), the interval before is kept: a gap
    is missing data, not a long interval."""
    from rulebook.market import DEFAULT_INTERVAL_H

    prev = before[-1] if before else (page[i - 1] if i > 0 else None)
    if prev is None:
        if i + 1 < len(page):
            return (page[i + 1] - page[i]) / _H
        return DEFAULT_INTERVAL_H.get(exchange, 8.0)
    gap = (page[i] - prev) / _H
    earlier = before[-2:] if len(before) >= 2 else []
    if len(earlier) == 2:
        usual = (earlier[1] - earlier[0]) / _H
        if gap > 2 * usual:
            return usual
    return gap


async def _call(fn: Callable[[], Any], stats: FetchStats) -> Any:
    from rulebook.market import TRANSIENT_ERRORS, RetryPolicy

    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=30.0, max_attempts=6)
    attempt = 0
    while True:
        attempt += 1
        stats.requests += 1
        try:
            return await fn()
        except TRANSIENT_ERRORS:
            if attempt >= policy.max_attempts:
                raise
            await asyncio.sleep(min(policy.max_delay_s, policy.base_delay_s * 2 ** (attempt - 1)))


async def _funding(ex: Any, ex_id: str, coin: str, symbol: str, since: int, until: int,
                   out: Path, stats: FetchStats, limit: int, prev: list[int]) -> None:  # fmt: skip
    cursor = since
    times = list(prev)  # earlier settlements (a resumed run) give the first spacing
    while cursor <= until:
        ask = functools.partial(ex.fetch_funding_rate_history, symbol, since=cursor, limit=limit)
        page = await _call(ask, stats)
        page = sorted(
            (
                p
                for p in page
                if p.get("timestamp") is not None and cursor <= p["timestamp"] <= until
            ),
            key=lambda p: p["timestamp"],
        )
        if not page:
            break
        rows = []
        stamps = [(int(p["timestamp"]) + 30_000) // 60_000 * 60_000 for p in page]  # ms jitter off
        for i, (p, ts) in enumerate(zip(page, stamps, strict=True)):
            if times and ts <= times[-1]:
                continue
            rows.append({"ts": ts, "exchange": ex_id, "coin": coin, "market": "settlement",
                         "funding_rate": float(p["fundingRate"]),
                         "funding_interval_h": _interval(times, stamps, i, ex_id)})  # fmt: skip
            times.append(ts)
        _append(out, rows)
        stats.settlements += len(rows)
        cursor = int(page[-1]["timestamp"]) + 1


async def _ohlcv(ex: Any, symbol: str, timeframe: str, since: int, until: int, limit: int,
                 stats: FetchStats, price: str | None) -> list[list[float]]:  # fmt: skip
    params = {} if price is None else {"price": price}
    step = _TIMEFRAME_MS[timeframe]
    out: list[list[float]] = []
    cursor = since
    while cursor <= until:
        ask = functools.partial(
            ex.fetch_ohlcv, symbol, timeframe, since=cursor, limit=limit, params=params
        )
        page = await _call(ask, stats)
        page = [c for c in page if cursor <= c[0] <= until]
        if not page:
            break
        out.extend(page)
        cursor = int(page[-1][0]) + step
    return out


async def fetch_history(
    exchange_id: str,
    coins: list[str],
    since: int,
    until: int,
    output: Path,
    *,
    timeframe: str = "1h",
    client: Any = None,
    limit: int = 500,
    on_progress: Callable[[str], None] | None = None,
) -> FetchStats:
    """Fetch and append; `client` is a ccxt async exchange (tests pass one that replays
    recorded responses), else a public one is made and its markets loaded."""
    from rulebook.market import (
        PROFILES,
        MarketIndex,
        fold_into_columnar,
        is_columnar,
        make_exchange,
        require_parquet,
        spool_path,
    )

    if timeframe not in _TIMEFRAME_MS:
        raise ValueError(f"timeframe {timeframe!r}: one of {', '.join(_TIMEFRAME_MS)}")
    say = on_progress or (lambda _text: None)
    stats = FetchStats()
    final = output
    if is_columnar(output):
        require_parquet()  # before the first request, not after the last
        done = resume_points(output)
        output = spool_path(output)
    else:
        done = resume_points(output)
    ex = client if client is not None else make_exchange(exchange_id)
    try:
        if not ex.markets:
            await _call(ex.load_markets, stats)
        index = MarketIndex(ex.markets.values(), PROFILES[exchange_id].quotes)
        output.parent.mkdir(parents=True, exist_ok=True)
        _end_torn_line(output)
        for coin in coins:
            perp = index.perp(coin)
            if perp is None:
                stats.notes.append(f"{exchange_id} lists no linear perp for {coin}: skipped")
                continue
            key = (exchange_id, coin, "settlement")
            start = max(since, done.get(key, since - 1) + 1)
            if key in done:
                stats.resumed[f"{exchange_id} {coin} settlements"] = done[key]
            say(f"{exchange_id} {coin}: funding history of {perp.symbol}")
            prev = [done[key]] if key in done else []
            await _funding(
                ex, exchange_id, coin, perp.symbol, start, until, output, stats, limit, prev
            )
            pkey = (exchange_id, coin, "perp")
            pstart = max(since, done.get(pkey, since - 1) + 1)
            if ex.has.get("fetchMarkOHLCV") is False and ex.has.get("fetchOHLCV") is False:
                stats.notes.append(
                    f"{exchange_id}: no OHLCV through ccxt; no perp prices for {coin}"
                )
            else:
                say(f"{exchange_id} {coin}: mark and index candles ({timeframe})")
                try:
                    marks = await _ohlcv(
                        ex, perp.symbol, timeframe, pstart, until, limit, stats, "mark"
                    )
                except ccxt.BaseError as e:
                    marks = []
                    stats.notes.append(
                        f"{exchange_id} {coin}: no mark candles ({type(e).__name__}: {e}); "
                        "no perp prices written"
                    )
                try:
                    idx = await _ohlcv(
                        ex, perp.symbol, timeframe, pstart, until, limit, stats, "index"
                    )
                except ccxt.BaseError as e:  # not every venue has index candles
                    idx = []
                    stats.notes.append(
                        f"{exchange_id} {coin}: no index candles ({type(e).__name__})"
                    )
                by_ts = {int(c[0]): c[1] for c in idx}
                rows = [
                    {"ts": int(c[0]), "exchange": exchange_id, "coin": coin, "market": "perp",
                     "symbol": perp.symbol, "mark": c[1] * perp.scale,
                     "index": None if int(c[0]) not in by_ts else by_ts[int(c[0])] * perp.scale}
                    for c in marks if c[1] and c[1] > 0
                ]  # fmt: skip
                _append(output, rows)
                stats.perp_prices += len(rows)
            spot = index.spot(coin)
            if spot is None:
                stats.notes.append(f"{exchange_id} lists no spot market for {coin}: no spot prices")
                continue
            skey = (exchange_id, coin, "spot")
            sstart = max(since, done.get(skey, since - 1) + 1)
            say(f"{exchange_id} {coin}: spot candles of {spot.symbol}")
            try:
                candles = await _ohlcv(
                    ex, spot.symbol, timeframe, sstart, until, limit, stats, None
                )
            except ccxt.BaseError as e:
                candles = []
                stats.notes.append(
                    f"{exchange_id} {coin}: no spot candles ({type(e).__name__}: {e}); "
                    "no spot prices written"
                )
            rows = [
                {"ts": int(c[0]), "exchange": exchange_id, "coin": coin, "market": "spot",
                 "symbol": spot.symbol, "bid": c[1] * spot.scale, "ask": c[1] * spot.scale}
                for c in candles if c[1] and c[1] > 0
            ]  # fmt: skip
            _append(output, rows)
            stats.spot_prices += len(rows)
    finally:
        try:
            if client is None:
                await ex.close()
        finally:
            if final is not output:
                fold_into_columnar(final, output)
    return stats
