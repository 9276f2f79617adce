"""Diagnostics: what the checker finds, and how `rulebook validate` prints it."""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass
from typing import Literal

from rulebook._text import terminal_safe, visible

from ._ast import Span

__all__ = ["Diagnostic", "Severity", "render_text", "suggest", "CODES"]

Severity = Literal["error", "warning"]

# Every code rulebook emits; the E0xx/E1xx/W2xx classes follow the spec.
CODES: dict[str, str] = {
    "E001": "syntax error",
    "E101": "unknown name",
    "E102": "unknown exchange",
    "E103": "unknown function",
    "E104": "wrong number of arguments",
    "E105": "type or unit mismatch",
    "E106": "duplicate name",
    "E107": "metric used without a subject",
    "E108": "second risk block, or unknown risk key",
    "E109": "value out of range",
    "E110": "position value outside an exit clause",
    "E111": "input too large (file, text or bindings past a hard limit)",
    "E112": "expression nested too deeply",
    "W201": "condition can never be true",
    "W202": "unused set or constant",
    "W203": "input large (file, text or bindings past a warning size)",
}


@dataclass(frozen=True, slots=True)
class Diagnostic:
    file: str
    line: int
    column: int
    end_line: int
    end_column: int
    severity: Severity
    code: str
    message: str
    hint: str | None = None

    @classmethod
    def at(
        cls,
        span: Span,
        code: str,
        message: str,
        hint: str | None = None,
        severity: Severity | None = None,
    ) -> Diagnostic:
        sev: Severity = severity or ("warning" if code.startswith("W") else "error")
        return cls(
            span.file,
            span.line,
            span.column,
            span.end_line,
            span.end_column,
            sev,
            code,
            message,
            hint,
        )

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def suggest(word: str, candidates: object) -> str | None:
    """The closest candidate to a misspelt word, if one is close enough."""
    names = sorted({str(c) for c in candidates})  # type: ignore[attr-defined]
    found = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    return found[0] if found else None


#: a source line longer than this is shown as a window around the finding
SHOWN_LINE_CHARS = 160


def render_text(diag: Diagnostic, source: str | None) -> str:
    """Format one diagnostic as in spec section 8 (rustc style).

    Text from the file is made safe for a terminal: each control character
    shows as one visible symbol (so the carets stay under their columns) and a
    long line is cut to a window around the finding, with the counts cut."""
    head = f"{diag.severity}[{diag.code}]: {terminal_safe(diag.message)}"
    src_lines = source.splitlines() if source is not None else []
    width = len(str(diag.line))
    pad = " " * width
    out = [head, f"{pad} --> {terminal_safe(diag.file)}:{diag.line}:{diag.column}"]
    hint = terminal_safe(diag.hint) if diag.hint else None
    if 1 <= diag.line <= len(src_lines):
        text = visible(src_lines[diag.line - 1].expandtabs(1))
        start = max(diag.column, 1)
        end = diag.end_column if diag.end_line == diag.line else len(text) + 1
        end = max(end, start + 1)
        text, start, end = _window(text, start, end)
        carets = " " * (start - 1) + "^" * (end - start)
        tail = f" {hint}" if hint else ""
        out += [
            f"{pad}  |",
            f" {diag.line} | {text}",
            f"{pad}  | {carets}{tail}",
        ]
    elif hint:
        out.append(f"{pad}  = hint: {hint}")
    return "\n".join(out)


def _window(text: str, start: int, end: int) -> tuple[str, int, int]:
    """At most SHOWN_LINE_CHARS of ``text`` around columns start..end (1-based,
    end exclusive), with markers counting what was cut; columns shifted to match."""
    if len(text) <= SHOWN_LINE_CHARS:
        return text, start, end
    end = min(end, start + SHOWN_LINE_CHARS // 2)  # a long span: its beginning
    first = max(0, start - 1 - SHOWN_LINE_CHARS // 4)
    last = min(len(text), first + SHOWN_LINE_CHARS)
    left = f"[{first:,} characters] " if first else ""
    right = f" [{len(text) - last:,} more characters]" if last < len(text) else ""
    shift = len(left) - first
    return left + text[first:last] + right, start + shift, min(end, last + 1) + shift
