"""Issue 14: literals, limits and terminal text in rule files; strict JSON; finite config.

Each attack of the issue on rules and configuration is repeated here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rulebook import _json
from rulebook.cli import app
from rulebook.lang import load_texts, render_text
from rulebook.lang._limits import BINDINGS_MAX, FILE_BYTES_MAX, STRING_CHARS_MAX
from rulebook.trading import ConfigError, load_config

runner = CliRunner()


def codes(text: str) -> list[tuple[str, int, int]]:
    result = load_texts({"t.rules": text})
    return [(d.code, d.line, d.column) for d in result.diagnostics]


def strict_loads(text: str) -> object:
    def refuse(name: str) -> object:
        raise AssertionError(f"{name} in JSON output")

    return json.loads(text, parse_constant=refuse)


# -- attack 3: non-finite and overflowing literals are E109 with a location ------------


def test_hedge_1e999_is_e109_at_the_amount():
    assert codes("when funding(SOL, okx) > 0.1% then hedge 1e999 USDT\n") == [("E109", 1, 42)]


def test_max_open_positions_1e999_is_e109_not_an_overflow_traceback():
    text = "when funding(SOL, okx) > 0.1% then hedge 1 USDT\nrisk:\n  max_open_positions 1e999\n"
    assert codes(text) == [("E109", 3, 22)]


@pytest.mark.parametrize(
    "literal", ["1e999%", "1e999", "1e999h", "1e16 USDT", "-1e999 USDT", "1" + "0" * 400]
)
def test_every_kind_of_overflowing_literal_is_e109(literal: str):
    found = codes(f"let x = {literal}\nwhen funding(SOL, okx) > 0.1% and x == x then hedge 1 USDT\n")
    assert any(code == "E109" and line == 1 for code, line, _ in found)


def test_a_large_but_sane_literal_is_accepted():
    assert codes("when funding(SOL, okx) > 0.1% then hedge 1e9 USDT\n") == []


def test_validate_and_dry_run_refuse_hedge_1e999(tmp_path: Path):
    rules = tmp_path / "r.rules"
    rules.write_text("when funding(SOL, binance) > 0% then hedge 1e999 USDT\n")
    res = runner.invoke(app, ["validate", str(rules)])
    assert res.exit_code == 1 and "E109" in res.output
    snap = tmp_path / "s.jsonl"
    snap.write_text(
        json.dumps({"ts": 1753112400000, "exchange": "binance", "coin": "SOL", "market": "perp",
                    "funding_rate": 0.001, "funding_interval_h": 8, "mark": 100.0})
        + "\n"
    )  # fmt: skip
    res = runner.invoke(app, ["dry-run", str(rules), "--snapshot", str(snap), "--json"])
    assert res.exit_code == 1 and res.exception is None or isinstance(res.exception, SystemExit)
    assert "Infinity" not in res.stdout and "NaN" not in res.stdout


# -- attack 5: bounded work ---------------------------------------------------------------


def _coins(n: int) -> str:
    return ", ".join(f"C{i}" for i in range(n))


def test_500_coins_in_three_variables_is_an_error_with_the_count():
    text = (
        f"set coins = {_coins(500)}\n"
        "rule big: for a in coins, b in coins, c in coins\n"
        "  when funding(a, okx) > 0.1% and funding(b, okx) > 0% and funding(c, okx) > 0%\n"
        "  then alert \"{a}\"\n"
    )
    result = load_texts({"t.rules": text})
    [d] = result.diagnostics
    assert (d.code, d.line, d.column) == ("E111", 2, 15)
    assert "125,000,000 bindings (500 x 500 x 500)" in d.message and d.hint
    assert result.ruleset is None


def test_past_the_warning_size_of_bindings_is_a_warning_and_still_loads():
    text = (
        f"set coins = {_coins(250)}\n"
        "rule big: for a in coins, b in coins\n"
        "  when funding(a, okx) > 0.1% and funding(b, okx) > 0% then alert \"{a}\"\n"
    )
    result = load_texts({"t.rules": text})
    assert [d.code for d in result.diagnostics] == ["W203"]
    assert "62,500 bindings" in result.diagnostics[0].message
    assert result.ruleset is not None


def test_a_50_mb_string_literal_is_refused_unread(tmp_path: Path):
    rules = tmp_path / "big.rules"
    with open(rules, "w") as fh:
        fh.write('when funding(SOL, okx) > 0.1% then alert "')
        fh.write("x" * (50 * 1024 * 1024))
        fh.write('"\n')
    res = runner.invoke(app, ["validate", str(rules)])
    assert res.exit_code == 1
    assert "E111" in res.output and "52,428,8" in res.output and "not read" in res.output
    assert len(res.output) < 2000


def test_a_file_just_past_the_limit_is_an_error_and_not_parsed():
    text = "# " + "x" * FILE_BYTES_MAX + "\n"
    result = load_texts({"t.rules": text})
    assert [d.code for d in result.diagnostics] == ["E111"]
    assert result.parsed[0].statements == []


def test_a_long_alert_text_is_an_error_past_the_hard_limit():
    text = f'when funding(SOL, okx) > 0.1% then alert "{"y" * (STRING_CHARS_MAX + 1)}"\n'
    assert [c for c, _, _ in codes(text)] == ["E111"]
    text = 'when funding(SOL, okx) > 0.1% then alert "' + "y" * 2000 + '"\n'
    assert [c for c, _, _ in codes(text)] == ["W203"]


def test_the_limits_are_the_documented_ones():
    doc = (Path(__file__).parent.parent / "docs" / "limits.md").read_text()
    for figure in (f"{BINDINGS_MAX:,}", f"{STRING_CHARS_MAX:,}", "2 MiB", "64 KiB", "1e15"):
        assert figure in doc


def test_deep_parentheses_go_through_every_new_check():
    depth = 20_000
    text = "when " + "(" * depth + "funding(SOL, okx)" + ")" * depth + " > 1e999% then hedge 1 USDT\n"
    assert ("E109", 1, 2 * depth + 26) in codes(text)


# -- attack 8: terminal escapes in a rule's text; a 50 MB line echoed whole --------------


def test_escape_sequences_in_a_rule_are_shown_as_symbols_with_carets_in_place():
    text = 'when funding(SOL, okz) > 0.1% then alert "\x1b[2J\x1b]0;pwned\x07"\n'
    result = load_texts({"t.rules": text})
    shown = render_text(result.diagnostics[0], text)
    assert "\x1b" not in shown and "\x07" not in shown
    assert "␛[2J" in shown
    line, carets = shown.splitlines()[3:5]
    assert line[line.index("okz")] == "o"
    assert carets.index("^") == line.index("okz")


def test_validate_and_dry_run_print_no_escape_sequence(tmp_path: Path):
    rules = tmp_path / "r.rules"
    rules.write_text('when funding(SOL, binance) > 0% then alert "\x1b[31mred \x9b2J"\n')
    snap = tmp_path / "s.jsonl"
    snap.write_text(
        json.dumps({"ts": 1753112400000, "exchange": "binance", "coin": "SOL", "market": "perp",
                    "funding_rate": 0.001, "funding_interval_h": 8, "mark": 100.0})
        + "\n"
    )  # fmt: skip
    res = runner.invoke(app, ["dry-run", str(rules), "--snapshot", str(snap)], color=True)
    assert res.exit_code == 0, res.output
    assert "red" in res.output
    assert "\x1b[31mred" not in res.output and "\x9b" not in res.output


def test_a_long_line_is_cut_around_the_finding_with_counts():
    text = "let a = 1\nwhen funding(SOL, okz) > 0.1% " + "and 1 > 0 " * 200 + "then hedge 1 USDT\n"
    result = load_texts({"t.rules": text})
    d = next(d for d in result.diagnostics if d.code == "E102")
    shown = render_text(d, text)
    assert len(shown) < 600
    assert "more characters]" in shown
    line, carets = shown.splitlines()[3:5]
    assert line[carets.index("^") :].startswith(" okz"[1:]) or "okz" in line


# -- strict JSON everywhere (attack 3) ------------------------------------------------------


def test_strict_json_writes_null_for_an_undefined_figure():
    text = _json.dumps({"a": math.nan, "b": [math.inf, 1.0], "c": {"d": -math.inf}})
    assert strict_loads(text) == {"a": None, "b": [None, 1.0], "c": {"d": None}}


def test_dry_run_json_is_strict_on_the_example(tmp_path: Path):
    root = Path(__file__).parent.parent
    res = runner.invoke(
        app,
        ["dry-run", str(root / "strategies"), "--snapshot",
         str(root / "examples" / "binance-bybit-okx-btc-eth-2023-2024.jsonl"),
         "--at", "2024-03-05T08:00Z", "--json", "--all"],
    )  # fmt: skip
    assert res.exit_code == 0
    strict_loads(res.stdout)


# -- config: finite values, the key named, the right source blamed (attacks 3 and 8) --------


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        ("[exchanges.binance]\nbalance = inf\n", "exchanges.binance.balance"),
        ("[exchanges.binance]\nbalance = nan\n", "exchanges.binance.balance"),
        ("every = inf\n", "every"),
        ("every = nan\n", "every"),
        ("slippage = nan\n", "slippage"),
        ("leverage = inf\n", "leverage"),
        ('every = "1e999s"\n', "every"),
        ("[exchanges.binance]\nbalance = 1e300\n", "exchanges.binance.balance"),
    ],
)
def test_a_non_finite_config_value_is_an_error_naming_the_key(tmp_path: Path, toml: str, words: str):
    cfg = tmp_path / "rulebook.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError) as e:
        load_config(cfg, environ={})
    assert f"{cfg}: {words}:" in str(e.value)


def test_an_environment_variable_is_blamed_not_an_absent_file(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for var, value in [
        ("RULEBOOK_EXCHANGES__BINANSE__BALANCE", "5"),
        ("RULEBOOK_EVERY", "inf"),
        ("RULEBOOK_EXCHANGES__OKX__BALANCE", "nan"),
    ]:
        with pytest.raises(ConfigError) as e:
            load_config(environ={var: value})
        assert str(e.value).startswith(f"environment variable {var}:")
        assert "rulebook.toml" not in str(e.value)


def test_status_json_of_a_ledger_is_strict(tmp_path: Path):
    rules = tmp_path / "r.rules"
    rules.write_text("when funding(SOL, binance) > 0% then hedge 100 USDT\n")
    snap = tmp_path / "s.jsonl"
    snap.write_text(
        json.dumps({"ts": 1753112400000, "exchange": "binance", "coin": "SOL", "market": "perp",
                    "funding_rate": 0.001, "funding_interval_h": 8, "mark": 100.0})
        + "\n"
    )  # fmt: skip
    db = tmp_path / "p.db"
    res = runner.invoke(
        app, ["run", str(rules), "--paper", "--replay", str(snap), "--db", str(db), "--no-watch"]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["status", "--db", str(db), "--json"])
    assert res.exit_code == 0
    strict_loads(res.stdout)


def test_a_hot_reload_refuses_an_oversized_file_unread(tmp_path: Path, monkeypatch):
    from rulebook.lang import load_ruleset
    from rulebook.reload import ReloadFailure, RulesetWatcher
    from rulebook.trading import RulesetHolder

    d = tmp_path / "strategies"
    d.mkdir()
    (d / "a.rules").write_text("when funding(SOL, okx) > 0.1% then hedge 1 USDT\n")
    loaded = load_ruleset([d])
    assert loaded.ruleset is not None
    holder = RulesetHolder(loaded.ruleset)
    watcher = RulesetWatcher([d], holder)
    with open(d / "a.rules", "a") as fh:
        fh.write("# " + "x" * (FILE_BYTES_MAX + 10) + "\n")
    reads: list[Path] = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self) or real(self))
    outcome = watcher.reload()
    assert isinstance(outcome, ReloadFailure)
    assert [d.code for d in outcome.errors] == ["E111"]
    assert holder.current() is loaded.ruleset  # the running ruleset is kept
    assert reads == []  # never read into memory
