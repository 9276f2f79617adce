"""Settled rates from the exchanges' public funding-rate history (live runs, ``snapshot``).

    fetcher = SettlementFetcher(live_source)
    res = await live_source.fetch_cycle()
    fetcher.note(res.observations)            # remembers each coming settlement
    got = await fetcher.fetch(res.ts)         # asks history for the ones that passed
    view.settlements = tuple(got.records)

After a settlement an exchange publishes the rate that settled (Binance's
``/fapi/v1/fundingRate``, Bybit's ``/v5/market/funding/history``, OKX's
``funding-rate-history`` realised rate, Gate's ``funding_rate``, Bitget's
``history-fund-rate``, Backpack's ``/api/v1/fundingRates``): ccxt 4.5 has
``fetch_funding_rate_history`` for all six, so no exchange needs its own
endpoint here. A settlement is asked for only once its time has passed and
only until its record appears (or ``give_up_ms`` later), so a cycle without a
settlement costs no call. The runtime decides how long to wait before paying
the estimate (``SettlementLog.wait_ms``); this only fetches.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from ._model import Observation
from ._settlement import Settlement

if TYPE_CHECKING:
    from ._live import LiveSource

__all__ = ["SettlementFetch", "SettlementFetcher"]

Key = tuple[str, str]
H = 3_600_000


@dataclass
class SettlementFetch:
    records: list[Settlement] = field(default_factory=list)
    #: (exchange, coin) -> why its history could not be read this time
    failures: dict[Key, str] = field(default_factory=dict)


def _num(x: Any) -> float | None:
    if x is None or isinstance(x, bool) or x == "":
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _settlement_time(ts: int) -> int:
    # Binance's fundingTime carries a few milliseconds (…00:00:00.001): the
    # settlement is the whole second, as next_funding_ts showed it.
    return int(round(ts / 1000.0)) * 1000


class SettlementFetcher:
    """Asks each exchange's funding-rate history for the settlements that have passed."""

    def __init__(
        self,
        source: LiveSource,
        *,
        give_up_ms: int = 6 * H,
        limit: int = 50,
        deadline_s: float = 10.0,
    ) -> None:
        self.source = source
        self.give_up_ms = give_up_ms
        self.limit = limit
        self.deadline_s = deadline_s
        # settlement time -> the interval the observation showed for it
        self._expected: dict[Key, dict[int, float | None]] = {}
        self._last: dict[Key, int] = {}  # the latest settlement already returned
        self._catch_up: set[Key] = set()  # asked once whatever is awaited

    def note(self, observations: Iterable[Observation]) -> None:
        """Remember the coming settlement each perp observation shows."""
        for o in observations:
            if o.market != "perp" or o.next_funding_ts is None:
                continue
            key = (o.exchange, o.coin)
            if o.next_funding_ts > self._last.get(key, 0):
                self._expected.setdefault(key, {})[o.next_funding_ts] = o.funding_interval_h

    def catch_up(self, key: Key, since: int) -> None:
        """Ask (exchange, coin)'s history for every settlement after ``since`` (a restart:
        the settlements of a held leg while nothing ran)."""
        self._last[key] = max(self._last.get(key, 0), since)
        self._catch_up.add(key)

    def awaited(self, now_ms: int) -> dict[Key, list[int]]:
        """Settlements that have passed and have no record yet, per (exchange, coin)."""
        return {
            k: sorted(s for s in times if s <= now_ms)
            for k, times in self._expected.items()
            if any(s <= now_ms for s in times)
        }

    async def fetch(self, now_ms: int, keys: Iterable[Key] | None = None) -> SettlementFetch:
        """New settlement records of the awaited settlements (of ``keys`` only, if given)."""
        wanted = None if keys is None else set(keys)
        out = SettlementFetch()
        jobs = []
        todo = self.awaited(now_ms)
        for key in self._catch_up:
            todo.setdefault(key, [self._last[key] + 1])
        for key, times in todo.items():
            if wanted is not None and key not in wanted:
                continue
            jobs.append((key, times, self._one(key, times[0])))
        results = await asyncio.gather(*(j[2] for j in jobs), return_exceptions=True)
        for (key, _times, _), got in zip(jobs, results, strict=True):
            if isinstance(got, asyncio.CancelledError):
                raise got
            if isinstance(got, BaseException):
                out.failures[key] = _why(got)
            else:
                self._catch_up.discard(key)
                out.records.extend(got)
                if got:
                    self._last[key] = max(self._last.get(key, 0), got[-1].ts)
            self._prune(key, now_ms)
        out.records.sort(key=lambda r: (r.ts, r.exchange, r.coin))
        return out

    def _prune(self, key: Key, now_ms: int) -> None:
        last = self._last.get(key, 0)
        times = self._expected.get(key, {})
        for s in [s for s in times if s <= last or now_ms - s > self.give_up_ms]:
            del times[s]
        if not times:
            self._expected.pop(key, None)

    async def _one(self, key: Key, first: int) -> list[Settlement]:
        exchange, coin = key
        feed = getattr(self.source, "feeds", {}).get(exchange)
        if feed is None or coin not in feed.perps:
            return []
        ref = feed.perps[coin]
        since = min(first, self._last.get(key, first)) - 60_000
        async with asyncio.timeout(self.deadline_s):
            rows = await feed.ex.fetch_funding_rate_history(ref.symbol, since, self.limit)
        return self._parse(key, rows or [], ref.scale)

    def _parse(self, key: Key, rows: list[Mapping[str, Any]], scale: float) -> list[Settlement]:
        exchange, coin = key
        hints = self._expected.get(key, {})
        last = self._last.get(key)
        prev: int | None = None
        out: list[Settlement] = []
        for row in sorted(rows, key=lambda r: r.get("timestamp") or 0):
            ts, rate = row.get("timestamp"), _num(row.get("fundingRate"))
            if not isinstance(ts, int) or rate is None:
                continue
            s = _settlement_time(ts)
            # The interval that settled: what the observation showed for this
            # settlement, else the spacing to the one before it in the exchange's
            # own list (which has no gaps, unlike what this process saw).
            interval = hints.get(s)
            if interval is None and prev is not None and 0 < s - prev <= 24 * H:
                interval = (s - prev) / H
            prev = s
            if last is not None and s <= last:
                continue
            info = row.get("info")
            mark = _num(info.get("markPrice")) if isinstance(info, Mapping) else None
            try:
                out.append(Settlement.checked(
                    ts=s, exchange=exchange, coin=coin, symbol=row.get("symbol"),
                    funding_rate=rate, funding_interval_h=interval,
                    mark=None if mark is None or mark <= 0 else mark * scale,
                ))
            except msgspec.ValidationError:
                continue  # an absurd row is not a settlement; the estimate stands in
        return out


def _why(e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        return "no answer in time"
    text = str(e).strip().replace("\n", " ")
    return f"{type(e).__name__}: {text[:200]}" if text else type(e).__name__
