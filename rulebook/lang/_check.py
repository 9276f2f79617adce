"""The checker: names, scopes, exchanges, arity, types and units, the subject
rule, the risk block and value ranges, over all files of a ruleset at once.

It never stops at the first error. Each expression that fails to check gets
the type None, and None is silently accepted wherever it flows, so one mistake
gives one diagnostic rather than a cascade.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import _ast as A
from ._diagnostics import Diagnostic, suggest
from ._types import (
    BOOL,
    COIN,
    DURATION,
    EXCHANGE,
    EXCHANGES,
    LEVEL,
    LEVELS,
    MARKET_FUNCTIONS,
    METRICS,
    MONEY,
    NUMBER,
    ORDERED,
    POSITION_VALUES,
    RATE,
    RISK_KEYS,
    SCALABLE,
    SUBJECT_FUNCTIONS,
    format_value,
)

__all__ = ["Program", "CheckedRule", "SetInfo", "ConstInfo", "check_files"]

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_TEMPLATE_FIGURES = ("edge", "confidence", "apr")
_OTHER_FUNCTIONS = ("apr", "abs", "min", "max", "net")
_ALL_FUNCTIONS = tuple(MARKET_FUNCTIONS) + _OTHER_FUNCTIONS
# Known ranges of some metrics, to spot conditions that can never hold.
_METRIC_RANGES = {
    "confidence": (0.0, 1.0),
    "breakeven": (0.0, float("inf")),
    "fees": (0.0, float("inf")),
}


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
    rule: A.Rule
    var_names: list[str]
    var_types: list[str]  # COIN or EXCHANGE per variable
    var_domains: list[list[str]]
    subject: A.Call | None


@dataclass(slots=True)
class Program:
    """A checked ruleset, ready for the compiler (only when it has no errors)."""

    files: list[A.RulesFile]
    sets: dict[str, SetInfo]
    consts: dict[str, ConstInfo]
    rules: list[CheckedRule]
    risk: A.RiskBlock | None
    # id(expr) -> its type; id(Name) -> what the name resolved to:
    # ("var", index) | ("const", value) | ("metric", name) | ("level", n)
    # | ("exchange", name) | ("position", name)
    types: dict[int, str] = field(default_factory=dict)
    names: dict[int, tuple[str, object]] = field(default_factory=dict)
    risk_values: dict[str, float] = field(default_factory=dict)


def _loc(span: A.Span) -> str:
    return f"{span.file}:{span.line}:{span.column}"


@dataclass(slots=True)
class _Scope:
    vars: dict[str, tuple[int, str]]  # name -> (index, type)
    has_subject: bool
    in_exit: bool
    rule: A.Rule


class _Checker:
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

    def error(self, span: A.Span, code: str, message: str, hint: str | None = None) -> None:
        self.diags.append(Diagnostic.at(span, code, message, hint))

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

        for st in [*sets, *lets, *rules]:
            self.define(st)
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
        for info in self.consts.values():
            if info.uses == 0 and info.name not in self.lost_words:
                self.error(
                    info.span,
                    "W202",
                    f"constant '{info.name}' is never used",
                    "remove it or use it in a rule",
                )
        return Program(
            self.files,
            self.sets,
            self.consts,
            [c for c in checked if c],
            risk,
            self.types,
            self.names,
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

    def unknown_exchange(self, word: str, span: A.Span, variables: object) -> None:
        near = suggest(word, [*EXCHANGES, *variables])  # type: ignore[misc]
        self.error(
            span,
            "E102",
            f"unknown exchange '{word}'",
            f"did you mean '{near}'?" if near else f"exchanges are {', '.join(EXCHANGES)}",
        )

    def check_set(self, s: A.SetDef) -> None:
        kind = self.check_items(s.items, f"set '{s.name}'")
        if kind and self.defined_at.get(s.name) is s.name_span:
            self.sets[s.name] = SetInfo(s.name, kind, [it.text for it in s.items], s.name_span)
        elif kind is None:
            self.lost.add(s.name)  # reported already: its uses are not "unknown set"

    def literal_value(self, e: A.Expr) -> tuple[str, float] | None:
        if isinstance(e, A.Neg):
            inner = self.literal_value(e.operand)
            return (inner[0], -inner[1]) if inner else None
        if isinstance(e, A.Number):
            return NUMBER, e.value
        if isinstance(e, A.RateLit):
            return RATE, e.value
        if isinstance(e, A.MoneyLit):
            return MONEY, e.value
        if isinstance(e, A.DurationLit):
            return DURATION, e.seconds
        return None

    def check_let(self, let: A.LetDef) -> None:
        lit = self.literal_value(let.value)
        if lit and self.defined_at.get(let.name) is let.name_span:
            self.consts[let.name] = ConstInfo(let.name, lit[0], lit[1], let.name_span)

    # -- rules --------------------------------------------------------------------------

    def check_rule(self, rule: A.Rule) -> CheckedRule | None:
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

        scope = _Scope(
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
            self.error(rule.when.span, "E105", f"a `when` clause must be a condition, not {_a(wt)}")
        for action in rule.actions:
            self.check_action(action, scope, names)
        if rule.exit_when is not None:
            exit_scope = _Scope(scope.vars, scope.has_subject, True, rule)
            et = self.expr(rule.exit_when, exit_scope)
            if et not in (None, BOOL):
                self.error(
                    rule.exit_when.span,
                    "E105",
                    f"an `exit when` clause must be a condition, not {_a(et)}",
                )
        if not ok or sum(d.is_error for d in self.diags) > errors_before:
            return None
        return CheckedRule(rule, names, types, domains, subject)

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

    def check_action(self, action: A.Action, scope: _Scope, var_names: list[str]) -> None:
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
                    f"`hedge` takes an amount of money, not {_a(t)}",
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
            lit = self.literal_value(item.value)
            assert lit is not None  # the grammar only admits literals here
            t, v = lit
            self.types[id(item.value)] = t
            if t != spec.type:
                self.error(
                    item.value.span,
                    "E105",
                    f"'{item.key}' takes {_a(spec.type)}, not {_a(t)}",
                    _unit_hint(spec.type, item.value),
                )
                continue
            problem = _risk_range_problem(item.key, t, v)
            if problem:
                self.error(item.value.span, "E109", problem)
                continue
            values[item.key] = v
        return values

    # -- expressions ---------------------------------------------------------------------------

    def expr(self, e: A.Expr, scope: _Scope) -> str | None:
        t = self._expr(e, scope)
        if t is not None:
            self.types[id(e)] = t
        return t

    def _expr(self, e: A.Expr, scope: _Scope) -> str | None:
        if isinstance(e, A.Number):
            return NUMBER
        if isinstance(e, A.RateLit):
            return RATE
        if isinstance(e, A.MoneyLit):
            return MONEY
        if isinstance(e, A.DurationLit):
            return DURATION
        if isinstance(e, A.CoinLit):
            return COIN
        if isinstance(e, A.RiskMetric):
            return self.metric("risk", e, scope)
        if isinstance(e, A.Name):
            return self.name(e, scope)
        if isinstance(e, A.Call):
            return self.call(e, scope)
        if isinstance(e, A.Neg):
            t = self.expr(e.operand, scope)
            if t is not None and t not in SCALABLE:
                self.error(e.span, "E105", f"cannot negate {_a(t)}")
                return None
            return t
        if isinstance(e, A.BinOp):
            return self.binop(e, scope)
        if isinstance(e, A.Compare):
            return self.compare(e, scope)
        if isinstance(e, (A.And, A.Or)):
            word = "and" if isinstance(e, A.And) else "or"
            for side in (e.left, e.right):
                t = self.expr(side, scope)
                if t not in (None, BOOL):
                    self.error(
                        side.span,
                        "E105",
                        f"`{word}` joins conditions, not {_a(t)}",
                        _condition_hint(t),
                    )
            return BOOL
        if isinstance(e, A.Not):
            t = self.expr(e.operand, scope)
            if t not in (None, BOOL):
                self.error(
                    e.operand.span,
                    "E105",
                    f"`not` takes a condition, not {_a(t)}",
                    _condition_hint(t),
                )
            return BOOL
        raise AssertionError(f"unexpected node {e!r}")

    def metric(self, name: str, e: A.Expr, scope: _Scope) -> str | None:
        if not scope.has_subject:
            self.error(
                e.span,
                "E107",
                f"metric '{name}' is used, but this rule has no subject",
                "a rule's subject is the first spread, funding, basis or borrow call of its `when` clause",
            )
            return None
        self.names[id(e)] = ("metric", name)
        return METRICS[name]

    def name(self, e: A.Name, scope: _Scope) -> str | None:
        n = e.id
        if n in scope.vars:
            idx, t = scope.vars[n]
            self.names[id(e)] = ("var", idx)
            return t
        if n in self.consts:
            info = self.consts[n]
            info.uses += 1
            self.names[id(e)] = ("const", info.value)
            return info.type
        if n in METRICS:
            return self.metric(n, e, scope)
        if n in POSITION_VALUES:
            if not scope.in_exit:
                self.error(
                    e.span,
                    "E110",
                    f"'{n}' is a value of an open position, known only in `exit when`",
                    "move this condition to the rule's `exit when` clause",
                )
                return None
            self.names[id(e)] = ("position", n)
            return POSITION_VALUES[n]
        if n in LEVELS:
            self.names[id(e)] = ("level", LEVELS[n])
            return LEVEL
        if n in EXCHANGES:
            self.names[id(e)] = ("exchange", n)
            return EXCHANGE
        if n in self.sets:
            self.sets[n].uses += 1
            self.error(
                e.span,
                "E105",
                f"'{n}' is a set, not a value",
                f"bind it with `for x in {n}` and use x",
            )
            return None
        if n in self.lost:
            return None
        candidates = [*scope.vars, *self.consts, *METRICS, *LEVELS]
        if scope.in_exit:
            candidates += list(POSITION_VALUES)
        near = suggest(n, candidates)
        hint = f"did you mean '{near}'?" if near else None
        if near is None and n.upper() != n and re.fullmatch(r"[a-z][a-z0-9]*", n):
            hint = f"coins are upper-case: '{n.upper()}'" if len(n) <= 10 else None
        self.error(e.span, "E101", f"unknown name '{n}'", hint)
        return None

    def arg_of_kind(self, arg: A.Expr, kind: str, func: str, scope: _Scope) -> None:
        """Check an argument that must be a coin or an exchange."""
        if kind == EXCHANGE and isinstance(arg, A.Name):
            n = arg.id
            if n in scope.vars:
                self.expr(arg, scope)
                if scope.vars[n][1] not in (None, EXCHANGE):
                    self.error(
                        arg.span,
                        "E105",
                        f"'{n}' is a coin variable where {func}() expects an exchange",
                    )
                return
            if n in EXCHANGES:
                self.expr(arg, scope)
                return
            if n in self.sets:
                self.sets[n].uses += 1
                self.error(
                    arg.span,
                    "E105",
                    f"'{n}' is a set, not an exchange",
                    f"bind it with `for x in {n}` and use x",
                )
                return
            if n in self.lost:
                return
            self.unknown_exchange(
                n, arg.span, [v for v, (_, t) in scope.vars.items() if t == EXCHANGE]
            )
            return
        t = self.expr(arg, scope)
        if t is not None and t != kind:
            what = "a coin" if kind == COIN else "an exchange"
            self.error(arg.span, "E105", f"{func}() expects {what} here, not {_a(t)}")

    def call(self, e: A.Call, scope: _Scope) -> str | None:
        f = e.func
        if f in MARKET_FUNCTIONS:
            params, result = MARKET_FUNCTIONS[f]
            if len(e.args) != len(params):
                self.arity(
                    e, len(params), "(coin, " + ", ".join(["exchange"] * (len(params) - 1)) + ")"
                )
                return result
            for arg, kind in zip(e.args, params, strict=True):
                self.arg_of_kind(arg, kind, f, scope)
            return result
        if f == "net":
            if len(e.args) != 1:
                self.arity(e, 1, "(duration)")
                return RATE
            t = self.expr(e.args[0], scope)
            if t not in (None, DURATION):
                self.error(
                    e.args[0].span,
                    "E105",
                    f"net() takes a duration, not {_a(t)}",
                    _unit_hint(DURATION, e.args[0]),
                )
            v = self.const_value(e.args[0])
            if t == DURATION and v is not None and v <= 0:
                self.error(e.args[0].span, "E109", "net() needs a positive duration")
            if not scope.has_subject:
                self.error(
                    e.span,
                    "E107",
                    "metric 'net' is used, but this rule has no subject",
                    "a rule's subject is the first spread, funding, basis or borrow call of its `when` clause",
                )
                return None
            self.names[id(e)] = ("metric", "net")
            return RATE
        if f == "apr":
            if len(e.args) != 1:
                self.arity(e, 1, "(rate)")
                return RATE
            t = self.expr(e.args[0], scope)
            if t not in (None, RATE):
                self.error(
                    e.args[0].span,
                    "E105",
                    f"apr() takes a rate, not {_a(t)}",
                    _unit_hint(RATE, e.args[0]),
                )
            return RATE
        if f == "abs":
            if len(e.args) != 1:
                self.arity(e, 1, "(value)")
                return None
            t = self.expr(e.args[0], scope)
            if t is not None and t not in SCALABLE:
                self.error(
                    e.args[0].span,
                    "E105",
                    f"abs() takes a number, rate, amount or duration, not {_a(t)}",
                )
                return None
            return t
        if f in ("min", "max"):
            if len(e.args) < 2:
                self.arity(e, 2, "(a, b, ...)", at_least=True)
                return None
            ts = [self.expr(a, scope) for a in e.args]
            known = [t for t in ts if t is not None]
            if any(t not in ORDERED for t in known):
                self.error(e.span, "E105", f"{f}() takes numbers, rates, amounts or durations")
                return None
            if len(set(known)) > 1:
                self.error(
                    e.span, "E105", f"{f}() needs arguments of one type, got {', '.join(known)}"
                )
                return None
            return known[0] if known and len(known) == len(ts) else None
        near = suggest(f, _ALL_FUNCTIONS)
        self.error(
            e.func_span,
            "E103",
            f"unknown function '{f}'",
            f"did you mean '{near}'?" if near else "functions are " + ", ".join(_ALL_FUNCTIONS),
        )
        for a in e.args:  # still check the arguments' own names
            if not isinstance(a, A.Name):
                self.expr(a, scope)
        return None

    def arity(self, e: A.Call, n: int, signature: str, at_least: bool = False) -> None:
        self.error(
            e.span,
            "E104",
            f"{e.func}() takes {'at least ' if at_least else ''}{n} argument{'s' * (n != 1)}, got {len(e.args)}",
            f"{e.func}{signature}",
        )

    def binop(self, e: A.BinOp, scope: _Scope) -> str | None:
        lt = self.expr(e.left, scope)
        rt = self.expr(e.right, scope)
        if lt is None or rt is None:
            return None
        for t, side in ((lt, e.left), (rt, e.right)):
            if t not in SCALABLE:
                self.error(
                    side.span,
                    "E105",
                    f"'{e.op}' needs numbers, rates, amounts or durations, not {_a(t)}",
                )
                return None
        if e.op in "+-":
            if lt != rt:
                self.mismatch(
                    e,
                    lt,
                    rt,
                    f"cannot {'add' if e.op == '+' else 'subtract'} {_a(rt)} {'to' if e.op == '+' else 'from'} {_a(lt)}",
                )
                return None
            return lt
        if e.op == "*":
            if lt == NUMBER:
                return rt
            if rt == NUMBER:
                return lt
            self.error(
                e.span,
                "E105",
                f"cannot multiply {_a(lt)} by {_a(rt)}",
                "scale a rate, amount or duration by a plain number",
            )
            return None
        # division: scale by a number, or a ratio of two values of one type
        rv = self.const_value(e.right)
        if rv == 0:
            self.error(e.right.span, "E109", "division by zero")
            return None
        if rt == NUMBER:
            return lt
        if lt == rt:
            return NUMBER
        self.error(e.span, "E105", f"cannot divide {_a(lt)} by {_a(rt)}")
        return None

    def mismatch(self, e: A.BinOp | A.Compare, lt: str, rt: str, message: str) -> None:
        hint = None
        for t, other in ((lt, e.right), (rt, e.left)):
            if t != NUMBER:
                hint = _unit_hint(t, other) or hint
        self.error(e.span, "E105", message, hint)

    def compare(self, e: A.Compare, scope: _Scope) -> str | None:
        lt = self.expr(e.left, scope)
        rt = self.expr(e.right, scope)
        if lt is None or rt is None:
            return BOOL
        if lt != rt:
            self.mismatch(e, lt, rt, f"cannot compare {_a(lt)} with {_a(rt)}")
            return BOOL
        if e.op not in ("==", "!=") and lt not in ORDERED:
            self.error(e.span, "E105", f"{_a(lt)} has no order; only == and != compare it")
            return BOOL
        self.never_true(e)
        return BOOL

    # -- constants and conditions that can never hold ----------------------------------------

    def const_value(self, e: A.Expr) -> float | None:
        """The value of an expression made only of literals and constants."""
        lit = self.literal_value(e)
        if lit:
            return lit[1]
        if isinstance(e, A.Name) and e.id in self.consts:
            return self.consts[e.id].value
        if isinstance(e, A.Neg):
            v = self.const_value(e.operand)
            return -v if v is not None else None
        if isinstance(e, A.BinOp):
            a, b = self.const_value(e.left), self.const_value(e.right)
            if a is None or b is None:
                return None
            if e.op == "+":
                return a + b
            if e.op == "-":
                return a - b
            if e.op == "*":
                return a * b
            return a / b if b else None
        return None

    def never_true(self, e: A.Compare) -> None:
        a, b = self.const_value(e.left), self.const_value(e.right)
        if a is not None and b is not None:
            if not _holds(e.op, a, b):
                self.error(
                    e.span, "W201", "this condition compares two constants and is never true"
                )
            return
        for metric_side, const_side, op in (
            (e.left, e.right, e.op),
            (e.right, e.left, _flip(e.op)),
        ):
            v = self.const_value(const_side)
            if v is None:
                continue
            if isinstance(metric_side, A.Name) and self.names.get(id(metric_side)) == (
                "metric",
                metric_side.id,
            ):
                rng = _METRIC_RANGES.get(metric_side.id)
                if rng is None:
                    continue
                if metric_side.id == "confidence" and not 0.0 <= v <= 1.0:
                    self.error(
                        const_side.span,
                        "E109",
                        f"confidence is between 0 and 1; {format_value(NUMBER, v)} is outside",
                    )
                    return
                if _never(op, v, *rng):
                    self.error(
                        e.span,
                        "W201",
                        f"{metric_side.id} is never {op} {format_value(self.types[id(const_side)], v)}",
                        "this condition is never true",
                    )
                return
            if isinstance(metric_side, A.RiskMetric):
                if _never(op, v, 0, 2):
                    self.error(
                        e.span,
                        "W201",
                        f"risk is never {op} {format_value(LEVEL, int(v))}",
                        "this condition is never true",
                    )
                return
        # `risk > high` and friends: levels are names resolved to constants
        for lv_side, other, op in ((e.right, e.left, e.op), (e.left, e.right, _flip(e.op))):
            res = self.names.get(id(lv_side))
            if (
                res
                and res[0] == "level"
                and isinstance(other, A.RiskMetric)
                and _never(op, float(res[1]), 0, 2)
            ):  # type: ignore[arg-type]
                self.error(
                    e.span,
                    "W201",
                    f"risk is never {op} {format_value(LEVEL, res[1])}",
                    "this condition is never true",
                )
                return


_TYPE_WORDS = {
    NUMBER: "a number",
    RATE: "a rate",
    MONEY: "an amount of money",
    DURATION: "a duration",
    BOOL: "a condition",
    LEVEL: "a level",
    COIN: "a coin",
    EXCHANGE: "an exchange",
}


def _a(t: str | None) -> str:
    """A type as words: Money is 'an amount of money'."""
    return _TYPE_WORDS.get(t or "", str(t))


def _holds(op: str, a: float, b: float) -> bool:
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b, "!=": a != b}[op]


def _flip(op: str) -> str:
    return {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!="}[op]


def _never(op: str, v: float, lo: float, hi: float) -> bool:
    """Whether `x op v` is false for every x in [lo, hi]."""
    return {
        ">": v >= hi,
        ">=": v > hi,
        "<": v <= lo,
        "<=": v < lo,
        "==": v < lo or v > hi,
        "!=": False,
    }[op]


def _unit_hint(expected: str, e: A.Expr) -> str | None:
    """A hint to add the missing unit to a bare number literal."""
    node = e.operand if isinstance(e, A.Neg) else e
    if not isinstance(node, A.Number):
        return None
    sign = "-" if isinstance(e, A.Neg) else ""
    if expected == RATE:
        return f"a bare number is not a rate: did you mean '{sign}{node.text}%'?"
    if expected == MONEY:
        return f"did you mean '{sign}{node.text} USDT'?"
    if expected == DURATION:
        return f"did you mean '{sign}{node.text}h'? durations take s, m, h or d"
    return None


def _condition_hint(t: str | None) -> str | None:
    return "compare it with something, e.g. `> 0.1%`" if t in SCALABLE else None


def _risk_range_problem(key: str, t: str, v: float) -> str | None:
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
    if isinstance(e, A.Call) and e.func not in _ALL_FUNCTIONS:
        return True
    return any(_calls_unknown_function(c) for c in _children(e))


def _children(e: A.Expr) -> list[A.Expr]:
    if isinstance(e, (A.BinOp, A.Compare, A.And, A.Or)):
        return [e.left, e.right]
    if isinstance(e, (A.Neg, A.Not)):
        return [e.operand]
    if isinstance(e, A.Call):
        return list(e.args)
    return []


def check_files(files: list[A.RulesFile]) -> tuple[Program, list[Diagnostic]]:
    """Check the files of one ruleset together."""
    checker = _Checker(files)
    program = checker.run()
    return program, checker.diags
