"""Synthetic recordings for the paper-runtime tests: made-up quotes, worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

H = 3_600_000
T = 1_753_113_600_000  # a funding settlement time (ms)
T0 = T - H


def perp_line(
    ex: str,
    ts: int,
    coin: str,
    mark: float,
    rate: float,
    nxt: int,
    fee: float,
    half_spread: float = 0.1,
) -> dict:
    return {
        "ts": ts,
        "exchange": ex,
        "coin": coin,
        "market": "perp",
        "funding_rate": rate,
        "funding_interval_h": 8,
        "next_funding_ts": nxt,
        "mark": mark,
        "index": mark,
        "bid": round(mark - half_spread, 10),
        "ask": round(mark + half_spread, 10),
        "volume_24h": 1e9,
        "taker_fee": fee,
    }


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def pair_rows(
    ts: int, coin: str, binance: tuple[float, float], bybit: tuple[float, float], nxt: int
) -> list[dict]:
    """binance and bybit perps of one coin: (mark, rate) each; fees 0.05% and 0.055%."""
    return [
        perp_line("binance", ts, coin, binance[0], binance[1], nxt, 0.0005),
        perp_line("bybit", ts, coin, bybit[0], bybit[1], nxt, 0.00055),
    ]


def wavy_rows(hours: int, coins: tuple[str, ...] = ("SOL", "ETH")) -> list[dict]:
    """A synthetic recording whose spread swings sign every few hours, so positions open,
    settle funding every 8h, and close again many times over a replay."""
    import math

    rows: list[dict] = []
    for h in range(hours):
        ts = T0 + h * H
        nxt = T + ((h - 1) // 8 + 1) * 8 * H if h >= 1 else T  # the next 8h settlement after ts
        for i, coin in enumerate(coins):
            base = (100.0, 2000.0)[i % 2]
            mark = base * (1 + 0.02 * math.sin(h / 20 + i))
            r_binance = 0.0001 + 0.0003 * math.sin(h / 7 + i)
            r_bybit = 0.0001 + 0.0003 * math.cos(h / 5 + i)
            rows += pair_rows(
                ts,
                coin,
                (round(mark, 6), round(r_binance, 8)),
                (round(mark * (1 + 0.001 * math.sin(h / 3)), 6), round(r_bybit, 8)),
                nxt,
            )
    return rows


def paper_runtime(rulesets, config, ledger, notifier=None, source: str = "live"):
    """A runtime with the paper executor injected, as the application layer builds it."""
    from rulebook.trading import PaperExecutor, Runtime

    return Runtime(
        rulesets, config, ledger, notifier, source, executor=PaperExecutor(config, ledger)
    )


def sql(ledger, query: str, params=()) -> list[dict]:  # a Ledger, or a file's path
    """Rows of the ledger's file, read through a connection of the test's own: what is
    stored, whatever the ledger's API says (only tests look at the tables directly)."""
    import sqlite3

    con = sqlite3.connect(f"file:{getattr(ledger, 'path', ledger)}?mode=ro", uri=True)
    try:
        cur = con.execute(query, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


def with_settlements(rows: list[dict], late_ms: int = H) -> list[dict]:
    """`rows` plus a settlement record per perp settlement they show, written `late_ms`
    after it (after that cycle's lines, as `rulebook snapshot` writes a record once the
    exchange's history has it). Each settles 80% of the last rate shown for it, on the
    mark 1% above the last one shown before it: not what the observations said."""
    shown: dict[tuple[str, str, int], dict] = {}
    for r in rows:
        if r["market"] == "perp" and r["ts"] < r["next_funding_ts"]:
            shown[(r["exchange"], r["coin"], r["next_funding_ts"])] = r
    last_ts = max(r["ts"] for r in rows)
    late: dict[int, list[dict]] = {}
    for (ex, coin, s), r in sorted(shown.items()):
        if s + late_ms > last_ts:
            continue
        late.setdefault(s + late_ms, []).append({
            "ts": s, "exchange": ex, "coin": coin, "market": "settlement",
            "funding_rate": round(r["funding_rate"] * 0.8, 10), "funding_interval_h": 8,
            "mark": round(r["mark"] * 1.01, 6),
        })
    out: list[dict] = []
    for i, r in enumerate(rows):
        out.append(r)
        nxt = rows[i + 1]["ts"] if i + 1 < len(rows) else None
        if r["ts"] in late and nxt != r["ts"]:
            out.extend(late.pop(r["ts"]))
    return out
