"""The language stage: text to a checked, resolved, compiled ruleset.

    from rulebook.lang import load_ruleset
    result = load_ruleset(["strategies/"])
    for d in result.diagnostics: print(render_text(d, result.sources.get(d.file)))
    ruleset = result.ruleset          # None when there are errors
    rule = ruleset.rules[0]
    rule.when                         # a resolved expression: rulebook.lang.ir
    rule.bindings                     # every combination of its `for` variables

The resolved program (`rulebook.lang.ir`) is typed dataclasses with their
spans; the engine evaluates it. No exchange or I/O knowledge beyond reading
the rule files themselves.
"""

from __future__ import annotations

from . import ir
from ._ast import LetDef, Span
from ._check import MAX_NESTING, CheckedRule, Program
from ._compile import (
    AlertAction,
    Binding,
    CloseAction,
    CompiledRule,
    Explanation,
    HedgeAction,
    Markets,
    RiskLimits,
    Ruleset,
    Step,
    Subject,
)
from ._diagnostics import CODES, Diagnostic, render_text
from ._limits import FILE_BYTES_MAX, file_size_problem, read_bounded
from ._load import LoadResult, ParseCache, PathError, find_rule_files, load_ruleset, load_texts
from ._parse import parse_text
from ._types import EXCHANGES, LEVELS, RISK_KEYS, format_value

__all__ = [
    "AlertAction",
    "Binding",
    "CloseAction",
    "CODES",
    "CheckedRule",
    "CompiledRule",
    "Diagnostic",
    "EXCHANGES",
    "Explanation",
    "HedgeAction",
    "LEVELS",
    "LetDef",
    "LoadResult",
    "MAX_NESTING",
    "Markets",
    "ParseCache",
    "PathError",
    "RISK_KEYS",
    "Program",
    "RiskLimits",
    "Ruleset",
    "Span",
    "Step",
    "Subject",
    "FILE_BYTES_MAX",
    "file_size_problem",
    "find_rule_files",
    "read_bounded",
    "format_value",
    "ir",
    "load_ruleset",
    "load_texts",
    "parse_text",
    "render_text",
]
