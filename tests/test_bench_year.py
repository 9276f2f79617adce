"""The year benchmark's two sides make the same decisions, so its ratio compares like with like.

benchmarks/year_reference.py re-implements benchmarks/year.rules with orjson
and numpy; this runs it and `rulebook run --paper --replay` (over the JSONL
recording and over its Parquet form) on three days of the benchmark's
synthetic recording and checks that they open and close the
same positions at the same cycles with the same fees and the same funding
(the reference computes each position's funding under the settlement rule),
and that the reference's constants are rulebook's own (fees, the rule's coins)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).parents[1]
BENCH = ROOT / "benchmarks"


def _module(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _module("bench_year")


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    return _module("year_reference")


def test_reference_constants_are_rulebooks(reference: ModuleType) -> None:
    from rulebook.lang import load_ruleset
    from rulebook.market import DEFAULT_TAKER_FEES, EXCHANGES

    assert tuple(reference.EXCHANGES) == tuple(EXCHANGES)
    assert list(reference.PERP_FEE) == [DEFAULT_TAKER_FEES[e]["perp"] for e in EXCHANGES]
    assert list(reference.SPOT_FEE) == [DEFAULT_TAKER_FEES[e]["spot"] for e in EXCHANGES]
    rs = load_ruleset([BENCH / "year.rules"]).ruleset
    assert rs is not None
    spread, carry = rs.rules
    assert rs.risk.max_open_positions == reference.MAX_OPEN
    # the bindings in the ruleset's order, as the reference enumerates them
    assert [b.values for b in spread.bindings] == [
        (reference.COINS[c], reference.EXCHANGES[a], reference.EXCHANGES[b])
        for c, a, b in zip(reference.S_C, reference.S_A, reference.S_B, strict=True)
    ]
    assert [b.values for b in carry.bindings] == [
        (reference.COINS[c], reference.EXCHANGES[e])
        for c, e in zip(reference.K_C, reference.K_E, strict=True)
    ]


def test_both_sides_open_and_close_the_same_positions(
    bench: ModuleType, tmp_path: Path
) -> None:
    data = tmp_path / "three-days.jsonl"
    bench.generate(data, 72, 50)
    db, out = tmp_path / "year.db", tmp_path / "reference.json"
    subprocess.run(bench.rulebook_command(data, db), check=True, capture_output=True, cwd=ROOT)
    subprocess.run(bench.reference_command(data, out), check=True, capture_output=True, cwd=ROOT)
    ours, theirs = bench.ledger_positions(db), bench.reference_positions(out)
    # the rules trade in three days: both families open, close, and the limit binds
    assert len(ours) > 40
    assert {k[0] for k in ours} == {"year_spread", "year_carry"}
    assert sum(1 for k in ours if k[3] is not None) > 20
    # funding is paid: most positions see a settlement (Backpack settles hourly)
    assert sum(1 for m in ours.values() if m.funding != 0.0) > len(ours) // 2
    assert bench.disagreements(ours, theirs) == []
    # and over the recording's Parquet form, as the benchmark's other side replays it
    parquet, db2 = tmp_path / "three-days.parquet", tmp_path / "year-parquet.db"
    exe = bench.rulebook_command(data, db)[0]
    subprocess.run([exe, "convert", str(data), str(parquet)], check=True, capture_output=True)
    subprocess.run(bench.rulebook_command(parquet, db2), check=True, capture_output=True, cwd=ROOT)
    assert bench.disagreements(bench.ledger_positions(db2), theirs) == []


def test_disagreements_are_reported(bench: ModuleType) -> None:
    money = bench.Money
    a = {("r", (("coin", "BTC"),), 1, None): money(1.0, 0.5)}
    b = {("r", (("coin", "BTC"),), 1, 2): money(1.0, 0.5)}
    assert len(bench.disagreements(a, b)) == 2
    c = {("r", (("coin", "BTC"),), 1, None): money(1.0 + 1e-6, 0.5)}
    assert bench.disagreements(a, c) == [
        "fees differ for ('r', (('coin', 'BTC'),), 1, None): 1.0 against 1.000001"
    ]
    d = {("r", (("coin", "BTC"),), 1, None): money(1.0, 0.5 + 1e-6)}
    assert bench.disagreements(a, d) == [
        "funding differs for ('r', (('coin', 'BTC'),), 1, None): 0.5 against 0.500001"
    ]
    e = {("r", (("coin", "BTC"),), 1, None): money(1.0, float("nan"))}
    assert len(bench.disagreements(a, e)) == 1  # a NaN is a difference, never a match
