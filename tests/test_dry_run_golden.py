"""`dry-run --json` (and `--all`) stays byte-identical to main before the
evaluator redesign, at 22 timestamps of the bundled example recording.

The expected files in `fixtures/dryrun-baseline/` are the output of
`rulebook dry-run strategies/ --snapshot examples/binance-bybit-okx-btc-eth-2023-2024.jsonl
--at <at> --json [--all]` on main at 042db1e (derived from the example data,
MIT licence: see `examples/LICENSE-AHA-HH` and `fixtures/dryrun-baseline/README.md`).

Issue 15 changed one thing on purpose: a skip reason of a recording says what
the recording lacks ("SOL on binance not in this recording") rather than
claiming the exchange does not list it ("SOL not listed on binance").
`reworded` applies exactly that change to the baseline; every other byte stays
pinned.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rulebook.cli import app

ROOT = Path(__file__).resolve().parents[1]
BASELINE = Path(__file__).parent / "fixtures" / "dryrun-baseline"
RECORDING = ROOT / "examples" / "binance-bybit-okx-btc-eth-2023-2024.jsonl"
TIMES = sorted(p.name[len("dryrun-") : -len(".json")] for p in BASELINE.glob("dryrun-2*.json"))


_REASONS = [
    (re.compile(r'"reason": "no data from (\w+)"'), r'"reason": "\1 not in this recording"'),
    (
        re.compile(r'"reason": "(\w+) not listed on (\w+)"'),
        r'"reason": "\1 on \2 not in this recording"',
    ),
    (
        re.compile(r'"reason": "(no (?:borrow|spot) market for \w+ on \w+)"'),
        r'"reason": "\1 in this recording"',
    ),
]


def reworded(baseline: str) -> str:
    for pattern, replacement in _REASONS:
        baseline = pattern.sub(replacement, baseline)
    return baseline


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
    assert res.stdout == reworded(expected)
