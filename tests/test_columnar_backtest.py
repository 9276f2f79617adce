"""A backtest from a Parquet history gives the report a JSONL history gives, and
`history import` writes Parquet when the output is named .parquet."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rulebook.cli import app
from rulebook.history import read_history
from rulebook.market import convert, iter_parquet, write_columnar

pytest.importorskip("pyarrow")

ROOT = Path(__file__).resolve().parents[1]
AHA = ROOT / "examples" / "history" / "binance-bybit-okx-btc-eth-2023-2024.jsonl.gz"
SUPERVIK = ROOT / "tests" / "fixtures" / "funding-history" / "supervik"
runner = CliRunner()


def _report(data: Path, tmp: Path) -> dict:
    res = runner.invoke(
        app,
        ["backtest", str(ROOT / "strategies"), "--data", str(data), "--from", "2024-01-01",
         "--to", "2024-04-30", "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_a_backtest_from_parquet_gives_the_same_report(tmp_path: Path) -> None:
    pq = tmp_path / "aha.parquet"
    convert(AHA, pq)
    from_jsonl, from_parquet = _report(AHA, tmp_path), _report(pq, tmp_path)
    assert from_jsonl["totals"]["trades"] > 5
    for part in ("totals", "by_rule", "by_coin", "by_venue", "equity"):
        if part in from_jsonl:
            assert from_parquet[part] == from_jsonl[part], part
    # everything but the names of the data files
    strip = lambda r: json.loads(json.dumps(r).replace(str(pq), "DATA").replace(str(AHA), "DATA"))  # noqa: E731
    assert strip(from_parquet) == strip(from_jsonl)


def test_read_history_gives_the_same_series_and_problems(tmp_path: Path) -> None:
    with gzip.open(AHA, "rt") as fh:
        lines = [json.loads(x) for x in fh]
    lines.insert(5, {"ts": lines[0]["ts"], "exchange": "okx", "coin": "BTC",
                     "market": "settlement", "funding_rate": 0.0001})  # no interval  # fmt: skip
    lines.insert(9, {**lines[9], "mark": -1.0, "market": "perp"})  # a bad value
    lines.insert(12, {**lines[12], "market": "perp", "funding_rate": 0.0001, "mark": 1.0})
    src, pq = tmp_path / "h.jsonl", tmp_path / "h.parquet"
    src.write_text("".join(json.dumps(r) + "\n" for r in lines))
    write_columnar(pq, lines)  # written as given: the reader checks
    a, errs_a = read_history([src])
    b, errs_b = read_history([pq])
    assert [(e.line, e.severity) for e in errs_a] == [(6, "error"), (10, "error"), (13, "warning")]
    assert [(e.line, e.severity, e.message) for e in errs_b] == [
        (e.line, e.severity, e.message) for e in errs_a
    ]
    assert a.settlements.keys() == b.settlements.keys() and a.prices.keys() == b.prices.keys()
    for k, s in a.settlements.items():
        for name in ("ts", "rate", "interval_h", "mark"):
            assert np.array_equal(getattr(s, name), getattr(b.settlements[k], name), equal_nan=True)
    for k, p in a.prices.items():
        for name in ("ts", "price", "index", "volume"):
            assert np.array_equal(getattr(p, name), getattr(b.prices[k], name), equal_nan=True)


def test_history_import_writes_parquet_by_the_output_suffix(tmp_path: Path) -> None:
    jl, pq = tmp_path / "h.jsonl", tmp_path / "h.parquet"
    for out in (jl, pq):
        res = runner.invoke(app, ["history", "import", str(SUPERVIK), "-o", str(out)])
        assert res.exit_code == 0, res.output
    assert pq.read_bytes()[:4] == b"PAR1"
    back = tmp_path / "back.jsonl"
    convert(pq, back)
    assert back.read_bytes() == jl.read_bytes()  # the same records, byte for byte
    assert sum(1 for _, r, _ in iter_parquet(pq) if r is not None) == len(jl.read_text().splitlines())
