"""Parameter sweeps: one backtest per combination of `let` constants.

    sweep = run_sweep(spec, [("carry_min_rate", ["0.01%", "0.02%"]), ("extreme_rate", ["0.1%"])])
    sweep.results[0]          # the best combination by `rank_by`, with its whole report

The history is read and what the rules see is written once; each
combination is then exactly `run_backtest` with those overrides (the test
suite checks that a sweep's result equals the single backtest). Runs go to
the local cores in processes by default, or to a Dask cluster
(`cluster="tcp://host:8786"`, the `cluster` extra), whose workers must see
the same paths (a shared or local filesystem).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._overrides import OverrideError
from ._run import (
    BacktestError,
    BacktestSpec,
    load_rules,
    prepare_recording,
    read_views,
    run_backtest,
)

__all__ = ["RANK_KEYS", "SweepResult", "grid", "parse_sweep", "run_sweep"]

# Totals a sweep can be ranked by; higher is better for all but the drawdown.
RANK_KEYS = ("pnl", "return_on_capital", "apr_on_capital", "sharpe", "sortino", "max_drawdown")


def parse_sweep(text: str) -> tuple[str, list[str]]:
    """'NAME=V1,V2,...' to (NAME, [V1, V2, ...])."""
    name, sep, values = text.partition("=")
    vals = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not name.strip() or not vals:
        raise OverrideError(f"{text!r}: expected NAME=V1,V2,..., like carry_min_rate=0.01%,0.02%")
    return name.strip(), vals


def grid(sweeps: Sequence[tuple[str, Sequence[str]]]) -> list[dict[str, str]]:
    """Every combination, the first parameter varying slowest."""
    names = [n for n, _ in sweeps]
    if len(set(names)) != len(names):
        raise OverrideError("a constant is swept twice; give all its values in one --sweep")
    return [
        dict(zip(names, combo, strict=True)) for combo in itertools.product(*(v for _, v in sweeps))
    ]


@dataclass(slots=True)
class SweepResult:
    parameters: list[str]
    ranked_by: str
    results: list[dict[str, Any]]  # {"overrides", "report"}, best first
    failed: list[dict[str, str]]  # {"overrides", "error"}
    workers: str  # "4 local processes" or the cluster address

    def table(self) -> dict[str, Any]:
        """The ranked table as the report's `sweep` section."""
        return {
            "parameters": self.parameters,
            "ranked_by": self.ranked_by,
            "workers": self.workers,
            "results": [
                {
                    "overrides": r["overrides"],
                    "ruleset": r["report"].get("ruleset"),
                    "totals": r["report"]["totals"],
                    "per_rule": r["report"]["per_rule"],
                }
                for r in self.results
            ],
            "failed": self.failed,
        }


# A worker reads the prepared recording once and replays the same views for
# every combination it is given (views are never changed by a run).
_VIEWS: dict[str, Any] = {}


def _one(spec: BacktestSpec, recording: Any) -> dict[str, Any]:
    """One combination (run in a worker): its report, or the error."""
    from rulebook.report import build_report

    key = str(recording[0])
    if key not in _VIEWS:
        _VIEWS.clear()
        _VIEWS[key] = read_views(recording[0])
    try:
        result = run_backtest(spec, recording=recording, views=_VIEWS[key])
    except (BacktestError, OverrideError) as e:
        return {"overrides": dict(spec.overrides), "error": str(e)}
    extra = {
        "ruleset": result.ruleset_sha,
        "overrides": result.overrides,
        "refused": [{"rule": r.rule, "reason": r.reason} for r in result.refused],
    }
    return {"overrides": dict(spec.overrides), "report": build_report(result.run, extra)}


def _rank_value(report: dict[str, Any], key: str) -> float:
    v = report["totals"].get(key)
    if v is None:
        return float("-inf")
    return -v if key == "max_drawdown" else v


def run_sweep(
    spec: BacktestSpec,
    sweeps: Sequence[tuple[str, Sequence[str]]],
    *,
    workers: int | None = None,
    cluster: str | None = None,
    rank_by: str = "pnl",
) -> SweepResult:
    """Backtest every combination of the swept constants (on top of spec.overrides)."""
    if rank_by not in RANK_KEYS:
        raise BacktestError(f"rank by {rank_by!r}: one of {', '.join(RANK_KEYS)}")
    combos = grid(sweeps)
    # Fail early, once, on a name that is no constant or a value that does not check
    # (each value alone: a constant's value does not change how another one checks).
    for name, values in sweeps:
        for value in values:
            load_rules(spec.rule_paths, {**spec.overrides, name: value})
    work = Path(tempfile.mkdtemp(prefix="rulebook-sweep-"))
    _VIEWS.clear()
    try:
        rec_path = work / "seen.jsonl"
        history, stats, problems = prepare_recording(
            spec.data, rec_path, spec.lookahead, spec.start, spec.end
        )
        recording = (rec_path, history, stats, problems)
        specs = [dataclasses.replace(spec, overrides={**spec.overrides, **c}) for c in combos]
        if cluster is not None:
            outcomes, where = _on_cluster(cluster, specs, recording)
        else:
            n = max(1, min(workers or os.cpu_count() or 1, len(specs)))
            where = f"{n} local process{'es' if n > 1 else ''}"
            if n == 1:
                outcomes = [_one(s, recording) for s in specs]
            else:
                with ProcessPoolExecutor(max_workers=n) as pool:
                    outcomes = list(pool.map(_one, specs, [recording] * len(specs)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    done = [o for o in outcomes if "report" in o]
    failed = [{"overrides": o["overrides"], "error": o["error"]} for o in outcomes if "error" in o]
    done.sort(key=lambda o: _rank_value(o["report"], rank_by), reverse=True)
    return SweepResult([n for n, _ in sweeps], rank_by, done, failed, where)


def _on_cluster(
    address: str, specs: list[BacktestSpec], recording: Any
) -> tuple[list[dict[str, Any]], str]:
    try:
        from distributed import Client
    except ModuleNotFoundError:
        raise BacktestError(
            "--cluster needs Dask distributed: pip install 'rulebook[cluster]'"
        ) from None
    try:
        client = Client(address, timeout=30)
    except (OSError, TimeoutError) as e:
        raise BacktestError(f"cannot reach the Dask scheduler at {address}: {e}") from None
    try:
        futures = client.map(_one, specs, [recording] * len(specs), pure=False)
        outcomes = client.gather(futures)
        n = len(client.nthreads())  # asks the scheduler now, not a cached identity
    finally:
        client.close()
    return list(outcomes), f"Dask cluster {address} ({n} workers)"
