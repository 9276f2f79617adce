"""Risk limits (spec 7): open, already_open, cut and blocked, with hand-computed room."""

from __future__ import annotations

import pytest
from engine_helpers import perp, ruleset, view

from rulebook.engine import Book, OpenPosition, RiskBudget, evaluate
from rulebook.lang import RiskLimits, Subject


def sol(a: str, b: str) -> Subject:
    return Subject("spread", "SOL", (a, b))


def test_cut_to_room_left_then_blocked_under_10():
    budget = RiskBudget(RiskLimits(max_total_exposure=2500.0))
    d1 = budget.decide(sol("okx", "gate"), 1000, 1.0, "r")
    d2 = budget.decide(sol("okx", "bybit"), 1000, 1.0, "r")
    d3 = budget.decide(sol("okx", "binance"), 1000, 1.0, "r")  # 2500 - 2000 = 500 left
    d4 = budget.decide(sol("okx", "bitget"), 1000, 1.0, "r")  # 0 left
    assert [(d.kind, d.amount) for d in (d1, d2, d3, d4)] == [
        ("open", 1000),
        ("open", 1000),
        ("cut", 500),
        ("blocked", 1000),
    ]
    assert d3.reason == "max_total_exposure: cut from 1000 USDT to 500 USDT"
    assert d4.reason == "max_total_exposure: 0 USDT left, under the 10 USDT minimum"


def test_room_of_exactly_10_is_cut_and_9_99_is_blocked():
    book = Book([OpenPosition("x", {}, sol("okx", "gate"), 990.0)])
    d = RiskBudget(RiskLimits(max_total_exposure=1000.0), book).decide(sol("a", "b"), 50, 1, "r")
    assert (d.kind, d.amount) == ("cut", 10.0)  # 1000 - 990 = 10: not under 10
    book = Book([OpenPosition("x", {}, sol("okx", "gate"), 990.01)])
    d = RiskBudget(RiskLimits(max_total_exposure=1000.0), book).decide(sol("a", "b"), 50, 1, "r")
    assert d.kind == "blocked"  # 9.99 left
    assert d.reason.startswith("max_total_exposure: 9.99 USDT left")


def test_max_single_position_cuts():
    d = RiskBudget(RiskLimits(max_single_position=5000.0)).decide(sol("a", "b"), 8000, 1, "r")
    assert (d.kind, d.amount) == ("cut", 5000.0)
    assert d.reason == "max_single_position: cut from 8000 USDT to 5000 USDT"


def test_tighter_of_single_and_total_wins():
    # total room 20000 - 17000 = 3000 < single 5000
    book = Book([OpenPosition("x", {}, sol("okx", "gate"), 17000.0)])
    limits = RiskLimits(max_total_exposure=20000.0, max_single_position=5000.0)
    d = RiskBudget(limits, book).decide(sol("a", "b"), 4000, 1, "r")
    assert (d.kind, d.amount) == ("cut", 3000.0)
    assert d.reason.startswith("max_total_exposure")


def test_min_confidence_blocks():
    d = RiskBudget(RiskLimits(min_confidence=0.5)).decide(sol("a", "b"), 100, 0.42, "r")
    assert d.kind == "blocked"
    assert d.reason == "min_confidence: confidence 0.42 is below 0.5"
    d = RiskBudget(RiskLimits(min_confidence=0.5)).decide(sol("a", "b"), 100, 0.5, "r")
    assert d.kind == "open"  # 0.5 is not below 0.5


def test_max_open_positions_counts_book_and_this_evaluation():
    book = Book([OpenPosition("x", {}, sol("okx", "gate"), 100.0)])
    budget = RiskBudget(RiskLimits(max_open_positions=2), book)
    assert budget.decide(sol("a", "b"), 100, 1, "r").kind == "open"
    d = budget.decide(sol("a", "c"), 100, 1, "r")
    assert d.kind == "blocked" and d.reason == "max_open_positions: 2 of 2 already open"


def test_already_open_comes_first_and_names_the_rule():
    book = Book([OpenPosition("old", {"coin": "SOL"}, sol("gate", "okx"), 100.0)])
    budget = RiskBudget(RiskLimits(min_confidence=0.9), book)
    d = budget.decide(sol("okx", "gate"), 100, 0.1, "new")
    assert d.kind == "already_open"
    assert d.reason == "a position on spread(SOL, okx, gate) is already open (opened by rule old)"


def test_carry_subjects_on_one_market_pair_are_one_position():
    budget = RiskBudget(RiskLimits())
    assert budget.decide(Subject("funding", "BTC", ("okx",)), 100, 1, "a").kind == "open"
    assert budget.decide(Subject("basis", "BTC", ("okx",)), 100, 1, "b").kind == "already_open"
    assert budget.decide(Subject("funding", "BTC", ("gate",)), 100, 1, "c").kind == "open"


def test_evaluate_decides_best_expected_net_first():
    # three spreads on SOL against binance (0%): okx 0.30%, gate 0.20%, bybit 0.10% per 8h;
    # fees 2 x (0.05% + 0.05%) = 0.2% (bybit perp 0.055%: 2 x 0.105% = 0.21%)
    rs = ruleset(
        "set v = okx, gate, bybit\n"
        "rule r:\n for x in v\n when spread(SOL, x, binance) > 0%\n then hedge 1000 USDT\n"
        "risk:\n max_total_exposure 1500 USDT\n"
    )
    v = view(
        perp("binance", "SOL", 0.0),
        perp("okx", "SOL", 0.003),
        perp("gate", "SOL", 0.002),
        perp("bybit", "SOL", 0.001),
    )
    ev = evaluate(rs, v)
    got = [(o.bindings["x"], o.decision, o.amount) for o in ev.opportunities]
    # okx (net 0.10% -> 1.00 USDT) opens 1000; gate (net 0%) gets the 500 left; bybit blocked
    assert got == [("okx", "open", 1000), ("gate", "cut", 500), ("bybit", "blocked", 1000)]
    okx, gate, bybit = ev.opportunities
    assert okx.expected_net_8h == pytest.approx(1.0)  # 1000 x (0.3% - 0.2%)
    assert gate.expected_8h == pytest.approx(1.0)  # cut size 500 x 0.2%
    assert bybit.expected_net_8h == pytest.approx(-1.1)  # 1000 x (0.1% - 0.21%)


@pytest.mark.parametrize("amount", [0.0, -250.0, float("nan")])
def test_a_computed_amount_that_is_not_positive_is_blocked(amount):
    # `hedge` amounts may be computed from market data; only literals are checked.
    budget = RiskBudget(RiskLimits(max_total_exposure=2500.0))
    d = budget.decide(sol("okx", "gate"), amount, 1.0, "r")
    assert d.kind == "blocked"
    assert d.reason.endswith("is not positive")
    # nothing was taken from the room: a full 2500 still fits
    assert budget.decide(sol("okx", "bybit"), 2500.0, 1.0, "r").kind == "open"
