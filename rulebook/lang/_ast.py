"""The typed syntax tree of a rules file. Every node carries its source span."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "Span",
    "Expr",
    "Number",
    "RateLit",
    "MoneyLit",
    "DurationLit",
    "CoinLit",
    "Name",
    "RiskMetric",
    "Call",
    "Neg",
    "BinOp",
    "Compare",
    "And",
    "Or",
    "Not",
    "SetItem",
    "SetDef",
    "LetDef",
    "ForBinding",
    "Hedge",
    "Close",
    "Alert",
    "Action",
    "Rule",
    "RiskItem",
    "RiskBlock",
    "Statement",
    "RulesFile",
]


@dataclass(slots=True, unsafe_hash=True)
class Span:
    """A region of source text; lines and columns start at 1, end is exclusive.

    Read-only by convention, compared and hashed by value. Not a frozen
    dataclass: the parser makes one per node, and a frozen constructor costs
    three times as much (bench_lang: about 40 ms of a 1,000-rule parse)."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def to(self, other: Span) -> Span:
        return Span(self.file, self.line, self.column, other.end_line, other.end_column)


# -- expressions -------------------------------------------------------------


@dataclass(slots=True)
class Expr:
    span: Span


@dataclass(slots=True)
class Number(Expr):
    value: float
    text: str


@dataclass(slots=True)
class RateLit(Expr):
    value: float  # a fraction: 0.1% is 0.001
    text: str


@dataclass(slots=True)
class MoneyLit(Expr):
    value: float
    currency: str
    text: str


@dataclass(slots=True)
class DurationLit(Expr):
    seconds: float
    text: str


@dataclass(slots=True)
class CoinLit(Expr):
    symbol: str


@dataclass(slots=True)
class Name(Expr):
    """A lower-case name: a variable, constant, metric, level or exchange."""

    id: str


@dataclass(slots=True)
class RiskMetric(Expr):
    """The `risk` metric (a reserved word, since it also opens the risk block)."""


@dataclass(slots=True)
class Call(Expr):
    func: str
    func_span: Span
    args: list[Expr]


@dataclass(slots=True)
class Neg(Expr):
    operand: Expr


@dataclass(slots=True)
class BinOp(Expr):
    op: str  # + - * /
    left: Expr
    right: Expr


@dataclass(slots=True)
class Compare(Expr):
    op: str  # > >= < <= == !=
    left: Expr
    right: Expr


@dataclass(slots=True)
class And(Expr):
    """`a and b and ...`: a chain is one node, so 10,000 terms are flat, not deep."""

    terms: list[Expr]


@dataclass(slots=True)
class Or(Expr):
    """`a or b or ...`, flat like `And`."""

    terms: list[Expr]


@dataclass(slots=True)
class Not(Expr):
    operand: Expr


# -- statements --------------------------------------------------------------


@dataclass(slots=True)
class SetItem:
    text: str
    is_coin: bool  # upper-case coin token; otherwise a lower-case name
    span: Span


@dataclass(slots=True)
class SetDef:
    name: str
    name_span: Span
    items: list[SetItem]
    span: Span


@dataclass(slots=True)
class LetDef:
    name: str
    name_span: Span
    value: Expr  # a literal, possibly negated
    span: Span


@dataclass(slots=True)
class ForBinding:
    var: str
    var_span: Span
    set_name: str | None  # `for x in NAME`
    items: list[SetItem] | None  # `for x in [A, B]`
    source_span: Span


@dataclass(slots=True)
class Hedge:
    amount: Expr
    span: Span


@dataclass(slots=True)
class Close:
    span: Span


@dataclass(slots=True)
class Alert:
    template: str  # unescaped text
    span: Span


Action = Hedge | Close | Alert


@dataclass(slots=True)
class Rule:
    name: str
    name_span: Span
    anonymous: bool
    fors: list[ForBinding]
    when: Expr
    actions: list[Action]
    exit_when: Expr | None
    span: Span


@dataclass(slots=True)
class RiskItem:
    key: str
    key_span: Span
    value: Expr
    span: Span


@dataclass(slots=True)
class RiskBlock:
    items: list[RiskItem]
    span: Span


Statement = SetDef | LetDef | Rule | RiskBlock


@dataclass(slots=True)
class RulesFile:
    path: str
    text: str
    statements: list[Statement] = field(default_factory=list)
    # names defined by statements lost to syntax errors, so the checker does
    # not pile "unknown name" errors on top of the syntax error
    lost_names: set[str] = field(default_factory=set)
    # lower-case words of those statements: sets and constants they may have
    # used, so the checker does not warn that these are unused (W202)
    lost_words: set[str] = field(default_factory=set)
