"""Sweeps: each combination's result equals the single backtest with those constants,
locally in processes and on a local Dask cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rulebook.backtest import (
    BacktestSpec,
    OverrideError,
    grid,
    parse_sweep,
    run_backtest,
    run_sweep,
)
from rulebook.cli import app
from rulebook.report import build_report

ROOT = Path(__file__).resolve().parents[1]
AHA = ROOT / "examples" / "history" / "binance-bybit-okx-btc-eth-2023-2024.jsonl.gz"
SPEC = BacktestSpec(
    rule_paths=[ROOT / "strategies"],
    data=[AHA],
    start=1_706_745_600_000,  # 2024-02-01
    end=1_711_929_600_000,  # 2024-04-01
)
SWEEPS = [("extreme_rate", ["0.05%", "0.10%"]), ("cross_min_spread", ["0.03%", "0.09%"])]


def _with(overrides: dict[str, str]) -> BacktestSpec:
    import dataclasses

    return dataclasses.replace(SPEC, overrides=overrides)


def test_grid_and_parse() -> None:
    assert parse_sweep("a=1%, 2%,3%") == ("a", ["1%", "2%", "3%"])
    with pytest.raises(OverrideError):
        parse_sweep("a=")
    assert grid([("a", ["1", "2"]), ("b", ["x", "y"])]) == [
        {"a": "1", "b": "x"}, {"a": "1", "b": "y"}, {"a": "2", "b": "x"}, {"a": "2", "b": "y"},
    ]  # fmt: skip
    with pytest.raises(OverrideError, match="swept twice"):
        grid([("a", ["1"]), ("a", ["2"])])


@pytest.fixture(scope="module")
def local_sweep():
    return run_sweep(SPEC, SWEEPS, workers=2)


def test_each_sweep_result_equals_the_single_backtest(local_sweep) -> None:
    assert len(local_sweep.results) == 4 and not local_sweep.failed
    assert local_sweep.workers == "2 local processes"
    pnls = [r["report"]["totals"]["pnl"] for r in local_sweep.results]
    assert pnls == sorted(pnls, reverse=True)  # ranked by pnl, best first
    assert len({round(p, 6) for p in pnls}) > 1  # the constants matter in this window
    for r in local_sweep.results:
        single = build_report(run_backtest(_with(r["overrides"])).run)
        got = r["report"]
        assert got["totals"] == single["totals"]
        assert got["per_rule"] == single["per_rule"]
        assert got["positions"] == single["positions"]


def test_sweep_on_a_local_dask_cluster_equals_the_local_one(local_sweep) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        on_cluster = run_sweep(SPEC, SWEEPS, cluster=cluster.scheduler_address)
    assert (
        on_cluster.workers.startswith("Dask cluster tcp://") and "(2 workers)" in on_cluster.workers
    )
    key = lambda r: json.dumps(r["overrides"], sort_keys=True)  # noqa: E731
    local = {key(r): r["report"]["totals"] for r in local_sweep.results}
    remote = {key(r): r["report"]["totals"] for r in on_cluster.results}
    assert remote == local


def test_sweep_cli_prints_the_ranked_table_and_writes_it_to_the_report(tmp_path: Path) -> None:
    out = tmp_path / "sweep.html"
    res = CliRunner().invoke(
        app,
        ["backtest", str(ROOT / "strategies"), "--data", str(AHA), "--from", "2024-02-01",
         "--to", "2024-04-01", "--sweep", "cross_min_spread=0.03%,0.09%", "--workers", "1",
         "--html", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "sweep: 2 combinations on 1 local process, ranked by pnl" in res.output
    html = out.read_text()
    assert "Sweep: 2 combinations, ranked by pnl" in html
    assert "the report below is the best combination" in html


def test_sweep_of_an_unknown_constant_fails_before_running(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        ["backtest", str(ROOT / "strategies"), "--data", str(AHA), "--sweep", "nope=1%,2%"],
    )
    assert res.exit_code == 2
    assert "no `let` constant named nope" in res.output
