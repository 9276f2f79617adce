"""The runtime's entries read what they read every cycle once: the same records and
decisions as building them afresh.

- `_RuleInfo.of(ruleset)` holds the rules by name and the rules with a `close`
  and an `alert` action, as the entries used to build them every cycle.
- A fired binding's bindings dict is made once per ruleset binding and shared
  by its records: `_opportunity_record(..., bindings)` gives the record that
  `_opportunity_record(...)` (which asks `o.binding.as_dict()`) gives, for every
  fired and unfired opportunity of the shipped strategies over the example
  recording; `_opportunity_key` gives the key as (rule, sorted bindings).
- A record whose figures are not all floats (an integer, a numpy float, None)
  still goes through `_num`, as before."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from rulebook.engine import evaluate
from rulebook.lang import AlertAction, CloseAction, load_ruleset
from rulebook.market import ReplaySource
from rulebook.trading._runtime import Runtime, _num, _RuleInfo

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "examples" / "binance-bybit-okx-btc-eth-2023-2024.jsonl"


def _ruleset():  # type: ignore[no-untyped-def]
    rs = load_ruleset([ROOT / "strategies"]).ruleset
    assert rs is not None
    return rs


def test_the_rule_info_is_what_the_entries_built_every_cycle() -> None:
    rs = _ruleset()
    info = _RuleInfo.of(rs)
    assert info.ruleset is rs
    assert info.rules == {r.name: r for r in rs.rules}
    assert info.closing == {
        r.name for r in rs.rules if any(isinstance(a, CloseAction) for a in r.actions)
    }
    assert info.alerting == {
        r.name for r in rs.rules if any(isinstance(a, AlertAction) for a in r.actions)
    }
    assert info.alerting  # the shipped strategies do alert


def _same(a: object, b: object) -> bool:
    """Equal, NaN equal to NaN (a figure can be NaN)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and a == b


def test_the_shared_bindings_give_the_same_records() -> None:
    rs = _ruleset()
    runtime = Runtime.__new__(Runtime)  # only its key cache is used
    runtime._keys = {}
    compared = 0
    for n, view in enumerate(ReplaySource(EXAMPLE)):
        if n % 10:
            continue
        for o in evaluate(rs, view, include_unfired=n % 20 == 0).opportunities:
            key, bindings = runtime._opportunity_key(o)
            assert key == (o.rule, tuple(sorted(o.bindings.items())))
            assert bindings == o.bindings
            again = runtime._opportunity_key(o)
            assert again[0] is key and again[1] is bindings  # made once
            want = Runtime._opportunity_record(o, o.decision, o.reason, None, view.at)
            got = Runtime._opportunity_record(o, o.decision, o.reason, None, view.at, bindings)
            assert got.bindings is bindings
            fields = got.__dataclass_fields__
            assert all(_same(getattr(got, f), getattr(want, f)) for f in fields)
            compared += 1
    assert compared > 100


def test_figures_that_are_not_floats_still_go_through_num() -> None:
    """An int, a numpy float and None among the figures: each as `_num` makes it."""
    o = next(
        o
        for view in ReplaySource(EXAMPLE)
        for o in evaluate(_ruleset(), view).opportunities
        if o.fired and o.figures is not None
    )
    f = o.figures
    assert f is not None
    odd = SimpleNamespace(
        edge=3, apr=np.float64(0.25), fees=None, confidence=f.confidence, risk=f.risk,
        legs=f.legs, net=lambda d: np.float64(-1.5),
    )  # fmt: skip
    stand_in = SimpleNamespace(
        figures=odd, binding=o.binding, rule=o.rule, amount=o.amount, bindings=o.bindings
    )
    got = Runtime._opportunity_record(stand_in, "open", None, None, 1)  # type: ignore[arg-type]
    assert (got.edge, got.apr, got.fees, got.net_8h) == (3.0, 0.25, None, -1.5)
    assert all(type(x) is float for x in (got.edge, got.apr, got.net_8h))
    assert got.confidence == _num(f.confidence)
