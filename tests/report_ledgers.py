"""Synthetic ledgers for the report tests (made here, clearly invented figures).

`build(db, positions=N, cycles=C, days=D, seed=S)` writes, into a ledger the
writer made, N positions (all closed but the last three, which stay open and
are marked later through the ledger's own API), each with two or three legs on
one to three exchanges, its fills and its funding payments, and C cycles spread
evenly over D days with a random-walk equity. The amounts are random floats
(seeded), not binary fractions, so any change in the order of a floating-point
sum shows; several positions open and close in the same cycle, with equal
and unequal gross notionals, so the sorting of ties matters too.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import re
import shutil
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from rulebook.app import report_command
from rulebook.cli import app
from rulebook.lang import Subject
from rulebook.trading import Ledger, PaperLeg, PaperPosition

H = 3_600_000
DAY = 24 * H
T0 = 1_753_113_600_000  # 2025-07-21 16:00 UTC

EXCHANGES = ("binance", "bybit", "okx")
RULES = ("carry", "spread", "extreme short", "borrow carry")
COINS = ("BTC", "ETH", "SOL", "DOGE")


def build(db: Path, *, positions: int, cycles: int, days: int, seed: int = 7) -> Path:
    rng = random.Random(seed)
    ledger = Ledger(db)
    for ex in EXCHANGES:
        ledger.record_account(ex, 20_000.0)
    con = ledger._db.conn
    span = days * DAY
    step = span // max(cycles - 1, 1)
    times = [T0 + i * step for i in range(cycles)]
    cycle_rows = []
    equity = 60_000.0
    for i, t in enumerate(times):
        equity += rng.uniform(-40.0, 41.0)
        cycle_rows.append((i + 1, t, t, "sha", "replay", 10, rng.randrange(5), 0, 0,
                           rng.uniform(-1, 1), equity))  # fmt: skip
    pos_rows, fill_rows, pay_rows, order_rows = [], [], [], []
    closed_n = max(positions - 3, 0)
    for pid in range(1, closed_n + 1):
        # opens cluster on a few cycles (ties), closes a few cycles later
        opened = times[min(rng.randrange(0, cycles - 2) // 3 * 3, cycles - 3)]
        closed = min(opened + rng.choice((1, 2, 5, 40)) * step, times[-1])
        rule = RULES[pid % len(RULES)]
        coin = COINS[rng.randrange(len(COINS))]
        n_legs = 3 if pid % 17 == 0 else 2
        exs = [EXCHANGES[(pid + k) % len(EXCHANGES)] for k in range(n_legs)]
        if pid % 5 == 0:
            exs = [exs[0]] * n_legs  # spot-perp carry on one venue
        size = rng.choice((0.5, 1.0, round(rng.uniform(0.01, 3.0), 6)))
        legs = []
        for k, ex in enumerate(exs):
            entry = round(rng.uniform(50, 70_000), 2)
            legs.append({
                "exchange": ex, "market": "spot" if k == 0 and pid % 5 == 0 else "perp",
                "side": "long" if k % 2 == 0 else "short", "size": size, "entry_price": entry,
                "mark": entry * rng.uniform(0.9, 1.1), "exit_price": entry * rng.uniform(0.9, 1.1),
                "funding": rng.uniform(-3, 5), "entry_fee": rng.uniform(0, 2),
                "exit_fee": rng.uniform(0, 2), "borrow": rng.uniform(0, 1) if pid % 4 == 3 else 0.0,
            })  # fmt: skip
        funding = sum(lg["funding"] for lg in legs)
        fees = -sum(lg["entry_fee"] + lg["exit_fee"] for lg in legs)
        pos_rows.append((
            pid, rule, json.dumps({"coin": coin, "venue": exs[0]}), "sha", coin,
            json.dumps({"kind": "funding", "coin": coin, "exchanges": exs}), json.dumps(legs),
            size * legs[0]["entry_price"], "closed", opened, closed,
            rng.choice(("exit when", "stop loss", None)), funding, fees, 0.0,
            -sum(lg["borrow"] for lg in legs), 0.0, closed,
        ))  # fmt: skip
        for k, lg in enumerate(legs):
            for ts, side in ((opened, "buy"), (closed, "sell")):
                fid = len(fill_rows) + 1
                order_rows.append((fid, ts, pid, lg["market"], side))
                fill_rows.append((fid, fid, pid, ts, lg["exchange"], lg["market"], side,
                                  lg["entry_price"], size, rng.uniform(0, 2), 0.0005, "ask"))  # fmt: skip
            settled = opened + H
            while settled <= closed:
                pay_rows.append((pid, lg["exchange"], settled + k, rng.uniform(-1e-3, 1e-3),
                                 lg["entry_price"], size, rng.uniform(-2, 2), coin, 8.0,
                                 "settled", "settlement"))  # fmt: skip
                settled += 8 * H
    # a few payments of a position that is not in the ledger (they still count in totals)
    pay_rows.append((10**9, "okx", times[1], 1e-4, 100.0, 1.0, 0.125, "BTC", 8.0, None, None))
    with ledger.cycle():
        con.executemany(f"insert into cycles values ({', '.join('?' * 11)})", cycle_rows)
        con.executemany(f"insert into positions values ({', '.join('?' * 18)})", pos_rows)
        con.executemany(
            "insert into orders (id, ts, position_id, intent, exchange, coin, market, side,"
            " notional, status) values (?, ?, ?, 'open', 'binance', 'BTC', ?, ?, 100, 'filled')",
            order_rows,
        )
        con.executemany(f"insert into fills values ({', '.join('?' * 12)})", fill_rows)
        con.executemany(
            "insert into funding_payments (position_id, exchange, ts, rate, mark, size, amount,"
            " coin, interval_h, rate_source, mark_source) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            pay_rows,
        )
    # the open positions, through the ledger's API, marked a cycle later than written
    t = times[-3]
    with ledger.cycle():
        for k in range(positions - closed_n):
            coin = COINS[k % len(COINS)]
            p = PaperPosition(
                id=0, rule_name=RULES[k % len(RULES)], bindings={"coin": coin}, ruleset_sha="sha",
                subject=Subject("funding", coin, ("binance", "okx")),
                legs=[
                    PaperLeg("binance", "perp", "long", False, 2.0 + k, 1000.0 + k, 0.5, 1000.0,
                             funding=0.25 * k),
                    PaperLeg("okx", "perp", "short", False, 2.0 + k, 1001.0, 0.5, 1001.0,
                             funding=0.75),
                ],
                notional=2000.0, opened_at=t,
            )  # fmt: skip
            p.id = ledger.record_opening(p, t)
        ledger.record_marks(
            {("binance", c, "perp"): 1003.5 + i for i, c in enumerate(COINS)}
            | {("okx", c, "perp"): 999.25 - i for i, c in enumerate(COINS)},
            times[-1],
        )
        ledger.record_cash("binance", 19_990.0)
    ledger.close()
    return db


PNG = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=]+")


def report_outputs(db: Path, work: Path) -> dict[str, str]:
    """What `rulebook report` prints and writes for the ledger `db`."""
    run = CliRunner().invoke
    out: dict[str, str] = {}
    res = run(app, ["report", "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    out["report.json"] = res.stdout
    text, errors = io.StringIO(), io.StringIO()
    code = report_command(
        db, 1.0, out=Console(file=text, width=100, color_system=None),
        err=Console(file=errors, width=100), as_json=False, html=None, csv_dir=None,
    )  # fmt: skip
    assert code == 0, errors.getvalue()
    out["report.txt"] = text.getvalue()
    res = run(app, ["report", "--db", str(db), "--csv", str(work / "csv"), "--html",
                    str(work / "report.html")])  # fmt: skip
    assert res.exit_code == 0, res.output
    for name in ("trades.csv", "daily_equity.csv"):
        out[name] = (work / "csv" / name).read_text(encoding="utf-8")
    html = (work / "report.html").read_text(encoding="utf-8")
    out["report.html"] = PNG.sub("data:image/png;base64,PNG", html)
    return {k: v.replace(str(db), "LEDGER") for k, v in out.items()}


def unpack(gz: Path, to: Path) -> Path:
    db = to / gz.name.removesuffix(".gz")
    with gzip.open(gz, "rb") as src, open(db, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return db


#: the positions whose `status --position N --json` is pinned, per frozen ledger of
#: tests/fixtures/report-golden/: the first, a middle and the last (synthetic's 58 is open)
STATUS_POSITIONS = {"main-job": (1, 34, 68), "synthetic": (1, 58, 60)}


def status_outputs(db: Path, positions: tuple[int, ...]) -> dict[str, str]:
    """What `rulebook status` prints for the ledger `db`: --json, the text at 100
    columns, and --position N --json for each of `positions`."""
    run = CliRunner().invoke
    out: dict[str, str] = {}
    res = run(app, ["status", "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    out["status.json"] = res.stdout
    res = run(app, ["status", "--db", str(db)], env={"COLUMNS": "100"})
    assert res.exit_code == 0, res.output
    out["status.txt"] = res.stdout
    for n in positions:
        res = run(app, ["status", "--db", str(db), "--position", str(n), "--json"])
        assert res.exit_code == 0, res.output
        out[f"position-{n}.json"] = res.stdout
    return {k: v.replace(str(db), "LEDGER") for k, v in out.items()}
