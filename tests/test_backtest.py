"""`rulebook backtest` end to end on the shipped history, checked by an independent
computation straight from the kept ledger (sqlite3, not the report code)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rulebook.cli import app

ROOT = Path(__file__).resolve().parents[1]
AHA = ROOT / "examples" / "history" / "binance-bybit-okx-btc-eth-2023-2024.jsonl.gz"
SUPERVIK = ROOT / "tests" / "fixtures" / "funding-history" / "supervik"
runner = CliRunner()


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    d = tmp_path_factory.mktemp("bt")
    db = d / "bt.db"
    res = runner.invoke(
        app,
        ["backtest", str(ROOT / "strategies"), "--data", str(AHA), "--from", "2024-01-01",
         "--to", "2024-04-30", "--json", "--db", str(db), "--csv", str(d / "csv")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout), db


def test_totals_equal_an_independent_computation_from_the_ledger(kept) -> None:
    report, db = kept
    t = report["totals"]
    con = sqlite3.connect(db)
    one = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    initial = one("select sum(initial) from balances")
    final = one("select equity from cycles order by ts desc limit 1")
    assert t["trades"] > 5  # the window is busy enough to mean something
    # pnl is what equity gained: cash and open price pnl, from the cycles table
    assert abs(t["pnl"] - (final - initial)) <= 1e-6
    assert abs(t["return_on_balances"] - (final - initial) / initial) <= 1e-12
    # funding is the sum of the payments, fees the sum of the fills
    assert abs(t["funding"] - one("select sum(amount) from funding_payments")) <= 1e-9
    assert abs(t["fees"] + one("select sum(fee) from fills")) <= 1e-9
    assert t["funding_payments"] == one("select count(*) from funding_payments")
    assert t["trades"] == one("select count(*) from positions")
    # max drawdown of the cycle equity, by a plain loop
    peak, dd = initial, 0.0
    for (eq,) in con.execute("select equity from cycles order by ts"):
        peak = max(peak, eq)
        dd = max(dd, peak - eq)
    assert abs(t["max_drawdown"] - dd) <= 1e-9
    wins = one("select count(*) from positions where status = 'closed' and pnl > 0")
    closed = one("select count(*) from positions where status = 'closed'")
    assert t["win_rate"] == pytest.approx(wins / closed, abs=1e-12)


def test_per_rule_coin_venue_add_up_to_the_total(kept) -> None:
    report, db = kept
    t = report["totals"]
    for table in ("per_rule", "per_coin", "per_venue"):
        for part in ("pnl", "funding", "fees", "price", "borrow"):
            assert abs(sum(r[part] for r in report[table]) - t[part]) <= 1e-9, (table, part)
    con = sqlite3.connect(db)
    for r in report["per_rule"]:
        pnl = con.execute("select sum(pnl) from positions where rule = ?", [r["key"]]).fetchone()[0]
        assert abs(r["pnl"] - pnl) <= 1e-9
    for p in report["positions"]:
        got = sum(f["amount"] for f in p["funding_payments"])
        assert abs(got - p["funding"]) <= 1e-9


def test_report_states_the_lookahead_and_writes_csv(kept, tmp_path: Path) -> None:
    report, db = kept
    assert report["lookahead"].startswith("last-settled: ")
    assert "no look-ahead" in report["lookahead"]
    csv_dir = db.parent / "csv"
    trades = (csv_dir / "trades.csv").read_text().splitlines()
    assert trades[0].startswith("id,rule,coin,")
    assert len(trades) == 1 + report["totals"]["trades"]
    days = (csv_dir / "daily_equity.csv").read_text().splitlines()
    assert days[0] == "day,date,equity" and days[1].split(",")[1] == "2024-01-01"


def test_report_command_gives_the_same_figures_for_the_kept_ledger(kept) -> None:
    report, db = kept
    res = runner.invoke(app, ["report", "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    again = json.loads(res.stdout)
    assert again["totals"] == report["totals"]
    assert again["per_rule"] == report["per_rule"]


def test_a_backtest_never_touches_an_existing_ledger(tmp_path: Path) -> None:
    db = tmp_path / "paper.db"
    db.write_bytes(b"operator's ledger")
    res = runner.invoke(
        app, ["backtest", str(ROOT / "strategies"), "--data", str(AHA), "--db", str(db)]
    )
    assert res.exit_code == 2
    assert "exists: a backtest writes a fresh ledger" in res.output
    assert db.read_bytes() == b"operator's ledger"


def test_rules_needing_prices_the_history_lacks_are_refused(tmp_path: Path) -> None:
    from rulebook.history import import_history, write_history

    h = tmp_path / "supervik.jsonl"
    write_history(h, import_history([SUPERVIK]).records)
    res = runner.invoke(app, ["backtest", str(ROOT / "strategies"), "--data", str(h)])
    assert res.exit_code == 2
    assert "every rule was refused" in res.output
    assert "rule cross_majors refused: the history has no prices for binance BTC perp" in res.output


def test_set_overrides_a_constant_and_a_bad_one_is_diagnosed(tmp_path: Path) -> None:
    args = ["backtest", str(ROOT / "strategies"), "--data", str(AHA), "--from", "2024-02-15",
            "--to", "2024-03-15", "--json"]  # fmt: skip
    base = json.loads(runner.invoke(app, args).stdout)
    res = runner.invoke(app, [*args, "--set", "carry_min_rate=0.5%"])
    assert res.exit_code == 0, res.output
    high = json.loads(res.stdout)
    assert high["overrides"] == {"carry_min_rate": "0.5%"}
    carry = lambda r: [x for x in r["per_rule"] if x["key"] == "carry_majors"]  # noqa: E731
    assert carry(base) and not carry(high)  # no carry entry at 0.5% per 8h
    res = runner.invoke(app, [*args, "--set", "carry_min_rate=0.02"])
    assert res.exit_code == 1
    assert "E105" in res.output  # a bare number where a rate is due, as in a file
    res = runner.invoke(app, [*args, "--set", "carry_min=0.02%"])
    assert res.exit_code == 2
    assert "no `let` constant named carry_min" in res.output and "carry_min_rate" in res.output


def test_next_settlement_lookahead_is_stated_and_differs(tmp_path: Path) -> None:
    args = ["backtest", str(ROOT / "strategies"), "--data", str(AHA), "--from", "2024-02-15",
            "--to", "2024-03-15", "--json"]  # fmt: skip
    res = runner.invoke(app, [*args, "--lookahead", "next-settlement"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["lookahead"].startswith("next-settlement: ") and "optimistic" in rep["lookahead"]


def _seen(tmp_path: Path, lookahead: str) -> dict[int, dict]:
    seen = tmp_path / f"{lookahead}.jsonl"
    res = runner.invoke(
        app,
        ["backtest", str(ROOT / "strategies"), "--data", str(AHA), "--from", "2024-03-01",
         "--to", "2024-03-03", "--lookahead", lookahead, "--seen", str(seen)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in seen.read_text().splitlines()]
    return {
        r["ts"]: r
        for r in rows
        if r["exchange"] == "binance" and r["coin"] == "BTC" and r["market"] == "perp"
    }


def test_what_the_rules_saw_at_each_cycle_is_kept_and_has_no_lookahead(tmp_path: Path) -> None:
    from rulebook.history import read_history

    h, _ = read_history([AHA])
    s = h.settlements[("binance", "BTC")]
    rate_at = dict(zip(s.ts.tolist(), s.rate.tolist(), strict=True))
    H8 = 8 * 3_600_000
    conservative = _seen(tmp_path, "last-settled")
    assert len(conservative) == 7  # 2024-03-01 00:00 .. 2024-03-03 00:00, every 8h
    for t, obs in conservative.items():
        # at a settlement time the rules saw the rate that had just settled, for the next one
        assert obs["funding_rate"] == rate_at[t]
        assert obs["next_funding_ts"] == t + H8
    optimistic = _seen(tmp_path, "next-settlement")
    for t, obs in optimistic.items():
        # a minute before each settlement, the rate that was about to settle
        assert obs["next_funding_ts"] == t + 60_000
        assert obs["funding_rate"] == rate_at[t + 60_000]


def test_report_for_a_paper_run_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trading_helpers import T0, H, T, pair_rows, write_jsonl

    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.rules").write_text(
        "rule sol_spread:\n    when spread(SOL, bybit, binance) > 0.01%\n    then hedge 1000 USDT\n"
    )
    rows = pair_rows(T0, "SOL", (100.0, 0.0001), (100.2, 0.0004), T) + pair_rows(
        T, "SOL", (101.0, 0.0001), (101.1, 0.0003), T + 8 * H
    )
    write_jsonl(tmp_path / "rec.jsonl", rows)
    res = runner.invoke(
        app, ["run", "s.rules", "--paper", "--replay", "rec.jsonl", "--db", "p.db", "--no-watch"]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["report", "--db", "p.db", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["lookahead"] is None and rep["source"] == "ledger p.db"
    assert rep["totals"]["trades"] == 1 and rep["totals"]["open_trades"] == 1
    con = sqlite3.connect(tmp_path / "p.db")
    funding = con.execute("select coalesce(sum(amount), 0) from funding_payments").fetchone()[0]
    assert abs(rep["totals"]["funding"] - funding) <= 1e-9
    res = runner.invoke(app, ["report", "--db", "missing.db"])
    assert res.exit_code == 2 and "no ledger here" in res.output
    assert not (tmp_path / "missing.db").exists()
