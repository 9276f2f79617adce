"""The README's main job replayed from a Parquet copy of the example recording gives the
figures it gives from the JSONL file (tests/fixtures/readme-main-job/, to 1e-9)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_ledger_main_job import EXPECTED, RECORDING, ROOT, _same
from typer.testing import CliRunner

from rulebook.cli import app
from rulebook.market import convert

pytest.importorskip("pyarrow")


def test_the_main_job_from_parquet_gives_the_readme_figures(tmp_path: Path) -> None:
    copy = tmp_path / "example.parquet"
    convert(RECORDING, copy)
    db = tmp_path / "paper.db"
    res = CliRunner().invoke(
        app,
        ["run", str(ROOT / "strategies"), "--paper", "--replay", str(copy), "--db", str(db),
         "--no-watch"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["status", "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.output)
    _same(got["stats"], EXPECTED["stats"], "stats")
    for p in got["positions"]:
        pays = p.pop("funding_payments")
        assert sum(f["amount"] for f in pays) == pytest.approx(p["pnl_funding"], abs=1e-9)
    _same(got["positions"], EXPECTED["positions"], "positions")
    assert got["stats"]["cycles"] == 1642


def test_a_replay_of_a_damaged_parquet_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    res = CliRunner().invoke(
        app, ["run", str(ROOT / "strategies"), "--paper", "--replay", str(bad),
              "--db", str(tmp_path / "p.db"), "--no-watch"],
    )  # fmt: skip
    assert res.exit_code != 0
    assert "not a Parquet file" in res.output and "Traceback" not in res.output
