"""A checked rule's syntax tree to the resolved program (`ir`).

Runs inside the checker, on rules without errors, with the checker's own
tables of what each name resolved to and each expression's type; those
tables never leave the checker. Recursive, within the checker's nesting
limit (`_check.MAX_NESTING`).
"""

from __future__ import annotations

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

    def expr(self, e: A.Expr) -> ir.Expr:  # noqa: C901 - one branch per node type
        span, t = e.span, self.type_of(e)
        if isinstance(e, A.Number):
            return ir.Const(span, NUMBER, e.value, True)
        if isinstance(e, A.RateLit):
            return ir.Const(span, RATE, e.value, True)
        if isinstance(e, A.MoneyLit):
            return ir.Const(span, MONEY, e.value, True)
        if isinstance(e, A.DurationLit):
            return ir.Const(span, DURATION, e.seconds, True)
        if isinstance(e, A.CoinLit):
            return ir.Const(span, COIN, e.symbol, True)
        if isinstance(e, A.RiskMetric):
            return ir.Metric(span, LEVEL, "risk")
        if isinstance(e, A.Name):
            return self.name(e)
        if isinstance(e, A.Call):
            return self.call(e)
        if isinstance(e, A.Neg):
            return ir.Neg(span, t, self.expr(e.operand))
        if isinstance(e, A.BinOp):
            return ir.Arith(span, t, e.op, self.expr(e.left), self.expr(e.right))
        if isinstance(e, A.Compare):
            return ir.Compare(span, t, e.op, self.expr(e.left), self.expr(e.right))
        if isinstance(e, A.And):
            return ir.And(span, t, tuple(self.expr(x) for x in e.terms))
        if isinstance(e, A.Or):
            return ir.Or(span, t, tuple(self.expr(x) for x in e.terms))
        if isinstance(e, A.Not):
            return ir.Not(span, t, self.expr(e.operand))
        raise AssertionError(f"unexpected node {e!r}")

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
        assert isinstance(lowered, (ir.Const, ir.Var)), lowered
        return lowered

    def call(self, e: A.Call) -> ir.Expr:
        f, t = e.func, self.type_of(e)
        if f in MARKET_FUNCTIONS:
            coin, *exchanges = (self.arg(a) for a in e.args)
            return ir.MarketCall(e.span, t, f, coin, tuple(exchanges))
        if f == "net":
            return ir.Net(e.span, RATE, self.expr(e.args[0]))
        return ir.Apply(e.span, t, f, tuple(self.expr(a) for a in e.args))

    def action(self, a: A.Action) -> ir.Action:
        if isinstance(a, A.Hedge):
            return ir.HedgeAction(self.expr(a.amount))
        if isinstance(a, A.Close):
            return ir.CloseAction()
        return ir.AlertAction(a.template)
