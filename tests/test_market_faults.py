"""A cycle survives a timeout, endless rate limits and garbage from other exchanges."""

from __future__ import annotations

import asyncio

import ccxt
from ccxt_static import case, client, perp_stub, recorded_markets

from rulebook.market import LiveSource, RetryPolicy

FAST = RetryPolicy(base_delay_s=0.01, max_delay_s=0.05, max_attempts=4)


def bybit_ok():
    body = case("bybit", "fetchFundingRates")["httpResponse"]
    return client("bybit", recorded_markets("bybit"), {"category=linear": body})


def hanging(exchange: str, mid: str):
    async def never(url):
        await asyncio.sleep(3600)

    return client(exchange, [perp_stub(exchange, "BTC", "USDT", mid)], {"": never})


def raising(exchange: str, mid: str, error: Exception):
    def boom(url):
        raise error

    return client(exchange, [perp_stub(exchange, "BTC", "USDT", mid)], {"": boom})


def garbage(exchange: str, mid: str, body):
    return client(exchange, [perp_stub(exchange, "BTC", "USDT", mid)], {"": body})


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def cycle(src: LiveSource):
    async def go():
        return await src.fetch_cycle()

    return asyncio.run(go())


def test_cycle_completes_with_timeout_rate_limit_and_garbage_exchanges():
    clients = {
        "bybit": bybit_ok(),
        "okx": hanging("okx", "BTC-USDT-SWAP"),
        "binance": raising("binance", "BTCUSDT", ccxt.RateLimitExceeded("429 Too Many Requests")),
        "gate": garbage("gate", "BTC_USDT", "<html>502 Bad Gateway</html>"),
        "bitget": garbage("bitget", "BTCUSDT", {"code": "00000", "data": [{"symbol": 7}]}),
    }
    src = LiveSource(list(clients), ["BTC"], deadline_s=0.5, retry=FAST, clients=clients)
    res = cycle(src)
    assert res.elapsed_s < 1.5  # the hanging exchange is cut at its deadline
    assert {o.exchange for o in res.observations} == {"bybit"}
    assert res.failures["okx"] == "no answer within 0.5s"
    assert res.failures["binance"].startswith("RateLimitExceeded: 429")
    # retried with backoff before giving up
    assert sum("premiumIndex" in u for u in clients["binance"].calls) >= 2
    assert "gate" in res.failures and "bitget" in res.failures
    assert set(res.failures) == {"okx", "binance", "gate", "bitget"}
    v = src.view()
    assert v.funding_8h("bybit", "BTC") == 0.0001
    assert v.missing_reason("okx", "BTC", "perp").startswith("no data from okx: no answer")


def test_transient_errors_are_retried_within_the_deadline():
    body = case("bybit", "fetchFundingRates")["httpResponse"]
    failures = [ccxt.RequestTimeout("slow"), ccxt.ExchangeNotAvailable("503")]

    def flaky(url):
        if failures:
            raise failures.pop(0)
        return body

    ex = client("bybit", recorded_markets("bybit"), {"category=linear": flaky})
    src = LiveSource(["bybit"], ["BTC"], deadline_s=2, retry=FAST, clients={"bybit": ex})
    res = cycle(src)
    assert res.failures == {}
    assert res.observations[0].funding_rate == 0.0001


def test_failed_exchange_keeps_its_last_observations_which_age():
    clock = Clock(1_760_000_000.0)
    state = {"down": False}
    body = case("bybit", "fetchFundingRates")["httpResponse"]

    def maybe(url):
        if state["down"]:
            raise ccxt.ExchangeNotAvailable("maintenance")
        return body

    ex = client("bybit", recorded_markets("bybit"), {"category=linear": maybe})
    src = LiveSource(
        ["bybit"], ["BTC"], deadline_s=0.3, retry=FAST, clients={"bybit": ex}, clock=clock
    )
    assert cycle(src).failures == {}
    state["down"] = True
    clock.t += 90
    res = cycle(src)
    assert res.failures["bybit"].startswith("ExchangeNotAvailable")
    v = src.view()
    p = v.perp("bybit", "BTC")
    assert p is not None and v.age_s(p) == 90.0  # stale, so fresh_score falls


def test_garbage_reasons_name_the_problem():
    clients = {
        "gate": garbage("gate", "BTC_USDT", "<html>502 Bad Gateway</html>"),
        "bitget": garbage("bitget", "BTCUSDT", {"code": "00000", "data": [{"symbol": 7}]}),
    }
    src = LiveSource(list(clients), ["BTC"], deadline_s=0.5, retry=FAST, clients=clients)
    res = cycle(src)
    for reason in res.failures.values():
        assert reason and "Traceback" not in reason and len(reason) <= 240
