"""The checker: names, scopes, exchanges, arity, types and units, the subject
rule, the risk block and value ranges, over all files of a ruleset at once.

It never stops at the first error. Each expression that fails to check gets
the type None, and None is silently accepted wherever it flows, so one mistake
gives one diagnostic rather than a cascade.

This module checks the statements (sets, constants, rules, actions, the risk
block); `_check_expr` checks the expressions in them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from . import _ast as A
from . import ir
from ._check_expr import ALL_FUNCTIONS, ExprChecker, Scope, type_words, unit_hint
from ._diagnostics import Diagnostic, suggest
from ._lower import Lowering, Unresolved
from ._types import (
    BOOL,
    COIN,
    DURATION,
    EXCHANGE,
    EXCHANGES,
    LEVELS,
    METRICS,
    MONEY,
    NUMBER,
    POSITION_VALUES,
    RISK_KEYS,
    SUBJECT_FUNCTIONS,
)

__all__ = ["MAX_NESTING", "Program", "CheckedRule", "SetInfo", "ConstInfo", "check_files"]

#: how deep an expression may nest (docs/language.md); parentheses do not
#: count, and a chain `a and b and c` is one level whatever its length
MAX_NESTING = 100

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_TEMPLATE_FIGURES = ("edge", "confidence", "apr")


@dataclass(slots=True)
class SetInfo:
    name: str
    kind: str  # COIN or EXCHANGE
    items: list[str]
    span: A.Span
    uses: int = 0


@dataclass(slots=True)
class ConstInfo:
    name: str
    type: str
    value: float
    span: A.Span
    uses: int = 0


@dataclass(slots=True)
class CheckedRule:
    """One rule without errors, resolved (see `rulebook.lang.ir`)."""

    rule: A.Rule  # the syntax tree it was checked from
    var_names: list[str]
    var_types: list[str]  # COIN or EXCHANGE per variable (slot)
    var_domains: list[list[str]]
    #: the first spread/funding/basis/borrow call of `when`, in source order (spec 6)
    subject: ir.MarketCall | None
    when: ir.Expr
    exit_when: ir.Expr | None
    actions: list[ir.Action]


@dataclass(slots=True)
class Program:
    """A checked ruleset: its resolved rules and risk limits (only the rules
    without errors; compiled only when the whole ruleset has none)."""

    files: list[A.RulesFile]
    sets: dict[str, SetInfo]
    consts: dict[str, ConstInfo]
    rules: list[CheckedRule]
    risk: A.RiskBlock | None
    risk_values: dict[str, float] = field(default_factory=dict)


def _loc(span: A.Span) -> str:
    return f"{span.file}:{span.line}:{span.column}"


class _Checker(ExprChecker):
    def __init__(self, files: list[A.RulesFile]):
        self.files = files
        self.diags: list[Diagnostic] = []
        self.sets: dict[str, SetInfo] = {}
        self.consts: dict[str, ConstInfo] = {}
        self.types: dict[int, str] = {}
        self.names: dict[int, tuple[str, object]] = {}
        self.lost = set().union(*(f.lost_names for f in files)) if files else set()
        self.lost_words = set().union(*(f.lost_words for f in files)) if files else set()
        self.defined_at: dict[str, A.Span] = {}

    # -- whole ruleset ------------------------------------------------------------

    def run(self) -> Program:
        sets: list[A.SetDef] = []
        lets: list[A.LetDef] = []
        rules: list[A.Rule] = []
        risks: list[A.RiskBlock] = []
        for f in self.files:
            for st in f.statements:
                if isinstance(st, A.SetDef):
                    sets.append(st)
                elif isinstance(st, A.LetDef):
                    lets.append(st)
                elif isinstance(st, A.Rule):
                    rules.append(st)
                else:
                    risks.append(st)

        definitions: list[A.SetDef | A.LetDef | A.Rule] = [*sets, *lets, *rules]
        for d in definitions:
            self.define(d)
        for s in sets:
            self.check_set(s)
        for let in lets:
            self.check_let(let)
        checked = [self.check_rule(r) for r in rules]

        risk = risks[0] if risks else None
        for extra in risks[1:]:
            self.error(
                A.Span(
                    extra.span.file,
                    extra.span.line,
                    extra.span.column,
                    extra.span.line,
                    extra.span.column + 4,
                ),
                "E108",
                f"a second risk block; the first is at {_loc(risks[0].span)}",
                "one risk block per ruleset: merge the two",
            )
            self.check_risk(extra)  # its own mistakes too; its values are not used
        risk_values = self.check_risk(risk) if risk else {}

        for info in self.sets.values():
            if info.uses == 0 and info.name not in self.lost_words:
                self.error(
                    info.span,
                    "W202",
                    f"set '{info.name}' is never used",
                    "remove it or use it in a `for`",
                )
        for const in self.consts.values():
            if const.uses == 0 and const.name not in self.lost_words:
                self.error(
                    const.span,
                    "W202",
                    f"constant '{const.name}' is never used",
                    "remove it or use it in a rule",
                )
        return Program(
            self.files,
            self.sets,
            self.consts,
            [c for c in checked if c],
            risk,
            risk_values,
        )

    def define(self, st: A.SetDef | A.LetDef | A.Rule) -> None:
        if isinstance(st, A.Rule) and st.anonymous:
            return
        first = self.defined_at.get(st.name)
        if first is not None:
            self.error(
                st.name_span,
                "E106",
                f"duplicate name '{st.name}'; it is already defined at {_loc(first)}",
                "names of sets, constants and rules are unique across all files",
            )
            return
        self.defined_at[st.name] = st.name_span
        if (
            st.name in EXCHANGES
            or st.name in METRICS
            or st.name in LEVELS
            or st.name in POSITION_VALUES
        ):
            if not isinstance(st, A.Rule):
                self.error(
                    st.name_span, "E106", f"'{st.name}' is a built-in name and cannot be redefined"
                )

    # -- sets and constants ---------------------------------------------------------

    def check_items(self, items: list[A.SetItem], what: str) -> str | None:
        """The kind of a list of items (COIN or EXCHANGE), reporting bad items."""
        kinds = {COIN if it.is_coin else EXCHANGE for it in items}
        if len(kinds) > 1:
            first_name = next(it for it in items if not it.is_coin)
            self.error(
                first_name.span,
                "E105",
                f"{what} mixes coins and exchanges",
                "a set holds only coins (upper-case) or only exchanges (lower-case)",
            )
            return None
        kind = kinds.pop()
        if kind == EXCHANGE:
            for it in items:
                if it.text not in EXCHANGES:
                    self.unknown_exchange(it.text, it.span, ())
        seen: set[str] = set()
        for it in items:
            if it.text in seen:
                self.error(it.span, "E106", f"'{it.text}' is listed twice in {what}")
            seen.add(it.text)
        return kind

    def check_set(self, s: A.SetDef) -> None:
        kind = self.check_items(s.items, f"set '{s.name}'")
        if kind and self.defined_at.get(s.name) is s.name_span:
            self.sets[s.name] = SetInfo(s.name, kind, [it.text for it in s.items], s.name_span)
        elif kind is None:
            self.lost.add(s.name)  # reported already: its uses are not "unknown set"

    def check_let(self, let: A.LetDef) -> None:
        if self.too_deep(let.value):
            self.lost.add(let.name)  # reported: its uses are not "unknown name"
            return
        lit = self.literal_value(let.value)
        if lit and self.defined_at.get(let.name) is let.name_span:
            self.consts[let.name] = ConstInfo(let.name, lit[0], lit[1], let.name_span)

    # -- rules --------------------------------------------------------------------------

    def too_deep(self, *exprs: A.Expr | None) -> bool:
        """Report an expression nested deeper than MAX_NESTING (E112), once.

        Everything after parsing walks expressions by recursion, within this
        limit; parentheses and `and`/`or` chains do not count towards it."""
        for e in exprs:
            if e is None:
                continue
            deep = _too_deep(e, MAX_NESTING)
            if deep is not None:
                self.error(
                    deep.span,
                    "E112",
                    f"expression nested more than {MAX_NESTING} levels deep",
                    "write it flatter: `not not x` is `x`, and a long sum or chain of "
                    "calls can be split over several rules",
                )
                self.lost_words.update(_words(e))  # its sets and constants are used
                return True
        return False

    def check_rule(self, rule: A.Rule) -> CheckedRule | None:
        amounts = [a.amount for a in rule.actions if isinstance(a, A.Hedge)]
        if self.too_deep(rule.when, *amounts, rule.exit_when):
            return None
        names: list[str] = []
        types: list[str] = []
        domains: list[list[str]] = []
        errors_before = sum(d.is_error for d in self.diags)
        # a second rule of the same name has had its E106 already
        ok = rule.anonymous or self.defined_at.get(rule.name) is rule.name_span
        for fb in rule.fors:
            kind, items = self.check_source(fb)
            if fb.var in names:
                self.error(fb.var_span, "E106", f"variable '{fb.var}' is bound twice in this rule")
                ok = False
                continue
            if (
                fb.var in self.defined_at
                or fb.var in EXCHANGES
                or fb.var in METRICS
                or fb.var in LEVELS
                or fb.var in POSITION_VALUES
            ):
                where = self.defined_at.get(fb.var)
                self.error(
                    fb.var_span,
                    "E106",
                    f"variable '{fb.var}' hides "
                    + (
                        f"the name defined at {_loc(where)}"
                        if where
                        else f"the built-in '{fb.var}'"
                    ),
                    "choose another variable name",
                )
                ok = False
            if kind is None:
                ok = False
            names.append(fb.var)
            types.append(kind)  # type: ignore[arg-type]  # None: the source is broken
            domains.append(items)

        scope = Scope(
            {n: (i, t) for i, (n, t) in enumerate(zip(names, types, strict=True))},
            False,
            False,
            rule,
        )
        subject = _find_subject(rule.when)
        # An unknown function may be a misspelt subject (`sprad(...)`): its E103
        # is the one mistake, so do not pile E107 on the rule's metrics and hedge.
        scope.has_subject = subject is not None or _calls_unknown_function(rule.when)

        wt = self.expr(rule.when, scope)
        if wt not in (None, BOOL):
            self.error(rule.when.span, "E105", f"a `when` clause must be a condition, not {type_words(wt)}")
        for action in rule.actions:
            self.check_action(action, scope, names)
        if rule.exit_when is not None:
            exit_scope = Scope(scope.vars, scope.has_subject, True, rule)
            et = self.expr(rule.exit_when, exit_scope)
            if et not in (None, BOOL):
                self.error(
                    rule.exit_when.span,
                    "E105",
                    f"an `exit when` clause must be a condition, not {type_words(et)}",
                )
        if not ok or sum(d.is_error for d in self.diags) > errors_before:
            return None
        try:
            return self.lower(rule, names, types, domains, subject)
        except Unresolved:
            return None

    def lower(
        self,
        rule: A.Rule,
        names: list[str],
        types: list[str],
        domains: list[list[str]],
        subject: A.Call | None,
    ) -> CheckedRule:
        """A rule without errors as the resolved program (`rulebook.lang.ir`)."""
        low = Lowering(self.types, self.names)
        when = low.expr(rule.when)
        first = next(
            (n for n in ir.walk(when) if isinstance(n, ir.MarketCall) and n.func in SUBJECT_FUNCTIONS),
            None,
        )
        assert (first is None) == (subject is None)
        return CheckedRule(
            rule,
            names,
            types,
            domains,
            first,
            when,
            low.expr(rule.exit_when) if rule.exit_when is not None else None,
            [low.action(a) for a in rule.actions],
        )

    def check_source(self, fb: A.ForBinding) -> tuple[str | None, list[str]]:
        if fb.items is not None:
            kind = self.check_items(fb.items, "this list")
            return kind, [it.text for it in fb.items]
        assert fb.set_name is not None
        info = self.sets.get(fb.set_name)
        if info is None:
            if fb.set_name in self.consts:
                self.error(fb.source_span, "E105", f"'{fb.set_name}' is a constant, not a set")
            elif fb.set_name not in self.lost:
                near = suggest(fb.set_name, self.sets)
                self.error(
                    fb.source_span,
                    "E101",
                    f"unknown set '{fb.set_name}'",
                    f"did you mean '{near}'?" if near else "define it with `set NAME = ...`",
                )
            return None, []
        info.uses += 1
        return info.kind, list(info.items)

    def check_action(self, action: A.Action, scope: Scope, var_names: list[str]) -> None:
        if isinstance(action, A.Hedge):
            if not scope.has_subject:
                self.error(
                    action.span,
                    "E107",
                    "`hedge` needs a subject, and this rule has none",
                    "the first spread, funding, basis or borrow call of `when` fixes the legs",
                )
            t = self.expr(action.amount, scope)
            if t not in (None, MONEY):
                hint = None
                if t == NUMBER and isinstance(action.amount, A.Number):
                    hint = f"did you mean '{action.amount.text} USDT'?"
                self.error(
                    action.amount.span,
                    "E105",
                    f"`hedge` takes an amount of money, not {type_words(t)}",
                    hint,
                )
            value = self.const_value(action.amount)
            if t == MONEY and value is not None and value <= 0:
                self.error(action.amount.span, "E109", "a hedge amount must be positive")
        elif isinstance(action, A.Close):
            if not scope.has_subject:
                self.error(action.span, "E107", "`close` needs a subject, and this rule has none")
        else:
            for m in _PLACEHOLDER.finditer(action.template):
                key = m.group(1)
                if key in var_names:
                    continue
                if key in _TEMPLATE_FIGURES:
                    if not scope.has_subject:
                        self.error(action.span, "E107", f"'{{{key}}}' in the alert needs a subject")
                    continue
                near = suggest(key, [*var_names, *_TEMPLATE_FIGURES])
                self.error(
                    action.span,
                    "E101",
                    f"unknown name '{{{key}}}' in the alert text",
                    f"did you mean '{{{near}}}'?"
                    if near
                    else "use a variable of the rule, {edge}, {confidence} or {apr}",
                )

    # -- risk block -------------------------------------------------------------------------

    def check_risk(self, block: A.RiskBlock) -> dict[str, float]:
        values: dict[str, float] = {}
        seen: dict[str, A.Span] = {}
        for item in block.items:
            spec = RISK_KEYS.get(item.key)
            if spec is None:
                near = suggest(item.key, RISK_KEYS)
                self.error(
                    item.key_span,
                    "E108",
                    f"unknown risk key '{item.key}'",
                    f"did you mean '{near}'?" if near else "keys are " + ", ".join(RISK_KEYS),
                )
                continue
            if item.key in seen:
                self.error(
                    item.key_span,
                    "E108",
                    f"risk key '{item.key}' is set twice; first at {_loc(seen[item.key])}",
                )
                continue
            seen[item.key] = item.key_span
            if self.too_deep(item.value):
                continue
            lit = self.literal_value(item.value)
            assert lit is not None  # the grammar only admits literals here
            t, v = lit
            self.types[id(item.value)] = t
            if t != spec.type:
                self.error(
                    item.value.span,
                    "E105",
                    f"'{item.key}' takes {type_words(spec.type)}, not {type_words(t)}",
                    unit_hint(spec.type, item.value),
                )
                continue
            problem = _risk_range_problem(item.key, t, v)
            if problem:
                self.error(item.value.span, "E109", problem)
                continue
            values[item.key] = v
        return values

def _risk_range_problem(key: str, t: str, v: float) -> str | None:
    if not math.isfinite(v):
        return None  # an overflowing literal: E109 from _limits.literal_problems
    if t == MONEY and v <= 0:
        return f"'{key}' must be a positive amount"
    if t == DURATION and v <= 0:
        return f"'{key}' must be a positive duration"
    if key == "stop_loss" and not 0 < v <= 1:
        return "stop_loss must be between 0% and 100%"
    if key == "min_confidence" and not 0 <= v <= 1:
        return "min_confidence must be between 0 and 1"
    if key == "max_open_positions" and (v < 1 or v != int(v)):
        return "max_open_positions must be a whole number of at least 1"
    return None


def _too_deep(e: A.Expr, limit: int) -> A.Expr | None:
    """The first node (in source order) deeper than `limit`, found without recursion."""
    stack = [(e, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if depth > limit:
            return node
        kids = _children(node)
        if kids:
            depth += 1
            for c in reversed(kids):
                push((c, depth))
    return None


def _words(e: A.Expr) -> set[str]:
    """The names an expression mentions, found without recursion."""
    out: set[str] = set()
    stack = [e]
    while stack:
        node = stack.pop()
        if isinstance(node, A.Name):
            out.add(node.id)
        stack.extend(_children(node))
    return out


def _find_subject(e: A.Expr) -> A.Call | None:
    """The first subject call of an expression, in source order."""
    if isinstance(e, A.Call):
        if e.func in SUBJECT_FUNCTIONS:
            return e
        for a in e.args:
            found = _find_subject(a)
            if found:
                return found
        return None
    for child in _children(e):
        found = _find_subject(child)
        if found:
            return found
    return None


def _calls_unknown_function(e: A.Expr) -> bool:
    """Whether an expression calls a function that does not exist (an E103)."""
    if isinstance(e, A.Call) and e.func not in ALL_FUNCTIONS:
        return True
    return any(_calls_unknown_function(c) for c in _children(e))


def _children(e: A.Expr) -> list[A.Expr]:
    t = type(e)
    if t is A.BinOp or t is A.Compare:
        return [e.left, e.right]  # type: ignore[attr-defined]
    if t is A.And or t is A.Or:
        return e.terms  # type: ignore[attr-defined]  # read only
    if t is A.Neg or t is A.Not:
        return [e.operand]  # type: ignore[attr-defined]
    if t is A.Call:
        return e.args  # type: ignore[attr-defined]  # read only
    return []


def check_files(files: list[A.RulesFile]) -> tuple[Program, list[Diagnostic]]:
    """Check the files of one ruleset together."""
    checker = _Checker(files)
    program = checker.run()
    return program, checker.diags
