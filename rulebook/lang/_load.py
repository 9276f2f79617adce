"""Loading a ruleset: paths to files, files to one checked, compiled ruleset."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rulebook.errors import RulebookError

from . import _ast as A
from ._check import Program, check_files
from ._compile import Ruleset, compile_program
from ._diagnostics import Diagnostic
from ._limits import binding_limits, file_size_problem, literal_problems, read_bounded
from ._parse import parse_bytes, parse_text

__all__ = [
    "PathError",
    "LoadResult",
    "ParseCache",
    "find_rule_files",
    "load_ruleset",
    "load_texts",
]


class PathError(RulebookError):
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


# Where a top-level statement can start: a line beginning with one of these
# keywords (`when` is left out: in a multi-line named rule it may begin a line).
_STATEMENT_START = re.compile(r"^(?:rule|set|let)\b|^risk[ \t]*:", re.MULTILINE)


class ParseCache:
    """Parsed files by path and exact content, for loading the same files again.

    A hot reload re-parses only what changed: a file whose bytes are the same
    is not parsed at all, and in a changed file only the statements whose text
    (and first line) changed are. Parsing is most of the cost of a load;
    checking and compiling always run on the whole ruleset, since a name
    defined in one file is used in others.

    A file is cut before each line that starts with `rule`, `set`, `let` or
    `risk:`, and each piece is parsed on its own, preceded by as many newlines
    as there are lines above it so that every position is the file's own. If
    any piece has a syntax error, the whole file is parsed again in one piece,
    so diagnostics and error recovery are exactly those of an uncached parse
    (a cut at a false boundary, inside a string, always leaves a piece that
    does not parse). Keeps only the latest version of each file and piece.
    """

    def __init__(self) -> None:
        self._files: dict[str, tuple[bytes, A.RulesFile, list[Diagnostic]]] = {}
        self._pieces: dict[tuple[str, int, str], list[A.Statement]] = {}

    def parse(self, data: bytes, path: str) -> tuple[A.RulesFile, list[Diagnostic]]:
        hit = self._files.get(path)
        if hit is not None and hit[0] == data:
            return hit[1], hit[2]
        parsed = self._parse_by_statement(data, path)
        rf, diags = parsed if parsed is not None else parse_bytes(data, path)
        self._files[path] = (data, rf, diags)
        return rf, diags

    def _parse_by_statement(
        self, data: bytes, path: str
    ) -> tuple[A.RulesFile, list[Diagnostic]] | None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if text.startswith("\ufeff"):
            return None
        cuts = [m.start() for m in _STATEMENT_START.finditer(text)][1:]
        if not cuts:
            return None  # one statement: nothing to reuse
        bounds = [0, *cuts, len(text)]
        statements: list[A.Statement] = []
        pieces: dict[tuple[str, int, str], list[A.Statement]] = {}
        line = 0  # lines above the current piece
        for start, end in zip(bounds, bounds[1:], strict=False):
            piece = text[start:end]
            key = (path, line, piece)
            got = self._pieces.get(key)
            if got is None:
                rf, diags = parse_text("\n" * line + piece, path)
                if diags:
                    return None
                got = rf.statements
            pieces[key] = got
            statements.extend(got)
            line += piece.count("\n")
        for key in [k for k in self._pieces if k[0] == path]:
            del self._pieces[key]
        self._pieces.update(pieces)
        return A.RulesFile(path, text, statements), []

    def keep_only(self, paths: Iterable[str]) -> None:
        """Forget files that are no longer part of the ruleset."""
        keep = set(paths)
        for path in [p for p in self._files if p not in keep]:
            del self._files[path]
        for key in [k for k in self._pieces if k[0] not in keep]:
            del self._pieces[key]


def load_texts(texts: Mapping[str, bytes | str], cache: ParseCache | None = None) -> LoadResult:
    """Parse, check and compile files given as {path: content}.

    With a cache, files whose content is unchanged since the cache last saw
    them are not parsed again (the checker never modifies a parsed file).
    """
    return _load(texts, cache, {})


def _load(
    texts: Mapping[str, bytes | str], cache: ParseCache | None, sizes: dict[str, int]
) -> LoadResult:
    parsed: list[A.RulesFile] = []
    diags: list[Diagnostic] = []
    for path, content in texts.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        size_problem = file_size_problem(path, sizes.get(path, len(data)))
        if size_problem is not None:
            diags.append(size_problem)
            if size_problem.is_error:  # not parsed: a huge file must not reach the parser
                parsed.append(A.RulesFile(path, ""))
                continue
        rf, d = cache.parse(data, path) if cache is not None else parse_bytes(data, path)
        parsed.append(rf)
        diags.extend(d)
    if cache is not None:
        cache.keep_only(texts)
    diags.extend(literal_problems(parsed))
    program, check_diags = check_files(parsed)
    diags.extend(check_diags)
    diags.extend(binding_limits((c.rule, c.var_domains) for c in program.rules))
    diags.sort(
        key=lambda d: (list(texts).index(d.file) if d.file in texts else 0, d.line, d.column)
    )
    sources = {f.path: f.text for f in parsed}
    result = LoadResult(list(texts), sources, diags, program, None, parsed)
    if result.ok:
        result.ruleset = compile_program(program)
    return result


def load_ruleset(paths: Iterable[str | Path], cache: ParseCache | None = None) -> LoadResult:
    """Load every `.rules` file under paths as one ruleset.

    Raises PathError for a path that is missing, a directory with no rules,
    or a file that cannot be read; everything wrong inside a file is a
    diagnostic in the result instead.
    """
    files = find_rule_files(paths)
    texts: dict[str, bytes | str] = {}
    sizes: dict[str, int] = {}
    for f in files:
        try:
            texts[str(f)], sizes[str(f)] = read_bounded(str(f))
        except OSError as err:
            raise PathError(f"{f}: cannot be read: {err.strerror or err}") from err
    return _load(texts, cache, sizes)
