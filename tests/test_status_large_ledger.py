"""`rulebook status` on a long ledger: SQL aggregates, memory that does not grow with it.

The ledgers are synthetic (made here): N closed positions, each with its four
fills and three funding payments, written in bulk into a ledger the writer made,
and one open position written through the ledger's own API with its marks. Every
amount is a multiple of a power of two, so the hand sums are exact.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from report_peak import peak as _peak
from rich.console import Console

from rulebook import _json
from rulebook.app import ledger_status, position_status, print_status, status_json
from rulebook.lang import Subject
from rulebook.trading import Ledger, PaperLeg, PaperPosition

H = 3_600_000
T = 1_753_113_600_000


def _funding(i: int) -> float:
    return (i % 7) / 64  # three payments of a third each: (i % 7) / 192 is not exact


def _price(i: int) -> float:
    return ((i % 11) - 5) / 128


FEES = -0.25
INITIAL = 1_000_000.0


def _build(db: Path, n: int) -> dict[str, float]:
    """A ledger with `n` closed positions and one open one; returns the hand figures."""
    ledger = Ledger(db)
    ledger.record_account("binance", INITIAL)
    con = ledger._db.conn
    legs = json.dumps([
        {"exchange": "binance", "market": "spot", "side": "long", "size": 1.0,
         "entry_price": 100.0, "mark": 100.0, "exit_price": 100.5},
        {"exchange": "binance", "market": "perp", "side": "short", "size": 1.0,
         "entry_price": 100.0, "mark": 100.0, "exit_price": 100.5},
    ])  # fmt: skip
    positions, fills, payments = [], [], []
    for i in range(1, n + 1):
        t = T + i * H
        pnl = _funding(i) + FEES + _price(i)
        positions.append((
            i, "hold", '{"coin": "SOL"}', "sha", "SOL",
            '{"kind": "funding", "coin": "SOL", "exchanges": ["binance"]}', legs, 100.0,
            "closed", t, t + H, "exit when", _funding(i), FEES, _price(i), 0.0, pnl, t + H,
        ))  # fmt: skip
        for k, (ts, market, side) in enumerate([(t, "spot", "buy"), (t, "perp", "sell"),
                                                 (t + H, "spot", "sell"), (t + H, "perp", "buy")]):
            fills.append((4 * i + k, 4 * i + k, i, ts, "binance", market, side, 100.0, 1.0,
                          0.0625, 0.000625, "ask"))  # fmt: skip
        for k in range(3):
            amount = _funding(i) if k == 0 else 0.0
            payments.append((i, "binance", t + k * 60_000, 0.0001, 100.0, 1.0, amount, "SOL",
                             8.0, "settled", "settlement"))  # fmt: skip
    with ledger.cycle():
        con.executemany(f"insert into positions values ({', '.join('?' * 18)})", positions)
        con.executemany(
            "insert into orders (id, ts, position_id, intent, exchange, coin, market, side,"
            " notional, status) values (?, ?, ?, 'open', 'binance', 'SOL', ?, ?, 100, 'filled')",
            [(f[0], f[3], f[2], f[5], f[6]) for f in fills],
        )
        con.executemany(f"insert into fills values ({', '.join('?' * 12)})", fills)
        con.executemany(
            "insert into funding_payments (position_id, exchange, ts, rate, mark, size, amount,"
            " coin, interval_h, rate_source, mark_source) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            payments,
        )
    # the open position, through the ledger's API, then marked a cycle later
    t = T + (n + 2) * H
    p = PaperPosition(
        id=0, rule_name="hold", bindings={"coin": "ETH"}, ruleset_sha="sha",
        subject=Subject("funding", "ETH", ("binance",)),
        legs=[
            PaperLeg("binance", "spot", "long", False, 2.0, 1000.0, 0.5, 1000.0, funding=0.0),
            PaperLeg("binance", "perp", "short", False, 2.0, 1000.0, 0.5, 1000.0, funding=0.75),
        ],
        notional=2000.0, opened_at=t,
    )  # fmt: skip
    with ledger.cycle():
        p.id = ledger.record_opening(p, t)
        ledger.record_marks({("binance", "ETH", "spot"): 1001.0,
                             ("binance", "ETH", "perp"): 1000.5}, t + H)  # fmt: skip
        ledger.record_cash("binance", INITIAL - 1.0)
    ledger.close()
    realised = sum(_funding(i) + FEES + _price(i) for i in range(1, n + 1))
    # open: funding 0.75, fees -(0.5 + 0.5), price 2 x (1001 - 1000) - 2 x (1000.5 - 1000)
    open_price = 2.0 * 1.0 - 2.0 * 0.5
    unrealised = 0.75 - 1.0 + open_price
    return {
        "positions_opened": n + 1,
        "positions_closed": n,
        "active_positions": 1,
        "trades_executed": 4 * n,
        "funding_payments": 3 * n,
        "funding": sum(_funding(i) for i in range(1, n + 1)) + 0.75,
        "fees": FEES * n - 1.0,
        "price": sum(_price(i) for i in range(1, n + 1)) + open_price,
        "borrow": 0.0,
        "realised_pnl": realised,
        "unrealised_pnl": unrealised,
        "cumulative_profit": realised + unrealised,
        "initial_balance": INITIAL,
        "cash": INITIAL - 1.0,
        "exposure": 2000.0,
    }


@pytest.fixture(scope="module")
def ledgers(tmp_path_factory) -> dict[int, tuple[Path, dict[str, float]]]:
    out = {}
    for n in (500, 5_000, 50_000):
        db = tmp_path_factory.mktemp(f"n{n}") / "paper.db"
        out[n] = (db, _build(db, n))
    return out


def _status_text(db: Path) -> str:
    ledger = Ledger(db)
    buf = io.StringIO()
    print_status(Console(file=buf, width=200, color_system=None), ledger_status(ledger))
    ledger.close()
    return buf.getvalue()


def _status_json_length(db: Path) -> int:
    ledger = Ledger(db)
    n = sum(len(chunk) for chunk in status_json(ledger))
    ledger.close()
    return n


@pytest.mark.parametrize("n", [5_000, 50_000])
def test_the_figures_are_the_hand_sums(ledgers, n) -> None:
    db, want = ledgers[n]
    ledger = Ledger(db)
    data = ledger_status(ledger)
    stats = data["stats"]
    for key, value in want.items():
        assert stats[key] == value, key  # exact: every amount is a sum of binary fractions
    # every open position and the latest 20 closed ones; the rest are counted
    assert [p["id"] for p in data["positions"]] == [*range(n - 19, n + 1), n + 1]
    assert data["closed_omitted"] == n - 20
    (held,) = [p for p in data["positions"] if p["status"] == "open"]
    assert held["pnl"] == want["unrealised_pnl"] and held["pnl_price"] == 1.0
    assert data["venues"][0]["long"] == 2.0 * 1001.0 and data["venues"][0]["short"] == 2001.0
    one = position_status(ledger, 17)
    assert one is not None and one["pnl_funding"] == _funding(17)
    assert [f["amount"] for f in one["funding_payments"]] == [_funding(17), 0.0, 0.0]
    assert position_status(ledger, n + 5) is None
    ledger.close()
    text = _status_text(db)
    assert f"... and {n - 20} older closed positions" in text
    assert f"{n + 1} positions opened, {n} closed" in text


def test_status_json_streams_what_one_dump_would_write(ledgers) -> None:
    db, _ = ledgers[500]
    ledger = Ledger(db)
    whole = ledger_status(ledger, closed=None)
    del whole["closed_omitted"]
    streamed = "".join(status_json(ledger))
    ledger.close()
    assert streamed == _json.dumps(whole, indent=2)
    assert len(json.loads(streamed)["positions"]) == 501


def test_status_memory_does_not_grow_with_the_ledger(ledgers) -> None:
    # ten times the positions, fills and payments: the same peak, within noise
    # each measured after one unmeasured run (the imports and caches of a first call,
    # which other tests may or may not have paid already), the collector off
    small, large = ledgers[5_000][0], ledgers[50_000][0]
    _status_text(small)
    text = [_peak(lambda db=db: _status_text(db)) for db in (small, large)]
    assert text[1] < text[0] * 1.2 + 100_000, text
    # --json writes every position (a position at a time): the JSON encoder under
    # tracemalloc is slow, so the same ten times on smaller ledgers
    small, large = ledgers[500][0], ledgers[5_000][0]
    _status_json_length(small)
    streamed = [_peak(lambda db=db: _status_json_length(db)) for db in (small, large)]
    assert streamed[1] < streamed[0] * 1.2 + 100_000, streamed
    assert max(*text, *streamed) < 8_000_000, (text, streamed)
