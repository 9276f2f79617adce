"""The checker's expression half: names, calls, arity, types and units, and
conditions that can never be true.

`_check._Checker` (the statements: sets, constants, rules, actions, the risk
block) subclasses `ExprChecker` and calls `expr` on every clause and value.
Same rule as there: an expression that fails to check gets the type None,
which is accepted wherever it flows, so one mistake gives one diagnostic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
    SCALABLE,
    format_value,
)

if TYPE_CHECKING:
    from ._check import ConstInfo, SetInfo

__all__ = ["ALL_FUNCTIONS", "ExprChecker", "Scope", "type_words", "unit_hint"]

_OTHER_FUNCTIONS = ("apr", "abs", "min", "max", "net")
ALL_FUNCTIONS = tuple(MARKET_FUNCTIONS) + _OTHER_FUNCTIONS
# Known ranges of some metrics, to spot conditions that can never hold.
_METRIC_RANGES = {
    "confidence": (0.0, 1.0),
    "breakeven": (0.0, float("inf")),
    "fees": (0.0, float("inf")),
}


@dataclass(slots=True)
class Scope:
    vars: dict[str, tuple[int, str]]  # name -> (index, type)
    has_subject: bool
    in_exit: bool
    rule: A.Rule


class ExprChecker:
    """Types expressions within a rule's scope, reporting what is wrong with them.

    Holds no state of its own: the subclass sets the attributes below, where
    expressions record their types and name resolutions (for the compiler)
    and count the uses of sets and constants (for W202).
    """

    diags: list[Diagnostic]
    sets: dict[str, SetInfo]
    consts: dict[str, ConstInfo]
    types: dict[int, str]
    names: dict[int, tuple[str, object]]
    lost: set[str]  # names whose definition failed: their uses are not reported again

    def error(self, span: A.Span, code: str, message: str, hint: str | None = None) -> None:
        self.diags.append(Diagnostic.at(span, code, message, hint))

    def unknown_exchange(self, word: str, span: A.Span, variables: object) -> None:
        near = suggest(word, [*EXCHANGES, *variables])  # type: ignore[misc]
        self.error(
            span,
            "E102",
            f"unknown exchange '{word}'",
            f"did you mean '{near}'?" if near else f"exchanges are {', '.join(EXCHANGES)}",
        )

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

    # -- expressions ---------------------------------------------------------------------------

    def expr(self, e: A.Expr, scope: Scope) -> str | None:
        t = self._expr(e, scope)
        if t is not None:
            self.types[id(e)] = t
        return t

    def _expr(self, e: A.Expr, scope: Scope) -> str | None:
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
                self.error(e.span, "E105", f"cannot negate {type_words(t)}")
                return None
            return t
        if isinstance(e, A.BinOp):
            return self.binop(e, scope)
        if isinstance(e, A.Compare):
            return self.compare(e, scope)
        if isinstance(e, (A.And, A.Or)):
            word = "and" if isinstance(e, A.And) else "or"
            for side in e.terms:
                t = self.expr(side, scope)
                if t not in (None, BOOL):
                    self.error(
                        side.span,
                        "E105",
                        f"`{word}` joins conditions, not {type_words(t)}",
                        _condition_hint(t),
                    )
            return BOOL
        if isinstance(e, A.Not):
            t = self.expr(e.operand, scope)
            if t not in (None, BOOL):
                self.error(
                    e.operand.span,
                    "E105",
                    f"`not` takes a condition, not {type_words(t)}",
                    _condition_hint(t),
                )
            return BOOL
        raise AssertionError(f"unexpected node {e!r}")

    def metric(self, name: str, e: A.Expr, scope: Scope) -> str | None:
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

    def name(self, e: A.Name, scope: Scope) -> str | None:
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

    def arg_of_kind(self, arg: A.Expr, kind: str, func: str, scope: Scope) -> None:
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
            self.error(arg.span, "E105", f"{func}() expects {what} here, not {type_words(t)}")

    def call(self, e: A.Call, scope: Scope) -> str | None:
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
                    f"net() takes a duration, not {type_words(t)}",
                    unit_hint(DURATION, e.args[0]),
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
                    f"apr() takes a rate, not {type_words(t)}",
                    unit_hint(RATE, e.args[0]),
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
                    f"abs() takes a number, rate, amount or duration, not {type_words(t)}",
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
        near = suggest(f, ALL_FUNCTIONS)
        self.error(
            e.func_span,
            "E103",
            f"unknown function '{f}'",
            f"did you mean '{near}'?" if near else "functions are " + ", ".join(ALL_FUNCTIONS),
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

    def binop(self, e: A.BinOp, scope: Scope) -> str | None:
        lt = self.expr(e.left, scope)
        rt = self.expr(e.right, scope)
        if lt is None or rt is None:
            return None
        for t, side in ((lt, e.left), (rt, e.right)):
            if t not in SCALABLE:
                self.error(
                    side.span,
                    "E105",
                    f"'{e.op}' needs numbers, rates, amounts or durations, not {type_words(t)}",
                )
                return None
        if e.op in "+-":
            if lt != rt:
                self.mismatch(
                    e,
                    lt,
                    rt,
                    f"cannot {'add' if e.op == '+' else 'subtract'} {type_words(rt)} {'to' if e.op == '+' else 'from'} {type_words(lt)}",
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
                f"cannot multiply {type_words(lt)} by {type_words(rt)}",
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
        self.error(e.span, "E105", f"cannot divide {type_words(lt)} by {type_words(rt)}")
        return None

    def mismatch(self, e: A.BinOp | A.Compare, lt: str, rt: str, message: str) -> None:
        hint = None
        for t, other in ((lt, e.right), (rt, e.left)):
            if t != NUMBER:
                hint = unit_hint(t, other) or hint
        self.error(e.span, "E105", message, hint)

    def compare(self, e: A.Compare, scope: Scope) -> str | None:
        lt = self.expr(e.left, scope)
        rt = self.expr(e.right, scope)
        if lt is None or rt is None:
            return BOOL
        if lt != rt:
            self.mismatch(e, lt, rt, f"cannot compare {type_words(lt)} with {type_words(rt)}")
            return BOOL
        if e.op not in ("==", "!=") and lt not in ORDERED:
            self.error(e.span, "E105", f"{type_words(lt)} has no order; only == and != compare it")
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
                and _never(op, float(res[1]), 0, 2)  # type: ignore[arg-type]
            ):
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


def type_words(t: str | None) -> str:
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


def unit_hint(expected: str, e: A.Expr) -> str | None:
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
