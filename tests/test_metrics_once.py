"""Each formula is written once, in the engine's metrics module: changing a
threshold there changes the default evaluation and `--explain` alike.

The issue that asked for this found a `risk == low` rule firing under
`--explain` but not by default after a threshold edit; these tests edit the
threshold (monkeypatched) and check both modes.
"""

from __future__ import annotations

import pytest
from engine_helpers import perp, ruleset, view

from rulebook.engine import _metrics as M
from rulebook.engine import evaluate

RULE = "when spread(SOL, okx, gate) > 0% and risk == low then hedge 1000 USDT\n"


def marks_apart_view():
    # okx 0.15%, gate -0.05% per 8h: edge 0.20%; default fees 2 x (0.05% + 0.05%)
    # = 0.20%: breakeven 8h <= 24h. Marks 100 and 100.125: deviation
    # 0.125 / 100.0625 = 0.1249%, price_score 1 - 0.1249% / 0.5% = 0.7502;
    # fresh 1: confidence 0.7502, below 0.8, so risk is medium, not low.
    return view(perp("okx", "SOL", 0.0015, mark=100.0), perp("gate", "SOL", -0.0005, mark=100.125))


def fired(explain: bool) -> tuple[bool, str]:
    ev = evaluate(ruleset(RULE), marks_apart_view(), include_unfired=True, explain=explain)
    (o,) = ev.opportunities
    assert o.figures is not None
    return o.fired, M.RISK_LEVELS[o.figures.risk]


def test_confidence_just_below_the_low_threshold_is_medium_in_both_modes():
    ev = evaluate(ruleset(RULE), marks_apart_view(), include_unfired=True)
    assert ev.opportunities[0].figures.confidence == pytest.approx(1 - (0.125 / 100.0625) / 0.005)
    assert fired(explain=False) == (False, "medium")
    assert fired(explain=True) == (False, "medium")


def test_lowering_the_low_risk_threshold_changes_default_and_explain(monkeypatch):
    monkeypatch.setattr(M, "LOW_RISK_CONFIDENCE", 0.7)
    assert fired(explain=False) == (True, "low")
    assert fired(explain=True) == (True, "low")
    ev = evaluate(ruleset(RULE), marks_apart_view(), explain=True)
    steps = {s.text: s.value for s in ev.opportunities[0].explanation.steps}
    assert steps["risk"] == "low"
    assert ev.to_dict()["opportunities"][0]["risk"] == "low"


def test_raising_the_high_risk_breakeven_threshold_changes_both(monkeypatch):
    # breakeven 8h: with "high above 6h" the rule sees risk high in both modes
    monkeypatch.setattr(M, "HIGH_RISK_BREAKEVEN_S", 6 * 3600.0)
    monkeypatch.setattr(M, "LOW_RISK_CONFIDENCE", 0.7)
    assert fired(explain=False) == (False, "high")
    assert fired(explain=True) == (False, "high")
