"""Backtests and parameter sweeps: rules replayed over funding history.

    from rulebook.backtest import BacktestSpec, run_backtest, run_sweep
    result = run_backtest(BacktestSpec([Path("strategies")], [Path("history.jsonl.gz")]))
    sweep = run_sweep(spec, {"carry_min_rate": ["0.01%", "0.02%", "0.03%"]})

See docs/backtest.md for the look-ahead choice, the figures and sweeps.
"""

from __future__ import annotations

from ._overrides import OverrideError, apply_overrides, let_constants, parse_assignment
from ._run import (
    BacktestError,
    BacktestResult,
    BacktestSpec,
    Refusal,
    load_rules,
    prepare_recording,
    read_views,
    refusals,
    run_backtest,
)
from ._sweep import RANK_KEYS, SweepResult, grid, parse_sweep, run_sweep

__all__ = [
    "RANK_KEYS",
    "SweepResult",
    "grid",
    "parse_sweep",
    "run_sweep",
    "BacktestError",
    "BacktestResult",
    "BacktestSpec",
    "OverrideError",
    "Refusal",
    "apply_overrides",
    "let_constants",
    "load_rules",
    "parse_assignment",
    "prepare_recording",
    "read_views",
    "refusals",
    "run_backtest",
]
