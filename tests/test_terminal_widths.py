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


@pytest.mark.parametrize("width", [80, 120])
def test_screen_fits(width) -> None:
    res = rulebook("screen", "strategies/", "--snapshot", str(RECORDING), "--at", AT, "--once",
                   width=width)
    assert res.returncode == 0, res.stderr
    assert_fits(res.stdout, width)
    assert "BTC   bybit     0.1128%  123.5%" in res.stdout


@pytest.mark.parametrize("width", [80, 120])
def test_validate_list_fits(width) -> None:
    res = rulebook("validate", "strategies/", "--list", width=width)
    assert res.returncode == 0, res.stderr
    assert_fits(res.stdout, width)
    assert "extreme_funding.rules:13" in res.stdout  # a place is never folded mid-number


# -- backtests, sweeps, history imports, reports, status, halt ----------------------------

HISTORY = ROOT / "examples" / "history" / "binance-bybit-okx-btc-eth-2023-2024.jsonl.gz"
# ten days with three carry positions (two closed, one open) and their funding
WINDOW = ("--from", "2024-02-12", "--to", "2024-02-22")
FUNDING_HISTORY = ROOT / "tests" / "fixtures" / "funding-history"


def _money(x: float | None) -> str:
    return "-" if x is None else f"{x:,.2f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.2f}%"


def _row(text: str, *first: str) -> list[str]:
    """The cells of the one table line whose first cells are `first`."""
    rows = [ln.split() for ln in text.splitlines() if ln.split()[: len(first)] == list(first)]
    assert len(rows) == 1, (first, text)
    return rows[0]


@pytest.fixture(scope="module")
def kept_backtest(tmp_path_factory) -> tuple[Path, dict]:
    """A backtest's ledger (--db) and its report as JSON."""
    db = tmp_path_factory.mktemp("kept") / "bt.db"
    res = rulebook("backtest", "strategies/", "--data", str(HISTORY), *WINDOW, "--db", str(db),
                   "--json", width=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    return db, json.loads(res.stdout)


@pytest.mark.parametrize("width", [80, 120])
def test_backtest_report_fits_and_shows_whole_figures(width, kept_backtest) -> None:
    _, report = kept_backtest
    res = rulebook("backtest", "strategies/", "--data", str(HISTORY), *WINDOW, width=width)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert_fits(out, width)
    t = report["totals"]
    assert f"pnl {_money(t['pnl'])} (funding {_money(t['funding'])}" in out
    assert f"APR {_pct(t['apr_on_capital'])}" in out
    for key in ("per_rule", "per_coin", "per_venue"):
        assert report[key]
        for r in report[key]:
            cells = _row(out.split(f"per {key[4:]}\n", 1)[1], r["key"])
            assert cells[:6] == [r["key"], str(r["trades"]), _money(r["pnl"]),
                                 _money(r["funding"]), _money(r["fees"]), _money(r["price"])]


def test_backtest_tables_drop_columns_not_figures_when_narrow(kept_backtest) -> None:
    import io

    from rich.console import Console

    from rulebook.app import print_report

    _, report = kept_backtest
    buf = io.StringIO()
    print_report(Console(file=buf, width=50, no_color=True), report)
    out = buf.getvalue()
    assert_fits(out, 50)
    assert "hidden at this width: price, win rate, borrow (--wide, or --json)" in " ".join(
        out.split()
    )
    r = report["per_rule"][0]
    assert _row(out, r["key"])[:4] == [r["key"], str(r["trades"]), _money(r["pnl"]),
                                       _money(r["funding"])]  # fmt: skip
    buf = io.StringIO()
    print_report(Console(file=buf, width=50, no_color=True), report, wide=True)
    assert "borrow" in buf.getvalue() and "hidden at this width" not in buf.getvalue()


@pytest.mark.parametrize("width", [80, 120])
def test_sweep_table_fits_and_ranks_whole_figures(width) -> None:
    args = ["backtest", "strategies/", "--data", str(HISTORY), *WINDOW,
            "--sweep", "cross_min_spread=0.03%,0.09%", "--sweep", "carry_min_rate=0.01%,0.03%",
            "--workers", "1"]  # fmt: skip
    res = rulebook(*args, width=width)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert_fits(out, width)
    table = json.loads(rulebook(*args, "--json", width=width).stdout)["sweep"]
    assert len(table["results"]) == 4
    header = next(ln for ln in out.splitlines() if ln.startswith("#")).split()
    for i, r in enumerate(table["results"], start=1):
        cells = _row(out, str(i))
        t = r["totals"]
        assert cells[:6] == [str(i), r["overrides"]["cross_min_spread"],
                             r["overrides"]["carry_min_rate"], _money(t["pnl"]),
                             _pct(t["return_on_capital"]), _pct(t["apr_on_capital"])]  # fmt: skip
        assert cells[header.index("trades")] == str(t["trades"])
        assert cells[header.index("drawdown")] == _money(t["max_drawdown"])
    if width == 80:
        assert "hidden at this width: Sharpe, win rate" in " ".join(out.split())
    else:
        assert "hidden at this width" not in out


@pytest.mark.parametrize("width", [80, 120])
def test_history_import_table_fits(width, tmp_path) -> None:
    res = rulebook("history", "import", str(FUNDING_HISTORY / "aha-hh"), "-o",
                   str(tmp_path / "h.jsonl"), width=width)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert_fits(res.stdout, width)
    assert _row(res.stdout, "okx", "ETH") == ["okx", "ETH", "27", "2023-03-22", "00:00", "2023-03-30",
                                       "16:00", "8h", "perp,", "spot"]  # fmt: skip
    res = rulebook("history", "import", str(FUNDING_HISTORY / "supervik"), "-o",
                   str(tmp_path / "s.jsonl"), width=width)  # fmt: skip
    assert_fits(res.stdout, width)
    assert _row(res.stdout, "gate")[-2:] == ["8h", "NONE"]  # no prices: said, not invented


@pytest.mark.parametrize("width", [80, 120])
def test_status_report_and_funding_of_a_ledger_fit(width, kept_backtest) -> None:
    db, report = kept_backtest
    status = json.loads(rulebook("status", "--db", str(db), "--json", width=width).stdout)
    res = rulebook("status", "--db", str(db), width=width)
    assert res.returncode == 0, res.stderr
    assert_fits(res.stdout, width)
    for p in status["positions"]:
        cells = _row(res.stdout.split("positions\n", 1)[1], str(p["id"]))
        assert _money(p["notional"]) in cells and cells[-1] == _money(p["pnl"])
    okx = _row(res.stdout, "okx")
    venue = next(v for v in status["venues"] if v["exchange"] == "okx")
    assert okx[:4] == ["okx", _money(venue["cash"]), _money(venue["margin"]),
                       _money(venue["free"])]  # fmt: skip

    held = next(p for p in status["positions"] if p["status"] == "open")
    res = rulebook("status", "--db", str(db), "--position", str(held["id"]), width=width)
    assert res.returncode == 0, res.stderr
    assert_fits(res.stdout, width)
    payments = [ln.split() for ln in res.stdout.splitlines() if ln.startswith("2024-") and "%" in ln]
    assert len(payments) == 20 and all(p[2] == "okx" and p[3] == "8h" for p in payments)
    total = sum(float(next(c for c in cells if c.startswith(("+", "-")))) for cells in payments)
    assert abs(total - held["pnl_funding"]) < 20 * 5e-5  # the amounts, rounded, add up
    assert f"20 payments, funding {held['pnl_funding']:+,.4f}" in " ".join(res.stdout.split())

    res = rulebook("report", "--db", str(db), width=width)
    assert res.returncode == 0, res.stderr
    assert_fits(res.stdout, width)
    r = report["per_rule"][0]
    assert _row(res.stdout, r["key"])[:3] == [r["key"], str(r["trades"]), _money(r["pnl"])]


def test_halt_close_all_of_a_ledger_fits(kept_backtest, tmp_path) -> None:
    import shutil

    db = tmp_path / "copy.db"
    shutil.copy(kept_backtest[0], db)
    res = rulebook("halt", "--db", str(db), "--close-all", width=80)
    assert res.returncode == 0, res.stderr
    assert_fits(res.stdout, 80)
    assert "closed 1 paper position(s)" in " ".join(res.stdout.split())
