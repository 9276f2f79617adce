#!/usr/bin/env python3
"""Convert AHA-HH's all_exchanges.csv (8h candles plus funding) to a rulebook recording.

Source: github.com/AHA-HH/optimising-funding-rate-arbitrage, data/all_exchanges.csv,
commit 110bc95c (MIT, (c) 2024 Anees; see LICENSE-AHA-HH). Binance, Bybit and
OKX, BTC and ETH, spot and USDT perpetual, 2023-01-01 to 2024-07-01.

    python examples/convert_aha_hh.py SOURCE.csv examples/binance-bybit-okx-btc-eth-2023-2024.jsonl
    python examples/convert_aha_hh.py SOURCE.csv --lookahead previous \
        examples/binance-bybit-okx-btc-eth-2023-2024-previous.jsonl.gz

Pitfalls handled (see docs/market.md):

* Time zone. ``time`` is Europe/London local time: candles sit at 00/08/16 in
  winter and 01/09/17 during British Summer Time. It is converted to UTC with
  the UK rule (BST from the last Sunday of March to the last Sunday of October,
  01:00 UTC both ends). The autumn hour that happens twice (01:00 local) is
  read as its first occurrence, BST, which puts it on the 00:00 UTC grid. Every
  converted time is checked to sit on the 00/08/16 UTC settlement grid.
* Settlements. A row's funding rate is the rate that settled at its time t.
  Each becomes a settlement record (spec 9: ``"market": "settlement"``) at t
  with that rate, the 8h interval and the mark at t (the perp candle's open),
  so the runtime pays exactly what the exchange paid, whichever variant.
* Shown rate (look-ahead). What the perp observation at t - 1 minute shows as
  the rate of the settlement at t. With ``--lookahead settled`` (default) it is
  the rate that then settled, as an exchange shows it a minute before
  settlement (nearly final by then: the last minute's premium is the
  look-ahead). With ``--lookahead previous`` it is the rate settled at t - 8h:
  no look-ahead at all, a persistence forecast. The two variants differ in
  what rules see (and so in what opens), never in what a settlement pays.
* Prices. The perp mark and the spot price are the candles' *open* at t, the
  price at settlement, known by then; volume is the three candles closed before
  t. There is no book or index data: spot bid = ask = the spot price, and the
  perp index is the same exchange's spot price (a proxy).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta

H8 = 8 * 3600 * 1000
LEAD_MS = 60_000
COINS = {"bitcoin": "BTC", "ethereum": "ETH"}


def _last_sunday(year: int, month: int) -> datetime:
    d = datetime(year, month + 1, 1, tzinfo=UTC) - timedelta(days=1)
    return d - timedelta(days=(d.weekday() - 6) % 7)


def london_to_utc_ms(text: str) -> int:
    local = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    start = _last_sunday(local.year, 3).replace(hour=1)
    end = _last_sunday(local.year, 10).replace(hour=1)
    as_bst = local - timedelta(hours=1)
    utc = as_bst if start <= as_bst < end else local
    ms = int(utc.timestamp() * 1000)
    if ms % H8:
        raise ValueError(f"{text} (London) is {utc:%Y-%m-%d %H:%M} UTC, off the 8h grid")
    return ms


def convert(src: str, lookahead: str) -> list[dict]:
    # series[(exchange, coin, market)][t_ms] = row
    series: dict[tuple[str, str, str], dict[int, dict]] = defaultdict(dict)
    with open(src, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            coin = COINS.get(row["crypto"])
            if coin is None:
                continue
            if row["contract"] == "spot":
                market = "spot"
            elif row["pair"] == f"{coin}USDT":
                market = "perp"
            else:
                continue  # coin-margined (USDCM) perps: not a linear perp
            series[(row["exchange"], coin, market)][london_to_utc_ms(row["time"])] = row

    def rate(rows: dict[int, dict], t: int) -> float | None:
        r = rows.get(t)
        return float(r["funding rate"]) if r and r["funding rate"] else None

    def volume(rows: dict[int, dict], t: int) -> float | None:
        prev = [rows.get(t - k * H8) for k in (1, 2, 3)]
        if any(p is None for p in prev):
            return None
        return sum(float(p["volume"]) * float(p["close"]) for p in prev)

    out = []
    for (ex, coin, market), rows in sorted(series.items()):
        if market != "perp":
            continue
        spot_rows = series.get((ex, coin, "spot"), {})
        for t, row in rows.items():
            ts = t - LEAD_MS
            spot = spot_rows.get(t)
            fr = rate(rows, t) if lookahead == "settled" else rate(rows, t - H8)
            perp = {"ts": ts, "exchange": ex, "coin": coin, "market": "perp",
                    "symbol": f"{coin}/USDT:USDT", "funding_rate": fr,
                    "funding_interval_h": 8, "next_funding_ts": t, "mark": float(row["open"]),
                    "index": float(spot["open"]) if spot else None,
                    "volume_24h": volume(rows, t)}
            out.append({k: v for k, v in perp.items() if v is not None})
            settled = rate(rows, t)
            if settled is not None:
                out.append({"ts": t, "exchange": ex, "coin": coin, "market": "settlement",
                            "funding_rate": settled, "funding_interval_h": 8,
                            "mark": float(row["open"])})
            if spot:
                px = float(spot["open"])
                s = {"ts": ts, "exchange": ex, "coin": coin, "market": "spot",
                     "symbol": f"{coin}/USDT", "bid": px, "ask": px,
                     "volume_24h": volume(spot_rows, t)}
                out.append({k: v for k, v in s.items() if v is not None})
    out.sort(key=lambda o: (o["ts"], o["exchange"], o["coin"], o["market"]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", help="all_exchanges.csv from AHA-HH/optimising-funding-rate-arbitrage")
    ap.add_argument("output", help="JSON Lines file to write")
    ap.add_argument("--lookahead", choices=["settled", "previous"], default="settled")
    args = ap.parse_args(argv)
    try:
        rows = convert(args.source, args.lookahead)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {args.source}: {e}", file=sys.stderr)
        return 1
    text = "".join(json.dumps(o, separators=(", ", ": ")) + "\n" for o in rows)
    if args.output.endswith(".gz"):
        # mtime=0: the same input gives the same bytes
        with open(args.output, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
            gz.write(text.encode("utf-8"))
    else:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    settlements = sum(o["market"] == "settlement" for o in rows)
    print(f"wrote {len(rows) - settlements} observations and {settlements} settlement records"
          f" to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
