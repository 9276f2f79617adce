"""Live snapshots from the six exchanges through ccxt.async_support."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async
import msgspec

from rulebook._exchanges import PROFILES, ExchangeProfile

from ._intervals import interval_from_market_info, parse_interval_h
from ._model import EXCHANGES, Observation
from ._retry import RetryPolicy, call_with_retry
from ._symbols import MarketIndex, MarketRef
from ._view import SnapshotView

__all__ = ["CycleResult", "ExchangeFeed", "LiveSource", "make_exchange"]

Key = tuple[str, str, str]


def make_exchange(exchange_id: str, **config: Any) -> ccxt_async.Exchange:
    """A public (keyless) ccxt async client configured from the exchange's profile."""
    profile = PROFILES[exchange_id]
    # a copy per client: ccxt merges into its options, the profile's stay as written
    options = {**copy.deepcopy(dict(profile.options)), **config.pop("options", {})}
    cls = getattr(ccxt_async, profile.ccxt_class)
    return cls({"enableRateLimit": True, "options": options, **config})


def _reason(e: BaseException) -> str:
    text = str(e).strip().replace("\n", " ")
    if len(text) > 200:
        text = text[:197] + "..."
    name = type(e).__name__
    if isinstance(e, ccxt.BaseError):
        return f"{name}: {text}" if text else name
    # Anything that is not a ccxt error came out of parsing a response that
    # was not what the exchange documents.
    return f"bad response ({name}: {text})" if text else f"bad response ({name})"


def _num(x: Any) -> float | None:
    if x is None or isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if v == v and v not in (float("inf"), float("-inf")) else None


def _scaled(x: Any, scale: float) -> float | None:
    v = _num(x)
    return None if v is None else v * scale


@dataclass
class FeedResult:
    observations: list[Observation]
    warnings: list[str]


class ExchangeFeed:
    """One exchange: its markets, the coins' symbols, and one fetch per cycle.

    Every call of a cycle starts at once (funding, tickers, books, borrow), so a
    cycle costs about one round trip. Funding is essential: if it fails the
    exchange fails for the cycle. The rest are enrichments: a failure there is a
    warning and the observations go out without those fields.
    """

    def __init__(
        self,
        exchange_id: str,
        coins: Iterable[str],
        *,
        exchange: ccxt_async.Exchange | None = None,
        markets_ttl_s: float | None = 3600.0,
        intervals_ttl_s: float = 600.0,
        retry: RetryPolicy = RetryPolicy(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if exchange_id not in EXCHANGES:
            raise ValueError(f"unknown exchange {exchange_id!r}; expected one of {', '.join(EXCHANGES)}")
        self.id = exchange_id
        self.profile: ExchangeProfile = PROFILES[exchange_id]
        self.coins = list(dict.fromkeys(coins))
        self.ex = exchange if exchange is not None else make_exchange(exchange_id)
        self.markets_ttl_s = markets_ttl_s
        self.intervals_ttl_s = intervals_ttl_s
        self.retry = retry
        self.clock = clock
        self._markets_at: float | None = None
        self._index: MarketIndex | None = None
        self.perps: dict[str, MarketRef] = {}
        self.spots: dict[str, MarketRef] = {}
        self._intervals: dict[str, float] = {}
        self._intervals_at: float | None = None
        if self.ex.markets:
            # Markets handed in (tests, benchmarks): index them now.
            self._set_markets(self.clock())

    # -- markets ------------------------------------------------------------
    def _set_markets(self, now: float) -> None:
        self._index = MarketIndex(self.ex.markets.values(), self.profile.quotes)
        self.perps = {c: r for c in self.coins if (r := self._index.perp(c)) is not None}
        self.spots = {c: r for c in self.coins if (r := self._index.spot(c)) is not None}
        self._markets_at = now

    async def _ensure_markets(self, deadline: float) -> None:
        now = self.clock()
        fresh = self._markets_at is not None and (
            self.markets_ttl_s is None or now - self._markets_at < self.markets_ttl_s
        )
        if fresh:
            return
        await call_with_retry(lambda: self.ex.load_markets(reload=True), deadline, self.retry)
        self._set_markets(now)

    # -- one cycle ------------------------------------------------------------
    async def fetch(self, ts: int, deadline: float) -> FeedResult:
        await self._ensure_markets(deadline)
        warnings: list[str] = []
        perp_syms = [r.symbol for r in self.perps.values()]
        spot_syms = [r.symbol for r in self.spots.values()]

        async def optional(what: str, coro: Awaitable[Any]) -> Any:
            try:
                return await coro
            except asyncio.CancelledError:
                raise
            except Exception as e:  # one missing enrichment must not sink the exchange
                warnings.append(f"{what}: {_reason(e)}")
                return None

        def retried(fn: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
            return call_with_retry(fn, deadline, self.retry)

        tasks: dict[str, Awaitable[Any]] = {}
        tasks["funding"] = self._funding(perp_syms, retried)
        if perp_syms:
            tasks["perp_tickers"] = optional("perp tickers", self._tickers(perp_syms, retried))
            if self.profile.perp_book != "tickers":
                tasks["perp_book"] = optional(
                    "perp book", self._books(perp_syms, self.profile.perp_book, retried))
            if self.profile.mark_prices:
                tasks["marks"] = optional("mark prices", self._marks(perp_syms, retried))
            if self.profile.index_tickers_call is not None:
                tasks["index"] = optional("index prices", self._index_tickers(perp_syms, retried))
            if self._intervals_stale():
                tasks["intervals"] = optional("funding intervals", self._fetch_intervals(perp_syms, retried))
        if spot_syms:
            tasks["spot_tickers"] = optional("spot tickers", self._tickers(spot_syms, retried))
            if self.profile.spot_book != "tickers":
                tasks["spot_book"] = optional(
                    "spot book", self._books(spot_syms, self.profile.spot_book, retried))
        if self.profile.borrow_params is not None and self.spots:
            tasks["borrow"] = optional("borrow rates", self._borrow(list(self.spots), retried))

        names = list(tasks)
        # return_exceptions: wait for every call even when funding fails, so no
        # request is left running unobserved after the cycle moved on.
        done = await asyncio.gather(*tasks.values(), return_exceptions=True)
        results: dict[str, Any] = dict(zip(names, done, strict=True))  # ccxt gives Any
        for value in done:
            if isinstance(value, asyncio.CancelledError):
                raise value
        if isinstance(results["funding"], BaseException):
            raise results["funding"]
        funding: dict[str, Any] = results["funding"]
        if perp_syms and not any(s in funding for s in perp_syms):
            raise ccxt.BadResponse(f"{self.id}: no funding rate for any of {', '.join(perp_syms)}")

        obs: list[Observation] = []

        def add(**kw: Any) -> None:
            try:
                obs.append(Observation.checked(ts=ts, exchange=self.id, **kw))
            except msgspec.ValidationError as e:
                warnings.append(f"{kw.get('coin')} {kw.get('market')} dropped: {e}")

        perp_t = results.get("perp_tickers") or {}
        perp_b = results.get("perp_book") or {}
        marks = results.get("marks") or {}
        indexes = results.get("index") or {}
        for coin, ref in self.perps.items():
            fr = funding.get(ref.symbol) or {}
            t = perp_t.get(ref.symbol) or {}
            b = perp_b.get(ref.symbol) or t
            m = marks.get(ref.symbol) or {}
            add(
                coin=coin,
                market="perp",
                symbol=ref.symbol,
                funding_rate=_num(fr.get("fundingRate")),
                funding_interval_h=self._interval(ref, fr),
                next_funding_ts=fr.get("fundingTimestamp") or fr.get("nextFundingTimestamp"),
                mark=_scaled(fr.get("markPrice") or t.get("markPrice") or m.get("markPrice"), ref.scale),
                index=_scaled(fr.get("indexPrice") or t.get("indexPrice") or m.get("indexPrice")
                              or indexes.get(ref.symbol), ref.scale),
                bid=_scaled(b.get("bid"), ref.scale),
                ask=_scaled(b.get("ask"), ref.scale),
                volume_24h=_num(t.get("quoteVolume")),
                taker_fee=self._stated_fee(fr),
            )
        spot_t = results.get("spot_tickers") or {}
        spot_b = results.get("spot_book") or {}
        for coin, ref in self.spots.items():
            t = spot_t.get(ref.symbol) or {}
            b = spot_b.get(ref.symbol) or t
            if not t and not b:
                continue  # nothing observed: no line beats an empty one
            add(
                coin=coin,
                market="spot",
                symbol=ref.symbol,
                bid=_scaled(b.get("bid"), ref.scale),
                ask=_scaled(b.get("ask"), ref.scale),
                volume_24h=_num(t.get("quoteVolume")),
            )
        for coin, daily in (results.get("borrow") or {}).items():
            add(coin=coin, market="borrow", borrow_rate_daily=daily)
        return FeedResult(obs, warnings)

    # -- the calls ------------------------------------------------------------
    def _by_settle(self, symbols: list[str]) -> list[list[str]]:
        # Bulk endpoints take one product type per call (Bitget USDT-FUTURES vs
        # USDC-FUTURES, Gate /futures/usdt vs /futures/usdc): group by settle.
        groups: dict[Any, list[str]] = {}
        for s in symbols:
            m = self.ex.markets.get(s, {})
            groups.setdefault((m.get("type"), m.get("settle") or m.get("quote")), []).append(s)
        return list(groups.values())

    async def _funding(self, symbols: list[str], retried: Callable) -> dict[str, Any]:
        if not symbols:
            return {}
        out: dict[str, Any] = {}
        if self.ex.has.get("fetchFundingRates"):
            for group in self._by_settle(symbols):
                got = await retried(
                    lambda g=group: self.ex.fetch_funding_rates(g, dict(self.profile.funding_params))
                )
                out.update(got or {})
        else:
            # No bulk endpoint (Backpack): one call per named coin, all at once.
            rows = await asyncio.gather(
                *(retried(lambda s=s: self.ex.fetch_funding_rate(s)) for s in symbols))
            out.update({r["symbol"]: r for r in rows if r})
        return out

    async def _tickers(self, symbols: list[str], retried: Callable) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for group in self._by_settle(symbols):
            got = await retried(lambda g=group: self.ex.fetch_tickers(g))
            out.update(got or {})
        return out

    async def _books(self, symbols: list[str], how: str, retried: Callable) -> dict[str, Any]:
        if how == "bids_asks":
            out: dict[str, Any] = {}
            for group in self._by_settle(symbols):
                out.update(await retried(lambda g=group: self.ex.fetch_bids_asks(g)) or {})
            return out
        limit = self.profile.order_book_limit
        books = await asyncio.gather(
            *(retried(lambda s=s: self.ex.fetch_order_book(s, limit)) for s in symbols))
        out = {}
        for s, ob in zip(symbols, books, strict=True):
            bids, asks = ob.get("bids") or [], ob.get("asks") or []
            out[s] = {"bid": bids[0][0] if bids else None, "ask": asks[0][0] if asks else None}
        return out

    async def _marks(self, symbols: list[str], retried: Callable) -> dict[str, Any]:
        return await retried(lambda: self.ex.fetch_mark_prices(symbols)) or {}

    async def _index_tickers(self, symbols: list[str], retried: Callable) -> dict[str, float]:
        # The profile's call (OKX: GET /api/v5/market/index-tickers?quoteCcy=USDT) answers
        # every BTC-USDT style index in one call (ccxt has no unified bulk method).
        call = getattr(self.ex, self.profile.index_tickers_call or "")
        by_pair: dict[str, str] = {}
        quotes: set[str] = set()
        for s in symbols:
            m = self.ex.markets[s]
            by_pair[f"{m['base']}-{m['settle']}"] = s
            quotes.add(m["settle"])
        out: dict[str, float] = {}
        for q in sorted(quotes):
            resp = await retried(lambda q=q: call({"quoteCcy": q}))
            for row in (resp or {}).get("data") or []:
                sym = by_pair.get(row.get("instId"))
                px = _num(row.get("idxPx"))
                if sym is not None and px is not None:
                    out[sym] = px
        return out

    async def _borrow(self, coins: list[str], retried: Callable) -> dict[str, float]:
        params = dict(self.profile.borrow_params or {})

        async def one(coin: str) -> tuple[str, float | None]:
            code = coin if self.spots[coin].scale == 1 else self.spots[coin].market["base"]
            try:
                r = await retried(lambda: self.ex.fetch_cross_borrow_rate(code, params))
            except (ccxt.BadSymbol, ccxt.BadRequest, ccxt.ExchangeError):
                return coin, None  # not borrowable there: no borrow market
            rate, period = _num(r.get("rate")), _num(r.get("period"))
            if rate is None or not period:
                return coin, None
            return coin, rate * 86_400_000 / period

        got = await asyncio.gather(*(one(c) for c in coins))
        return {c: d for c, d in got if d is not None}

    # -- intervals ------------------------------------------------------------
    def _intervals_stale(self) -> bool:
        if not self.profile.interval_call or not self.ex.has.get("fetchFundingIntervals"):
            return False
        return self._intervals_at is None or self.clock() - self._intervals_at >= self.intervals_ttl_s

    async def _fetch_intervals(self, symbols: list[str], retried: Callable) -> None:
        got: dict[str, float] = {}
        for group in self._by_settle(symbols):
            rows = await retried(lambda g=group: self.ex.fetch_funding_intervals(g)) or {}
            for sym, row in rows.items():
                h = parse_interval_h(row.get("interval"))
                if h is not None:
                    got[sym] = h
        # Binance lists only symbols whose interval was adjusted; absence means
        # its default (8h), so the table is replaced, not merged.
        self._intervals = got
        self._intervals_at = self.clock()

    def _interval(self, ref: MarketRef, fr: Mapping[str, Any]) -> float:
        """Interval in hours, first found of: the funding payload (via ccxt), the
        exchange's funding-interval endpoint, its market data, the documented
        per-exchange default."""
        if self.profile.trust_ccxt_interval:
            h = parse_interval_h(fr.get("interval"), "ms")
            if h is not None:
                return h
        h = self._intervals.get(ref.symbol)
        if h is not None:
            return h
        h = interval_from_market_info(self.id, ref.market)
        if h is not None:
            return h
        return self.profile.default_interval_h

    def _stated_fee(self, fr: Mapping[str, Any]) -> float | None:
        # Where the funding payload states the taker fee (Gate's contract object).
        info = fr.get("info")
        name = self.profile.taker_fee_field
        if name is not None and isinstance(info, Mapping):
            return _num(info.get(name))
        return None

    async def close(self) -> None:
        try:
            await self.ex.close()
        except Exception:  # closing must never fail a shutdown
            pass


@dataclass
class CycleResult:
    ts: int
    observations: list[Observation]
    #: exchange -> why it was skipped this cycle
    failures: dict[str, str]
    #: exchange -> problems that did not stop it (a missing enrichment, a dropped row)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    #: exchange -> seconds it took (or until it was given up)
    durations_s: dict[str, float] = field(default_factory=dict)
    elapsed_s: float = 0.0
    #: settlement records `rulebook snapshot` found for this cycle (spec 9)
    settlements: int = 0


class LiveSource:
    """All exchanges fetched concurrently, each within its own deadline.

    An exchange that fails is reported in ``CycleResult.failures`` and skipped;
    its last observations stay in :meth:`view` and age, so confidence falls.
    """

    def __init__(
        self,
        exchanges: Iterable[str],
        coins: Iterable[str],
        *,
        deadline_s: float = 10.0,
        retry: RetryPolicy = RetryPolicy(),
        markets_ttl_s: float | None = 3600.0,
        clients: Mapping[str, ccxt_async.Exchange] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.deadline_s = deadline_s
        self.clock = clock
        clients = clients or {}
        self.feeds: dict[str, ExchangeFeed] = {
            ex: ExchangeFeed(ex, coins, exchange=clients.get(ex), markets_ttl_s=markets_ttl_s,
                             retry=retry, clock=clock)
            for ex in dict.fromkeys(exchanges)
        }
        self._latest: dict[Key, Observation] = {}
        self._failures: dict[str, str] = {}
        self._at = 0

    async def _one(self, feed: ExchangeFeed, ts: int) -> tuple[FeedResult | None, str | None, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + self.deadline_s
        try:
            async with asyncio.timeout(self.deadline_s):
                res = await feed.fetch(ts, deadline)
            return res, None, loop.time() - start
        except TimeoutError:
            return None, f"no answer within {self.deadline_s:g}s", loop.time() - start
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - no error from one exchange aborts a cycle
            return None, _reason(e), loop.time() - start

    async def fetch_cycle(self) -> CycleResult:
        loop = asyncio.get_running_loop()
        start = loop.time()
        ts = int(self.clock() * 1000)
        feeds = list(self.feeds.values())
        outs = await asyncio.gather(*(self._one(f, ts) for f in feeds))
        result = CycleResult(ts=ts, observations=[], failures={})
        for feed, (res, err, dur) in zip(feeds, outs, strict=True):
            result.durations_s[feed.id] = dur
            if err is not None:
                result.failures[feed.id] = err
                continue
            assert res is not None
            result.observations.extend(res.observations)
            if res.warnings:
                result.warnings[feed.id] = res.warnings
        for o in result.observations:
            self._latest[o.key] = o
        self._failures = dict(result.failures)
        self._at = ts
        result.elapsed_s = loop.time() - start
        return result

    def view(self, at: int | None = None) -> SnapshotView:
        """The latest observations of all cycles so far; ``at`` defaults to the last cycle."""
        return SnapshotView(self._at if at is None else at, self._latest, self._failures)

    async def close(self) -> None:
        await asyncio.gather(*(f.close() for f in self.feeds.values()))

    async def __aenter__(self) -> LiveSource:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
