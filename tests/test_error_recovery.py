"""All errors of a file are reported in one run (spec section 8), without cascades."""

from __future__ import annotations

from rulebook.lang import load_texts


def codes_at(texts: dict[str, str | bytes]) -> list[tuple[str, str, int, int]]:
    return [(d.file, d.code, d.line, d.column) for d in load_texts(texts).diagnostics]


def test_several_independent_errors_are_all_reported():
    text = (
        "set venues = okx, gate\n"
        "rule r:\n"
        "    for v in venues\n"
        "    when spread(SOL, v, binanse) > 0.1 and sprd(SOL, okx) > 0%\n"
        "    then hedge 10\n"
        "risk:\n"
        "    max_hol 72h\n"
    )
    assert codes_at({"t.rules": text}) == [
        ("t.rules", "E105", 4, 10),
        ("t.rules", "E102", 4, 25),
        ("t.rules", "E103", 4, 44),
        ("t.rules", "E105", 5, 16),
        ("t.rules", "E108", 7, 5),
    ]


def test_statements_after_a_syntax_error_are_still_checked():
    text = (
        "let a = 1%\n"
        "let b = 1% 2\n"
        "when spread(SOL, okx, gate) > a then hedge 10 USDT\n"
        "\n"
        "when spread(SOL, okz, gate) > a then hedge 10 USDT\n"
    )
    assert codes_at({"t.rules": text}) == [
        ("t.rules", "E001", 2, 12),
        ("t.rules", "E102", 5, 18),
    ]


def test_names_defined_by_a_broken_statement_do_not_cascade_into_e101():
    text = (
        "let min_edge = 0.1% %\n"
        "set venues = okx gate\n"
        "rule r:\n"
        "    for v in venues\n"
        "    when funding(SOL, v) > min_edge then hedge 10 USDT\n"
    )
    # no "unknown name 'min_edge'" nor "unknown set 'venues'"
    assert codes_at({"t.rules": text}) == [
        ("t.rules", "E001", 1, 21),
        ("t.rules", "E001", 2, 18),
    ]


def test_several_syntax_errors_in_one_file():
    text = (
        "when funding(SOL, okx) > 0.1% @ then close\n"
        'when funding(SOL, gate) > 0.1% then alert "oops\n'
        "when funding(SOL, bybit) > 0.1% then hedge 10x\n"
        "when funding(SOL, bitget) > 0.1% then close\n"
    )
    assert codes_at({"t.rules": text}) == [
        ("t.rules", "E001", 1, 31),
        ("t.rules", "E001", 2, 43),
        ("t.rules", "E001", 3, 44),
    ]


def test_errors_of_every_file_of_a_ruleset_are_reported():
    found = codes_at(
        {
            "a.rules": "when spread(SOL, okx, gat) > 0.1% then close\n",
            "b.rules": "when spread(SOL, okx, gate) > 0.1 then close\n",
            "c.rules": b"let x = \xfe\n",
        }
    )
    assert found == [
        ("a.rules", "E102", 1, 23),
        ("b.rules", "E105", 1, 6),
        ("c.rules", "E001", 1, 9),
    ]


def test_a_rule_with_an_error_is_not_compiled_but_the_others_are_checked():
    result = load_texts(
        {
            "t.rules": "rule good:\n when funding(SOL, okx) > 0% then close\n"
            "rule bad:\n when funding(SOL, okz) > 0% then close\n"
        }
    )
    assert [d.code for d in result.diagnostics] == ["E102"]
    assert result.ruleset is None


def test_mistakes_inside_a_second_risk_block_are_reported_too():
    text = "risk:\n    max_hold 72h\nrisk:\n    max_hol 2h\n    stop_loss 0.02\n"
    assert codes_at({"t.rules": text}) == [
        ("t.rules", "E108", 3, 1),
        ("t.rules", "E108", 4, 5),
        ("t.rules", "E105", 5, 15),
    ]


def test_sets_and_constants_used_by_a_broken_statement_are_not_reported_unused():
    text = (
        "set majors = BTC, ETH\n"
        "let min_edge = 0.05%\n"
        "rule r:\n"
        "    for c in majors\n"
        "    when funding(c, okx) > min_edge +\n"
        "    then hedge 5 USDT\n"
    )
    # one mistake, one diagnostic: no W202 for majors nor min_edge
    assert codes_at({"t.rules": text}) == [("t.rules", "E001", 6, 5)]


def test_unused_names_are_still_reported_in_a_file_with_a_syntax_error():
    text = "set spare = BTC\nwhen funding(SOL, okx) > 0.1% @ then close\n"
    assert codes_at({"t.rules": text}) == [
        ("t.rules", "W202", 1, 5),
        ("t.rules", "E001", 2, 31),
    ]


def test_an_incomplete_statement_does_not_swallow_the_next_one():
    text = (
        "let min_edge = 0.1%\n"
        "set venues = okx, gate,\n"
        "rule r:\n"
        "    for v in [okx, gate]\n"
        "    when funding(SOL, v) > min_edge then hedge 10 USDT\n"
        "when funding(SOL, okz) > 0% then close\n"
    )
    result = load_texts({"t.rules": text})
    assert [(d.code, d.line, d.column) for d in result.diagnostics] == [
        ("E001", 3, 1),  # at the keyword that shows `set venues` is incomplete
        ("E102", 6, 19),  # the rule and the next statement are still checked
    ]
    assert result.diagnostics[0].hint == "the statement before this 'rule' is not complete"


def test_an_incomplete_for_takes_its_rule_body_with_it():
    text = (
        "rule r: for c in\n"
        "when funding(c, okx) > 0% then close\n"
        "when funding(SOL, okz) > 0% then close\n"
    )
    # no E101 for `c`: the body on line 2 belongs to the broken rule
    assert codes_at({"t.rules": text}) == [
        ("t.rules", "E001", 2, 1),
        ("t.rules", "E102", 3, 19),
    ]


def test_rules_with_an_error_anywhere_are_not_counted_as_checked():
    result = load_texts(
        {
            "t.rules": "rule r: for c in [SOL, SOL] when funding(c, okx) > 0% then close\n"
            "rule r: when funding(SOL, okx) > 0% then close\n"
            "rule ok: when funding(SOL, okx) > 0% then close\n"
        }
    )
    assert [d.code for d in result.diagnostics] == ["E106", "E106"]
    assert result.program is not None
    assert [c.rule.name for c in result.program.rules] == ["ok"]


def test_a_file_with_a_bad_byte_is_still_checked_and_still_defines_its_names():
    latin1 = "set majors = BTC, ETH\n# réglages\nwhen funding(SOL, okz) > 0% then close\n"
    found = codes_at(
        {
            "a.rules": latin1.encode("latin-1"),
            "b.rules": "rule r: for c in majors when funding(c, okx) > 0% then close\n",
        }
    )
    # no "unknown set 'majors'" in b.rules, and the E102 after the bad byte is found
    assert found == [("a.rules", "E001", 2, 4), ("a.rules", "E102", 3, 19)]
