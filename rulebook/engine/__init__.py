"""The engine: compiled rules evaluated over a snapshot into opportunities.

    from rulebook.engine import evaluate, Book, OpenPosition, EngineConfig
    result = evaluate(ruleset, view, book=Book(positions), config=EngineConfig())
    for o in result.opportunities: o.decision, o.amount, o.figures.edge, o.legs
    json.dumps(result.to_dict())          # spec section 10

Figures follow spec section 6 exactly; `_metrics` holds each formula once.
"""

from __future__ import annotations

from ._decide import MIN_TRADE, Book, Decision, DecisionKind, OpenPosition, RiskBudget, position_key
from ._env import PositionValues, SnapshotEnv, SubjectFigures, TakerFee
from ._evaluate import Evaluation, Opportunity, Skipped, decide, evaluate, figure_notes
from ._exit import ExitCheck, check_exit, check_exits
from ._fees import DEFAULT_TAKER_FEES, EngineConfig, resolve_taker_fee
from ._metrics import EIGHT_HOURS_S, RISK_LEVELS, Leg, apr

__all__ = [
    "Book",
    "DEFAULT_TAKER_FEES",
    "Decision",
    "DecisionKind",
    "EIGHT_HOURS_S",
    "EngineConfig",
    "ExitCheck",
    "Evaluation",
    "Leg",
    "MIN_TRADE",
    "OpenPosition",
    "Opportunity",
    "PositionValues",
    "RISK_LEVELS",
    "RiskBudget",
    "SnapshotEnv",
    "Skipped",
    "SubjectFigures",
    "TakerFee",
    "apr",
    "check_exit",
    "check_exits",
    "decide",
    "evaluate",
    "figure_notes",
    "position_key",
    "resolve_taker_fee",
]
