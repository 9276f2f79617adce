"""The resolved program: the checker's output, what the engine evaluates.

Every name is resolved (a constant to its value, a level to its number, a
`for` variable to its slot, a metric or market function to its node), every
node carries its type (spec 4) and its source span, for diagnostics and for
`--explain`. `and` and `or` are n-ary: `a and b and c` is one node with three
terms, so a long chain of conditions is flat rather than deep.

    Const    a literal, or a constant, level or exchange name
    Var      a `for` variable, by slot (its position in the rule's `for`)
    MarketCall   funding, spread, basis, borrow, price, volume, next_funding
    Metric   edge, fees, breakeven, confidence, risk of the rule's subject
    Net      the metric call net(duration)
    Apply    apr, abs, min, max
    Neg, Arith (+ - * /), Compare, And, Or, Not
    PositionValue  held, pnl, collected (only inside `exit when`)

Nodes compare by identity (a node is one place in the source); `children`
lists a node's operands in source order. They are read-only by convention,
not frozen dataclasses: the checker makes one per node of every rule, and a
frozen constructor costs three times as much.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._ast import Span

if TYPE_CHECKING:
    from ._compile import Binding

__all__ = [
    "Expr",
    "Arg",
    "Const",
    "Var",
    "MarketCall",
    "Metric",
    "Net",
    "Apply",
    "Neg",
    "Arith",
    "Compare",
    "And",
    "Or",
    "Not",
    "PositionValue",
    "children",
    "walk",
    "HedgeAction",
    "CloseAction",
    "AlertAction",
    "Action",
]


@dataclass(slots=True, eq=False)
class Expr:
    span: Span
    type: str  # one of the language's types: Number, Rate, Money, Duration, Bool, Level ...


@dataclass(slots=True, eq=False)
class Const(Expr):
    """A value known when the rules are checked.

    Numbers, rates and money are floats, durations seconds, levels 0 1 2,
    coins and exchanges their names. `literal` is True for a literal of the
    source (`0.1%`), False for a name that stands for the value (`min_edge`,
    `high`, `binance`): explanations show the value of a name, not of a literal.
    """

    value: float | int | str
    literal: bool


@dataclass(slots=True, eq=False)
class Var(Expr):
    """A `for` variable: `slot` is its position among the rule's variables."""

    slot: int
    name: str


Arg = Const | Var  # a market call's coin or exchange


@dataclass(slots=True, eq=False)
class MarketCall(Expr):
    """`func(coin, exchange)`, or `spread(coin, a, b)` with two exchanges."""

    func: str
    coin: Arg
    exchanges: tuple[Arg, ...]


@dataclass(slots=True, eq=False)
class Metric(Expr):
    """A metric of the rule's subject: edge, fees, breakeven, confidence or risk."""

    name: str


@dataclass(slots=True, eq=False)
class Net(Expr):
    """The metric call `net(duration)`."""

    duration: Expr


@dataclass(slots=True, eq=False)
class Apply(Expr):
    """`apr(rate)`, `abs(x)`, `min(a, b, ...)` or `max(a, b, ...)`."""

    func: str
    args: tuple[Expr, ...]


@dataclass(slots=True, eq=False)
class Neg(Expr):
    operand: Expr


@dataclass(slots=True, eq=False)
class Arith(Expr):
    op: str  # + - * /
    left: Expr
    right: Expr


@dataclass(slots=True, eq=False)
class Compare(Expr):
    op: str  # > >= < <= == !=
    left: Expr
    right: Expr


@dataclass(slots=True, eq=False)
class And(Expr):
    terms: tuple[Expr, ...]  # two or more, evaluated left to right


@dataclass(slots=True, eq=False)
class Or(Expr):
    terms: tuple[Expr, ...]  # two or more, evaluated left to right


@dataclass(slots=True, eq=False)
class Not(Expr):
    operand: Expr


@dataclass(slots=True, eq=False)
class PositionValue(Expr):
    """`held`, `pnl` or `collected` of the open position an exit clause is checked for."""

    name: str


def children(e: Expr) -> tuple[Expr, ...]:
    """A node's operands in source order (a market call's arguments included)."""
    if isinstance(e, (Arith, Compare)):
        return (e.left, e.right)
    if isinstance(e, (And, Or)):
        return e.terms
    if isinstance(e, (Neg, Not)):
        return (e.operand,)
    if isinstance(e, Apply):
        return e.args
    if isinstance(e, Net):
        return (e.duration,)
    if isinstance(e, MarketCall):
        return (e.coin, *e.exchanges)
    return ()


def walk(e: Expr) -> list[Expr]:
    """Every node under `e` (itself included), in source order; iterative."""
    out: list[Expr] = []
    stack = [e]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(children(node)))
    return out


# -- actions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HedgeAction:
    """`hedge AMOUNT`: the amount is an expression of type Money."""

    amount: Expr


@dataclass(frozen=True, slots=True)
class CloseAction:
    pass


@dataclass(frozen=True, slots=True)
class AlertAction:
    template: str

    def render(self, binding: Binding, figures: dict[str, str]) -> str:
        """The text with `{var}` and `{edge}`, `{confidence}`, `{apr}` filled in."""
        values = {**binding.as_dict(), **figures}
        out = self.template
        for key, value in values.items():
            out = out.replace("{" + key + "}", value)
        return out


Action = HedgeAction | CloseAction | AlertAction
