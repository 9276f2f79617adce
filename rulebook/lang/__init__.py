"""The language stage: text to a checked, compiled ruleset.

    from rulebook.lang import load_ruleset
    result = load_ruleset(["strategies/"])
    for d in result.diagnostics: print(render_text(d, result.sources.get(d.file)))
    ruleset = result.ruleset          # None when there are errors

No exchange or I/O knowledge beyond reading the rule files themselves.
"""

from __future__ import annotations

from ._ast import LetDef, Span
from ._check import Program
from ._compile import (
    AlertAction,
    Binding,
    CloseAction,
    CompiledRule,
    Env,
    Explanation,
    HedgeAction,
    NoData,
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
    "CompiledRule",
    "Diagnostic",
    "Env",
    "EXCHANGES",
    "Explanation",
    "HedgeAction",
    "LEVELS",
    "LetDef",
    "LoadResult",
    "NoData",
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
    "load_ruleset",
    "load_texts",
    "parse_text",
    "render_text",
]
