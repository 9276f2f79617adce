"""The stages show in the layout (docs/architecture.md): imports go one way, no
stage reaches into another's private modules, and only the application layer
and the command line talk to a terminal. Read from the source (every import,
lazy ones included), so nothing has to run."""

from __future__ import annotations

import ast
from pathlib import Path

import rulebook

PACKAGE = Path(rulebook.__file__).parent

# Each stage may import the stages listed for it (and the package-wide helpers
# rulebook._exchanges, _json, _text and rulebook.errors).
ALLOWED = {
    "lang": set(),
    "market": set(),
    "engine": {"lang", "market"},
    "history": {"lang", "market"},
    "trading": {"lang", "market", "engine"},
    "reload": {"lang", "market", "engine", "trading"},
    "report": {"lang", "market", "engine", "trading"},
    "backtest": {"lang", "market", "engine", "trading", "history", "report"},
    "app": {"lang", "market", "engine", "trading", "history", "report", "backtest", "reload"},
}
SHARED = {"_exchanges", "_json", "_text", "errors"}
TERMINAL = {"rich", "typer", "click"}
# Known reaches into another stage's private module, each with the work that removes it.
PRIVATE_REACHES: set[tuple[str, str]] = {
    ("engine/_vector.py", "rulebook.lang._check"),  # issue 9 item 1 (ir): the resolved IR
}


def imports(path: Path) -> list[str]:
    """Every module `path` imports, anywhere in it (also inside functions)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def stage_files() -> list[tuple[str, Path]]:
    return [
        (path.relative_to(PACKAGE).parts[0], path)
        for path in sorted(PACKAGE.rglob("*.py"))
        if len(path.relative_to(PACKAGE).parts) > 1
    ]


def test_stages_import_only_the_stages_before_them() -> None:
    wrong = []
    for stage, path in stage_files():
        for name in imports(path):
            parts = name.split(".")
            if parts[0] != "rulebook" or len(parts) < 2 or parts[1] in SHARED:
                continue
            other = parts[1]
            if other != stage and other not in ALLOWED[stage]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert wrong == []


def test_no_stage_imports_another_stages_private_modules() -> None:
    reaches = set()
    for stage, path in stage_files():
        for name in imports(path):
            parts = name.split(".")
            if parts[0] != "rulebook" or len(parts) < 3 or parts[1] == stage:
                continue
            if any(p.startswith("_") for p in parts[2:]):
                reaches.add((str(path.relative_to(PACKAGE)), name))
    assert reaches <= PRIVATE_REACHES, reaches - PRIVATE_REACHES


def test_only_the_application_layer_talks_to_a_terminal() -> None:
    talking = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for stage, path in stage_files()
        if stage != "app"
        for name in imports(path)
        if name.split(".")[0] in TERMINAL
    ]
    assert talking == []
