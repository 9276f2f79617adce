"""`rulebook validate`: the text and JSON formats of spec section 8, exit codes,
and clear messages for paths it cannot use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rulebook.cli import app

CROSS = """\
# strategies/cross.rules
# Short perp where funding is high, long perp where it is low.

set majors = BTC, ETH, SOL

rule cross_majors: for coin in majors
    when spread(SOL, binanse, okx) > 0.1%
    then hedge 1000 USDT
"""

CROSS_RENDERED = """\
error[E102]: unknown exchange 'binanse'
  --> strategies/cross.rules:7:22
   |
 7 |     when spread(SOL, binanse, okx) > 0.1%
   |                      ^^^^^^^ did you mean 'binance'?
"""

CLEAN = "when spread(SOL, backpack, binance) > 0.1% and confidence > 0.7 then hedge 1000 USDT\n"
WARNING_ONLY = "let unused = 1%\n" + CLEAN

JSON_KEYS = [
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


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory, so that paths print as operators type them."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def no_traceback(result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output


# -- text format -------------------------------------------------------------------


def test_text_format_is_exactly_that_of_the_spec(runner, workdir):
    write(workdir / "strategies/cross.rules", CROSS)
    result = runner.invoke(app, ["validate", "strategies/cross.rules"])
    assert result.exit_code == 1
    assert result.stdout == CROSS_RENDERED + "\n"
    assert result.stderr == "1 file, 1 rule: 1 error, 0 warnings\n"


def test_carets_cover_the_whole_span(runner, workdir):
    write(workdir / "t.rules", "when spread(SOL, okx, gate) > 0.1 then hedge 10 USDT\n")
    result = runner.invoke(app, ["validate", "t.rules"])
    assert result.stdout == (
        "error[E105]: cannot compare a rate with a number\n"
        "  --> t.rules:1:6\n"
        "   |\n"
        " 1 | when spread(SOL, okx, gate) > 0.1 then hedge 10 USDT\n"
        "   |      ^^^^^^^^^^^^^^^^^^^^^^^^^^^^ a bare number is not a rate: did you mean '0.1%'?\n"
        "\n"
    )


def test_line_numbers_of_two_digits_widen_the_gutter(runner, workdir):
    write(workdir / "t.rules", "\n" * 11 + "let spare = 1%\n" + CLEAN)
    result = runner.invoke(app, ["validate", "t.rules"])
    assert result.exit_code == 0
    assert result.stdout == (
        "warning[W202]: constant 'spare' is never used\n"
        "   --> t.rules:12:5\n"
        "    |\n"
        " 12 | let spare = 1%\n"
        "    |     ^^^^^ remove it or use it in a rule\n"
        "\n"
    )


def test_a_diagnostic_without_a_hint_has_no_trailing_text(runner, workdir):
    write(workdir / "t.rules", "when spread(SOL, okx, gate) > 0.1% @ then close\n")
    result = runner.invoke(app, ["validate", "t.rules"])
    assert result.stdout.splitlines()[-2] == "   |                                    ^"


def test_clean_ruleset_prints_only_the_summary(runner, workdir):
    write(workdir / "a.rules", CLEAN)
    write(workdir / "b.rules", "risk:\n    max_hold 72h\n")
    result = runner.invoke(app, ["validate", "a.rules", "b.rules"])
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == "2 files, 1 rule: 0 errors, 0 warnings\n"


# -- JSON format -------------------------------------------------------------------


def test_json_format_is_a_list_of_objects_with_exactly_the_spec_keys(runner, workdir):
    write(workdir / "strategies/cross.rules", CROSS)
    write(workdir / "strategies/w.rules", WARNING_ONLY)
    result = runner.invoke(app, ["validate", "strategies", "--format", "json"])
    assert result.exit_code == 1
    found = json.loads(result.stdout)
    assert isinstance(found, list) and len(found) == 2
    for obj in found:
        assert list(obj) == JSON_KEYS
    assert found[0] == {
        "file": "strategies/cross.rules",
        "line": 7,
        "column": 22,
        "end_line": 7,
        "end_column": 29,
        "severity": "error",
        "code": "E102",
        "message": "unknown exchange 'binanse'",
        "hint": "did you mean 'binance'?",
    }
    assert (found[1]["code"], found[1]["severity"], found[1]["line"]) == ("W202", "warning", 1)


def test_json_of_a_clean_ruleset_is_an_empty_list(runner, workdir):
    write(workdir / "a.rules", CLEAN)
    result = runner.invoke(app, ["validate", "a.rules", "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_json_hint_is_null_when_there_is_none(runner, workdir):
    write(workdir / "t.rules", "when spread(SOL, okx, gate) > 0.1% @ then close\n")
    result = runner.invoke(app, ["validate", "t.rules", "--format", "json"])
    [obj] = json.loads(result.stdout)
    assert obj["hint"] is None


# -- exit codes ----------------------------------------------------------------------


def test_exit_1_on_errors(runner, workdir):
    write(workdir / "t.rules", CROSS)
    assert runner.invoke(app, ["validate", "t.rules"]).exit_code == 1


def test_exit_0_on_warnings_only(runner, workdir):
    write(workdir / "t.rules", WARNING_ONLY)
    result = runner.invoke(app, ["validate", "t.rules"])
    assert result.exit_code == 0
    assert result.stdout.startswith("warning[W202]: constant 'unused' is never used\n")
    assert result.stderr == "1 file, 1 rule: 0 errors, 1 warning\n"


def test_exit_1_on_warnings_with_strict(runner, workdir):
    write(workdir / "t.rules", WARNING_ONLY)
    assert runner.invoke(app, ["validate", "t.rules", "--strict"]).exit_code == 1
    assert runner.invoke(app, ["validate", "t.rules", "--strict", "-f", "json"]).exit_code == 1


def test_exit_0_when_clean_with_strict(runner, workdir):
    write(workdir / "t.rules", CLEAN)
    assert runner.invoke(app, ["validate", "t.rules", "--strict"]).exit_code == 0


# -- paths -------------------------------------------------------------------------------


def test_missing_path_is_a_clear_message(runner, workdir):
    result = runner.invoke(app, ["validate", "nowhere.rules"])
    assert result.exit_code == 2
    assert result.stderr == "error: nowhere.rules: no such file or directory\n"
    no_traceback(result)


def test_directory_without_rules_is_a_clear_message(runner, workdir):
    (workdir / "empty").mkdir()
    write(workdir / "empty/notes.txt", "not rules")
    result = runner.invoke(app, ["validate", "empty"])
    assert result.exit_code == 2
    assert result.stderr == "error: empty: no .rules files in this directory\n"
    no_traceback(result)


def test_non_utf8_file_is_a_diagnostic_not_a_crash(runner, workdir):
    write(
        workdir / "bad.rules", b"let a = 1%\nlet b = \xff\nwhen funding(SOL, okx) > a then close\n"
    )
    result = runner.invoke(app, ["validate", "bad.rules"])
    assert result.exit_code == 1
    no_traceback(result)
    assert result.stdout.splitlines()[:2] == [
        "error[E001]: file is not UTF-8: byte 0xff cannot be decoded",
        "  --> bad.rules:2:9",
    ]
    assert "save the file as UTF-8" in result.stdout


def test_directories_are_searched_recursively(runner, workdir):
    write(workdir / "strategies/a.rules", CLEAN)
    write(workdir / "strategies/deep/er/b.rules", "when funding(SOL, okz) > 0% then close\n")
    write(workdir / "strategies/deep/readme.md", "when nonsense")
    result = runner.invoke(app, ["validate", "strategies", "-f", "json"])
    assert result.exit_code == 1
    [obj] = json.loads(result.stdout)
    assert obj["file"] == str(Path("strategies/deep/er/b.rules"))
    assert obj["code"] == "E102"


def test_files_given_together_are_one_ruleset(runner, workdir):
    write(workdir / "a.rules", "let edge_min = 0.1%\n")
    write(workdir / "b.rules", "let edge_min = 0.2%\n")
    result = runner.invoke(app, ["validate", "a.rules", "b.rules", "-f", "json"])
    codes = [(o["file"], o["code"]) for o in json.loads(result.stdout)]
    assert ("b.rules", "E106") in codes


def test_no_path_checks_strategies(runner, workdir):
    write(workdir / "strategies/x.rules", CROSS)
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 1
    assert "strategies/x.rules:7:22" in result.stdout


def test_no_path_and_no_strategies_directory(runner, workdir):
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 2
    assert result.stderr == "error: strategies: no such file or directory\n"


# -- a real process ---------------------------------------------------------------------------


def test_validate_in_a_real_subprocess(workdir):
    write(workdir / "strategies/cross.rules", CROSS)
    proc = subprocess.run(
        [sys.executable, "-m", "rulebook.cli", "validate", "strategies"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stdout == CROSS_RENDERED + "\n"
    assert proc.stderr == "1 file, 1 rule: 1 error, 0 warnings\n"
