"""The typed ledger: schema versions, upgrades, the reader, and no SQL outside it."""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from pathlib import Path

import pytest
from trading_helpers import T0, T, pair_rows, paper_runtime, sql, write_jsonl
from typer.testing import CliRunner

from rulebook.cli import app
from rulebook.lang import load_texts
from rulebook.market import ReplaySource
from rulebook.trading import (
    SCHEMA_VERSION,
    FundingRecord,
    Ledger,
    LedgerError,
    LedgerReader,
    RulesetHolder,
    TradingConfig,
)

ROOT = Path(__file__).parents[1]
RULE = """
rule sol_spread:
    when spread(SOL, bybit, binance) > 0.01%
    then hedge 1000 USDT
"""


def _run(db: Path, tmp_path: Path) -> None:
    rows = pair_rows(T0, "SOL", (100.0, 0.0001), (100.2, 0.0004), T) + pair_rows(
        T, "SOL", (101.0, 0.0001), (101.1, 0.0003), T + 8 * 3_600_000
    )
    rec = write_jsonl(tmp_path / "rec.jsonl", rows)
    ledger = Ledger(db)
    rs = load_texts({"s.rules": RULE}).ruleset
    paper_runtime(RulesetHolder(rs), TradingConfig(), ledger, source="replay").run(
        ReplaySource(rec)
    )
    ledger.close()


def _as_schema_1(db: Path) -> None:
    """Turn a ledger into what schema 1 wrote: without the columns schema 2 added
    (and without the marks table of schema 3)."""
    con = sqlite3.connect(db)
    con.execute("drop table marks")
    for table, column in [
        ("orders", "client_order_id"),
        ("funding_payments", "coin"),
        ("funding_payments", "interval_h"),
        ("funding_payments", "rate_source"),
        ("funding_payments", "mark_source"),
    ]:
        con.execute(f"alter table {table} drop column {column}")
    con.execute("update meta set value = '1' where key = 'schema_version'")
    con.commit()
    con.close()


def test_the_writer_upgrades_a_schema_1_ledger_in_place(tmp_path) -> None:
    db = tmp_path / "old.db"
    _run(db, tmp_path)
    before = sql(db, "select * from funding_payments order by ts, exchange, id")
    _as_schema_1(db)
    with pytest.raises(LedgerError) as e:
        LedgerReader.open(db)
    assert str(e.value) == (
        f"{db}: ledger schema 1 is older than this rulebook's {SCHEMA_VERSION};"
        f" `rulebook status --db {db}` upgrades it in place (nothing is lost)"
    )
    ledger = Ledger(db)  # upgrades
    assert ledger.read.schema_version() == SCHEMA_VERSION == 3
    (up,) = ledger.read.events("ledger_upgraded")
    assert up.detail.startswith("ledger schema 1 upgraded to 3: added orders.client_order_id")
    assert up.detail.endswith("; marks (each held market's last mark, updated in place every cycle)")
    # the rows are all there; the new columns are empty on the old rows
    payments = ledger.read.funding_payments()
    assert [(p.exchange, p.ts, p.rate, p.amount) for p in payments] == [
        (r["exchange"], r["ts"], r["rate"], r["amount"]) for r in before
    ]
    assert {p.rate_source for p in payments} == {None}
    ledger.close()
    with LedgerReader.open(db) as read:  # and reads as a current one
        assert read.stats().funding_payments == 2


def test_a_newer_or_foreign_file_is_refused_in_one_line(tmp_path) -> None:
    db = tmp_path / "new.db"
    Ledger(db).close()
    con = sqlite3.connect(db)
    con.execute("update meta set value = '99' where key = 'schema_version'")
    con.commit()
    con.close()
    for open_ in (Ledger, LedgerReader.open):
        with pytest.raises(LedgerError, match="ledger schema 99 was written by a newer rulebook"):
            open_(db)
    res = CliRunner().invoke(app, ["status", "--db", str(db)])
    assert res.exit_code == 2
    assert "newer rulebook" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1

    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("create table notes (x text)")
    con.commit()
    con.close()
    with pytest.raises(LedgerError, match="not a rulebook ledger"):
        Ledger(other)
    # nothing was added to it
    assert sql(other, "select name from sqlite_master") == [{"name": "notes"}]


def test_funding_is_recorded_once_and_the_reader_returns_it_typed(tmp_path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    pay = FundingRecord(1, "bybit", "SOL", T, 0.0004, 101.1, 9.99, 0.404, 8.0, "settled", "settled")
    with ledger.cycle():
        assert ledger.record_funding_payment(pay) is True
        assert ledger.record_funding_payment(pay) is False  # the same settlement again
    (got,) = ledger.read.funding_payments(position_id=1)
    assert got == dataclasses.replace(pay, id=got.id)
    assert (got.rate, got.mark, got.interval_h, got.rate_source) == (0.0004, 101.1, 8.0, "settled")
    assert ledger.read.funding_payments(position_id=2) == []


def test_no_sql_or_table_name_outside_the_ledger_modules() -> None:
    ledger_modules = {"_ledger.py", "_ledger_read.py", "_live_ledger.py"}
    # calls that run SQL, and string literals that start with a SQL statement
    sql_like = re.compile(
        r"\.execute(?:many|script)?\(|\bdb\.table\(|db\[|\.query\(|[\"'](select|insert|update|delete|create|alter"
        r"|drop|pragma)\s|[\"'](SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|PRAGMA)\s"
    )
    tables = ("cycles", "opportunities", "positions", "orders", "fills", "funding_payments",
              "borrow_charges", "balances", "events", "halt_requests", "rulesets", "meta")  # fmt: skip
    table_in_sql = re.compile(
        r"\b(select .* from|insert into|delete from|update)\s+(" + "|".join(tables) + r")\b", re.I
    )
    offenders = []
    for path in (ROOT / "rulebook").rglob("*.py"):
        if path.parent.name == "trading" and path.name in ledger_modules:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if sql_like.search(line) or table_in_sql.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == []
