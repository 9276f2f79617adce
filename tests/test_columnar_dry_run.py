"""`dry-run --snapshot` of the example recording as Parquet prints the very JSON the
JSONL recording gives (the golden files of tests/fixtures/dryrun-baseline/)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_dry_run_golden import BASELINE, RECORDING, TIMES, reworded
from typer.testing import CliRunner

from rulebook.cli import app
from rulebook.market import convert

pytest.importorskip("pyarrow")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def parquet_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("columnar") / "example.parquet"
    assert convert(RECORDING, path).rows == 29556
    return path


@pytest.mark.parametrize("at", TIMES[::3])
@pytest.mark.parametrize("every", [False, True], ids=["fired", "all"])
def test_dry_run_json_of_the_parquet_copy_is_the_golden_json(
    at: str, every: bool, parquet_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # the ruleset's sha256 covers the files' paths as given
    args = ["dry-run", "strategies/", "--snapshot", str(parquet_copy), "--at", at, "--json"]
    res = CliRunner().invoke(app, args + (["--all"] if every else []))
    assert res.exit_code == 0, res.output
    expected = (BASELINE / f"dryrun-{'all-' if every else ''}{at}.json").read_text()
    assert res.stdout == reworded(expected)


def test_at_outside_a_parquet_recording_is_refused(parquet_copy: Path) -> None:
    res = CliRunner().invoke(
        app, ["dry-run", "strategies/", "--snapshot", str(parquet_copy), "--at", "2030-01-01"]
    )
    assert res.exit_code != 0
    assert "is outside the recording" in res.output and "Traceback" not in res.output
