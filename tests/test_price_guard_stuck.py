"""A feed that stops at an implausible price is never used by staying stuck there.

Three venues at 100, binance at 1000: the guard rejects binance by the venue band
when its observation is new, and (since this change) keeps it replaced for as long
as that observation is unchanged, as it does a new level held back by the jump
band. Before, cycle 3 marked, filled and paid at 1000. A changed observation is
judged afresh: a return to ~100 is accepted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rulebook.cli import app
from rulebook.market import Observation, PriceGuard, SnapshotView
from rulebook.trading import LedgerReader

T0 = 1753112400000
MIN = 60_000
HOUR = 3_600_000
OTHERS = ("backpack", "bybit", "okx")


def _perp(ex: str, mark: float, ts: int) -> Observation:
    return Observation.checked(
        ts=ts, exchange=ex, coin="BTC", market="perp", funding_rate=0.0001,
        funding_interval_h=8, mark=mark, index=mark,
    )  # fmt: skip


def _guard_cycles(columnar: bool) -> list[tuple[float | None, list[str]]]:
    """binance's mark in the view each cycle uses, and the cycle's rejections."""
    guard = PriceGuard()
    state = {("binance", "BTC", "perp"): _perp("binance", 100.0, T0)}
    binance = [100.0, 1000.0, None, None, None, 100.5, 100.7]  # None: unchanged
    out = []
    for k, b in enumerate(binance):
        ts = T0 + k * MIN
        for i, ex in enumerate(OTHERS):
            state[(ex, "BTC", "perp")] = _perp(ex, 100.0 + 0.1 * k + 0.01 * i, ts)
        if b is not None:
            state[("binance", "BTC", "perp")] = _perp("binance", b, ts)
        view = SnapshotView(ts, dict(state), recorded=True)
        if columnar:
            view = SnapshotView.from_columns(view.columns())
        got, rejected = guard.check(view)
        o = got.get("binance", "BTC", "perp")
        out.append((None if o is None else o.mark, [r.text() for r in rejected]))
    return out


@pytest.mark.parametrize("columnar", [False, True])
def test_a_price_stuck_far_from_the_other_venues_stays_replaced(columnar: bool) -> None:
    cycles = _guard_cycles(columnar)
    marks = [m for m, _ in cycles]
    assert marks == [100.0, 100.0, 100.0, 100.0, 100.0, 100.5, 100.7]
    rejections = [r for _, r in cycles]
    assert len(rejections[1]) == 1
    assert rejections[1][0].startswith("binance BTC perp: mark 1000 is ")
    assert "from the median" in rejections[1][0]
    # while unchanged it stays replaced, with no second rejection (as a held-back level)
    assert rejections[2:] == [[], [], [], [], []]


# -- the same in a paper run: never marked, filled or paid at the stuck price ---------------

runner = CliRunner()


def _line(ts: int, ex: str, market: str, price: float) -> dict[str, object]:
    if market == "spot":
        return {"ts": ts, "exchange": ex, "coin": "SOL", "market": "spot", "bid": price,
                "ask": price}  # fmt: skip
    return {"ts": ts, "exchange": ex, "coin": "SOL", "market": "perp", "funding_rate": 0.001,
            "funding_interval_h": 1, "next_funding_ts": ts + HOUR, "mark": price,
            "index": price}  # fmt: skip


def test_a_stuck_absurd_price_is_never_marked_filled_or_paid_at(tmp_path: Path) -> None:
    lines = []
    for k in range(9):
        ts = T0 + k * HOUR
        p = 100.0 + 0.1 * k
        for ex in OTHERS:
            lines.append(_line(ts, ex, "perp", p))
        lines.append(_line(ts, "binance", "spot", p))
        if k == 0:
            lines.append(_line(ts, "binance", "perp", 100.0))
        elif k == 1:
            lines.append(_line(ts, "binance", "perp", 1000.0))  # then stuck: no new line
        elif k == 7:
            lines.append(_line(ts, "binance", "perp", 100.5))  # back: judged afresh
        elif k == 8:
            lines.append(_line(ts, "binance", "perp", 100.8))
    rec = tmp_path / "rec.jsonl"
    rec.write_text("".join(json.dumps(x) + "\n" for x in lines))
    (tmp_path / "r.rules").write_text(
        "rule carry: when funding(SOL, binance) > 0% then hedge 100 USDT\n"
        "    exit when held > 3h\n"
    )
    db = tmp_path / "p.db"
    res = runner.invoke(app, ["run", str(tmp_path / "r.rules"), "--paper", "--replay", str(rec),
                              "--db", str(db), "--no-watch"])  # fmt: skip
    assert res.exit_code == 0, res.output
    with LedgerReader.open(db) as read:
        events = read.events("price_rejected")
        assert [(e.ts, "binance SOL perp: mark 1000" in e.detail) for e in events] == [
            (T0 + HOUR, True)
        ]
        fills = read.fills()
        assert fills and max(f.price for f in fills) < 200  # never filled at 1000
        payments = read.funding_payments()
        assert payments and max(p.mark for p in payments) < 200  # never paid at 1000
        assert all(m < 200 for m, _ in read.marks().values())  # never marked at 1000
        for pos in read.positions():
            for leg in pos.legs:
                assert leg.mark is None or leg.mark < 200
        # the return to ~100 is accepted: binance's perp is marked at its new price
        assert read.marks()[("binance", "SOL", "perp")][0] == pytest.approx(100.8)
