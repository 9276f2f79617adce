"""`--set NAME=VALUE`: a `let` constant's value replaced in the rule texts.

The override is applied to the source text and the result is checked like
any edit, so `--set cross_min_spread=0.08` (a number where a rate is due)
gets the same E105 diagnostic a file would, and a swept ruleset has its own
sha256 in the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping

from rulebook.errors import RulebookError
from rulebook.lang import LetDef, parse_text

__all__ = ["OverrideError", "apply_overrides", "let_constants", "parse_assignment"]


class OverrideError(RulebookError):
    """A --set or --sweep names no `let` constant, or is not NAME=VALUE."""


def parse_assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name or not value:
        raise OverrideError(f"{text!r}: expected NAME=VALUE, like cross_min_spread=0.08%")
    return name, value


def _offset(text: str, line: int, column: int) -> int:
    lines = text.splitlines(keepends=True)
    return sum(len(x) for x in lines[: line - 1]) + column - 1


def let_constants(texts: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Every `let` constant: name -> (file, its value's source text)."""
    found: dict[str, tuple[str, str]] = {}
    for path, text in texts.items():
        rf, _ = parse_text(text, path)
        for st in rf.statements:
            if isinstance(st, LetDef):
                sp = st.value.span
                a = _offset(text, sp.line, sp.column)
                b = _offset(text, sp.end_line, sp.end_column)
                found.setdefault(st.name, (path, text[a:b]))
    return found


def apply_overrides(texts: Mapping[str, str], overrides: Mapping[str, str]) -> dict[str, str]:
    """The texts with each named constant's value replaced by the given source text."""
    out = dict(texts)
    if not overrides:
        return out
    remaining = dict(overrides)
    for path, text in texts.items():
        rf, _ = parse_text(text, path)
        cuts: list[tuple[int, int, str]] = []
        for st in rf.statements:
            if isinstance(st, LetDef) and st.name in remaining:
                sp = st.value.span
                a = _offset(text, sp.line, sp.column)
                b = _offset(text, sp.end_line, sp.end_column)
                cuts.append((a, b, remaining.pop(st.name)))
        for a, b, value in sorted(cuts, reverse=True):
            text = text[:a] + value + text[b:]
        out[path] = text
    if remaining:
        known = ", ".join(sorted(let_constants(texts))) or "none"
        names = ", ".join(sorted(remaining))
        raise OverrideError(f"no `let` constant named {names} in the ruleset (constants: {known})")
    return out
