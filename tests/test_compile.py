"""Compiled evaluators against small hand-made views of the market.

The view here is a test double of the engine's Env (the way httpx tests use a
MockTransport): plain dicts of per-8h rates and metrics, so that each expected
value can be worked out by hand from the numbers in the test.
"""

from __future__ import annotations

import math

import pytest

from rulebook.lang import (
    AlertAction,
    CloseAction,
    HedgeAction,
    NoData,
    Subject,
    load_texts,
)


class DictEnv:
    """An Env over dicts; anything absent is missing data, as in a snapshot."""

    def __init__(
        self, funding=None, borrow=None, basis=None, price=None, metrics=None, position=None
    ):
        self.funding_ = funding or {}
        self.borrow_ = borrow or {}
        self.basis_ = basis or {}
        self.price_ = price or {}
        self.metrics = metrics or {}
        self.position_ = position or {}
        self.calls: list[tuple[str, str, str]] = []

    def _get(self, table, what, coin, ex):
        self.calls.append((what, coin, ex))
        if (coin, ex) not in table:
            raise NoData(f"{coin} not listed on {ex}")
        return table[(coin, ex)]

    def funding(self, coin, ex):
        return self._get(self.funding_, "funding", coin, ex)

    def borrow(self, coin, ex):
        return self._get(self.borrow_, "borrow", coin, ex)

    def basis(self, coin, ex):
        return self._get(self.basis_, "basis", coin, ex)

    def price(self, coin, ex):
        return self._get(self.price_, "price", coin, ex)

    def volume(self, coin, ex):
        raise NoData(f"no volume for {coin} on {ex}")

    def next_funding(self, coin, ex):
        return 1800.0

    def metric(self, name, subject):
        return self.metrics[(name, subject)]

    def position(self, name):
        return self.position_[name]


def compile_one(text: str):
    res = load_texts({"t.rules": text})
    assert res.ok, [(d.code, d.message) for d in res.diagnostics]
    return res.ruleset


def test_spread_is_the_difference_of_normalised_funding():
    rs = compile_one("when spread(SOL, backpack, binance) > 0.1% then hedge 1000 USDT")
    rule = rs.rules[0]
    assert rule.name == "t:1"  # a one-line rule is named after its file and line
    (b,) = rule.bindings
    assert b.subject == Subject("spread", "SOL", ("backpack", "binance"))
    # Backpack +0.01%/1h is 0.08% per 8h; Binance -0.02% per 8h: spread 0.10%.
    env = DictEnv(funding={("SOL", "backpack"): 0.0008, ("SOL", "binance"): -0.0002})
    assert rule.when(env, b) is False  # 0.10% is not > 0.10%
    env.funding_[("SOL", "backpack")] = 0.00081
    assert rule.when(env, b) is True


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


def test_bracket_list_source_and_fixed_coin():
    rs = compile_one(
        "rule r: for x in [okx, gate] when funding(ETH, x) > 0.01% and funding(ETH, x) < 1% then close"
    )
    rule = rs.rules[0]
    assert [b.values for b in rule.bindings] == [("okx",), ("gate",)]
    env = DictEnv(funding={("ETH", "okx"): 0.0002, ("ETH", "gate"): 0.00005})
    assert [rule.when(env, b) for b in rule.bindings] == [True, False]
    assert rule.actions == [CloseAction()]


def test_missing_data_raises_nodata_even_under_not():
    rs = compile_one('when not (funding(SOL, gate) > 0.1%) then alert "x"')
    rule = rs.rules[0]
    with pytest.raises(NoData) as info:
        rule.when(DictEnv(), rule.bindings[0])
    assert info.value.reason == "SOL not listed on gate"


def test_and_or_short_circuit_in_source_order():
    rs = compile_one('when funding(SOL, okx) > 0.1% or funding(SOL, gate) > 0.1% then alert "x"')
    rule = rs.rules[0]
    env = DictEnv(funding={("SOL", "okx"): 0.002})  # gate missing, never read
    assert rule.when(env, rule.bindings[0]) is True
    assert env.calls == [("funding", "SOL", "okx")]
    env = DictEnv(funding={("SOL", "okx"): 0.0})  # now gate must be read
    with pytest.raises(NoData):
        rule.when(env, rule.bindings[0])


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
    s = Subject("funding", "BTC", ("bybit",))
    assert b.subject == s
    # edge 0.1% per 8h, fees 0.2%: net(24h) = 0.1% x 3 - 0.2% = 0.1% (> 0.05%);
    # apr(edge) = 0.1% x 3 x 365 = 109.5% (> 100%).
    metrics = {
        ("edge", s): 0.001,
        ("fees", s): 0.002,
        ("confidence", s): 0.8,
        ("breakeven", s): 16 * 3600.0,
        ("risk", s): 0,
    }
    env = DictEnv(funding={("BTC", "bybit"): 0.001}, metrics=metrics)
    assert rule.when(env, b) is True
    metrics[("fees", s)] = 0.0025  # net(24h) = 0.3% - 0.25% = 0.05%: not > 0.05%
    assert rule.when(env, b) is False
    (hedge,) = rule.actions
    assert isinstance(hedge, HedgeAction) and hedge.amount(env, b) == 500.0


def test_apr_of_the_spec_examples():
    rs = compile_one(
        'let r = 0.15%\nwhen funding(BTC, okx) > 0% and apr(r) == 164.25% then alert "x"'
    )
    env = DictEnv(funding={("BTC", "okx"): 0.0001})
    # 0.15% x 3 x 365 = 164.25%; floats: compare through explain's formatting instead
    explanation = rs.rules[0].explain(env, rs.rules[0].bindings[0])
    assert ("apr(r)", "164.25%") in [(s.text, s.value) for s in explanation.steps]


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
    env = DictEnv(
        funding={("ETH", "okx"): 0.0004, ("ETH", "binance"): 0.0001},
        position={"held": 47 * 3600.0, "pnl": -5.0},
    )
    assert rule.exit_when(env, b) is False  # spread 0.03%, 47h, -5 USDT
    env.position_["held"] = 48 * 3600.0 + 1
    assert rule.exit_when(env, b) is True
    env.position_["held"] = 3600.0
    env.position_["pnl"] = -20.01
    assert rule.exit_when(env, b) is True


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
    # 0.02% x 2 - 0.02% = 0.02% > 0.01%; 182 / 100 = 1.82 > 1.5
    env = DictEnv(basis={("SOL", "okx"): 0.0002}, price={("SOL", "okx"): 182.0})
    assert rule.when(env, b) is True
    assert rule.actions[0].amount(env, b) == 1500.0


def test_division_by_zero_at_run_time_is_a_skip_with_reason():
    rs = compile_one('when funding(SOL, okx) / funding(SOL, gate) > 2 then alert "x"')
    rule = rs.rules[0]
    env = DictEnv(funding={("SOL", "okx"): 0.001, ("SOL", "gate"): 0.0})
    with pytest.raises(NoData) as info:
        rule.when(env, rule.bindings[0])
    assert "division by zero" in info.value.reason


def test_borrow_subject_and_min_max_abs():
    rs = compile_one(
        "when borrow(ETH, bybit) < 0.02% and max(abs(funding(ETH, bybit)), 0.01%) > 0.03% "
        "and min(edge, 1%) > 0.01% then hedge 1000 USDT"
    )
    rule = rs.rules[0]
    b = rule.bindings[0]
    s = Subject("borrow", "ETH", ("bybit",))
    assert b.subject == s
    env = DictEnv(
        funding={("ETH", "bybit"): -0.0005},
        borrow={("ETH", "bybit"): 0.0001},
        metrics={("edge", s): 0.0004},  # -(-0.05%) - 0.01% = 0.04%
    )
    assert rule.when(env, b) is True


def test_explain_records_each_sub_expression_in_order():
    rs = compile_one(
        "when spread(SOL, backpack, binance) > 0.1% and confidence > 0.7 then hedge 1000 USDT"
    )
    rule = rs.rules[0]
    b = rule.bindings[0]
    env = DictEnv(
        funding={("SOL", "backpack"): 0.0008, ("SOL", "binance"): -0.0002},
        metrics={("confidence", b.subject): 0.93},
    )
    ex = rule.explain(env, b)
    assert ex.fired is False and ex.no_data is None
    assert [(s.text, s.value) for s in ex.steps] == [
        ("spread(SOL, backpack, binance)", "0.1%"),
        ("spread(SOL, backpack, binance) > 0.1%", "false"),
        ("spread(SOL, backpack, binance) > 0.1% and confidence > 0.7", "false"),
    ]
    missing = rule.explain(DictEnv(funding={("SOL", "backpack"): 0.0008}), b)
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
