"""Issue 14: the ledger side. Read-only files, a full disk, foreign and damaged
ledgers each give one line naming the file and what to do (attack 7); nothing
non-finite reaches the ledger (enforced at its boundary, attack 2); an
implausible price is rejected for the cycle, and no fill, mark or payment is
made at it; events carry no secret.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rulebook.cli import app
from rulebook.trading import Ledger, LedgerError, LedgerReader

T0 = 1753112400000
HOUR = 3_600_000
RULES = "when funding(SOL, binance) > 0% then hedge 100 USDT\n"
runner = CliRunner()


def _perp(ts: int, mark: float, ex: str = "binance") -> dict[str, object]:
    return {"ts": ts, "exchange": ex, "coin": "SOL", "market": "perp", "funding_rate": 0.001,
            "funding_interval_h": 8, "next_funding_ts": ts + HOUR, "mark": mark, "index": mark}  # fmt: skip


def _spot(ts: int, price: float, ex: str = "binance") -> dict[str, object]:
    return {"ts": ts, "exchange": ex, "coin": "SOL", "market": "spot", "bid": price, "ask": price}


def _recording(path: Path, lines: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def _run(root: Path, rec: Path, db: Path, rules: str = RULES, **kw: object):
    (root / "r.rules").write_text(rules)
    args = ["run", str(root / "r.rules"), "--paper", "--replay", str(rec), "--db", str(db), "--no-watch"]
    return runner.invoke(app, args, **kw)  # type: ignore[arg-type]


def _one_line_error(res, db: Path) -> str:
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert res.exit_code != 0
    text = res.stderr.strip()
    assert "Traceback" not in text
    last = text.splitlines()[-1]
    assert last.startswith("error: ") and str(db) in last
    return last


# -- foreign and damaged ledgers (attack 7) ------------------------------------------


def test_an_unrelated_sqlite_file_is_refused_and_left_exactly_as_it_was(tmp_path: Path):
    db = tmp_path / "music.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table tracks (id integer primary key, title text)")
        conn.execute("insert into tracks (title) values ('So What')")
    before = db.read_bytes()
    rec = _recording(tmp_path / "rec.jsonl", [_perp(T0, 150.0), _spot(T0, 150.0)])
    for res in (
        _run(tmp_path, rec, db),
        runner.invoke(app, ["status", "--db", str(db)]),
        runner.invoke(app, ["halt", "--db", str(db)]),
    ):
        line = _one_line_error(res, db)
        assert "not a rulebook ledger" in line and "--db" in line
    assert db.read_bytes() == before  # rulebook never writes into a file that is not its ledger
    with sqlite3.connect(db) as conn:
        assert [r[0] for r in conn.execute("select name from sqlite_master")] == ["tracks"]


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path):
    db = tmp_path / "notes.db"
    db.write_text("my notes, not a database\n" * 100)
    before = db.read_bytes()
    rec = _recording(tmp_path / "rec.jsonl", [_perp(T0, 150.0)])
    line = _one_line_error(_run(tmp_path, rec, db), db)
    assert "not a SQLite file" in line
    assert db.read_bytes() == before


@pytest.mark.parametrize("version", ["abc", "", "2.5x", None])
def test_a_schema_version_that_is_not_a_number_is_one_line(tmp_path: Path, version):
    db = tmp_path / "paper.db"
    rec = _recording(tmp_path / "rec.jsonl", [_perp(T0, 150.0), _spot(T0, 150.0)])
    assert _run(tmp_path, rec, db).exit_code == 0
    with sqlite3.connect(db) as conn:
        conn.execute("update meta set value = ? where key = 'schema_version'", [version])
    for res in (_run(tmp_path, rec, db), runner.invoke(app, ["status", "--db", str(db)])):
        line = _one_line_error(res, db)
        assert "schema version" in line


def test_a_newer_schema_is_refused_with_what_to_do(tmp_path: Path):
    db = tmp_path / "paper.db"
    rec = _recording(tmp_path / "rec.jsonl", [_perp(T0, 150.0)])
    assert _run(tmp_path, rec, db).exit_code == 0
    with sqlite3.connect(db) as conn:
        conn.execute("update meta set value = '999' where key = 'schema_version'")
    line = _one_line_error(_run(tmp_path, rec, db), db)
    assert "newer rulebook" in line and "upgrade" in line


def test_a_damaged_ledger_is_one_line(tmp_path: Path):
    db = tmp_path / "paper.db"
    rec = _recording(tmp_path / "rec.jsonl", [_perp(T0, 150.0), _spot(T0, 150.0)])
    assert _run(tmp_path, rec, db).exit_code == 0
    data = bytearray(db.read_bytes())
    data[100:4000] = b"\xab" * 3900  # the schema page, overwritten
    db.write_bytes(bytes(data))
    for f in (tmp_path / "paper.db-wal", tmp_path / "paper.db-shm"):
        f.unlink(missing_ok=True)
    line = _one_line_error(_run(tmp_path, rec, db), db)
    assert "damaged" in line or "not a SQLite file" in line


# -- read-only and full disk: real file systems, in a subprocess (attack 7) -----------


def _without_root(cmd: list[str]) -> list[str]:
    """The command without root's right to write anything (root ignores file modes):
    every capability dropped, so file modes apply as to any user."""
    if os.geteuid() != 0:
        return cmd
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a read-only file cannot be made")
    return [setpriv, "--inh-caps=-all", "--bounding-set=-all", "--reuid=0", *cmd]


@pytest.fixture
def shared_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory made read-only by the test; writable again for the clean-up."""
    d = tmp_path / "ro"
    d.mkdir()
    yield d
    for p in [d, *d.iterdir()]:
        p.chmod(0o755 if p.is_dir() else 0o644)


def _cli(*args: str, read_only: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "from rulebook.cli import main; main()", *args]
    return subprocess.run(
        _without_root(cmd) if read_only else cmd, capture_output=True, text=True, timeout=120
    )


def test_a_read_only_ledger_is_one_line_and_keeps_every_row(shared_dir: Path):
    rec = _recording(shared_dir / "rec.jsonl", [_perp(T0, 150.0), _spot(T0, 150.0)])
    (shared_dir / "r.rules").write_text(RULES)
    db = shared_dir / "paper.db"
    first = _cli("run", str(shared_dir / "r.rules"), "--paper", "--replay", str(rec), "--db", str(db), "--no-watch")
    assert first.returncode == 0, first.stderr
    with sqlite3.connect(db) as conn:
        conn.execute("pragma wal_checkpoint(truncate)")
        before = conn.execute("select count(*) from cycles").fetchone()[0]
    for p in shared_dir.iterdir():
        p.chmod(0o444 if p.is_file() else 0o555)
    (shared_dir / "paper.db.lock").chmod(0o666)  # the lock file may be taken; the ledger not
    rec2 = shared_dir / "rec.jsonl"
    res = _cli(
        "run", str(shared_dir / "r.rules"), "--paper", "--replay", str(rec2), "--db", str(db),
        "--no-watch", read_only=True,
    )  # fmt: skip
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(db) in last
    assert "read-only" in last or "cannot be opened" in last
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        assert conn.execute("select count(*) from cycles").fetchone()[0] == before


_FULL_DISK = r"""
import resource, sys
from rulebook.cli import main
limit = int(sys.argv.pop(1))
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # writes past this fail: a full disk
sys.argv[0] = "rulebook"
main()
"""


def test_a_full_disk_stops_the_run_with_one_line_and_loses_nothing(tmp_path: Path):
    (tmp_path / "r.rules").write_text(
        "rule r: for x in [binance, bybit, okx]\n"
        "    when funding(SOL, x) > 0% then hedge 100 USDT\n    exit when held > 1h\n"
    )
    lines = []
    for i in range(400):
        for ex in ("binance", "bybit", "okx"):
            lines += [_perp(T0 + i * HOUR, 150.0 + i % 3, ex), _spot(T0 + i * HOUR, 150.0, ex)]
    rec = _recording(tmp_path / "rec.jsonl", lines[:60])
    db = tmp_path / "paper.db"
    args = ["run", str(tmp_path / "r.rules"), "--paper", "--replay", str(rec), "--db", str(db), "--no-watch"]
    assert _cli(*args).returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute("pragma wal_checkpoint(truncate)")
        before = conn.execute("select count(*) from cycles").fetchone()[0]
    size = db.stat().st_size
    _recording(rec, lines)  # many more cycles: the ledger must grow
    res = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(size + 8192), *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode != 0
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and str(db) in errors[0] and "disk may be full" in errors[0]
    with sqlite3.connect(db) as conn:
        after = conn.execute("select count(*) from cycles").fetchone()[0]
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert after >= before  # every complete cycle is kept


# -- the boundary: nothing non-finite (attack 2) ------------------------------------------


def test_the_ledger_refuses_a_non_finite_number(tmp_path: Path):
    ledger = Ledger(tmp_path / "x.db")
    for bad in (math.inf, -math.inf, math.nan):
        with pytest.raises(LedgerError, match="only finite numbers"):
            with ledger.cycle():
                ledger.record_account("binance", 100.0)
                ledger.record_cash("binance", bad)
    assert ledger.balances() == {}  # each refused transaction rolled back whole
    ledger.record_event("error", {"x": math.inf})  # JSON: an undefined figure is null
    ledger.close()
    with LedgerReader.open(tmp_path / "x.db") as read:
        assert [e.detail for e in read.events(kind="error")] == ['{"x": null}']


def test_1e300_prices_and_a_tiny_interval_never_reach_the_ledger(tmp_path: Path):
    # attack 2: the exit filled at 1e300 and cash became 9.99e299; 1.7e308 made equity inf;
    # funding_interval_h 1e-300 gave an edge of 4e297 that opened
    lines = [_perp(T0, 150.0), _spot(T0, 150.0),
             _perp(T0 + HOUR, 150.0), _spot(T0 + HOUR, 1e300),
             _perp(T0 + 2 * HOUR, 1.7e308), _spot(T0 + 2 * HOUR, 150.0),
             {**_perp(T0 + 3 * HOUR, 150.0, "bybit"), "funding_interval_h": 1e-300}]  # fmt: skip
    rec = _recording(tmp_path / "rec.jsonl", lines)
    db = tmp_path / "p.db"
    res = _run(tmp_path, rec, db, "when funding(SOL, binance) > 0% then hedge 100 USDT\n"
               "when funding(SOL, bybit) > 0% then hedge 100 USDT\n")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "3 invalid line(s)" in res.stderr
    with LedgerReader.open(db) as read:
        stats = read.stats()
        assert all(math.isfinite(v) for v in (stats.cash, stats.cumulative_profit, stats.exposure))
        assert max(f.price for f in read.fills()) < 1000
        assert [p.coin for p in read.positions()] == ["SOL"]  # bybit's line never opened


# -- price plausibility in the runtime ---------------------------------------------------


def test_a_price_jump_is_rejected_for_the_cycle_with_an_event_and_no_trade_at_it(tmp_path: Path):
    rules = (
        "rule carry: when funding(SOL, binance) > 0% then hedge 100 USDT\n"
        "    exit when held > 1h\n"
    )
    lines = [_perp(T0, 150.0), _spot(T0, 150.0),
             _perp(T0 + HOUR, 150.0), _spot(T0 + HOUR, 15000.0),  # a unit error on the spot
             _perp(T0 + 2 * HOUR, 151.0), _spot(T0 + 2 * HOUR, 151.0)]  # fmt: skip
    rec = _recording(tmp_path / "rec.jsonl", lines)
    db = tmp_path / "p.db"
    res = _run(tmp_path, rec, db, rules)
    assert res.exit_code == 0, res.output
    with LedgerReader.open(db) as read:
        events = [e for e in read.events() if e.kind == "price_rejected"]
        assert len(events) == 1
        assert "binance SOL spot" in events[0].detail and "15000" in events[0].detail
        assert events[0].ts == T0 + HOUR
        prices = [f.price for f in read.fills()]
        assert prices and max(prices) < 200  # no fill at 15,000
        for p in read.positions():
            for leg in p.legs:
                assert leg.mark is None or leg.mark < 200  # no mark at 15,000


def test_the_band_comes_from_the_configuration(tmp_path: Path):
    lines = [_perp(T0, 150.0), _spot(T0, 150.0), _perp(T0 + HOUR, 150.0), _spot(T0 + HOUR, 160.0)]
    rec = _recording(tmp_path / "rec.jsonl", lines)
    cfg = tmp_path / "rulebook.toml"
    cfg.write_text("[price_band]\njump = 0.05\n")
    (tmp_path / "r.rules").write_text(RULES)
    db = tmp_path / "p.db"
    res = runner.invoke(app, ["run", str(tmp_path / "r.rules"), "--paper", "--replay", str(rec),
                              "--db", str(db), "--config", str(cfg), "--no-watch"])  # fmt: skip
    assert res.exit_code == 0, res.output
    with LedgerReader.open(db) as read:
        assert [e.kind for e in read.events()].count("price_rejected") == 1


# -- events carry no secret ------------------------------------------------------------------


def test_an_event_is_masked_at_the_ledger_boundary(tmp_path: Path):
    ledger = Ledger(tmp_path / "x.db")
    ledger.record_event("outage", "okx unreachable: GET https://okx.com/api?apiKey=S3CR3T failed")
    ledger.close()
    with LedgerReader.open(tmp_path / "x.db") as read:
        [event] = [e for e in read.events() if e.kind == "outage"]
    assert "S3CR3T" not in event.detail and "apiKey=***" in event.detail


def test_the_live_tables_refuse_a_non_finite_number_from_an_exchange(tmp_path: Path):
    from rulebook.trading import LiveLedger

    ledger = Ledger(tmp_path / "live.db")
    live = LiveLedger(ledger)
    with pytest.raises(LedgerError, match="only finite numbers"):
        live.record_exchange_funding(
            exchange="binance", symbol="SOL/USDT:USDT", ts=T0, amount=math.nan,
            currency="USDT", ref="x", position_id=None,
        )  # fmt: skip
    with pytest.raises(LedgerError, match="only finite numbers"):
        live.write_intent(
            position_id=1, leg=0, intent="open", attempt=1, client_id="c1", exchange="binance",
            symbol="SOL/USDT:USDT", market="perp", side="sell", amount=100.0, qty=math.inf,
            reduce_only=False, limit_price=None,
        )  # fmt: skip
    ledger.close()
