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

Ledger bytes per cycle, measured after every cycle (outside the timed part),
apart for the cycles that settle funding (every 8 hours: one payment per
position, which is what the positions change then) and the others: the bytes
stored (SQLite's dbstat payload: rows and index entries, by table) and the
file's growth after a WAL checkpoint (a page, 4 KB, at a time). The cost per
position is the median over the cycles without a settlement; the settlement
cycles' median is printed beside it.

Targets: at most 15 us per open position per cycle; at most 2 KB per cycle at
12 open positions, and no growth per cycle with the number of open positions
beyond what they change.

    .venv/bin/python benchmarks/bench_open_positions.py               # 1,000 and 12 positions
    .venv/bin/python benchmarks/bench_open_positions.py --positions 1000 --cycles 40
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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

    def payload(self) -> dict[str, int]:
        """The bytes stored, by table and index (SQLite's dbstat payload: the rows and
        index entries themselves; the file grows a page, 4 KB, at a time)."""
        con = sqlite3.connect(self.path)
        try:
            return {
                str(name): int(payload)
                for name, payload in con.execute(
                    "select name, sum(payload) from dbstat group by name"
                )
            }
        finally:
            con.close()

    def wal_bytes(self) -> int:
        wal = self.path.with_name(self.path.name + "-wal")
        return wal.stat().st_size if wal.exists() else 0

    def checkpoint(self) -> None:
        con = sqlite3.connect(self.path)
        con.execute("pragma wal_checkpoint(truncate)")
        con.close()

    def file_size(self) -> int:
        """The file's size after a WAL checkpoint."""
        con = sqlite3.connect(self.path)
        con.execute("pragma wal_checkpoint(truncate)")
        con.close()
        return self.path.stat().st_size


class Phases:
    """CPU time per step of one book's cycles (``--phases``): each step's method is
    wrapped on that book's own objects, so the other book and the code stay as they are."""

    STEPS = (
        ("price guard", "runtime.price_guard", "check"),
        ("funding step (all)", "runtime.funding", "settle"),
        ("  feed", "runtime.funding", "feed"),
        ("  settle a leg", "runtime.funding", "_settle_leg"),
        ("  forget", "runtime.funding", "_forget"),
        ("marking", "executor", "mark"),
        ("exit checks", "runtime", "_exit_reasons"),
        ("entries", "runtime", "_entries"),
        ("persist", "executor", "persist"),
        ("equity", "executor", "equity"),
    )

    def __init__(self, book: Book) -> None:
        self.total: dict[str, float] = {name: 0.0 for name, _, _ in self.STEPS}
        #: per cycle measured: whether it settled, and each step's seconds
        self.cycles: list[tuple[bool, dict[str, float]]] = []
        self.on = False
        for name, where, method in self.STEPS:
            obj: Any = book
            for part in where.split("."):
                obj = getattr(obj, part)
            setattr(obj, method, self._wrap(name, getattr(obj, method)))

    def _wrap(self, name: str, f: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if not self.on:
                return f(*args, **kwargs)
            t0 = time.thread_time()
            try:
                return f(*args, **kwargs)
            finally:
                self.total[name] += time.thread_time() - t0

        return timed

    def end_cycle(self, settled: bool) -> None:
        self.cycles.append((settled, self.total))
        self.total = {name: 0.0 for name in self.total}

    def means(self, settled: bool) -> dict[str, float]:
        """Each step's ms per cycle, mean over the cycles that settled (or did not)."""
        got = [c for s, c in self.cycles if s == settled]
        return {k: sum(c[k] for c in got) * 1e3 / len(got) for k in self.total} if got else {}


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else math.nan


def measure(n_coins: int, cycles: int, phases: bool = False) -> dict[str, Any]:
    coins = coin_names(n_coins)
    vs = views(coins, cycles + 2 + 8)
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
        steps = {"book": Phases(book), "empty": Phases(empty)} if phases else {}
        for p in steps.values():
            p.on = True
        # per cycle: (settled?, us per position, payload bytes, payload by table)
        rows: list[tuple[bool, float, int, dict[str, int]]] = []
        book_t, empty_t = [], []
        cpu_diff: list[tuple[bool, float]] = []  # the same difference in CPU time
        files = (book.file_size(), empty.file_size())
        before = book.payload()
        for i, v in enumerate(vs[2 : cycles + 2]):
            order = (book, empty) if i % 2 == 0 else (empty, book)
            took: dict[int, float] = {}
            cpu: dict[int, float] = {}
            settled = False
            for b in order:
                t0, c0 = time.perf_counter(), time.thread_time()
                report = b.runtime.cycle(v)
                took[id(b)] = time.perf_counter() - t0
                cpu[id(b)] = time.thread_time() - c0
                if b is book:
                    settled = report.funding != 0.0
            for p in steps.values():
                p.end_cycle(settled)
            book_t.append(took[id(book)])
            empty_t.append(took[id(empty)])
            cpu_diff.append((settled, (cpu[id(book)] - cpu[id(empty)]) / positions))
            after = book.payload()  # outside the timed cycles
            grown = {k: n - before.get(k, 0) for k, n in after.items()}
            rows.append((
                settled, (took[id(book)] - took[id(empty)]) / positions,
                sum(after.values()) - sum(before.values()), grown,
            ))  # fmt: skip
            before = after
            assert len(book.executor.positions) == positions
        for p in steps.values():
            p.on = False
        files = (book.file_size() - files[0], empty.file_size() - files[1])
        # Bytes written (not timed): the WAL after a checkpoint holds exactly the pages
        # a cycle's commit wrote, 4 KB each; eight more cycles, one of them settling.
        written: dict[str, list[tuple[bool, int]]] = {"book": [], "empty": []}
        for v in vs[len(rows) + 2 :]:
            for name, b in (("book", book), ("empty", empty)):
                b.checkpoint()
                report = b.runtime.cycle(v)
                written[name].append((report.funding != 0.0, b.wal_bytes()))
        book.ledger.close()
        empty.ledger.close()
    quiet = [r for r in rows if not r[0]]
    settling = [r for r in rows if r[0]]

    def per_table(rs: list[tuple[bool, float, int, dict[str, int]]]) -> dict[str, float]:
        names = {k for r in rs for k in r[3]}
        out = {k: sum(r[3].get(k, 0) for r in rs) / len(rs) for k in names} if rs else {}
        return {k: v for k, v in sorted(out.items()) if abs(v) >= 1}

    return {
        "positions": positions,
        "cycles": len(rows),
        "settlement_cycles": len(settling),
        "cycle_book_ms": statistics.median(book_t) * 1e3,
        "cycle_empty_ms": statistics.median(empty_t) * 1e3,
        "per_position_us": _median([r[1] for r in quiet]) * 1e6,
        "per_position_us_settlement": _median([r[1] for r in settling]) * 1e6,
        "per_position_cpu_us": _median([d for s, d in cpu_diff if not s]) * 1e6,
        "payload_per_cycle": _median([float(r[2]) for r in quiet]),
        "payload_per_settlement_cycle": _median([float(r[2]) for r in settling]),
        "payload_per_cycle_all": sum(r[2] for r in rows) / len(rows),
        "file_per_cycle_book": files[0] / len(rows),
        "file_per_cycle_empty": files[1] / len(rows),
        "written_quiet_book": _median([float(w) for s, w in written["book"] if not s]),
        "written_quiet_empty": _median([float(w) for s, w in written["empty"] if not s]),
        "written_settlement_book": _median([float(w) for s, w in written["book"] if s]),
        "tables_quiet": per_table(quiet),
        "tables_settlement": per_table(settling),
        "cycle_book_mean_ms": statistics.fmean(book_t) * 1e3,
        "cycle_empty_mean_ms": statistics.fmean(empty_t) * 1e3,
        # per step, ms per cycle: means over the cycles without a settlement, and with
        "phases": {side: p.means(False) for side, p in steps.items()},
        "phases_settlement": {side: p.means(True) for side, p in steps.items()},
        "cycle_book_quiet_mean_ms": statistics.fmean(
            [t for t, r in zip(book_t, rows, strict=True) if not r[0]]) * 1e3,
        "cycle_empty_quiet_mean_ms": statistics.fmean(
            [t for t, r in zip(empty_t, rows, strict=True) if not r[0]]) * 1e3,
    }


def _tables(t: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:,.0f}" for k, v in t.items()) or "nothing"


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--positions", type=int, nargs="*", default=[12, 1000],
                    help="open positions per book (rounded up to a multiple of 5)")
    ap.add_argument("--cycles", type=int, default=24,
                    help="measured cycles (default 24: three of them settle funding)")
    ap.add_argument("--phases", action="store_true",
                    help="also time each step of a cycle (means per cycle, both books)")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} (1 min) at the start")
    for n in args.positions:
        r = measure(max(1, math.ceil(n / len(VENUES))), args.cycles, args.phases)
        print(
            f"{r['positions']:>5} open positions: cycle {r['cycle_book_ms']:8.1f} ms, "
            f"same bindings with none open {r['cycle_empty_ms']:8.1f} ms (medians of "
            f"{r['cycles']} interleaved cycles, {r['settlement_cycles']} of them settling)"
        )
        print(
            f"      per open position per cycle: {r['per_position_us']:8.1f} us  (target <= 15 us;"
            f" median of the cycles without a settlement; settlement cycles "
            f"{r['per_position_us_settlement']:.1f} us: one payment per position)"
        )
        print(
            f"      the same in CPU time (this thread's, steadier on a loaded machine): "
            f"{r['per_position_cpu_us']:8.1f} us"
        )
        print(
            f"      ledger bytes stored per cycle without a settlement: "
            f"{r['payload_per_cycle']:,.0f} (median)  (target <= 2 KB at 12 positions; no "
            "growth with the count beyond what changes)"
        )
        print(f"        by table (mean): {_tables(r['tables_quiet'])}")
        print(
            f"      ledger bytes stored per settlement cycle: "
            f"{r['payload_per_settlement_cycle']:,.0f} (median)"
        )
        print(f"        by table (mean): {_tables(r['tables_settlement'])}")
        print(
            f"      ledger bytes written per cycle (WAL pages of the commit): without a "
            f"settlement {r['written_quiet_book']:,.0f} ({r['written_quiet_empty']:,.0f} with "
            f"none open), settling {r['written_settlement_book']:,.0f}"
        )
        print(
            f"      over all {r['cycles']} cycles: {r['payload_per_cycle_all']:,.0f} bytes stored "
            f"per cycle; the file grew {r['file_per_cycle_book']:,.0f} per cycle "
            f"({r['file_per_cycle_empty']:,.0f} with none open; 4 KB pages)"
        )
        if r["phases"]:
            book, empty = r["phases"]["book"], r["phases"]["empty"]
            settling = r["phases_settlement"]["book"]
            print(
                f"      per step, ms per cycle, means over the cycles without a settlement "
                f"(whole cycle {r['cycle_book_quiet_mean_ms']:.2f}, none open "
                f"{r['cycle_empty_quiet_mean_ms']:.2f}); settling cycles beside:"
            )
            for name in book:
                print(
                    f"        {name:<20} {book[name]:8.2f}  none open {empty[name]:8.2f}"
                    f"  settling {settling.get(name, math.nan):8.2f}"
                )
    print(f"load average {os.getloadavg()[0]:.2f} (1 min) at the end")


if __name__ == "__main__":
    main()
