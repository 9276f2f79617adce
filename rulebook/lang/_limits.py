"""Bounded work: the limits a ruleset must keep, checked before and after parsing.

Each check is a small function of the parsed files (or the raw bytes) that
returns diagnostics; the loader calls them, so they stay out of the checker
proper. The limits are documented in docs/limits.md:

- a rule file past ``FILE_BYTES_WARN`` is a warning (W203), past
  ``FILE_BYTES_MAX`` an error (E111) and the file is not parsed at all;
- an alert text past ``STRING_CHARS_WARN`` characters is W203, past
  ``STRING_CHARS_MAX`` E111;
- a rule whose `for` clause gives more than ``BINDINGS_WARN`` bindings is
  W203, more than ``BINDINGS_MAX`` E111 (each binding costs about 2.4 KB per
  evaluation: 90,000 bindings took 290 MB in a dry-run);
- a number literal that is not finite (``1e999``) or beyond ``NUMBER_MAX``
  in size is E109: nothing downstream can compute with it.

No function here recurses: expressions can be 100,000 parentheses deep.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from . import _ast as A
from ._diagnostics import Diagnostic

__all__ = [
    "BINDINGS_MAX",
    "BINDINGS_WARN",
    "FILE_BYTES_MAX",
    "FILE_BYTES_WARN",
    "NUMBER_MAX",
    "STRING_CHARS_MAX",
    "STRING_CHARS_WARN",
    "binding_limits",
    "file_size_problem",
    "literal_problems",
    "read_bounded",
]

FILE_BYTES_WARN = 256 * 1024
FILE_BYTES_MAX = 2 * 1024 * 1024
STRING_CHARS_WARN = 1_000
STRING_CHARS_MAX = 10_000
BINDINGS_WARN = 50_000
BINDINGS_MAX = 500_000
#: the largest magnitude of a number literal (money, rates, durations, counts)
NUMBER_MAX = 1e15
_LIMIT_TEXT = f"{NUMBER_MAX:.0e}".replace("e+", "e")  # 1e15


def _file_span(path: str) -> A.Span:
    return A.Span(path, 1, 1, 1, 2)


def read_bounded(path: str, limit: int = FILE_BYTES_MAX) -> tuple[bytes, int]:
    """A rule file's bytes and its size; past ``limit`` only its size (bytes empty),
    so a 10 GB file is never read into memory."""
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
        if len(data) <= limit:
            return data, len(data)
        fh.seek(0, 2)
        return b"", fh.tell()


def file_size_problem(path: str, size: int) -> Diagnostic | None:
    """W203 past the warning size, E111 past the hard one (the file is then not parsed)."""
    if size > FILE_BYTES_MAX:
        return Diagnostic.at(
            _file_span(path),
            "E111",
            f"rule file of {size:,} bytes is larger than {FILE_BYTES_MAX:,}; not read",
            "split it into several files, or check that this is a rules file",
        )
    if size > FILE_BYTES_WARN:
        return Diagnostic.at(
            _file_span(path),
            "W203",
            f"rule file of {size:,} bytes is larger than {FILE_BYTES_WARN:,}",
            f"split it into several files; past {FILE_BYTES_MAX:,} bytes it is refused",
        )
    return None


def _expressions(st: A.Statement) -> Iterator[A.Expr]:
    if isinstance(st, A.LetDef):
        yield st.value
    elif isinstance(st, A.Rule):
        yield st.when
        for action in st.actions:
            if isinstance(action, A.Hedge):
                yield action.amount
        if st.exit_when is not None:
            yield st.exit_when
    elif isinstance(st, A.RiskBlock):
        for item in st.items:
            yield item.value


def _nodes(root: A.Expr) -> Iterator[A.Expr]:
    """Every node under root, without recursion."""
    stack = [root]
    while stack:
        e = stack.pop()
        yield e
        if isinstance(e, (A.BinOp, A.Compare)):
            stack.append(e.right)
            stack.append(e.left)
        elif isinstance(e, (A.And, A.Or)):
            stack.extend(reversed(e.terms))
        elif isinstance(e, (A.Neg, A.Not)):
            stack.append(e.operand)
        elif isinstance(e, A.Call):
            stack.extend(reversed(e.args))


def _literal(e: A.Expr) -> tuple[float, str] | None:
    if isinstance(e, (A.Number, A.RateLit, A.MoneyLit)):
        return e.value, e.text
    if isinstance(e, A.DurationLit):
        return e.seconds, e.text
    return None


def literal_problems(files: Iterable[A.RulesFile]) -> list[Diagnostic]:
    """E109 for number literals that overflow or are too large; E111/W203 for long texts."""
    out: list[Diagnostic] = []
    for f in files:
        for st in f.statements:
            for root in _expressions(st):
                for e in _nodes(root):
                    lit = _literal(e)
                    if lit is None:
                        continue
                    value, text = lit
                    shown = text if len(text) <= 40 else f"{text[:40]}..."
                    if not math.isfinite(value):
                        out.append(
                            Diagnostic.at(
                                e.span,
                                "E109",
                                f"number {shown} is too large to compute with (it overflows)",
                                f"numbers are limited to {_LIMIT_TEXT}",
                            )
                        )
                    elif abs(value) > NUMBER_MAX:
                        out.append(
                            Diagnostic.at(
                                e.span,
                                "E109",
                                f"number {shown} is beyond {_LIMIT_TEXT}",
                                "no amount, rate or duration is this large: a typo?",
                            )
                        )
            if isinstance(st, A.Rule):
                for action in st.actions:
                    if isinstance(action, A.Alert):
                        problem = _string_problem(action)
                        if problem is not None:
                            out.append(problem)
    return out


def _string_problem(action: A.Alert) -> Diagnostic | None:
    n = len(action.template)
    if n > STRING_CHARS_MAX:
        return Diagnostic.at(
            action.span,
            "E111",
            f"alert text of {n:,} characters is longer than {STRING_CHARS_MAX:,}",
            "alerts go to chat and e-mail: keep them to a line or two",
        )
    if n > STRING_CHARS_WARN:
        return Diagnostic.at(
            action.span,
            "W203",
            f"alert text of {n:,} characters is longer than {STRING_CHARS_WARN:,}",
            f"keep alerts short; past {STRING_CHARS_MAX:,} characters they are refused",
        )
    return None


def binding_limits(rules: Iterable[tuple[A.Rule, list[list[str]]]]) -> list[Diagnostic]:
    """W203/E111 for a rule whose `for` clause gives too many bindings (the product
    of its variables' domains), at the `for` clause."""
    out: list[Diagnostic] = []
    for rule, domains in rules:
        if not rule.fors:
            continue
        count = math.prod(len(d) for d in domains)
        if count <= BINDINGS_WARN:
            continue
        span = rule.fors[0].var_span.to(rule.fors[-1].source_span)
        sizes = " x ".join(f"{len(d):,}" for d in domains)
        if count > BINDINGS_MAX:
            out.append(
                Diagnostic.at(
                    span,
                    "E111",
                    f"rule '{rule.name}' has {count:,} bindings ({sizes}), more than {BINDINGS_MAX:,}",
                    "bind fewer variables or smaller sets; each binding is evaluated every cycle",
                )
            )
        else:
            out.append(
                Diagnostic.at(
                    span,
                    "W203",
                    f"rule '{rule.name}' has {count:,} bindings ({sizes}), more than {BINDINGS_WARN:,}",
                    f"each binding is evaluated every cycle; past {BINDINGS_MAX:,} the rule is refused",
                )
            )
    return out
