#!/usr/bin/env python3
"""What an open position costs per cycle: time and ledger bytes (issue 13).

A synthetic market (made here, seeded, clearly not market data): N coins on
the five margin venues, perp and spot, one observation per market per hour.
One rule opens a spot-perp carry of 10 USDT on every (coin, venue) whose
funding is positive, and never exits, so after the first cycle the book holds
N x 5 positions (funding stays positive throughout).

Two books are compared cycle for cycle: BOOK (N coins, every binding fires and
stays open) and EMPTY (the same N coins and bindings, but the threshold is
never met, so nothing opens). The two evaluate the same bindings over the same
views; the difference is what the open positions cost: settling, marking,
exit checks, `already_open` decisions and the ledger writes. The runs are
interleaved cycle by cycle (one BOOK cycle, one EMPTY cycle), and the per-
position cost is the median over cycles of (BOOK - EMPTY) / positions.

Ledger bytes per cycle: the growth of each ledger file (after a WAL checkpoint)
over the measured cycles, divided by the cycles.

Targets: at most 15 us per open position per cycle; at most 2 KB per cycle at
12 open positions, and no growth per cycle with the number of open positions
beyond what they change.

    .venv/bin/python benchmarks/bench_open_positions.py               # 1,000 and 12 positions
    .venv/bin/python benchmarks/bench_open_positions.py --positions 1000 --cycles 40
"""

from __future__ import annotations

import argparse
import math
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from rulebook.lang import load_texts
from rulebook.market import Observation, SnapshotView
from rulebook.trading import Ledger, PaperExecutor, RulesetHolder, Runtime, TradingConfig

H = 3_600_000
START = 1_704_067_200_000  # 2024-01-01 00:00 UTC
VENUES = ("binance", "bybit", "okx", "gate", "bitget")


def coin_names(n: int) -> list[str]:
    return [f"C{i:04d}" for i in range(n)]


def views(coins: list[str], hours: int, seed: int = 11) -> list[SnapshotView]:
    rng = random.Random(seed)
    price = {c: 10 ** rng.uniform(-1, 3) for c in coins}
    out = []
    for h in range(hours):
        ts = START + h * H + 60_000
        nxt = START + ((h // 8) + 1) * 8 * H
        obs = []
        for c in coins:
            price[c] *= math.exp(rng.gauss(0, 0.002))
            for e in VENUES:
                mark = price[c] * (1 + rng.gauss(0, 0.0002))
                obs.append(
                    Observation.checked(
                        ts=ts, exchange=e, coin=c, market="perp", funding_rate=0.0001,
                        funding_interval_h=8, next_funding_ts=nxt, mark=mark, index=price[c],
                        bid=mark * 0.9999, ask=mark * 1.0001, volume_24h=1e8,
                    )
                )
                obs.append(
                    Observation.checked(
                        ts=ts, exchange=e, coin=c, market="spot",
                        bid=price[c] * 0.9999, ask=price[c] * 1.0001, volume_24h=1e8,
                    )
                )
        out.append(SnapshotView.from_observations(obs, recorded=True))
    return out


def ruleset(coins: list[str], threshold: str):  # type: ignore[no-untyped-def]
    text = (
        f"set coins = {', '.join(coins)}\n"
        f"set venues = {', '.join(VENUES)}\n"
        "rule hold:\n"
        "    for coin in coins, venue in venues\n"
        f"    when funding(coin, venue) > {threshold}\n"
        "    then hedge 10 USDT\n"
        "risk:\n"
        "    max_open_positions 100000\n"
        "    max_total_exposure 100000000 USDT\n"
    )
    check = load_texts({"bench.rules": text})
    assert check.ok and check.ruleset is not None, [d.message for d in check.diagnostics[:3]]
    return check.ruleset


class Book:
    def __init__(self, path: Path, coins: list[str], threshold: str) -> None:
        config = TradingConfig.model_validate(
            {"exchanges": {e: {"balance": 1e8} for e in VENUES}}
        )
        self.path = path
        self.ledger = Ledger(path)
        executor = PaperExecutor(config, self.ledger)
        self.runtime = Runtime(
            RulesetHolder(ruleset(coins, threshold)), config, self.ledger,
            source="bench", executor=executor,
        )
        self.executor = executor

    def size(self) -> int:
        con = sqlite3.connect(self.path)
        con.execute("pragma wal_checkpoint(truncate)")
        con.close()
        return self.path.stat().st_size


def measure(n_coins: int, cycles: int) -> dict[str, float]:
    coins = coin_names(n_coins)
    vs = views(coins, cycles + 2)
    with tempfile.TemporaryDirectory() as tmp:
        book = Book(Path(tmp) / "book.db", coins, "0%")
        empty = Book(Path(tmp) / "empty.db", coins, "5%")
        # the first cycle opens the book; the second settles nothing new yet either way
        for v in vs[:2]:
            book.runtime.cycle(v)
            empty.runtime.cycle(v)
        positions = len(book.executor.positions)
        assert positions == n_coins * len(VENUES), positions
        assert not empty.executor.positions
        size0 = (book.size(), empty.size())
        diffs, book_t, empty_t = [], [], []
        for i, v in enumerate(vs[2:]):
            order = (book, empty) if i % 2 == 0 else (empty, book)
            took = {}
            for b in order:
                t0 = time.perf_counter()
                b.runtime.cycle(v)
                took[id(b)] = time.perf_counter() - t0
            book_t.append(took[id(book)])
            empty_t.append(took[id(empty)])
            diffs.append((took[id(book)] - took[id(empty)]) / positions)
        grown = (book.size() - size0[0], empty.size() - size0[1])
        book.ledger.close()
        empty.ledger.close()
    return {
        "positions": positions,
        "cycle_book_ms": statistics.median(book_t) * 1e3,
        "cycle_empty_ms": statistics.median(empty_t) * 1e3,
        "per_position_us": statistics.median(diffs) * 1e6,
        "ledger_bytes_per_cycle_book": grown[0] / cycles,
        "ledger_bytes_per_cycle_empty": grown[1] / cycles,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--positions", type=int, nargs="*", default=[12, 1000],
                    help="open positions per book (rounded up to a multiple of 5)")
    ap.add_argument("--cycles", type=int, default=24, help="measured cycles (default 24)")
    args = ap.parse_args()
    for n in args.positions:
        r = measure(max(1, math.ceil(n / len(VENUES))), args.cycles)
        print(
            f"{r['positions']:>5} open positions: cycle {r['cycle_book_ms']:8.1f} ms, "
            f"same bindings with none open {r['cycle_empty_ms']:8.1f} ms (medians of "
            f"{args.cycles} interleaved cycles)"
        )
        print(
            f"      per open position per cycle: {r['per_position_us']:8.1f} us  (target <= 15 us)"
        )
        print(
            f"      ledger bytes per cycle: {r['ledger_bytes_per_cycle_book']:10,.0f} with the book, "
            f"{r['ledger_bytes_per_cycle_empty']:10,.0f} with none open  "
            "(target <= 2 KB at 12 positions; no growth with the count beyond what changes)"
        )


if __name__ == "__main__":
    main()
