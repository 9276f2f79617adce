"""The README and docs need nothing outside the repository: no file of the
developers' specification, no section of it, no path outside the clone, and
every command the README shows runs as written from a fresh clone's root."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "examples" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# the developers' specification is LANGUAGE.md (docs/language.md is the operators' guide)
OUTSIDE = re.compile(r"\bLANGUAGE\.md|(?i:spec(?:'s)? section|\bspec \d)|\.\./shared|/work/")


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_no_reference_outside_the_repository(doc) -> None:
    found = [f"{doc.name}:{n}: {line.strip()}"
             for n, line in enumerate(doc.read_text().splitlines(), 1) if OUTSIDE.search(line)]
    assert found == []


def test_readme_commands_use_the_virtual_environment() -> None:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", text, re.M | re.S)
    bare = [line for block in blocks for line in block.splitlines()
            if re.match(r"\s*(\$ )?(rulebook|python|pytest|ruff|mypy)\b", line)]
    assert bare == []
    assert "`.venv/bin/python benchmarks/" in text
    assert ". .venv/bin/activate" in text
