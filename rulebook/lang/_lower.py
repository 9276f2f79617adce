"""A checked rule's syntax tree to the resolved program (`ir`).

Runs inside the checker, on rules without errors, with the checker's own
tables of what each name resolved to and each expression's type; those
tables never leave the checker. Recursive, within the checker's nesting
limit (`_check.MAX_NESTING`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import _ast as A
from . import ir
from ._types import COIN, DURATION, LEVEL, MARKET_FUNCTIONS, METRICS, MONEY, NUMBER, RATE

__all__ = ["Lowering", "Unresolved"]


class Unresolved(Exception):  # noqa: N818 - internal to the checker
    """A name the checker could not resolve without reporting it: its
    definition was lost to a syntax error (reported there). Such a rule is
    not lowered; the ruleset has errors anyway."""


class Lowering:
    def __init__(self, types: dict[int, str], names: dict[int, tuple[str, object]]):
        self.types = types
        self.names = names

    def type_of(self, e: A.Expr) -> str:
        return self.types.get(id(e), "")

    def expr(self, e: A.Expr) -> ir.Expr:
        return _LOWER[type(e)](self, e)

    # one method per node type, found by the node's type (a chain of
    # isinstance tests cost a tenth of the checker's time)
    def _number(self, e: A.Number) -> ir.Expr:
        return ir.Const(e.span, NUMBER, e.value, True)

    def _rate(self, e: A.RateLit) -> ir.Expr:
        return ir.Const(e.span, RATE, e.value, True)

    def _money(self, e: A.MoneyLit) -> ir.Expr:
        return ir.Const(e.span, MONEY, e.value, True)

    def _duration(self, e: A.DurationLit) -> ir.Expr:
        return ir.Const(e.span, DURATION, e.seconds, True)

    def _coin(self, e: A.CoinLit) -> ir.Expr:
        return ir.Const(e.span, COIN, e.symbol, True)

    def _risk(self, e: A.RiskMetric) -> ir.Expr:
        return ir.Metric(e.span, LEVEL, "risk")

    def _neg(self, e: A.Neg) -> ir.Expr:
        return ir.Neg(e.span, self.type_of(e), self.expr(e.operand))

    def _binop(self, e: A.BinOp) -> ir.Expr:
        return ir.Arith(e.span, self.type_of(e), e.op, self.expr(e.left), self.expr(e.right))

    def _compare(self, e: A.Compare) -> ir.Expr:
        return ir.Compare(e.span, self.type_of(e), e.op, self.expr(e.left), self.expr(e.right))

    def _and(self, e: A.And) -> ir.Expr:
        return ir.And(e.span, self.type_of(e), tuple(map(self.expr, e.terms)))

    def _or(self, e: A.Or) -> ir.Expr:
        return ir.Or(e.span, self.type_of(e), tuple(map(self.expr, e.terms)))

    def _not(self, e: A.Not) -> ir.Expr:
        return ir.Not(e.span, self.type_of(e), self.expr(e.operand))

    def name(self, e: A.Name) -> ir.Expr:
        resolved = self.names.get(id(e))
        if resolved is None:
            raise Unresolved(e.id)
        kind, value = resolved
        t = self.type_of(e)
        if kind == "var":
            return ir.Var(e.span, t, int(value), e.id)  # type: ignore[call-overload]
        if kind == "const":
            return ir.Const(e.span, t, float(value), False)  # type: ignore[arg-type]
        if kind == "level":
            return ir.Const(e.span, LEVEL, int(value), False)  # type: ignore[call-overload]
        if kind == "exchange":
            return ir.Const(e.span, t, str(value), False)
        if kind == "metric":
            return ir.Metric(e.span, METRICS[str(value)], str(value))
        if kind == "position":
            return ir.PositionValue(e.span, t, str(value))
        raise AssertionError(kind)

    def arg(self, e: A.Expr) -> ir.Arg:
        """A market call's coin or exchange: a fixed value or a variable."""
        lowered = self.expr(e)
        assert type(lowered) is ir.Const or type(lowered) is ir.Var, lowered
        return lowered

    def call(self, e: A.Call) -> ir.Expr:
        f, t = e.func, self.type_of(e)
        if f in MARKET_FUNCTIONS:
            args = e.args
            return ir.MarketCall(e.span, t, f, self.arg(args[0]), tuple(map(self.arg, args[1:])))
        if f == "net":
            return ir.Net(e.span, RATE, self.expr(e.args[0]))
        return ir.Apply(e.span, t, f, tuple(self.expr(a) for a in e.args))

    def action(self, a: A.Action) -> ir.Action:
        if isinstance(a, A.Hedge):
            return ir.HedgeAction(self.expr(a.amount))
        if isinstance(a, A.Close):
            return ir.CloseAction()
        return ir.AlertAction(a.template)


_LOWER: dict[type, Callable[[Lowering, Any], ir.Expr]] = {
    A.Number: Lowering._number,
    A.RateLit: Lowering._rate,
    A.MoneyLit: Lowering._money,
    A.DurationLit: Lowering._duration,
    A.CoinLit: Lowering._coin,
    A.RiskMetric: Lowering._risk,
    A.Name: Lowering.name,
    A.Call: Lowering.call,
    A.Neg: Lowering._neg,
    A.BinOp: Lowering._binop,
    A.Compare: Lowering._compare,
    A.And: Lowering._and,
    A.Or: Lowering._or,
    A.Not: Lowering._not,
}
