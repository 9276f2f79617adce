"""Issue 14: a property test over hostile snapshot lines.

Arbitrary JSON values in every field of a recording's lines, replayed by
`rulebook run --paper`: each line is skipped or accepted, the run never ends
in a traceback, and nothing non-finite reaches the ledger or `status --json`.
Example counts stay modest (the suite runs in minutes for everyone); set
HYPOTHESIS_PROFILE=deep for a longer search.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rulebook.cli import app

# each example is a whole `run`: modest by default, more under the conftest's "deep" profile
EXAMPLES = 300 if os.environ.get("HYPOTHESIS_PROFILE") == "deep" else 25

T0 = 1753112400000
RULES = (
    "rule carry: for x in [binance, bybit, okx]\n"
    "    when funding(SOL, x) > 0% then hedge 100 USDT\n"
    "    exit when held > 2h\n"
)
FIELDS = (
    "ts", "exchange", "coin", "market", "symbol", "funding_rate", "funding_interval_h",
    "next_funding_ts", "mark", "index", "bid", "ask", "volume_24h", "taker_fee",
    "borrow_rate_daily",
)  # fmt: skip

# any JSON value: what a broken or hostile writer may put in a field
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.integers(min_value=10**300, max_value=10**310)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0.0, -0.0, 1e-300, 1e300, 1.7e308, 5e-324, 1e12, 1e-12])
    | st.text(max_size=20)
    | st.sampled_from(["perp", "spot", "borrow", "settlement", "binance", "SOL", "100.5", "NaN"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def _good(ts: int, exchange: str, market: str) -> dict[str, Any]:
    if market == "perp":
        return {"ts": ts, "exchange": exchange, "coin": "SOL", "market": "perp",
                "funding_rate": 0.0005, "funding_interval_h": 8, "next_funding_ts": ts + 3_600_000,
                "mark": 150.0, "index": 150.0, "bid": 149.9, "ask": 150.1}  # fmt: skip
    if market == "spot":
        return {"ts": ts, "exchange": exchange, "coin": "SOL", "market": "spot",
                "bid": 149.8, "ask": 150.0}  # fmt: skip
    return {"ts": ts, "exchange": exchange, "coin": "SOL", "market": "settlement",
            "funding_rate": 0.0005, "funding_interval_h": 8, "mark": 150.0}  # fmt: skip


@st.composite
def hostile_lines(draw: st.DrawFn) -> list[str]:
    """A small recording: good lines, some with one or more fields replaced by any JSON."""
    lines: list[str] = []
    for i in range(draw(st.integers(2, 5))):
        ts = T0 + i * 3_600_000
        for exchange in ("binance", "bybit", "okx"):
            for market in ("perp", "spot", "settlement"):
                if market == "settlement" and i == 0:
                    continue
                line = _good(ts, exchange, market)
                if draw(st.integers(0, 5)) == 0:
                    for field in draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3)):
                        line[field] = draw(json_values)
                lines.append(json.dumps(line, allow_nan=True))  # NaN/Infinity: not JSON
        if draw(st.integers(0, 8)) == 0:
            lines.append(draw(st.sampled_from(["[" * 70_000, '{"ts": 1' + "0" * 5000, "\x00\xff"])))
    return lines


def _non_finite_cells(db: Path) -> list[tuple[str, str, object]]:
    bad = []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            cur = conn.execute(f"select * from {table}")
            names = [d[0] for d in cur.description]
            for row in cur.fetchall():
                for name, cell in zip(names, row, strict=True):
                    if isinstance(cell, float) and not math.isfinite(cell):
                        bad.append((table, name, cell))
                    if isinstance(cell, str) and ("NaN" in cell or "Infinity" in cell) and table != "rulesets":
                        try:
                            json.loads(cell, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
                        except ValueError:
                            bad.append((table, name, cell[:80]))
    return bad


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_lines())
def test_hostile_lines_are_skipped_or_accepted_never_a_traceback_never_non_finite(lines):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "r.rules").write_text(RULES)
        rec = root / "rec.jsonl"
        rec.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
        db = root / "p.db"
        runner = CliRunner()
        res = runner.invoke(
            app,
            ["run", str(root / "r.rules"), "--paper", "--replay", str(rec), "--db", str(db),
             "--no-watch"],
        )  # fmt: skip
        assert res.exception is None or isinstance(res.exception, SystemExit), res.output
        assert res.exit_code == 0, res.output
        assert "Traceback" not in res.output
        assert _non_finite_cells(db) == []
        status = runner.invoke(app, ["status", "--db", str(db), "--json"])
        assert status.exit_code == 0, status.output
        json.loads(status.stdout, parse_constant=lambda c: (_ for _ in ()).throw(AssertionError(c)))
        dry = runner.invoke(app, ["dry-run", str(root / "r.rules"), "--snapshot", str(rec), "--json"])
        assert dry.exception is None or isinstance(dry.exception, SystemExit), dry.output
        if dry.exit_code == 0:
            json.loads(dry.stdout, parse_constant=lambda c: (_ for _ in ()).throw(AssertionError(c)))


def test_the_recording_without_hostile_values_trades():
    """The property's base recording opens positions and pays funding: the property
    test exercises fills, marks and payments, not an idle run."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "r.rules").write_text(RULES)
        lines = [
            json.dumps(_good(T0 + i * 3_600_000, ex, m))
            for i in range(4)
            for ex in ("binance", "bybit", "okx")
            for m in ("perp", "spot", "settlement")
            if not (m == "settlement" and i == 0)
        ]
        rec = root / "rec.jsonl"
        rec.write_text("\n".join(lines) + "\n")
        db = root / "p.db"
        res = CliRunner().invoke(
            app,
            ["run", str(root / "r.rules"), "--paper", "--replay", str(rec), "--db", str(db),
             "--no-watch"],
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        with sqlite3.connect(db) as conn:
            assert conn.execute("select count(*) from positions").fetchone()[0] >= 3
            assert conn.execute("select count(*) from fills").fetchone()[0] >= 6
            assert conn.execute("select count(*) from funding_payments").fetchone()[0] >= 3
