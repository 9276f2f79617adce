"""A rule's fingerprint tells a changed rule from an unchanged one across loads,
and the parse cache gives the same result as a fresh load."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rulebook.lang import ParseCache, load_texts
from rulebook.lang._parse import parse_bytes

BASE = """\
let edge_min = 0.1%
set coins = SOL, BTC

rule cross:
    for c in coins
    when spread(c, okx, gate) > edge_min and confidence > 0.7
    then hedge 1000 USDT
    exit when held > 48h
"""


def fingerprint(text: str, name: str = "cross") -> str:
    result = load_texts({"s.rules": text})
    assert result.ok, result.diagnostics
    assert result.ruleset is not None
    return result.ruleset.rule(name).fingerprint


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: "# a comment on top\n\n" + t,  # the rule moves down two lines
        lambda t: t.replace("0.1%", "0.10%"),  # same value, spelt differently
        lambda t: t.replace("for c in coins", "for x in coins").replace("(c,", "(x,"),
        lambda t: t.replace("    then", "        then"),  # indentation
        lambda t: t.replace("set coins = SOL, BTC", "set majors = SOL, BTC").replace(
            "in coins", "in majors"
        ),  # the set renamed, same members
    ],
)
def test_layout_and_spelling_do_not_change_a_rule(edit) -> None:
    assert fingerprint(edit(BASE)) == fingerprint(BASE)


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t.replace("> 0.7", "> 0.8"),  # a threshold in the rule
        lambda t: t.replace("let edge_min = 0.1%", "let edge_min = 0.2%"),  # a constant it uses
        lambda t: t.replace("SOL, BTC", "SOL, ETH"),  # the set it runs over
        lambda t: t.replace("1000 USDT", "900 USDT"),  # the action
        lambda t: t.replace("held > 48h", "held > 24h"),  # the exit clause
        lambda t: t.replace("    exit when held > 48h\n", ""),  # no exit clause any more
        lambda t: t.replace("okx, gate", "gate, okx"),  # argument order
    ],
)
def test_what_a_rule_does_changes_its_fingerprint(edit) -> None:
    assert fingerprint(edit(BASE)) != fingerprint(BASE)


def test_cached_load_equals_fresh_load_and_reuses_unchanged_files() -> None:
    other = "rule other: when funding(SOL, okx) > 0.05% then hedge 500 USDT\n"
    cache = ParseCache()
    first = load_texts({"a.rules": BASE, "b.rules": other}, cache)
    edited = BASE.replace("> 0.7", "> 0.8")
    cached = load_texts({"a.rules": edited, "b.rules": other}, cache)
    fresh = load_texts({"a.rules": edited, "b.rules": other})
    assert cached.ruleset is not None and fresh.ruleset is not None
    assert cached.ruleset.sha256 == fresh.ruleset.sha256
    assert [r.fingerprint for r in cached.ruleset.rules] == [
        r.fingerprint for r in fresh.ruleset.rules
    ]
    # b.rules did not change: its parsed file is the very object parsed the first time
    assert cached.parsed[1] is first.parsed[1]
    assert cached.parsed[0] is not first.parsed[0]


def test_cache_reports_a_broken_file_every_time() -> None:
    cache = ParseCache()
    broken = BASE.replace("> 0.7", "> ")
    for _ in range(2):
        result = load_texts({"a.rules": broken}, cache)
        assert [d.code for d in result.errors] == ["E001"]


# -- the statement-level parse cache gives exactly what a fresh parse gives -------------

STATEMENTS = [
    "set coins = SOL, BTC, ETH\n",
    "let edge_min = 0.1%\n",
    "# a comment\n",
    "\n",
    "rule a:\n    when spread(SOL, okx, gate) > 0.1% then hedge 1000 USDT\n",
    # a named rule whose `when` starts a line: not a statement boundary
    "rule b:\nwhen funding(BTC, okx) > 0.05%\nthen hedge 500 USDT\nexit when held > 8h\n",
    "when spread(ETH, binance, bybit) > 0.2% then hedge 100 USDT\n",  # anonymous
    'rule c: when funding(SOL, okx) > 0.1% then alert "rule set let risk: {edge}"\n',
    "risk:\n    max_hold 72h\n    stop_loss 2%\n",
    # `risk` the metric at the start of a line, inside a rule
    "rule d:\n    when funding(SOL, bybit) > 0.1% and\nrisk == low\n    then hedge 10 USDT\n",
]


def parse_both(text: str) -> tuple[object, object]:
    cache = ParseCache()
    cache.parse(b"", "f.rules")  # a previous version, so the cache is not empty
    cached = cache.parse(text.encode(), "f.rules")
    fresh = parse_bytes(text.encode(), "f.rules")
    return cached, fresh


@given(st.lists(st.sampled_from(STATEMENTS), min_size=1, max_size=12))
@settings(max_examples=150, deadline=None)
def test_statement_cache_parses_like_a_fresh_parse(parts: list[str]) -> None:
    text = "".join(parts)
    (rf, diags), (rf2, diags2) = parse_both(text)
    assert rf.statements == rf2.statements
    assert diags == diags2


@given(
    st.lists(st.sampled_from(STATEMENTS), min_size=2, max_size=8),
    st.integers(min_value=0, max_value=10_000),
)
@settings(max_examples=150, deadline=None)
def test_statement_cache_reports_syntax_errors_like_a_fresh_parse(
    parts: list[str], at: int
) -> None:
    text = "".join(parts)
    at %= len(text)
    broken = text[:at] + "@" + text[at:]  # a syntax error, unless it falls in a string or comment
    (rf, diags), (rf2, diags2) = parse_both(broken)
    assert diags == diags2
    assert rf.statements == rf2.statements
    assert (rf.lost_names, rf.lost_words) == (rf2.lost_names, rf2.lost_words)


def test_statement_cache_reparses_only_the_edited_statement() -> None:
    text = "".join(STATEMENTS[4:6] + STATEMENTS[:2])  # rule a, rule b, set, let
    cache = ParseCache()
    before, _ = cache.parse(text.encode(), "f.rules")
    after, _ = cache.parse(text.replace("0.05%", "0.06%").encode(), "f.rules")
    changed = [
        i
        for i, (x, y) in enumerate(zip(before.statements, after.statements, strict=True))
        if x is not y
    ]
    assert len(after.statements) == len(before.statements) == 4
    assert changed == [1]  # rule b, the only statement whose text changed


def test_statement_cache_on_a_broken_file_and_the_shipped_strategies() -> None:
    text = "".join(STATEMENTS[4:6] + STATEMENTS[:2]).replace("when funding", "when @funding")
    (rf, diags), (rf2, diags2) = parse_both(text)
    assert diags and {d.code for d in diags} == {"E001"} and diags == diags2
    assert rf.statements == rf2.statements and rf.lost_names == rf2.lost_names
    from pathlib import Path

    shipped = sorted(Path(__file__).parent.parent.glob("strategies/*.rules"))
    assert shipped
    for path in shipped:
        (rf, diags), (rf2, diags2) = parse_both(path.read_text())
        assert rf.statements == rf2.statements and diags == diags2 == [], path
