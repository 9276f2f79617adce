#!/usr/bin/env python3
"""benchmarks/year.rules written by hand with orjson and numpy: the year benchmark's baseline.

What a good engineer would write to backtest these two rules without rulebook:
read the recording with orjson, keep the latest figures per (exchange, coin)
in numpy arrays, and per hour evaluate every binding's conditions at once,
then apply the paper runtime's order of a cycle (exits first, then entries
best expected net over 8h first under `max_open_positions`). It knows only
what the compared figures need: which positions open and close, at which
cycle, the fees their fills pay, and the funding their perp legs are paid. It
imports nothing of rulebook.

Funding follows the settlement rule of docs/settlement.md for a recording
without settlement records (the synthetic one has none): a settlement `s` of
a perp is known from the observations that show `next_funding_ts = s`; it
settles at the rate of the last of them before `s`, at the mark of the last
perp observation at or before `s`; a position's perp leg receives every
settlement after its opening and up to its close (or the last cycle), short
paid a positive rate: `-sign x size x mark x rate`. Settlements are found per
cycle with array operations over every perp; a leg's funding is one sum
over its market's settlements at the end.

    python benchmarks/year_reference.py RECORDING [--out positions.json]

Its output (the positions, the fees of their fills, their funding) is what
benchmarks/bench_year.py compares with the ledger of `rulebook run --paper
--replay` over the same recording; tests/test_bench_year.py runs both on a
few days so that the two cannot drift apart. The formulas are spec sections 5
and 6 with the same float operations in the same order as rulebook's, so a
threshold compares alike on both sides.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

EXCHANGES = ("backpack", "binance", "bybit", "okx", "gate", "bitget")
COINS = ("BTC", "ETH", "SOL") + tuple(f"COIN{i:02d}" for i in range(1, 48))
EX = {e: i for i, e in enumerate(EXCHANGES)}
CO = {c: i for i, c in enumerate(COINS)}
NE, NC = len(EXCHANGES), len(COINS)
#: the published base-tier taker fees rulebook falls back to (rulebook.market.DEFAULT_TAKER_FEES;
#: the recording carries none); tests/test_bench_year.py checks they are the same
PERP_FEE = np.array([0.0005, 0.0005, 0.00055, 0.0005, 0.0005, 0.0006])
SPOT_FEE = np.array([0.001, 0.001, 0.001, 0.001, 0.002, 0.001])
SLIPPAGE = 0.0005  # rulebook's default, used only where a book side is missing

EIGHT_H = 8 * 3600.0
# year.rules' constants, as the language reads them ("0.10%" is 0.10 / 100)
MIN_SPREAD = 0.10 / 100.0
EXIT_SPREAD = 0.01 / 100.0
CARRY_RATE = 0.05 / 100.0
SPREAD_AMOUNT, CARRY_AMOUNT = 1000.0, 2000.0
MAX_OPEN = 20

# The bindings in the ruleset's order: `for coin in coins, hi in venues, lo in venues`
# (hi != lo), then `for coin in coins, venue in venues`.
_pairs = [(c, a, b) for c in range(NC) for a in range(NE) for b in range(NE) if a != b]
S_C = np.array([p[0] for p in _pairs])
S_A = np.array([p[1] for p in _pairs])
S_B = np.array([p[2] for p in _pairs])
K_C = np.repeat(np.arange(NC), NE)
K_E = np.tile(np.arange(NE), NC)
N_SPREAD = len(_pairs)


class Market:
    """The latest figures per (exchange, coin), NaN until observed."""

    def __init__(self) -> None:
        def grid() -> np.ndarray:
            return np.full((NE, NC), np.nan)

        self.rate, self.hours, self.mark, self.index = grid(), grid(), grid(), grid()
        self.perp_bid, self.perp_ask, self.perp_ts = grid(), grid(), grid()
        self.bid, self.ask, self.spot_ts = grid(), grid(), grid()
        self.funding = Funding()

    def apply(self, perp: list[tuple[Any, ...]], spot: list[tuple[Any, ...]]) -> None:
        if perp:
            a = np.array(perp, dtype=float)
            e, c = a[:, 0].astype(np.intp), a[:, 1].astype(np.intp)
            self.funding.observe(e, c, a)
            for k, grid in enumerate(
                (self.rate, self.hours, self.mark, self.index, self.perp_bid, self.perp_ask,
                 self.perp_ts), start=2,
            ):  # fmt: skip
                grid[e, c] = a[:, k]
        if spot:
            a = np.array(spot, dtype=float)
            e, c = a[:, 0].astype(np.intp), a[:, 1].astype(np.intp)
            self.bid[e, c], self.ask[e, c], self.spot_ts[e, c] = a[:, 2], a[:, 3], a[:, 4]


class Funding:
    """Settlements per (exchange, coin) as the perp observations show them.

    Per market: the forecast being shown (its settlement time, the rate of the
    last observation that showed it) and the last mark with its time. When an
    observation at or after the forecast's time comes, that settlement has
    happened: it is kept (market, time, mark x rate) at the rate shown last
    and the last mark at or before it. The recording has no interval switch
    that moves a settlement before it happens; the reference stops if one does.
    """

    def __init__(self) -> None:
        self.next = np.full((NE, NC), np.nan)  # the settlement time shown
        self.rate = np.full((NE, NC), np.nan)  # its rate, as last shown before it
        self.mark = np.full((NE, NC), np.nan)  # the last perp mark
        self.mark_ts = np.full((NE, NC), np.nan)
        self.settled: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # cell, s, mark x rate

    def _keep(self, e: np.ndarray, c: np.ndarray, mark: np.ndarray) -> None:
        self.settled.append((e * NC + c, self.next[e, c], mark * self.rate[e, c]))

    def observe(self, e: np.ndarray, c: np.ndarray, a: np.ndarray) -> None:
        """One cycle's perp rows (the columns of `run`'s perp tuples)."""
        rate, mark, ts, nxt = a[:, 2], a[:, 4], a[:, 8], a[:, 9]
        pending = self.next[e, c]
        with np.errstate(invalid="ignore"):
            due = ts >= pending  # the shown settlement has happened
            shows = (ts < nxt) & ~np.isnan(rate)
            moved = shows & ~due & ~np.isnan(pending) & (nxt != pending)
        if moved.any():
            raise SystemExit("year_reference: a settlement moved before it happened")
        if due.any():
            # the mark at or before s: this observation's if it is at s, else the last one
            at_s = due & (ts == pending) & ~np.isnan(mark)
            last = np.where(at_s, mark, self.mark[e, c])
            self._keep(e[due], c[due], last[due])
            self.next[e[due], c[due]] = np.nan
        has_mark = ~np.isnan(mark)
        self.mark[e[has_mark], c[has_mark]] = mark[has_mark]
        self.mark_ts[e[has_mark], c[has_mark]] = ts[has_mark]
        self.next[e[shows], c[shows]] = nxt[shows]
        self.rate[e[shows], c[shows]] = rate[shows]

    def close(self, upto: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every settlement up to the last cycle, sorted by market then time:
        (market cell, time, mark x rate)."""
        with np.errstate(invalid="ignore"):
            e, c = np.nonzero(self.next <= upto)
        if e.size:
            self._keep(e, c, self.mark[e, c])
            self.next[e, c] = np.nan
        if not self.settled:
            return np.zeros(0, dtype=np.intp), np.zeros(0), np.zeros(0)
        cell, s, unit = (np.concatenate(x) for x in zip(*self.settled, strict=True))
        order = np.lexsort((s, cell))
        return cell[order], s[order], unit[order]


def _fresh(age: np.ndarray) -> np.ndarray:
    return np.where(age <= 60.0, 1.0, np.where(age >= 300.0, 0.0, (300.0 - age) / 240.0))


def _breakeven(edge: np.ndarray, fees: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(edge > 0, np.divide(fees, edge) * EIGHT_H, np.inf)


class Backtest:
    def __init__(self) -> None:
        self.m = Market()
        #: open positions: key -> [rule, binding index, opened_at, fees so far, legs]
        self.open: dict[tuple[object, ...], list[Any]] = {}
        self.done: list[tuple[list[Any], int]] = []  # closed positions, when closed
        self.fees = 0.0

    # -- one cycle ----------------------------------------------------------------------
    def cycle(self, at: int) -> None:
        m = self.m
        with np.errstate(invalid="ignore", divide="ignore"):
            funding = np.where(m.hours != 0, m.rate * 8.0 / m.hours, np.nan)
            mid = (m.bid + m.ask) / 2.0
            perp_age = (at - m.perp_ts) / 1000.0
            spot_age = (at - m.spot_ts) / 1000.0
        self._exits(at, funding)
        cand = self._spread(funding, perp_age) + self._carry(funding, mid, perp_age, spot_age)
        self._entries(at, cand)

    def _exits(self, at: int, funding: np.ndarray) -> None:
        for key, p in list(self.open.items()):
            rule, i, opened = p[0], p[1], p[2]
            held = (at - opened) / 1000.0
            if rule == "year_spread":
                s = funding[S_A[i], S_C[i]] - funding[S_B[i], S_C[i]]
                close = bool(s < EXIT_SPREAD) or held > 72 * 3600.0
            else:
                close = bool(funding[K_E[i], K_C[i]] < 0.0) or held > 14 * 86400.0
            if close:
                self._fill(p, at, closing=True)
                del self.open[key]
                self.done.append((p, at))

    def _spread(self, funding: np.ndarray, age: np.ndarray) -> list[tuple[float, int]]:
        m = self.m
        fa, fb = funding[S_A, S_C], funding[S_B, S_C]
        ma, mb = m.mark[S_A, S_C], m.mark[S_B, S_C]
        edge = np.abs(fa - fb)
        fees = 2.0 * (PERP_FEE[S_A] + PERP_FEE[S_B])
        dev = np.abs(ma - mb) / ((ma + mb) / 2.0)
        conf = np.maximum(0.0, 1.0 - dev / 0.005) * _fresh(
            np.maximum(age[S_A, S_C], age[S_B, S_C])
        )
        with np.errstate(invalid="ignore"):
            fired = (fa - fb > MIN_SPREAD) & (conf > 0.7) & (_breakeven(edge, fees) <= 48 * 3600.0)
        idx = np.flatnonzero(fired)
        value = SPREAD_AMOUNT * (edge[idx] * (EIGHT_H / EIGHT_H) - fees[idx])
        return list(zip((-value).tolist(), idx.tolist(), strict=True))

    def _carry(
        self, funding: np.ndarray, mid: np.ndarray, perp_age: np.ndarray, spot_age: np.ndarray
    ) -> list[tuple[float, int]]:
        m = self.m
        f = funding[K_E, K_C]
        mark, idx_price, mids = m.mark[K_E, K_C], m.index[K_E, K_C], mid[K_E, K_C]
        edge = f  # funding > 0.05% is the first condition: the short perp is paid, no borrow
        fees = 2.0 * (PERP_FEE[K_E] + SPOT_FEE[K_E])
        ref = np.where(np.isnan(idx_price), mids, idx_price)
        conf = np.maximum(0.0, 1.0 - (np.abs(mark - ref) / ref) / 0.005) * _fresh(
            np.maximum(perp_age[K_E, K_C], spot_age[K_E, K_C])
        )
        be = _breakeven(edge, fees)
        high = (conf < 0.5) | (be > 72 * 3600.0)
        with np.errstate(invalid="ignore"):
            fired = (
                (f > CARRY_RATE)
                & ((mark - mids) / mids >= 0.0)
                & (edge * (7 * 86400.0 / EIGHT_H) - fees > 0.0)
                & ~high
            )
        idx = np.flatnonzero(fired)
        value = CARRY_AMOUNT * (edge[idx] * (EIGHT_H / EIGHT_H) - fees[idx])
        return list(zip((-value).tolist(), (idx + N_SPREAD).tolist(), strict=True))

    def _entries(self, at: int, cand: list[tuple[float, int]]) -> None:
        count = len(self.open)
        for _, order in sorted(cand):  # best expected net first, ties in ruleset order
            if order < N_SPREAD:
                c, a, b = int(S_C[order]), int(S_A[order]), int(S_B[order])
                key: tuple[object, ...] = ("spread", c, min(a, b), max(a, b))
                rule, i = "year_spread", order
            else:
                i = order - N_SPREAD
                key = ("carry", int(K_C[i]), int(K_E[i]))
                rule = "year_carry"
            if key in self.open:
                continue  # already open
            if count >= MAX_OPEN:
                continue  # blocked by max_open_positions
            p = [rule, i, at, 0.0, []]
            self._fill(p, at, closing=False)
            self.open[key] = p
            count += 1

    # -- fills: the book side, both legs the same coins (amount / the higher price) -----
    def _legs(self, rule: str, i: int) -> list[tuple[int, int, str, bool]]:
        """(exchange, coin, market, short) per leg."""
        m = self.m
        if rule == "year_spread":
            c, a, b = int(S_C[i]), int(S_A[i]), int(S_B[i])
            fa = m.rate[a, c] * 8.0 / m.hours[a, c]
            fb = m.rate[b, c] * 8.0 / m.hours[b, c]
            short, long_ = (a, b) if fa >= fb else (b, a)
            return [(short, c, "perp", True), (long_, c, "perp", False)]
        return [(int(K_E[i]), int(K_C[i]), "perp", True), (int(K_E[i]), int(K_C[i]), "spot", False)]

    def _price(self, e: int, c: int, market: str, buy: bool) -> float:
        m = self.m
        side = (m.perp_ask if buy else m.perp_bid) if market == "perp" else (m.ask if buy else m.bid)
        px = float(side[e, c])
        if px == px:
            return px
        ref = float(m.mark[e, c]) if market == "perp" else (float(m.bid[e, c]) + float(m.ask[e, c])) / 2.0
        return ref * (1 + SLIPPAGE) if buy else ref * (1 - SLIPPAGE)

    def _fill(self, p: list[Any], at: int, *, closing: bool) -> None:
        rule, i = p[0], p[1]
        if not closing:
            legs = self._legs(rule, i)
            prices = [self._price(e, c, mk, buy=not short) for e, c, mk, short in legs]
            amount = SPREAD_AMOUNT if rule == "year_spread" else CARRY_AMOUNT
            qty = amount / max(prices)
            p[4] = [(e, c, mk, short, qty) for e, c, mk, short in legs]
        else:
            prices = [self._price(e, c, mk, buy=short) for e, c, mk, short, _ in p[4]]
        for (e, _c, mk, _short, qty), price in zip(p[4], prices, strict=True):
            rate = PERP_FEE[e] if mk == "perp" else SPOT_FEE[e]
            fee = qty * price * float(rate)
            p[3] += fee
            self.fees += fee

    def _row(self, p: list[Any], closed_at: int | None, funding: float) -> dict[str, Any]:
        rule, i = p[0], p[1]
        if rule == "year_spread":
            bindings = {
                "coin": COINS[S_C[i]], "hi": EXCHANGES[S_A[i]], "lo": EXCHANGES[S_B[i]]
            }  # fmt: skip
        else:
            bindings = {"coin": COINS[K_C[i]], "venue": EXCHANGES[K_E[i]]}
        return {
            "rule": rule, "bindings": bindings, "opened_at": p[2], "closed_at": closed_at,
            "fees": p[3], "funding": funding,
        }  # fmt: skip

    def positions(self, upto: int) -> list[dict[str, Any]]:
        """Every position, with the funding of its perp legs: the settlements of the
        leg's market in (opened, closed], or up to the last cycle ``upto`` if open."""
        cell, s, unit = self.m.funding.close(upto)
        key = cell.astype(np.int64) * 10**13 + s.astype(np.int64)  # market, then time
        held = self.done + [(p, None) for p in self.open.values()]
        legs = [
            (n, (e * NC + c) * 10**13, p[2], upto if closed is None else closed,
             1.0 if short else -1.0, qty)
            for n, (p, closed) in enumerate(held)
            for e, c, market, short, qty in p[4] if market == "perp"
        ]  # fmt: skip
        funding = [0.0] * len(held)
        if legs:
            n, base, opened, end, sign, qty = (np.array(x) for x in zip(*legs, strict=True))
            lo = np.searchsorted(key, base + opened, side="right")
            hi = np.searchsorted(key, base + end, side="right")
            amounts = [float(unit[a:b].sum()) for a, b in zip(lo.tolist(), hi.tolist(), strict=True)]
            for j, f, q, a in zip(n.tolist(), sign.tolist(), qty.tolist(), amounts, strict=True):
                funding[j] += f * q * a
        return [self._row(p, closed, funding[j]) for j, (p, closed) in enumerate(held)]


def run(path: Path) -> tuple[Backtest, int, int]:
    """Replay the recording: a cycle at each distinct timestamp, after its lines."""
    bt = Backtest()
    loads = orjson.loads
    current: int | None = None
    cycles = 0
    perp: list[tuple[Any, ...]] = []
    spot: list[tuple[Any, ...]] = []
    with path.open("rb") as fh:
        for line in fh:
            d = loads(line)
            ts = d["ts"]
            if current is not None and ts != current:
                bt.m.apply(perp, spot)
                bt.cycle(current)
                cycles += 1
                perp, spot = [], []
            current = ts
            e, c = EX.get(d.get("exchange")), CO.get(d.get("coin"))
            if e is None or c is None:
                continue
            market = d.get("market")
            if market == "perp":
                perp.append((
                    e, c, d.get("funding_rate"), d.get("funding_interval_h"), d.get("mark"),
                    d.get("index"), d.get("bid"), d.get("ask"), ts, d.get("next_funding_ts"),
                ))  # fmt: skip
            elif market == "spot":
                spot.append((e, c, d.get("bid"), d.get("ask"), ts))
    if current is not None:
        bt.m.apply(perp, spot)
        bt.cycle(current)
        cycles += 1
    return bt, cycles, current or 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("recording", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="write the positions as JSON here")
    args = ap.parse_args()
    t = time.perf_counter()
    bt, cycles, last = run(args.recording)
    positions = bt.positions(last)
    took = time.perf_counter() - t
    if args.out is not None:
        args.out.write_bytes(orjson.dumps({"positions": positions, "fees": bt.fees}))
    funding = sum(p["funding"] for p in positions)
    print(f"{cycles} cycles, {len(positions)} positions, fees {bt.fees:.6f}, "
          f"funding {funding:.6f}, {took:.2f}s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
