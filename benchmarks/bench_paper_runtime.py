#!/usr/bin/env python3
"""A year of hourly observations, 6 exchanges x 50 coins, through the paper runtime.

The recording is synthetic (made here, seeded, clearly not market data): for
every hour, exchange and coin a perp observation (funding that wanders, with
Backpack settling hourly and the others every 8h), a spot observation, and on
the five margin venues a borrow observation. BTC, ETH and SOL are the coins
the shipped strategies trade; COIN01..COIN47 only add reading load.

Prints observations per second for merely reading the file (the market
stage's ReplaySource building a view per timestamp) and for the whole paper
runtime (evaluation, executor, one ledger transaction per cycle) with the
shipped strategies, and their ratio (target: at most 5x).

    python benchmarks/bench_paper_runtime.py                # 8760 hours, 50 coins
    python benchmarks/bench_paper_runtime.py --hours 720    # a month, quicker
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from pathlib import Path

from rulebook.lang import load_ruleset
from rulebook.market import EXCHANGES, ReplaySource
from rulebook.trading import (
    REPLAY_COMMITS,
    Ledger,
    PaperExecutor,
    RulesetHolder,
    Runtime,
    TradingConfig,
)

ROOT = Path(__file__).parents[1]
H = 3_600_000
START = 1_704_067_200_000  # 2024-01-01 00:00 UTC
MARGIN = ("binance", "bybit", "okx", "gate", "bitget")
MAJORS = {"BTC": 60_000.0, "ETH": 3_000.0, "SOL": 150.0}


def generate(path: Path, hours: int, coins: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    names = list(MAJORS) + [f"COIN{i:02d}" for i in range(1, coins - len(MAJORS) + 1)]
    names = names[:coins]
    price = {c: MAJORS.get(c, 10 ** rng.uniform(-2, 3)) for c in names}
    rate = {(e, c): 0.0001 for e in EXCHANGES for c in names}
    lines = 0
    with path.open("w") as fh:
        for h in range(hours):
            ts = START + h * H + 60_000  # a minute past the hour
            out = []
            for c in names:
                price[c] *= math.exp(rng.gauss(0, 0.004))
                for e in EXCHANGES:
                    interval = 1 if e == "backpack" else 8
                    r = rate[e, c] = 0.9 * rate[e, c] + 0.1 * rng.gauss(0.0001, 0.0012)
                    raw = r * interval / 8
                    nxt = START + ((h // interval) + 1) * interval * H
                    mark = price[c] * (1 + rng.gauss(0, 0.0004))
                    out.append(
                        f'{{"ts": {ts}, "exchange": "{e}", "coin": "{c}", "market": "perp", '
                        f'"funding_rate": {raw:.8f}, "funding_interval_h": {interval}, '
                        f'"next_funding_ts": {nxt}, "mark": {mark:.6g}, "index": '
                        f'{price[c]:.6g}, "bid": {mark * 0.9999:.6g}, "ask": '
                        f'{mark * 1.0001:.6g}, "volume_24h": 1e8}}\n'
                    )
                    spot = price[c] * (1 - 0.0002)
                    out.append(
                        f'{{"ts": {ts}, "exchange": "{e}", "coin": "{c}", "market": "spot", '
                        f'"bid": {spot * 0.9999:.6g}, "ask": {spot * 1.0001:.6g}}}\n'
                    )
                    if e in MARGIN:
                        out.append(
                            f'{{"ts": {ts}, "exchange": "{e}", "coin": "{c}", '
                            f'"market": "borrow", "borrow_rate_daily": 0.0003}}\n'
                        )
            fh.writelines(out)
            lines += len(out)
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=int, default=8760)
    ap.add_argument("--coins", type=int, default=50)
    ap.add_argument("--data", type=Path, default=None, help="recording to write or reuse")
    args = ap.parse_args()
    data = (
        args.data
        or Path(tempfile.gettempdir()) / f"rulebook-bench-{args.hours}h-{args.coins}c.jsonl"
    )
    if not data.exists():
        t = time.perf_counter()
        n = generate(data, args.hours, args.coins)
        print(f"wrote {n:,} observations to {data} in {time.perf_counter() - t:.1f}s")
    lines = sum(1 for _ in data.open())

    t = time.perf_counter()
    cycles = sum(1 for _ in ReplaySource(data))
    read_s = time.perf_counter() - t

    ruleset = load_ruleset([ROOT / "strategies"]).ruleset
    assert ruleset is not None, "the shipped strategies do not load"
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(Path(tmp) / "bench.db")
        config = TradingConfig()
        executor = PaperExecutor(config, ledger)
        runtime = Runtime(RulesetHolder(ruleset), config, ledger, source="bench", executor=executor)
        t = time.perf_counter()
        # as `rulebook run --replay` runs it: complete cycles committed in groups
        summary = runtime.run(ReplaySource(data), commits=REPLAY_COMMITS)
        run_s = time.perf_counter() - t
        stats = ledger.read.stats()
        opened, funding = stats.positions_opened, stats.funding_payments
        ledger.close()

    print(
        f"{lines:,} observations, {cycles:,} cycles, {len(ruleset.rules)} rules, "
        f"{sum(len(r.bindings) for r in ruleset.rules)} bindings per cycle"
    )
    print(f"read only     {read_s:8.1f}s  {lines / read_s:12,.0f} observations/s")
    print(
        f"paper runtime {run_s:8.1f}s  {lines / run_s:12,.0f} observations/s "
        f"({summary.cycles:,} cycles, {opened} positions, {funding} funding payments)"
    )
    ratio = run_s / read_s
    print(f"ratio {ratio:.2f}x the read time (target <= 5x): {'ok' if ratio <= 5 else 'MISSED'}")
    return 0 if ratio <= 5 else 1


if __name__ == "__main__":
    sys.exit(main())
