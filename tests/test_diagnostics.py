"""Golden tests of the checker's diagnostics: one or more per code of spec section 8.

Each test pins the code and where it points (line, column and, where the span
matters, end column), since an operator's editor jumps to that place.
"""

from __future__ import annotations

import pytest

from rulebook.lang import CODES, Diagnostic, load_texts

GOOD_RULE = "when spread(SOL, okx, gate) > 0.1% then hedge 10 USDT\n"


def diagnostics(text: str | bytes, path: str = "t.rules") -> list[Diagnostic]:
    return load_texts({path: text}).diagnostics


def one(text: str | bytes, code: str, path: str = "t.rules") -> Diagnostic:
    """The single diagnostic of a text, which must have this code."""
    found = diagnostics(text, path)
    assert [d.code for d in found] == [code], found
    return found[0]


def at(d: Diagnostic) -> tuple[str, int, int, int, int]:
    return (d.code, d.line, d.column, d.end_line, d.end_column)


def test_a_clean_file_has_no_diagnostics():
    result = load_texts({"t.rules": GOOD_RULE})
    assert result.diagnostics == []
    assert result.ok and result.ruleset is not None


def test_diagnostic_has_the_fields_of_the_json_format():
    d = one("when funding(SOL, okx) > 0% and volum(SOL, okx) > 1 then close\n", "E103")
    assert list(d.to_dict()) == [
        "file",
        "line",
        "column",
        "end_line",
        "end_column",
        "severity",
        "code",
        "message",
        "hint",
    ]
    assert d.file == "t.rules"
    assert d.severity == "error"


# -- E001: syntax errors ------------------------------------------------------------


def test_e001_unexpected_token():
    d = one("when spread(SOL, okx, gate) 0.1% then close\n", "E001")
    assert at(d) == ("E001", 1, 29, 1, 33)
    assert d.message == "unexpected rate '0.1%'" or d.message.startswith("unexpected")


def test_e001_unexpected_character():
    d = one("when spread(SOL, okx, gate) > 0.1% @ then close\n", "E001")
    assert at(d) == ("E001", 1, 36, 1, 37)
    assert d.message == "unexpected character '@'"


def test_e001_unterminated_string_spans_the_rest_of_the_line():
    d = one('when spread(SOL, okx, gate) > 0.1% then alert "oops\n', "E001")
    assert at(d) == ("E001", 1, 47, 1, 52)
    assert d.message == "unterminated string"


def test_e001_bad_unit():
    d = one("when spread(SOL, okx, gate) > 0.1% then hedge 10x\n", "E001")
    assert at(d) == ("E001", 1, 47, 1, 50)
    assert d.message == "bad unit 'x' after 10"
    assert "USDT" in d.hint


def test_e001_unit_word_after_a_space_is_reported_at_the_word():
    d = one("let wait = 8 hours\n", "E001")
    assert at(d) == ("E001", 1, 14, 1, 19)
    assert d.message == "unexpected name 'hours'"


def test_e001_unexpected_end_of_file_points_at_the_last_character():
    d = one("when spread(SOL, okx, gate) > 0.1% then\n\n", "E001")
    assert at(d) == ("E001", 1, 40, 1, 41)
    assert d.message.startswith("unexpected end of file")
    assert "'hedge'" in d.message


def test_e001_misplaced_keyword_is_reported_at_the_keyword():
    text = "rule r:\n    when spread(SOL, okx, gate) > 0.1% and\n    then hedge 10 USDT\n"
    d = one(text, "E001")
    assert at(d) == ("E001", 3, 5, 3, 9)
    assert d.message == "unexpected keyword 'then'"


def test_e001_keyword_used_as_a_name():
    d = one("let when = 1\n", "E001")
    assert at(d) == ("E001", 1, 5, 1, 9)
    assert d.hint == "'when' is a reserved word and cannot be used as a name"


def test_e001_chained_comparison():
    d = one("when 0% < funding(SOL, okx) < 1% then close\n", "E001")
    assert at(d) == ("E001", 1, 29, 1, 30)
    assert "chained" in d.hint


def test_e001_lower_case_unit_letter_is_not_an_exponent():
    # exponents are lower-case: 1e-4 is a number, and `1e` alone is a bad unit
    assert diagnostics("let tiny = 1e-4\nwhen funding(SOL, okx) > tiny * 1% then close\n") == []


def test_e001_not_utf8_gives_the_place_of_the_bad_byte():
    d = one(b"let a = 1%\nlet b = \xff2%\nwhen funding(SOL, okx) > a then close\n", "E001")
    assert at(d) == ("E001", 2, 9, 2, 10)
    assert d.message == "file is not UTF-8: byte 0xff cannot be decoded"


def test_a_utf8_byte_order_mark_is_accepted():
    assert diagnostics(b"\xef\xbb\xbf" + GOOD_RULE.encode()) == []


# -- E101 unknown name ------------------------------------------------------------


def test_e101_unknown_name_with_did_you_mean():
    text = "let min_edge = 0.1%\nwhen spread(SOL, okx, gate) > min_edg then close\n"
    # min_edge is also unused (W202), since the only use is misspelt
    [d] = [x for x in diagnostics(text) if x.code == "E101"]
    assert at(d) == ("E101", 2, 31, 2, 38)
    assert d.message == "unknown name 'min_edg'"
    assert d.hint == "did you mean 'min_edge'?"


def test_e101_unknown_set_in_for():
    text = "rule r:\n    for c in coins\n    when funding(c, okx) > 0% then close\n"
    d = one(text, "E101")
    assert at(d) == ("E101", 2, 14, 2, 19)
    assert d.message == "unknown set 'coins'"


def test_e101_unknown_placeholder_in_alert():
    d = one('when funding(SOL, okx) > 0% then alert "{edge} {coin}"\n', "E101")
    assert at(d) == ("E101", 1, 34, 1, 55)  # the whole alert action
    assert d.message == "unknown name '{coin}' in the alert text"


# -- E102 unknown exchange --------------------------------------------------------------


def test_e102_unknown_exchange_as_in_the_spec():
    text = (
        "set coins = SOL\n\n\n\nrule cross:\n    for coin in coins\n"
        "    when spread(SOL, binanse, okx) > 0.1%\n    then hedge 10 USDT\n"
    )
    found = diagnostics(text)
    d = [x for x in found if x.code == "E102"][0]
    assert at(d) == ("E102", 7, 22, 7, 29)
    assert d.message == "unknown exchange 'binanse'"
    assert d.hint == "did you mean 'binance'?"


def test_e102_unknown_exchange_in_a_set():
    d = one(
        "set venues = okx, bybitt\nrule r:\n for v in venues\n when funding(SOL, v) > 0% then close\n",
        "E102",
    )
    assert at(d) == ("E102", 1, 19, 1, 25)
    assert d.hint == "did you mean 'bybit'?"


# -- E103 unknown function -------------------------------------------------------------


def test_e103_unknown_function_points_at_its_name():
    text = "when funding(SOL, okx) > 0% and fundng(SOL, gate) > 0% then close\n"
    d = one(text, "E103")
    assert at(d) == ("E103", 1, 33, 1, 39)
    assert d.hint == "did you mean 'funding'?"


# -- E104 wrong number of arguments ----------------------------------------------------


def test_e104_spans_the_whole_call():
    d = one("when spread(SOL, okx) > 0.1% then close\n", "E104")
    assert at(d) == ("E104", 1, 6, 1, 22)
    assert d.message == "spread() takes 3 arguments, got 2"
    assert d.hint == "spread(coin, exchange, exchange)"


def test_e104_net_takes_one_duration():
    d = one("when funding(SOL, okx) > 0% and net() > 0% then close\n", "E104")
    assert (d.line, d.column) == (1, 33)


# -- E105 type or unit mismatch ------------------------------------------------------------


def test_e105_bare_number_is_not_a_rate():
    d = one("when spread(SOL, okx, gate) > 0.1 then hedge 10 USDT\n", "E105")
    assert at(d) == ("E105", 1, 6, 1, 34)
    assert d.message == "cannot compare a rate with a number"
    assert "'0.1%'" in d.hint


def test_e105_hedge_needs_money():
    d = one("when spread(SOL, okx, gate) > 0.1% then hedge 10\n", "E105")
    assert at(d) == ("E105", 1, 47, 1, 49)
    assert d.hint == "did you mean '10 USDT'?"


def test_e105_rate_times_rate():
    d = one("when funding(SOL, okx) * funding(SOL, gate) > 0% then close\n", "E105")
    assert at(d) == ("E105", 1, 6, 1, 44)


def test_e105_risk_value_of_the_wrong_unit():
    d = one("risk:\n    stop_loss 0.02\n", "E105")
    assert at(d) == ("E105", 2, 15, 2, 19)
    assert "'0.02%'" in d.hint


# -- E106 duplicate name -----------------------------------------------------------------


def test_e106_duplicate_across_two_files_of_one_ruleset():
    result = load_texts(
        {
            "a.rules": "let min_edge = 0.1%\n" + "when funding(SOL, okx) > min_edge then close\n",
            "b.rules": "\nlet min_edge = 0.2%\n",
        }
    )
    assert [at(d) for d in result.diagnostics] == [("E106", 2, 5, 2, 13)]
    d = result.diagnostics[0]
    assert d.file == "b.rules"
    assert "a.rules:1:5" in d.message


def test_e106_duplicate_rule_name():
    text = (
        "rule r:\n when funding(SOL, okx) > 0% then close\n"
        "rule r:\n when funding(SOL, gate) > 0% then close\n"
    )
    d = one(text, "E106")
    assert at(d) == ("E106", 3, 6, 3, 7)


def test_e106_for_variable_may_not_reuse_a_constant():
    text = "let k = 1%\nrule r:\n for k in [okx, gate]\n when funding(SOL, okx) > 0% then close\n"
    found = [d for d in diagnostics(text) if d.code == "E106"]
    assert [at(d) for d in found] == [("E106", 3, 6, 3, 7)]


@pytest.mark.parametrize("builtin", ["edge", "low", "okx", "held", "pnl", "collected"])
def test_e106_for_variable_may_not_reuse_a_builtin(builtin):
    text = f"rule r:\n for {builtin} in [okx, gate]\n when funding(SOL, gate) > 0% then close\n"
    found = [d for d in diagnostics(text) if d.code == "E106"]
    assert [(d.line, d.column) for d in found] == [(2, 6)]


# -- E107 metric used without a subject ----------------------------------------------------


def test_e107_metric_without_a_subject():
    text = 'when price(SOL, okx) > 100 and confidence > 0.5 then alert "cheap"\n'
    d = one(text, "E107")
    assert at(d) == ("E107", 1, 32, 1, 42)


def test_e107_hedge_without_a_subject():
    d = one("when price(SOL, okx) > 100 then hedge 10 USDT\n", "E107")
    assert at(d) == ("E107", 1, 33, 1, 46)


def test_e107_close_without_a_subject():
    d = one("when volume(SOL, okx) > 1e6 then close\n", "E107")
    assert at(d) == ("E107", 1, 34, 1, 39)


def test_e107_not_raised_when_the_subject_comes_later_in_the_clause():
    assert diagnostics("when confidence > 0.5 and funding(SOL, okx) > 0% then close\n") == []


# -- E108 risk block ---------------------------------------------------------------------------


def test_e108_second_risk_block_names_both_places():
    result = load_texts(
        {
            "a.rules": "risk:\n    max_hold 72h\n",
            "b.rules": "# more limits\nrisk:\n    stop_loss 2%\n",
        }
    )
    assert [at(d) for d in result.diagnostics] == [("E108", 2, 1, 2, 5)]
    d = result.diagnostics[0]
    assert d.file == "b.rules"
    assert "a.rules:1:1" in d.message


def test_e108_unknown_risk_key():
    d = one("risk:\n    max_hol 72h\n", "E108")
    assert at(d) == ("E108", 2, 5, 2, 12)
    assert d.message == "unknown risk key 'max_hol'"
    assert d.hint == "did you mean 'max_hold'?"


def test_e108_risk_key_set_twice():
    d = one("risk:\n    max_hold 72h\n    max_hold 24h\n", "E108")
    assert at(d) == ("E108", 3, 5, 3, 13)


# -- E109 value out of range --------------------------------------------------------------


def test_e109_negative_hedge_amount():
    d = one("when spread(SOL, okx, gate) > 0.1% then hedge -10 USDT\n", "E109")
    assert at(d) == ("E109", 1, 47, 1, 55)


def test_e109_negative_money_limit():
    d = one("risk:\n    max_total_exposure -5 USDT\n", "E109")
    assert at(d) == ("E109", 2, 24, 2, 31)


def test_e109_confidence_outside_0_to_1():
    d = one("when spread(SOL, okx, gate) > 0.1% and confidence > 1.5 then close\n", "E109")
    assert at(d) == ("E109", 1, 53, 1, 56)


def test_e109_min_confidence_outside_0_to_1():
    d = one("risk:\n    min_confidence 1.5\n", "E109")
    assert at(d) == ("E109", 2, 20, 2, 23)


def test_e109_zero_duration():
    d = one("when spread(SOL, okx, gate) > 0.1% and net(0h) > 0% then close\n", "E109")
    assert at(d) == ("E109", 1, 44, 1, 46)


def test_e109_zero_max_hold():
    d = one("risk:\n    max_hold 0h\n", "E109")
    assert at(d) == ("E109", 2, 14, 2, 16)


# -- E110 position values outside exit when -------------------------------------------------


@pytest.mark.parametrize("name", ["held", "pnl", "collected"])
def test_e110_position_value_outside_exit_when(name):
    text = f"when funding(SOL, okx) > 0% and {name} > 0 then close\n"
    found = [d for d in diagnostics(text) if d.code == "E110"]
    assert [at(d) for d in found] == [("E110", 1, 33, 1, 33 + len(name))]


def test_position_values_are_fine_in_exit_when():
    text = (
        "when funding(SOL, okx) > 0.1% then hedge 10 USDT\n"
        "    exit when held > 48h or pnl < -5 USDT or collected > 20 USDT\n"
    )
    assert diagnostics(text) == []


# -- warnings ---------------------------------------------------------------------------------


def test_w201_confidence_above_1_is_never_true():
    result = load_texts(
        {"t.rules": "when spread(SOL, okx, gate) > 0.1% and confidence > 1 then hedge 10 USDT\n"}
    )
    [d] = result.diagnostics
    assert at(d) == ("W201", 1, 40, 1, 54)
    assert d.severity == "warning"
    assert result.ok and result.ruleset is not None  # a warning does not stop the ruleset


def test_w201_risk_above_high():
    d = one("when funding(SOL, okx) > 0% and risk > high then close\n", "W201")
    assert at(d) == ("W201", 1, 33, 1, 44)


def test_w202_unused_set_and_constant():
    text = "set spare = BTC, ETH\nlet k = 1%\n" + GOOD_RULE
    found = diagnostics(text)
    assert [at(d) for d in found] == [("W202", 1, 5, 1, 10), ("W202", 2, 5, 2, 6)]
    assert all(d.severity == "warning" for d in found)


def test_codes_lists_exactly_the_codes_the_checker_emits():
    emitted = {"E001", "E101", "E102", "E103", "E104", "E105", "E106", "E107", "E108"}
    emitted |= {"E109", "E110", "E111", "E112", "W201", "W202", "W203"}
    assert set(CODES) == emitted


def test_e103_misspelt_subject_does_not_cascade_into_e107():
    # `sprad` is the one mistake; the rule's metrics and hedge are not blamed for it
    text = "when sprad(SOL, okx, gate) > 0.1% and confidence > 0.7 then hedge 10 USDT\n"
    d = one(text, "E103")
    assert at(d) == ("E103", 1, 6, 1, 11)
    assert d.hint == "did you mean 'spread'?"


def test_e001_keyword_where_a_value_is_missing_does_not_say_reserved_word():
    d = one("when spread(SOL, okx, gate) > 0.1% and then hedge 10 USDT\n", "E001")
    assert at(d) == ("E001", 1, 40, 1, 44)
    assert d.hint == "a value is missing before 'then'"


def test_e001_doubled_operator_is_not_called_a_chained_comparison():
    d = one("when spread(SOL, okx, gate) > > 0.1% then close\n", "E001")
    assert at(d) == ("E001", 1, 31, 1, 32)
    assert d.message == "unexpected '>'"
    assert d.hint == "a value is missing before '>'"


def test_e105_set_mixing_coins_and_exchanges_does_not_cascade_into_e101():
    text = "set s = BTC, okx\nrule r:\n for c in s\n when funding(SOL, okx) > 0% then close\n"
    d = one(text, "E105")
    assert at(d) == ("E105", 1, 14, 1, 17)
    assert d.message == "set 's' mixes coins and exchanges"


def test_e001_unknown_escape_in_a_closed_string_is_not_unterminated():
    d = one('when funding(SOL, okx) > 0% then alert "a\\tb"\n', "E001")
    assert at(d) == ("E001", 1, 42, 1, 44)
    assert d.message == "unknown escape '\\t' in a string"


def test_e001_escaped_quote_and_backslash_are_fine():
    assert diagnostics('when funding(SOL, okx) > 0% then alert "say \\"hi\\" \\\\o/"\n') == []


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("let a = 0.05% 0.1%\n", "expected 'let', 'risk', 'rule', 'set', 'when'"),
        ("risk:\n    max_hold 2h 3h\n", "expected 'let', 'risk', 'rule', 'set', 'when', a name"),
        ("rule r: for c in [BTC 2] when funding(c, okx) > 0% then close\n", "expected ',', ']'"),
        ("when (funding(SOL, okx) > 0.1% then close\n", "expected ')'"),
    ],
)
def test_e001_expected_tokens_are_only_those_that_can_follow(text, hint):
    # LALR merges look-alike parser states; the hint must not offer a name
    # after a constant, nor a statement inside brackets
    assert one(text, "E001").hint == hint
