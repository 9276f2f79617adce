"""The default evaluation's fast path gives exactly the general path's results.

Without `--all` or `--explain`, `evaluate` sorts and decides the fired entries
on arrays and builds each Opportunity once, decided; `--all` (and
`--explain`) build the objects first, then sort and decide them one by one
(`decide`). On random views with data gaps, random risk limits and random
books, the fired entries of both are the same, field for field and in the
same order, and so are the skipped ones. The rules short-circuit on purpose
(a cheap first conjunct that fails for most bindings), to cover the
evaluator's sub-batches too.
"""

from __future__ import annotations

from contextlib import contextmanager

from engine_helpers import ruleset
from hypothesis import given, settings
from hypothesis import strategies as st
from test_engine_vector import RULES, random_view

from rulebook.engine import Book, OpenPosition, _evaluator, evaluate
from rulebook.engine._evaluate import decide
from rulebook.lang import Subject

RISKS = [
    "",
    "risk:\n    min_confidence 0.7\n    max_hold 3d\n",  # nothing counted: decided on arrays
    "risk:\n    max_total_exposure 2500 USDT\n",
    "risk:\n    max_single_position 400 USDT\n    min_confidence 0.6\n",
    "risk:\n    max_open_positions 3\n    max_total_exposure 1005 USDT\n",
    "risk:\n    max_total_exposure 5000 USDT\n    max_single_position 150 USDT\n"
    "    max_open_positions 7\n    min_confidence 0.2\n",
]

# rules whose first conjunct fails for most bindings, and rules sharing subjects
EXTRA = """
rule rare_first:
    for c in coins, a in venues, b in venues
    when spread(c, a, b) > 0.15% and confidence > 0.2 and fees < 1%
    then hedge 700 USDT
rule rare_carry:
    for c in coins, x in venues
    when funding(c, x) > 0.12% and basis(c, x) > -1% and net(3d) > 0% and risk != high
    then hedge 300 USDT
rule rare_or:
    for c in coins, x in venues
    when (funding(c, x) > 0.15% and edge > 0%) or (funding(c, x) < -0.15% and edge > 0%)
    then hedge 100 USDT
"""

RULESETS = [ruleset(RULES + EXTRA + risk) for risk in RISKS]

BOOK_SUBJECTS = [
    Subject("spread", "BTC", ("okx", "gate")),
    Subject("spread", "ETH", ("binance", "bybit")),
    Subject("funding", "SOL", ("okx",)),
    Subject("basis", "BTC", ("backpack",)),
    Subject("borrow", "1000PEPE", ("bitget",)),
    Subject("funding", "DOGE", ("okx",)),  # a coin no rule names
]


@contextmanager
def short_circuit_from(n: int):
    """Short-circuit batches of n bindings and more (the tests' batches are small)."""
    saved = _evaluator.SHORT_CIRCUIT_MIN
    _evaluator.SHORT_CIRCUIT_MIN = n
    try:
        yield
    finally:
        _evaluator.SHORT_CIRCUIT_MIN = saved


def fired_dicts(ev) -> list[dict]:
    return [o.to_dict() for o in ev.opportunities if o.fired]


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 10_000),
    st.integers(0, len(RISKS) - 1),
    st.lists(st.integers(0, len(BOOK_SUBJECTS) - 1), max_size=4, unique=True),
    st.sampled_from([0, 50, 10**9]),
)
def test_fast_path_decides_as_the_general_path(seed, risk, held, short_circuit):
    rs = RULESETS[risk]
    v = random_view(seed)
    book = Book([OpenPosition("old", {}, BOOK_SUBJECTS[k], 250.0) for k in held])
    with short_circuit_from(short_circuit):
        fast = evaluate(rs, v, book)
    general = evaluate(rs, v, book, include_unfired=True)
    assert fired_dicts(fast) == fired_dicts(general)
    assert [(o.order, o.alerts) for o in fast.opportunities] == [
        (o.order, o.alerts) for o in general.opportunities if o.fired
    ]
    assert [s.to_dict() for s in fast.skipped] == [s.to_dict() for s in general.skipped]
    # and deciding the fast path's entries again, one by one, changes nothing
    with short_circuit_from(short_circuit):
        again = evaluate(rs, v, book)
    decide(again.opportunities, rs, book)
    assert fired_dicts(again) == fired_dicts(fast)


def test_the_comparison_is_not_vacuous():
    # every decision occurs across the risk blocks, with and without a book
    kinds = set()
    for risk in range(len(RISKS)):
        for seed in range(12):
            book = Book([OpenPosition("old", {}, BOOK_SUBJECTS[0], 250.0)])
            for ev in (evaluate(RULESETS[risk], random_view(seed), book),):
                kinds |= {o.decision for o in ev.opportunities}
    assert {"open", "already_open", "cut", "blocked", None} <= kinds


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_short_circuit_agrees_with_explain(seed):
    # with a trace nothing short-circuits: every node is evaluated everywhere
    v = random_view(seed)
    rs = RULESETS[0]
    with short_circuit_from(0):
        default = evaluate(rs, v)
    explained = evaluate(rs, v, explain=True)
    assert [o.to_dict() for o in default.opportunities] == [
        {k: x for k, x in o.to_dict().items() if k != "explain"} for o in explained.opportunities
    ]
    assert [s.to_dict() for s in default.skipped] == [
        {k: x for k, x in s.to_dict().items() if k != "explain"} for s in explained.skipped
    ]


def test_the_short_circuit_is_taken():
    # a first conjunct that fails for most bindings: later ones see a sub-batch
    seen: list[int] = []
    walk = _evaluator._Run.walk

    def spy(self, t, lo, hi):
        seen.append(self.batch.n)
        return walk(self, t, lo, hi)

    _evaluator._Run.walk = spy  # type: ignore[method-assign]
    try:
        with short_circuit_from(0):
            evaluate(RULESETS[0], random_view(3))
    finally:
        _evaluator._Run.walk = walk  # type: ignore[method-assign]
    rare = next(r for r in RULESETS[0].rules if r.name == "rare_first")
    assert len(rare.bindings) in seen  # the whole batch
    assert any(0 < n < len(rare.bindings) // 2 for n in seen)  # and a sub-batch
