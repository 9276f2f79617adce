"""Parse + check + compile of a 1,000-rule ruleset, against Lark's raw LALR parse.

Targets (issues 2 and 13): rulebook within 1.5x of the raw parse, and under 1 s.

    .venv/bin/python benchmarks/bench_lang.py [--rules 1000] [--rounds 9]

The sides are interleaved round by round (garbage collected before each run)
and compared by their medians, of the wall clock and of the CPU time.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable

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


def interleaved(
    fns: dict[str, Callable[[], object]], rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Each round runs every side once, in an order that rotates per round, so a
    burst of load on the machine hits both sides alike rather than one of them.

    The previous run's garbage is collected (untimed) before each run, so
    that no side pays for collecting another's objects; the process's CPU
    time is kept beside the wall clock (on a loaded machine it leaves out the
    time spent waiting for a core)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            gc.collect()
            c0 = time.process_time()
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return times, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=9, help="interleaved rounds (default 9)")
    args = ap.parse_args()
    text = generate(args.rules)
    parser = raw_parser()  # built once per process, as rulebook does
    check = load_texts({"bench.rules": text})
    assert check.ok, [d.message for d in check.diagnostics[:3]]
    n_bindings = sum(len(r.bindings) for r in check.ruleset.rules)

    def expand_all() -> None:
        for r in load_texts({"bench.rules": text}).ruleset.rules:
            r.bindings  # noqa: B018 - expanding is the point

    times, cpu = interleaved(
        {
            "raw": lambda: parser.parse(text),
            "full": lambda: load_texts({"bench.rules": text}),
            "expanded": expand_all,
        },
        args.rounds,
    )
    med = {k: statistics.median(v) for k, v in times.items()}
    cmed = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"ruleset: {args.rules} rules, {len(text.splitlines())} lines, {n_bindings} bindings")
    print(f"{args.rounds} interleaved rounds, medians (wall clock; CPU time):")
    print(f"  lark raw LALR parse (baseline):  {med['raw'] * 1000:7.1f} ms; {cmed['raw'] * 1000:7.1f} ms")
    print(f"  rulebook parse+check+compile:    {med['full'] * 1000:7.1f} ms; {cmed['full'] * 1000:7.1f} ms")
    print(
        f"  ratio (rulebook / raw parse):    {med['full'] / med['raw']:.2f}; "
        f"{cmed['full'] / cmed['raw']:.2f}  (target <= 1.5, and under 1 s)"
    )
    print(
        f"  with every for-binding expanded (done lazily, on a rule's first evaluation): "
        f"{med['expanded'] * 1000:.1f} ms, ratio {med['expanded'] / med['raw']:.2f}"
    )


if __name__ == "__main__":
    main()
