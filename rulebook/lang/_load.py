"""Loading a ruleset: paths to files, files to one checked, compiled ruleset."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import _ast as A
from ._check import Program, check_files
from ._compile import Ruleset, compile_program
from ._diagnostics import Diagnostic
from ._parse import parse_bytes

__all__ = ["PathError", "LoadResult", "find_rule_files", "load_ruleset", "load_texts"]


class PathError(Exception):
    """A path given to rulebook cannot be used (missing, no rules in it, unreadable)."""


@dataclass(slots=True)
class LoadResult:
    """The outcome of loading a ruleset: diagnostics, and the ruleset if it is clean."""

    files: list[str]
    sources: dict[str, str]
    diagnostics: list[Diagnostic]
    program: Program | None = None
    ruleset: Ruleset | None = None
    parsed: list[A.RulesFile] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]

    @property
    def rule_count(self) -> int:
        """Rules found in the files, whether or not they checked cleanly."""
        return sum(isinstance(st, A.Rule) for f in self.parsed for st in f.statements)

    @property
    def ok(self) -> bool:
        return not self.errors


def find_rule_files(paths: Iterable[str | Path]) -> list[Path]:
    """The `.rules` files named by paths: files as given, directories recursively."""
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise PathError(f"{p}: no such file or directory")
        if p.is_dir():
            inside = sorted(q for q in p.rglob("*.rules") if q.is_file())
            if not inside:
                raise PathError(f"{p}: no .rules files in this directory")
            found.extend(inside)
        else:
            found.append(p)
    seen: set[Path] = set()
    unique = []
    for f in found:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def load_texts(texts: dict[str, bytes | str]) -> LoadResult:
    """Parse, check and compile files given as {path: content}."""
    parsed: list[A.RulesFile] = []
    diags: list[Diagnostic] = []
    for path, content in texts.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        rf, d = parse_bytes(data, path)
        parsed.append(rf)
        diags.extend(d)
    program, check_diags = check_files(parsed)
    diags.extend(check_diags)
    diags.sort(
        key=lambda d: (list(texts).index(d.file) if d.file in texts else 0, d.line, d.column)
    )
    sources = {f.path: f.text for f in parsed}
    result = LoadResult(list(texts), sources, diags, program, None, parsed)
    if result.ok:
        result.ruleset = compile_program(program)
    return result


def load_ruleset(paths: Iterable[str | Path]) -> LoadResult:
    """Load every `.rules` file under paths as one ruleset.

    Raises PathError for a path that is missing, a directory with no rules,
    or a file that cannot be read; everything wrong inside a file is a
    diagnostic in the result instead.
    """
    files = find_rule_files(paths)
    texts: dict[str, bytes | str] = {}
    for f in files:
        try:
            texts[str(f)] = f.read_bytes()
        except OSError as err:
            raise PathError(f"{f}: cannot be read: {err.strerror or err}") from err
    return load_texts(texts)
