"""The examples of docs/language.md are real: every `rulebook validate` output
pasted there is what rulebook prints today.

In the guide, a ```rules block whose first line is `# some/path.rules` is a file
(`rules encoding=latin-1` writes it in that encoding), and a ```console block
starting with `$ rulebook validate ...` is a command run in a directory holding
all those files; the rest of the block is its output, standard output and
standard error interleaved as a terminal shows them (and the exit status, when
the command line ends with `; echo $?`). Trailing blanks are not compared.

After changing the guide or the diagnostics, refresh the pasted outputs with

    .venv/bin/python tests/test_docs_examples.py --update

and read the diff before committing it.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
GUIDE = REPO_ROOT / "docs" / "language.md"
FENCE = re.compile(r"^```([a-z]*)([^\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)
PROMPT = "$ rulebook "


ECHO_STATUS = "; echo $?"


@dataclass
class Command:
    args: list[str]
    show_status: bool  # the command line ends with `; echo $?`
    expected: str
    start: int  # offsets of the block's body (after the command line) in the guide
    end: int


def guide_files(text: str) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for m in FENCE.finditer(text):
        info, attrs, body = m.group(1), m.group(2), m.group(3)
        first = body.split("\n", 1)[0]
        if info != "rules" or not (first.startswith("# ") and first.endswith(".rules")):
            continue
        enc = re.search(r"encoding=(\S+)", attrs)
        path = first[2:].strip()
        assert path not in files, f"{path} is defined twice in the guide"
        files[path] = body.encode(enc.group(1) if enc else "utf-8")
    return files


def guide_commands(text: str) -> list[Command]:
    found = []
    for m in FENCE.finditer(text):
        body = m.group(3)
        if m.group(1) != "console" or not body.startswith(PROMPT):
            continue
        line, _, rest = body.partition("\n")
        cmd = line[len(PROMPT) :]
        status = cmd.endswith(ECHO_STATUS)
        args = shlex.split(cmd.removesuffix(ECHO_STATUS) if status else cmd)
        found.append(Command(args, status, rest, m.start(3) + len(line) + 1, m.end(3)))
    return found


def run(args: list[str], cwd: Path, show_status: bool = False) -> str:
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
    proc = subprocess.run(
        [sys.executable, "-m", "rulebook.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one stream, in the order a terminal shows them
        text=True,
        check=False,
    )
    # trailing blanks (rich pads table titles) would not survive an editor
    out = "".join(line.rstrip() + "\n" for line in proc.stdout.splitlines())
    return out + (f"{proc.returncode}\n" if show_status else "")


def write_files(files: dict[str, bytes], root: Path) -> None:
    for path, data in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


TEXT = GUIDE.read_text(encoding="utf-8") if GUIDE.exists() else ""
COMMANDS = guide_commands(TEXT)


def test_the_guide_has_examples():
    assert len(guide_files(TEXT)) >= 20
    assert len(COMMANDS) >= 20


@pytest.fixture(scope="module")
def guide_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("guide")
    write_files(guide_files(TEXT), root)
    return root


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c.args) for c in COMMANDS])
def test_pasted_output_is_real(command: Command, guide_dir: Path):
    assert run(command.args, guide_dir, command.show_status) == command.expected


def test_every_code_has_an_example_in_the_guide():
    from rulebook.lang import CODES

    shown = set(re.findall(r"^(?:error|warning)\[([EW]\d{3})\]", TEXT, re.M))
    assert shown == set(CODES)


def update(path: Path = GUIDE) -> None:
    import tempfile

    text = path.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_files(guide_files(text), root)
        for cmd in reversed(guide_commands(text)):  # from the end: offsets stay valid
            text = text[: cmd.start] + run(cmd.args, root, cmd.show_status) + text[cmd.end :]
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--update"]:
        update()
    else:
        sys.exit(__doc__)
