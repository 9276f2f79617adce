"""CI runs exactly the README's test command (GUIDE: "`.ci/run` calls exactly that test command")."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"Run the tests.*?```\n(.*?)\n```", readme, re.S)
    assert block is not None, "README: the 'Run the tests' command block is missing"
    command = block.group(1).strip()
    ci = [ln for ln in (ROOT / ".ci/run").read_text().splitlines() if ln.startswith("python3 ")]
    assert ci == [command]
    # ruff, the type checker and the tests, in that order
    assert re.search(r"ruff check \. && \.venv/bin/mypy && \.venv/bin/pytest$", command)
