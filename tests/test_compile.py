"""Compiled rules: bindings, subjects and resolved clauses, and what the
clauses mean when the engine evaluates them over small hand-made views.

The views are clearly synthetic observations (engine_helpers), chosen so
that each expected value can be worked out by hand from the numbers in the
test. Missing data is never an exception: a binding that lacks data is
skipped with the reason, even under `not`.
"""

from __future__ import annotations

import math

from engine_helpers import borrow, perp, spot, view

from rulebook.engine import PositionValues, SnapshotEnv, check_exit, evaluate
from rulebook.lang import (
    AlertAction,
    CloseAction,
    HedgeAction,
    Subject,
    ir,
    load_texts,
)


def compile_one(text: str):
    res = load_texts({"t.rules": text})
    assert res.ok, [(d.code, d.message) for d in res.diagnostics]
    return res.ruleset


def outcome(rs, *obs):
    """Per binding (in ruleset order): True/False (fired or not), or the skip reason."""
    ev = evaluate(rs, view(*obs), include_unfired=True)
    out = {o.order: o.fired for o in ev.opportunities}
    out.update({s.order: s.reason for s in ev.skipped})
    return [out[k] for k in sorted(out)]


def explained(rs, *obs):
    """The explanation of the ruleset's first binding."""
    ev = evaluate(rs, view(*obs), include_unfired=True, explain=True)
    (entry,) = [*ev.opportunities, *ev.skipped]
    return entry.explanation


def test_spread_is_the_difference_of_normalised_funding():
    rs = compile_one("when spread(SOL, backpack, binance) > 0.1% then hedge 1000 USDT")
    rule = rs.rules[0]
    assert rule.name == "t:1"  # a one-line rule is named after its file and line
    (b,) = rule.bindings
    assert b.subject == Subject("spread", "SOL", ("backpack", "binance"))
    assert isinstance(rule.when, ir.Compare) and isinstance(rule.when.left, ir.MarketCall)
    # Backpack +0.01%/1h is 0.08% per 8h; Binance -0.02% per 8h: spread 0.10%.
    binance = perp("binance", "SOL", -0.0002, 8)
    assert outcome(rs, perp("backpack", "SOL", 0.0001, 1), binance) == [False]  # not > 0.10%
    assert outcome(rs, perp("backpack", "SOL", 0.00010125, 1), binance) == [True]  # 0.101%


def test_for_expands_every_combination_and_skips_equal_exchanges():
    rs = compile_one(
        """
        set coins = BTC, ETH
        set venues = binance, okx, gate
        rule r:
            for coin in coins, hi in venues, lo in venues
            when spread(coin, hi, lo) > 0.05% then hedge 1000 USDT
        """
    )
    rule = rs.rules[0]
    # 2 coins x 3 x 3 venue pairs, less the 3 pairs with hi == lo: 2 x 6 = 12.
    assert len(rule.bindings) == 12
    assert all(b.values[1] != b.values[2] for b in rule.bindings)
    first = rule.bindings[0]
    assert first.as_dict() == {"coin": "BTC", "hi": "binance", "lo": "okx"}
    assert first.subject == Subject("spread", "BTC", ("binance", "okx"))
    # Subjects are shared objects, so an engine can cache metrics per subject.
    again = rule.binding_for({"coin": "BTC", "hi": "binance", "lo": "okx"})
    assert again.subject is first.subject
    # the variables are resolved to their slots
    call = rule.when.left
    assert [a.slot for a in (call.coin, *call.exchanges)] == [0, 1, 2]


def test_bracket_list_source_and_fixed_coin():
    rs = compile_one(
        "rule r: for x in [okx, gate] when funding(ETH, x) > 0.01% and funding(ETH, x) < 1% then close"
    )
    rule = rs.rules[0]
    assert [b.values for b in rule.bindings] == [("okx",), ("gate",)]
    obs = [perp("okx", "ETH", 0.0002), perp("gate", "ETH", 0.00005), spot("okx", "ETH")]
    assert outcome(rs, *obs) == [True, False]
    assert rule.actions == [CloseAction()]


def test_missing_data_is_a_skip_with_reason_even_under_not():
    rs = compile_one('when not (funding(SOL, gate) > 0.1%) then alert "x"')
    # gate answered, but not for SOL
    assert outcome(rs, perp("gate", "BTC", 0.0001)) == ["SOL not listed on gate"]


def test_and_or_short_circuit_in_source_order():
    rs = compile_one('when funding(SOL, okx) > 0.1% or funding(SOL, gate) > 0.1% then alert "x"')
    gate = perp("gate", "BTC", 0.0001)  # gate has no SOL
    # okx holds: gate's missing SOL is never read, the binding fires
    assert outcome(rs, perp("okx", "SOL", 0.002), spot("okx", "SOL"), gate) == [True]
    steps = [s.text for s in explained(rs, perp("okx", "SOL", 0.002), spot("okx", "SOL"), gate).steps]
    assert "funding(SOL, gate)" not in steps
    # okx does not hold: now gate must be read, and it is missing
    assert outcome(rs, perp("okx", "SOL", 0.0), gate) == ["SOL not listed on gate"]


def test_metrics_net_and_apr():
    rs = compile_one(
        """
        when funding(BTC, bybit) > 0% and net(24h) > 0.05% and apr(edge) > 100%
            and confidence >= 0.8 and breakeven < 24h and risk == low
        then hedge 500 USDT
        """
    )
    rule = rs.rules[0]
    b = rule.bindings[0]
    assert b.subject == Subject("funding", "BTC", ("bybit",))
    # funding 0.1% per 8h >= 0: edge 0.1%; fees 2 x (0.05% + 0.05%) = 0.2%:
    # net(24h) = 0.1% x 3 - 0.2% = 0.1% (> 0.05%); apr(edge) = 109.5% (> 100%);
    # marks equal to the index and fresh: confidence 1; breakeven 16h: risk low.
    fund = perp("bybit", "BTC", 0.001, fee=0.0005)
    ev = evaluate(rs, view(fund, spot("bybit", "BTC", fee=0.0005)), explain=True)
    (o,) = ev.opportunities
    assert o.fired and o.requested == 500.0
    steps = {s.text: s.value for s in o.explanation.steps}
    assert steps["net(24h)"] == "0.1%" and steps["apr(edge)"] == "109.5%"
    assert steps["breakeven"] == "16h" and steps["risk"] == "low"
    # spot fee 0.10%: fees 0.3%, net(24h) = 0.3% - 0.3% = 0%: not > 0.05%
    assert outcome(rs, fund, spot("bybit", "BTC", fee=0.001)) == [False]
    (hedge,) = rule.actions
    assert isinstance(hedge, HedgeAction) and isinstance(hedge.amount, ir.Const)


def test_apr_of_the_spec_examples():
    rs = compile_one(
        'let r = 0.15%\nwhen funding(BTC, okx) > 0% and apr(r) == 164.25% then alert "x"'
    )
    # 0.15% x 3 x 365 = 164.25%; floats: compare through explain's formatting instead
    why = explained(rs, perp("okx", "BTC", 0.0001), spot("okx", "BTC"))
    assert ("apr(r)", "164.25%") in [(s.text, s.value) for s in why.steps]


def test_exit_clause_reads_position_values_and_entry_bindings():
    rs = compile_one(
        """
        set venues = binance, okx
        rule r:
            for hi in venues, lo in venues
            when spread(ETH, hi, lo) > 0.05% then hedge 1000 USDT
            exit when spread(ETH, hi, lo) < 0.01% or held > 48h or pnl < -20 USDT
        """
    )
    rule = rs.rules[0]
    b = rule.binding_for({"hi": "okx", "lo": "binance"})
    env = SnapshotEnv(view(perp("okx", "ETH", 0.0004), perp("binance", "ETH", 0.0001)))

    def closes(held_h: float, pnl: float) -> bool:
        return check_exit(rule, b, env, PositionValues(held_h * 3600.0, pnl, 0.0)).close

    assert closes(47, -5.0) is False  # spread 0.03%, 47h, -5 USDT
    assert closes(48 + 1 / 3600, -5.0) is True
    assert closes(1, -20.01) is True


def test_arithmetic_constants_and_scaling():
    rs = compile_one(
        """
        let size = 1000 USDT
        let floor = 0.02%
        when basis(SOL, okx) * 2 - floor > floor / 2 and price(SOL, okx) / 100 > 1.5
        then hedge size * 1.5
        """
    )
    rule = rs.rules[0]
    b = rule.bindings[0]
    assert b.subject == Subject("basis", "SOL", ("okx",))
    # mark 182, spot mid 181.9636 (bid/ask 0.01 either side): basis 0.02%;
    # 0.02% x 2 - 0.02% = 0.02% > 0.01%; 182 / 100 = 1.82 > 1.5
    mid = 182.0 / 1.0002
    obs = [perp("okx", "SOL", 0.0001, mark=182.0, index=182.0), spot("okx", "SOL", mid - 0.01, mid + 0.01)]
    ev = evaluate(rs, view(*obs))
    (o,) = ev.opportunities
    assert o.requested == 1500.0


def test_division_by_zero_at_run_time_is_a_skip_with_reason():
    rs = compile_one('when funding(SOL, okx) / funding(SOL, gate) > 2 then alert "x"')
    (reason,) = outcome(rs, perp("okx", "SOL", 0.001), perp("gate", "SOL", 0.0))
    assert reason == "division by zero in funding(SOL, okx) / funding(SOL, gate)"


def test_borrow_subject_and_min_max_abs():
    rs = compile_one(
        "when borrow(ETH, bybit) < 0.02% and max(abs(funding(ETH, bybit)), 0.01%) > 0.03% "
        "and min(edge, 1%) > 0.01% then hedge 1000 USDT"
    )
    rule = rs.rules[0]
    b = rule.bindings[0]
    assert b.subject == Subject("borrow", "ETH", ("bybit",))
    # borrow 0.03%/day = 0.01% per 8h; edge -(-0.05%) - 0.01% = 0.04%
    obs = [perp("bybit", "ETH", -0.0005), spot("bybit", "ETH"), borrow("bybit", "ETH", 0.0003)]
    assert outcome(rs, *obs) == [True]
    steps = {s.text: s.value for s in explained(rs, *obs).steps}
    assert steps["min(edge, 1%)"] == "0.04%"
    assert steps["max(abs(funding(ETH, bybit)), 0.01%)"] == "0.05%"


def test_explain_records_each_sub_expression_in_order():
    rs = compile_one(
        "when spread(SOL, backpack, binance) > 0.1% and confidence > 0.7 then hedge 1000 USDT"
    )
    backpack, binance = perp("backpack", "SOL", 0.0001, 1), perp("binance", "SOL", -0.0002)
    ex = explained(rs, backpack, binance)
    assert ex.fired is False and ex.no_data is None
    assert [(s.text, s.value) for s in ex.steps] == [
        ("spread(SOL, backpack, binance)", "0.1%"),
        ("spread(SOL, backpack, binance) > 0.1%", "false"),
        ("spread(SOL, backpack, binance) > 0.1% and confidence > 0.7", "false"),
    ]
    missing = explained(rs, backpack, perp("binance", "BTC", 0.0001))
    assert missing.fired is None
    assert missing.no_data == "SOL not listed on binance"
    assert missing.steps[0].value == "no data: SOL not listed on binance"


def test_alert_template_is_rendered_with_bindings_and_figures():
    rs = compile_one(
        "set v = okx, gate\nrule r: for x in v when funding(BTC, x) > 0.1% "
        'then alert "funding {x}: {edge} ({apr} APR)"'
    )
    rule = rs.rules[0]
    (alert,) = rule.actions
    assert isinstance(alert, AlertAction)
    text = alert.render(rule.bindings[1], {"edge": "0.12%", "apr": "131.4%"})
    assert text == "funding gate: 0.12% (131.4% APR)"


def test_risk_block_compiles_to_limits_in_base_units():
    rs = compile_one(
        """
        when funding(BTC, okx) > 0.1% then hedge 1000 USDT
        risk:
            max_total_exposure 20000 USDT
            max_single_position 5000 USDT
            max_open_positions 12
            max_hold 3d
            stop_loss 2%
            min_confidence 0.5
        """
    )
    r = rs.risk
    assert (r.max_total_exposure, r.max_single_position, r.max_open_positions) == (
        20000.0,
        5000.0,
        12,
    )
    assert r.max_hold == 3 * 86400.0  # seconds
    assert math.isclose(r.stop_loss, 0.02)
    assert r.min_confidence == 0.5
    assert compile_one("when funding(BTC, okx) > 0.1% then close").risk.max_hold is None


def test_ruleset_digest_is_stable_and_follows_content():
    text = "when funding(BTC, okx) > 0.1% then close\n"
    a = load_texts({"a.rules": text}).ruleset.sha256
    assert a == load_texts({"a.rules": text}).ruleset.sha256
    assert a != load_texts({"a.rules": text.replace("0.1%", "0.2%")}).ruleset.sha256
    assert len(a) == 64


def test_shipped_strategies_compile(repo_root):
    from rulebook.lang import load_ruleset

    res = load_ruleset([repo_root / "strategies"])
    assert res.ok and not res.warnings
    names = {r.name for r in res.ruleset.rules}
    assert {"cross_majors", "extreme_long_crowd", "carry_majors", "borrow_carry_majors"} <= names
    kinds = {r.subject_kind for r in res.ruleset.rules}
    assert kinds == {"spread", "funding", "borrow"}
    cross = res.ruleset.rule("cross_majors")
    # 3 majors x 6 venues x 5 other venues
    assert len(cross.bindings) == 90


def test_markets_cover_every_market_call_not_only_subjects():
    rs = compile_one(
        """
        set coins = BTC, ETH
        set venues = okx, gate
        rule cross:
            for c in coins, a in venues, b in venues
            when spread(c, a, b) > 0.05% then hedge 1000 USDT
            exit when price(SOL, bitget) > 10 or held > 1d
        rule volume_watch:
            for x in [binance, bybit]
            when volume(DOGE, x) > 1e9 then alert "DOGE volume on {x}"
        """
    )
    # volume_watch has no subject, yet a live source must fetch DOGE on both
    # venues for it; the exit clause's price(SOL, bitget) counts too.
    assert rs.rule("volume_watch").markets.coins == ("DOGE",)
    assert rs.rule("volume_watch").markets.exchanges == ("binance", "bybit")
    m = rs.markets()
    assert m.coins == ("BTC", "ETH", "SOL", "DOGE")
    assert m.exchanges == ("binance", "bybit", "okx", "gate", "bitget")  # the language's order
