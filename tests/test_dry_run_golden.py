"""`dry-run --json` (and `--all`) stays byte-identical to main before the
evaluator redesign, at 22 timestamps of the bundled example recording.

The expected files in `fixtures/dryrun-baseline/` are the output of
`rulebook dry-run strategies/ --snapshot examples/binance-bybit-okx-btc-eth-2023-2024.jsonl
--at <at> --json [--all]` on main at 042db1e (derived from the example data,
MIT licence: see `examples/LICENSE-AHA-HH` and `fixtures/dryrun-baseline/README.md`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rulebook.cli import app

ROOT = Path(__file__).resolve().parents[1]
BASELINE = Path(__file__).parent / "fixtures" / "dryrun-baseline"
RECORDING = ROOT / "examples" / "binance-bybit-okx-btc-eth-2023-2024.jsonl"
TIMES = sorted(p.name[len("dryrun-") : -len(".json")] for p in BASELINE.glob("dryrun-2*.json"))


def test_there_are_22_timestamps():
    assert len(TIMES) == 22


@pytest.mark.parametrize("at", TIMES)
@pytest.mark.parametrize("every", [False, True], ids=["fired", "all"])
def test_dry_run_json_is_byte_identical(at, every, monkeypatch):
    monkeypatch.chdir(ROOT)  # the ruleset's sha256 covers the files' paths as given
    args = ["dry-run", "strategies/", "--snapshot", str(RECORDING), "--at", at, "--json"]
    res = CliRunner().invoke(app, args + (["--all"] if every else []))
    assert res.exit_code == 0, res.output
    expected = (BASELINE / f"dryrun-{'all-' if every else ''}{at}.json").read_text()
    assert res.stdout == expected
