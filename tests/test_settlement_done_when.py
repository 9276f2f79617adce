"""Issue 10's check: a replay's funding payments equal, to 1e-9, an independent computation
from the settlement records (rate x size x mark at settlement, every settlement, correct
sign), on the bundled example (both variants) and on sparse-cycle and interval-change cases.

The independent side reads the recording with `json` and the ledger with `sqlite3`; it
shares no code with rulebook.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path

import pytest
from test_trading_settlement import INTERVAL, hourly_world, runtime, write
from typer.testing import CliRunner

from rulebook.cli import app
from rulebook.market import ReplaySource

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "examples" / "binance-bybit-okx-btc-eth-2023-2024.jsonl"
PREVIOUS = ROOT / "examples" / "binance-bybit-okx-btc-eth-2023-2024-previous.jsonl.gz"


def _records(recording: Path) -> dict[tuple[str, str], list[tuple[int, float, float | None]]]:
    opener = gzip.open if recording.suffix == ".gz" else open
    out: dict[tuple[str, str], list[tuple[int, float, float | None]]] = {}
    marks: dict[tuple[str, str], list[tuple[int, float]]] = {}
    with opener(recording, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            key = (row["exchange"], row["coin"])
            if row["market"] == "settlement":
                out.setdefault(key, []).append((row["ts"], row["funding_rate"], row.get("mark")))
            elif row["market"] == "perp" and row.get("mark") is not None:
                marks.setdefault(key, []).append((row["ts"], row["mark"]))
    # a record without a mark: the last perp mark at or before it (spec 11)
    for key, recs in out.items():
        seen = sorted(marks.get(key, []))
        fixed = []
        for ts, rate, mark in recs:
            if mark is None:
                mark = max((m for m in seen if m[0] <= ts), default=(0, None))[1]
            fixed.append((ts, rate, mark))
        out[key] = sorted(fixed)
    return out


def independent(recording: Path, db: Path) -> dict[tuple[int, str, int], float]:
    """(position, exchange, settlement ts) -> amount, from the records and the legs."""
    recs = _records(recording)
    con = sqlite3.connect(db)
    try:
        last = con.execute("select max(ts) from cycles").fetchone()[0]
        rows = con.execute("select id, coin, legs, opened_at, closed_at from positions").fetchall()
    finally:
        con.close()
    want: dict[tuple[int, str, int], float] = {}
    for pid, coin, legs, opened, closed in rows:
        end = closed if closed is not None else last
        for leg in json.loads(legs):
            if leg["market"] != "perp":
                continue
            sign = 1.0 if leg["side"] == "long" else -1.0
            for ts, rate, mark in recs.get((leg["exchange"], coin), []):
                if opened < ts <= end:
                    want[(pid, leg["exchange"], ts)] = -sign * leg["size"] * mark * rate
    return want


def paid(db: Path) -> dict[tuple[int, str, int], float]:
    con = sqlite3.connect(db)
    try:
        return {(p, e, t): a for p, e, t, a in con.execute(
            "select position_id, exchange, ts, amount from funding_payments")}
    finally:
        con.close()


def assert_same(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    worst = max((abs(got[k] - want[k]) for k in want), default=0.0)
    assert worst <= 1e-9, worst


@pytest.mark.parametrize("recording", [EXAMPLE, PREVIOUS], ids=["settled", "previous"])
def test_the_example_replay_pays_exactly_the_settlement_records(tmp_path, recording):
    db = tmp_path / "paper.db"
    res = CliRunner().invoke(app, ["run", str(ROOT / "strategies"), "--paper", "--replay",
                                   str(recording), "--db", str(db), "--no-watch"])
    assert res.exit_code == 0, res.output
    want = independent(recording, db)
    assert len(want) > 1000  # every settlement of every held perp leg
    assert_same(paid(db), want)
    con = sqlite3.connect(db)
    try:
        sources = set(con.execute("select rate_source, mark_source from funding_payments"))
    finally:
        con.close()
    assert sources == {("settled", "settlement")}


@pytest.mark.parametrize("every", [30 * 60_000, 2 * 3_600_000], ids=["30min", "2h"])
def test_sparse_cycles_pay_exactly_the_settlement_records(tmp_path, every):
    rec = write(tmp_path / "rec.jsonl", hourly_world(every, record_marks=False))
    rt = runtime(tmp_path)
    rt.run(ReplaySource(rec))
    assert_same(paid(tmp_path / "paper.db"), independent(rec, tmp_path / "paper.db"))


def test_an_interval_change_pays_exactly_the_settlement_records(tmp_path):
    from test_trading_settlement import T0, H, perp, record

    rows = []
    for t in range(T0, T0 + 12 * H + 1, 2 * H):  # sparse too: every 2 h across hourly funding
        hourly = T0 + 8 * H <= t < T0 + 11 * H
        if hourly:
            nxt, interval, rate = (t // H + 1) * H, 1, 0.004
        else:
            nxt, interval, rate = (T0 + 8 * H if t < T0 + 8 * H else T0 + 16 * H), 8, 0.0003
        rows.append(perp("binance", t, rate, nxt, 100.0 + (t - T0) / H, interval))
        rows.append({"ts": t, "exchange": "binance", "coin": "SOL", "market": "spot",
                     "bid": 100.0, "ask": 100.0, "taker_fee": 0.001})
    rows += [record("binance", T0 + 8 * H, 0.0003, 8)]
    rows += [record("binance", T0 + k * H, 0.001 * (k - 7), 1) for k in (9, 10, 11)]
    rec = write(tmp_path / "rec.jsonl", rows)
    runtime(tmp_path, INTERVAL).run(ReplaySource(rec))
    want = independent(rec, tmp_path / "paper.db")
    assert len(want) == 4
    assert_same(paid(tmp_path / "paper.db"), want)
