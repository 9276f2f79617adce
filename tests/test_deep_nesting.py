"""Long and deeply nested expressions: they work, or get E112 with a location;
never a traceback, in `validate`, `dry-run` (with and without --explain) and `run`.

`a and b and ...` and `a or b or ...` are one flat node whatever their length,
and parentheses add no node, so 10,000 terms or 5,000 parentheses work.
Nesting proper (`not not ...`, `abs(abs(...))`, `- - x`, a long sum) is
limited to MAX_NESTING levels (docs/language.md, E112).
"""

from __future__ import annotations

import pytest
from trading_helpers import T0, T, pair_rows, write_jsonl
from typer.testing import CliRunner

from rulebook.cli import app
from rulebook.engine import evaluate
from rulebook.lang import MAX_NESTING, load_texts

runner = CliRunner()
SUBJECT = "spread(SOL, bybit, binance) > 0.01%"

WORKS = {
    "10000 and terms": f"when {SUBJECT}" + " and edge > 0%" * 9_999 + " then hedge 1000 USDT\n",
    "10000 or terms": f"when {SUBJECT}" + " or edge > 1%" * 9_999 + " then hedge 1000 USDT\n",
    "5000 parentheses": "when " + "(" * 5_000 + SUBJECT + ")" * 5_000 + " then hedge 1000 USDT\n",
    "100 levels, the limit": "when " + "not " * 97 + f"{SUBJECT} then hedge 1000 USDT\n",
}
TOO_DEEP = {
    "10000 nots": "when " + "not " * 10_000 + f"{SUBJECT} then hedge 1000 USDT\n",
    "5000 nested calls": "when "
    + "abs(" * 5_000
    + "spread(SOL, bybit, binance)"
    + ")" * 5_000
    + " > 0.01% then hedge 1000 USDT\n",
    "5000 unary minus": "when " + "-" * 5_000 + "spread(SOL, bybit, binance) < 0.01% then close\n",
    "a sum of 5000 terms": f"when {SUBJECT} and "
    + " + ".join(["edge"] * 5_000)
    + " > 0% then hedge 1000 USDT\n",
    "5000 negated constant": "let k = " + "-" * 5_000 + "1%\n" + f"when {SUBJECT} and edge > k then close\n",
}


def setup(tmp_path, monkeypatch, text):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deep.rules").write_text(text)
    rows = pair_rows(T0, "SOL", (100.0, 0.0001), (100.2, 0.0004), T)
    write_jsonl(tmp_path / "rec.jsonl", rows)


COMMANDS = {
    "validate": ["validate", "deep.rules"],
    "dry-run": ["dry-run", "deep.rules", "--snapshot", "rec.jsonl", "--json"],
    "dry-run --explain": ["dry-run", "deep.rules", "--snapshot", "rec.jsonl", "--explain"],
    "run": ["run", "deep.rules", "--paper", "--replay", "rec.jsonl", "--db", "p.db", "--no-watch"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(WORKS))
def test_long_flat_expressions_work(tmp_path, monkeypatch, case, command):
    setup(tmp_path, monkeypatch, WORKS[case])
    res = runner.invoke(app, COMMANDS[command])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(TOO_DEEP))
def test_too_deep_is_e111_with_a_location(tmp_path, monkeypatch, case, command):
    setup(tmp_path, monkeypatch, TOO_DEEP[case])
    res = runner.invoke(app, COMMANDS[command])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert res.exit_code == 1, res.output
    assert "error[E112]: expression nested more than 100 levels deep" in res.output
    assert "--> deep.rules:" in res.output
    assert "Traceback" not in res.output
    assert "unknown name" not in res.output  # one mistake, one diagnostic


def test_e111_points_at_the_first_level_beyond_the_limit():
    text = "when " + "not " * 150 + f"{SUBJECT} then close\n"
    (d,) = load_texts({"d.rules": text}).diagnostics
    # `not` number 101 starts at column 6 + 100 * 4
    assert (d.code, d.line, d.column) == ("E112", 1, 6 + MAX_NESTING * 4)


def test_flat_chains_evaluate_and_explain_like_short_ones():
    from engine_helpers import perp, view

    v = view(perp("bybit", "SOL", 0.0004), perp("binance", "SOL", 0.0001))
    long = load_texts({"l.rules": WORKS["10000 and terms"]}).ruleset
    short = load_texts({"l.rules": f"when {SUBJECT} and edge > 0% then hedge 1000 USDT\n"}).ruleset
    a = evaluate(long, v).to_dict()
    b = evaluate(short, v).to_dict()
    assert a["opportunities"] == b["opportunities"] and len(a["opportunities"]) == 1
    (o,) = evaluate(long, v, explain=True).opportunities
    assert o.explanation.fired is True
    # the spread and its comparison, each `edge` and its comparison, the `and`
    assert len(o.explanation.steps) == 2 + 2 * 9_999 + 1
