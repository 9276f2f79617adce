"""The README's pasted outputs are real: each ``` block that follows a block of
one `.venv/bin/rulebook ...` command is what that command prints today, at 120
columns, from the repository's root (stdout only; trailing blanks not compared).

After changing the output, refresh the README with

    .venv/bin/python tests/test_readme.py --update

and read the diff before committing it.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK = re.compile(r"^```[a-z]*\n(.*?)^```[ \t]*$\n", re.M | re.S)
PREFIX = ".venv/bin/rulebook "
WIDTH = 120


def pasted(text: str) -> list[tuple[list[str], str, int, int]]:
    """(args, pasted output, start, end of the output block's body) per command block."""
    blocks = list(BLOCK.finditer(text))
    found = []
    for cmd, output in zip(blocks, blocks[1:], strict=False):
        body = cmd.group(1).strip()
        between = text[cmd.end() : output.start()]
        if "\n" in body or not body.startswith(PREFIX) or between.strip():
            continue
        found.append((shlex.split(body[len(PREFIX) :]), output.group(1), *output.span(1)))
    return found


def run(args: list[str]) -> str:
    env = {**os.environ, "COLUMNS": str(WIDTH), "NO_COLOR": "1", "TERM": "dumb"}
    proc = subprocess.run(
        [sys.executable, "-m", "rulebook.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.stdout


def _clean(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


CASES = pasted(README.read_text())


def test_the_readme_pastes_the_dry_run_output() -> None:
    assert any(args[0] == "dry-run" for args, *_ in CASES)


@pytest.mark.parametrize("args, expected, start, end", CASES, ids=[c[0][0] for c in CASES])
def test_pasted_output_is_real(args, expected, start, end) -> None:
    assert _clean(run(args)) == _clean(expected)


if __name__ == "__main__" and sys.argv[1:] == ["--update"]:
    text = README.read_text()
    for args, _, start, end in reversed(CASES):
        text = text[:start] + _clean(run(args)) + "\n" + text[end:]
    README.write_text(text)
