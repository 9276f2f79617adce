"""Parse + check + compile of a 1,000-rule ruleset, against Lark's raw LALR parse.

Targets (issue 2): rulebook within 1.5x of the raw parse, and under 1 s.

    python benchmarks/bench_lang.py [--rules 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from rulebook.lang import load_texts
from rulebook.lang._parse import raw_parser

VENUES = ["backpack", "binance", "bybit", "okx", "gate", "bitget"]
COINS = ["BTC", "ETH", "SOL", "XRP", "DOGE", "1000PEPE", "AVAX", "LINK"]


def generate(n_rules: int) -> str:
    """A ruleset of n rules cycling through every construct of the language."""
    out = [
        "set coins = " + ", ".join(COINS),
        "set venues = " + ", ".join(VENUES),
        "let min_edge = 0.05%",
        "let size = 1000 USDT",
    ]
    for i in range(n_rules):
        kind = i % 4
        a, b = VENUES[i % 6], VENUES[(i + 1) % 6]
        coin = COINS[i % len(COINS)]
        if kind == 0:
            out.append(
                f"rule r{i}:\n    for coin in coins, hi in venues, lo in venues\n"
                f"    when spread(coin, hi, lo) > min_edge + {i % 7 / 100}% and confidence > 0.7\n"
                f"        and net(24h) > 0% and breakeven < 48h\n"
                f'    then hedge size, alert "{{coin}} {{hi}} {{lo}} {{edge}}"\n'
                f"    exit when spread(coin, hi, lo) < 0.01% or held > 72h"
            )
        elif kind == 1:
            out.append(
                f"when spread({coin}, {a}, {b}) > 0.1% and confidence > 0.7 then hedge 1000 USDT"
            )
        elif kind == 2:
            out.append(
                f"rule r{i}:\n    for venue in [{a}, {b}]\n"
                f"    when funding({coin}, venue) > 0.1% and basis({coin}, venue) >= 0% "
                f"and risk != high and apr(edge) > 50%\n"
                f"    then hedge 2 * size exit when funding({coin}, venue) < 0.02% or pnl < -20 USDT"
            )
        else:
            out.append(
                f"rule r{i}:\n    for coin in coins\n"
                f"    when borrow(coin, {a}) < 0.02% and funding(coin, {a}) < -0.03% "
                f"and edge > 0.02% and not (volume(coin, {a}) < 1e6)\n"
                f"    then hedge 1000 USDT exit when edge < 0.005% or held > 7d"
            )
    out.append("risk:\n    max_total_exposure 20000 USDT\n    stop_loss 2%\n    min_confidence 0.5")
    return "\n".join(out) + "\n"


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    text = generate(args.rules)
    parser = raw_parser()  # built once per process, as rulebook does
    check = load_texts({"bench.rules": text})
    assert check.ok, [d.message for d in check.diagnostics[:3]]
    n_bindings = sum(len(r.bindings) for r in check.ruleset.rules)

    raw_best, raw_med = best_of(lambda: parser.parse(text), args.repeat)
    full_best, full_med = best_of(lambda: load_texts({"bench.rules": text}), args.repeat)

    def expand_all() -> None:
        for r in load_texts({"bench.rules": text}).ruleset.rules:
            r.bindings  # noqa: B018 - expanding is the point

    both_best, _ = best_of(expand_all, args.repeat)
    print(f"ruleset: {args.rules} rules, {len(text.splitlines())} lines, {n_bindings} bindings")
    print(
        f"lark raw LALR parse:           best {raw_best * 1000:7.1f} ms  median {raw_med * 1000:7.1f} ms"
    )
    print(
        f"rulebook parse+check+compile:  best {full_best * 1000:7.1f} ms  median {full_med * 1000:7.1f} ms"
    )
    print(f"ratio (rulebook / raw parse):  {full_best / raw_best:.2f}  (target <= 1.5; under 1 s)")
    print(
        f"with every for-binding expanded (done lazily, on a rule's first evaluation): "
        f"best {both_best * 1000:.1f} ms, ratio {both_best / raw_best:.2f}"
    )


if __name__ == "__main__":
    main()
