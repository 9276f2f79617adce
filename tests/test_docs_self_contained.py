"""The README and docs need nothing outside the repository: no file of the
developers' specification, no section of it, no mention of it at all (the docs
state rulebook's own choices: "Choices", "Where rulebook decides"), no path
outside the clone, and every command the README shows runs as written from a
fresh clone's root."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "examples" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# the developers' specification is LANGUAGE.md (docs/language.md is the operators' guide)
OUTSIDE = re.compile(
    r"\bLANGUAGE\.md|\.\./shared|/work/"
    # "the spec", "the spec's", "the specification", "spec section 10", "spec 11": a
    # document the user does not have ("backtest spec", BacktestSpec, are rulebook's own)
    r"|(?i:\bthe spec(?:ification)?\b|\bspec(?:ification)?(?:'s)? (?:section|is silent|says)"
    r"|\bspec \d|\bspecification\b)"
    # an issue's wording: the docs say what rulebook does, not what a request left open
    r"|(?i:\bwhere the (?:issue|brief) (?:was|is) silent)"
)


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


@pytest.mark.parametrize(
    "line, outside",
    [
        ("## 10. Decisions where the spec is silent", True),
        ("# Paper trading: choices where the spec is silent", True),
        ("anything else E102, as the spec says.", True),
        ("a code added to the spec's list", True),
        ("The specification leaves these points open", True),
        ("see spec section 10", True),
        ("paid as in spec 11 step 1", True),
        ("## 7. Choices where the issue was silent", True),
        ("see ../shared/data/README.md", True),
        ("## 10. Where rulebook decides", False),
        ("## 7. Choices", False),
        ("funding histories; a backtest spec; a ledger", False),
        ("`BacktestSpec(rule_paths=...)`", False),
        ("Choices where the sources are silent:", False),
    ],
)
def test_what_counts_as_outside(line, outside) -> None:
    assert bool(OUTSIDE.search(line)) is outside
