"""The README's main job gives the ledger figures it gave before the seams (to 1e-9).

Pinned: cycles, opportunities, positions with their legs and pnl parts, fills,
funding payments and profit, from `rulebook status --json` of the job
(tests/fixtures/readme-main-job/, measured on main before the redesign).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rulebook.cli import app
from rulebook.trading import LedgerReader

ROOT = Path(__file__).parents[1]
RECORDING = ROOT / "examples" / "binance-bybit-okx-btc-eth-2023-2024.jsonl"
EXPECTED = json.loads((ROOT / "tests/fixtures/readme-main-job/status.json").read_text())


def _same(got: object, want: object, where: str) -> None:
    if isinstance(want, dict):
        # every figure of then is there (later work may add fields beside them)
        assert isinstance(got, dict) and set(want) <= set(got), where
        for k in want:
            _same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _same(g, w, f"{where}[{i}]")
    elif isinstance(want, float) or isinstance(got, float):
        assert got == pytest.approx(want, abs=1e-9), where
    else:
        assert got == want, where


@pytest.fixture(scope="module")
def main_job(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("main-job") / "paper.db"
    res = CliRunner().invoke(
        app,
        ["run", str(ROOT / "strategies"), "--paper", "--replay", str(RECORDING), "--db", str(db),
         "--no-watch"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return db


def test_status_json_matches_the_figures_from_before_the_redesign(main_job: Path) -> None:
    res = CliRunner().invoke(app, ["status", "--db", str(main_job), "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.output)
    _same(got["stats"], EXPECTED["stats"], "stats")
    # each position's payments are checked against the settlement records themselves
    # (tests/test_settlement_done_when.py); here their sum and count
    for p in got["positions"]:
        pays = p.pop("funding_payments")
        assert sum(f["amount"] for f in pays) == pytest.approx(p["pnl_funding"], abs=1e-9)
    _same(got["positions"], EXPECTED["positions"], "positions")


def test_the_reader_gives_the_same_figures(main_job: Path) -> None:
    want = EXPECTED["stats"]
    with LedgerReader.open(main_job) as read:
        stats = read.stats()
        positions = read.positions()
        fills = read.fills()
        payments = read.funding_payments()
        cycles = read.cycles()
    assert (stats.cycles, len(cycles)) == (want["cycles"], 1642)
    assert stats.positions_opened == len(positions) == want["positions_opened"] == 68
    assert stats.trades_executed == len(fills) == want["trades_executed"] == 272
    assert stats.funding_payments == len(payments) == want["funding_payments"] == 1587
    assert stats.cumulative_profit == pytest.approx(want["cumulative_profit"], abs=1e-9)
    # the parts add up: per position, and the ledger's payments are the positions' funding
    assert sum(p.pnl for p in positions) == pytest.approx(want["realised_pnl"], abs=1e-9)
    assert sum(f.amount for f in payments) == pytest.approx(want["funding"], abs=1e-9)
    assert sum(-f.fee for f in fills) == pytest.approx(want["fees"], abs=1e-9)
    assert stats.cash - stats.initial_balance == pytest.approx(want["cumulative_profit"], abs=1e-9)


def test_the_readme_shows_the_main_jobs_statistics(main_job: Path) -> None:
    # what `rulebook status` prints of the job is the block pasted in the README
    res = CliRunner().invoke(app, ["status", "--db", str(main_job)])
    assert res.exit_code == 0, res.output
    readme = (ROOT / "README.md").read_text()
    block = [ln.rstrip() for ln in res.output.splitlines()[:7]]
    assert block[0].startswith("cycles 1642") and "cumulative profit" in block[4]
    assert "\n".join(block) in readme
