"""A rule's fingerprint tells a changed rule from an unchanged one across loads,
and the parse cache gives the same result as a fresh load."""

from __future__ import annotations

import pytest

from rulebook.lang import ParseCache, load_texts

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
