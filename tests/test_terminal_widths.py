"""Every table reads at 80 and at 120 columns: no line is wider than the
terminal, no figure is cut (rich's `…`), and --wide shows every column."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "examples" / "binance-bybit-okx-btc-eth-2023-2024.jsonl"
AT = "2024-03-05T08:00Z"


def rulebook(*args: str, width: int, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(width), "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [sys.executable, "-m", "rulebook.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_fits(text: str, width: int) -> None:
    for line in text.splitlines():
        assert len(line) <= width, f"{len(line)} > {width}: {line!r}"
    assert "…" not in text


def dry_run(*extra: str, width: int) -> str:
    res = rulebook(
        "dry-run", "strategies/", "--snapshot", str(RECORDING), "--at", AT, *extra, width=width
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


def fired_figures() -> list[dict]:
    res = rulebook(
        "dry-run", "strategies/", "--snapshot", str(RECORDING), "--at", AT, "--json", width=80
    )
    return [o for o in json.loads(res.stdout)["opportunities"] if o["fired"]]


@pytest.mark.parametrize("width", [80, 120])
def test_dry_run_table_fits_and_shows_whole_figures(width) -> None:
    out = dry_run(width=width)
    assert_fits(out, width)
    header = out.splitlines()[0].split()
    for column in ("rule", "coin", "legs", "edge", "exp", "decision"):
        assert column in header
    rows = [ln for ln in out.splitlines() if ln.startswith(("cross_", "extreme_", "carry_"))]
    figures = fired_figures()
    assert len(rows) == len(figures) == 9
    for row, o in zip(rows, figures, strict=True):
        assert row.split()[0] == o["rule"]
        assert f"{o['edge'] * 100:.4f}%" in row
        assert f"{o['expected_net_8h']:,.2f}" in row
        assert o["decision"] in row
    if width == 120:
        assert "APR" in header and "conf" in header
        assert "61.7%" in rows[0] and "0.86" in rows[0]
    else:
        assert "hidden at this width: APR" in " ".join(out.split())


def test_wide_shows_every_column_whole() -> None:
    out = dry_run("--wide", width=80)
    header = out.splitlines()[0].split()
    assert header == [
        "rule",
        "coin",
        "legs",
        "edge",
        "APR",
        "fees",
        "net",
        "8h",
        "amount",
        "exp",
        "8h",
        "exp",
        "net",
        "conf",
        "risk",
        "breakeven",
        "decision",
    ]
    assert "…" not in out
    assert "29.8h" in out  # cross_majors ETH's breakeven, only with --wide


@pytest.mark.parametrize("width", [80, 120])
def test_all_shows_the_bindings_that_tell_two_rows_apart(width) -> None:
    out = dry_run("--all", width=width)
    assert_fits(out, width)
    lines = out.splitlines()
    pairs = [
        (lines[i], lines[i + 1].strip())
        for i, ln in enumerate(lines)
        if ln.startswith("cross_majors") and " ETH " in ln and "-bybit +okx" in ln
    ]
    assert [(("open" in a) or ("not fired" in a), b) for a, b in pairs] == [
        (True, "hi=bybit lo=okx"),
        (True, "hi=okx lo=bybit"),
    ]
    assert "open" in pairs[0][0] and "not fired" in pairs[1][0]
    # rows that nothing else resembles carry no bindings line
    carry = [i for i, ln in enumerate(lines) if ln.startswith("carry_majors")]
    assert all(not lines[i + 1].startswith(("coin=", "venue=")) for i in carry)
