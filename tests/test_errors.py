"""One error tree: every error rulebook raises on purpose is a RulebookError, and
rulebook/errors.py's docstring draws the tree as it is."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import rulebook
from rulebook import errors

PACKAGE = Path(rulebook.__file__).parent
# Exceptions rulebook defines that are not errors (owner, and why).
NOT_ERRORS = {
    "NoData",  # rulebook.lang (ir): missing market data while evaluating; a result, not an error
    "Unresolved",  # rulebook.lang._lower (ir): raised and caught inside the checker, never leaves it
}


def drawn_tree() -> dict[str, str]:
    """{kind: parent} as drawn in the module docstring (`* Root`, `  + Kind - ...`)."""
    tree: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in (errors.__doc__ or "").splitlines():
        m = re.match(r"^( *)[*+] (\w+)\b", line)
        if not m:
            continue
        depth, name = len(m.group(1)), m.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        tree[name] = stack[-1][1] if stack else ""
        stack.append((depth, name))
    return tree


def real_tree() -> dict[str, str]:
    for name, package in errors.KINDS.items():  # load each kind (rulebook.app's lazily)
        getattr(importlib.import_module(package), name)
    tree = {"RulebookError": ""}
    todo = [errors.RulebookError]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("rulebook."):
                tree[sub.__name__] = cls.__name__
                todo.append(sub)
    return tree


def test_the_docstring_draws_the_real_tree() -> None:
    assert drawn_tree() == real_tree()


@pytest.mark.parametrize("name", sorted(errors.KINDS))
def test_each_kind_is_the_one_its_stage_exports(name: str) -> None:
    stage = importlib.import_module(errors.KINDS[name])
    assert getattr(errors, name) is getattr(stage, name)
    assert issubclass(getattr(stage, name), rulebook.RulebookError)


def test_no_exception_class_outside_the_tree() -> None:
    """A new error kind must join the tree (and the docstring): no class in
    rulebook derives from a built-in exception directly, but the root."""
    builtin = {n for n in dir(__import__("builtins")) if n.endswith(("Error", "Exception"))}
    stray = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef) or node.name in NOT_ERRORS:
                continue
            bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
            if bases & builtin and node.name != "RulebookError":
                stray.append(f"{path.relative_to(PACKAGE)}: {node.name}")
    assert stray == []


def test_a_rulebook_error_reaches_the_operator_as_one_line(tmp_path: Path) -> None:
    # a ledger file that is not a ledger: LedgerError, reported by the command
    bad = tmp_path / "not-a-ledger.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    done = subprocess.run(
        [sys.executable, "-m", "rulebook.cli", "status", "--db", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ")


def test_main_turns_an_error_no_command_caught_into_one_line(monkeypatch, capsys) -> None:
    import rulebook.cli as cli
    from rulebook.trading import LedgerError

    def app() -> None:
        raise LedgerError("paper.db: held by another runtime (pid 4242)")

    monkeypatch.setattr(cli, "app", app)
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 1
    assert capsys.readouterr().err == "error: paper.db: held by another runtime (pid 4242)\n"
