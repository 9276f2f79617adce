#!/usr/bin/env python3
"""One snapshot cycle over six fake exchanges, each answering after 200 ms.

The fakes are real ccxt async clients whose transport (``fetch``) sleeps
200 ms and answers with a recorded-style body, so the cycle runs rulebook's
real code path. Each exchange is first timed alone; the cycle's time divided
by the slowest exchange's time should be close to 1 (target <= 1.2). A
sequential run is printed for contrast (what a loop over exchanges costs).

    python benchmarks/bench_snapshot_cycle.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from ccxt_static import case, client, perp_stub, recorded_markets, spot_stub  # noqa: E402

from rulebook.market import EXCHANGES, LiveSource  # noqa: E402

DELAY_S = 0.2
RUNS = 5


def fakes(wanted: list[str]) -> dict:
    """Six clients; every request, whatever its URL, takes DELAY_S."""
    bybit = case("bybit", "fetchFundingRates")["httpResponse"]
    backpack_fr = case("backpack", "fetchFundingRate")["httpResponse"]
    bitget_fr = case("bitget", "fetchFundingInterval")["httpResponse"]
    gate = case("gate", "fetchFundingRates")["httpResponse"]
    gate[0].update(name="BTC_USDT", type="direct")
    premium = [{"symbol": "BTCUSDT", "markPrice": "45802.8", "indexPrice": "45745.4",
                "lastFundingRate": "0.0001", "nextFundingTime": "1621267200000",
                "time": "1621252344001"}]
    okx = {"code": "0", "data": [{"fundingRate": "0.0001", "fundingTime": "1634256000000",
                                  "instId": "BTC-USDT-SWAP", "nextFundingTime": "1634284800000"}]}
    d = DELAY_S
    make = {
        "backpack": lambda: client("backpack", [perp_stub("backpack", "BTC", "USDC", "ETH_USDC_PERP")],
                           {"markPrices": backpack_fr, "": []}, d),
        "binance": lambda: client("binance", [perp_stub("binance", "BTC", "USDT", "BTCUSDT")],
                          {"premiumIndex": premium, "": []}, d),
        "bybit": lambda: client("bybit", recorded_markets("bybit"), {"": bybit}, d),
        "okx": lambda: client("okx", [perp_stub("okx", "BTC", "USDT", "BTC-USDT-SWAP"),
                              spot_stub("BTC", "USDT", "BTC-USDT")],
                      {"funding-rate": okx, "": {"code": "0", "data": []}}, d),
        "gate": lambda: client("gate", [perp_stub("gate", "BTC", "USDT", "BTC_USDT")],
                       {"contracts": gate, "": []}, d),
        "bitget": lambda: client("bitget", [perp_stub("bitget", "BTC", "USDT", "BTCUSDT")],
                         {"current-fund-rate": bitget_fr, "": {"code": "00000", "data": []}}, d),
    }
    return {e: make[e]() for e in wanted}


async def timed_cycle(exchanges: list[str]) -> tuple[float, dict]:
    src = LiveSource(exchanges, ["BTC"], clients=fakes(exchanges),
                     deadline_s=5)
    try:
        t0 = time.perf_counter()
        res = await src.fetch_cycle()
        return time.perf_counter() - t0, res.failures
    finally:
        await src.close()


async def main() -> int:
    alone = {}
    for ex in EXCHANGES:
        times = []
        for _ in range(RUNS):
            t, failures = await timed_cycle([ex])
            if failures:
                print(f"{ex} failed: {failures}")
                return 1
            times.append(t)
        alone[ex] = statistics.median(times)
        print(f"{ex:9s} alone: {alone[ex] * 1000:6.1f} ms")
    slowest = max(alone.values())
    cycles = [(await timed_cycle(list(EXCHANGES)))[0] for _ in range(RUNS)]
    cycle = statistics.median(cycles)
    print(f"sum of exchanges (a sequential loop): {sum(alone.values()) * 1000:6.1f} ms")
    print(f"slowest exchange alone:               {slowest * 1000:6.1f} ms")
    print(f"one concurrent cycle (median of {RUNS}):  {cycle * 1000:6.1f} ms")
    ratio = cycle / slowest
    print(f"ratio cycle / slowest exchange: {ratio:.2f} (target <= 1.2)")
    return 0 if ratio <= 1.2 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
