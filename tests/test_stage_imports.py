"""No stage imports another stage's private modules (the developers' guide):
the engine reads `rulebook.lang` and `rulebook.market` through their public
names only, and so does every other stage."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rulebook"


def imported_names(path: Path) -> list[str]:
    out: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names]
    return out


def test_no_stage_imports_a_private_module_of_another():
    crossings = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        stage = parts[0] if len(parts) > 1 else None  # top-level modules belong to none
        for name in imported_names(path):
            dotted = name.split(".")
            if dotted[0] == "rulebook" and len(dotted) >= 3 and dotted[2].startswith("_"):
                if dotted[1] != stage:
                    crossings.append(f"{path.relative_to(PACKAGE.parent)}: {name}")
    assert crossings == []


def test_the_check_sees_a_crossing(tmp_path):
    # guard against a vacuous pass: the parser finds such an import
    p = tmp_path / "m.py"
    p.write_text("from rulebook.lang import _ast as A\nimport rulebook.engine._metrics\n")
    assert "rulebook.lang._ast" in imported_names(p)
    assert "rulebook.engine._metrics" in imported_names(p)
