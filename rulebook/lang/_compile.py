"""The compiler: a checked program to closures, never `eval` of user text.

A compiled condition is a function `(env, binding) -> value`. The `env` is the
engine's view of the market and of the subject's metrics (the `Env` protocol
below); `binding` holds the values of the rule's `for` variables. Missing
market data raises `NoData` inside the closures, and the engine turns it into
a skipped binding with its reason: it never reaches an operator as an error.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from . import _ast as A
from ._check import CheckedRule, Program
from ._types import BOOL, EXCHANGE, EXCHANGES, MARKET_FUNCTIONS, format_value

__all__ = [
    "NoData",
    "Env",
    "Subject",
    "Binding",
    "HedgeAction",
    "CloseAction",
    "AlertAction",
    "RiskLimits",
    "Step",
    "Explanation",
    "CompiledRule",
    "Ruleset",
    "compile_program",
    "Markets",
    "rule_fingerprint",
]

EIGHT_HOURS = 8 * 3600.0


class NoData(Exception):  # noqa: N818 - a result, not an error
    """A binding cannot be evaluated: its market data is missing."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Subject:
    """A rule's subject for one binding (spec section 6)."""

    kind: str  # spread | funding | basis | borrow
    coin: str
    exchanges: tuple[str, ...]  # (a, b) for spread, (x,) otherwise

    def describe(self) -> str:
        return f"{self.kind}({self.coin}, {', '.join(self.exchanges)})"


class Env(Protocol):
    """What compiled rules read. Every method may raise NoData."""

    def funding(self, coin: str, exchange: str) -> float: ...  # per 8h
    def basis(self, coin: str, exchange: str) -> float: ...
    def borrow(self, coin: str, exchange: str) -> float: ...  # per 8h
    def price(self, coin: str, exchange: str) -> float: ...
    def volume(self, coin: str, exchange: str) -> float: ...
    def next_funding(self, coin: str, exchange: str) -> float: ...  # seconds

    # edge, fees (Rates), breakeven (seconds), confidence (0..1), risk (0 low, 1 medium, 2 high)
    def metric(self, name: str, subject: Subject) -> float: ...

    # held (seconds), pnl, collected (money); only inside `exit when`
    def position(self, name: str) -> float: ...


@dataclass(frozen=True, slots=True)
class Binding:
    """One combination of a rule's `for` variables."""

    names: tuple[str, ...]
    values: tuple[str, ...]
    subject: Subject | None

    def as_dict(self) -> dict[str, str]:
        return dict(zip(self.names, self.values, strict=True))


Fn = Callable[[Env, Binding], object]


@dataclass(frozen=True, slots=True)
class HedgeAction:
    amount: Callable[[Env, Binding], float]


@dataclass(frozen=True, slots=True)
class CloseAction:
    pass


@dataclass(frozen=True, slots=True)
class AlertAction:
    template: str

    def render(self, binding: Binding, figures: dict[str, str]) -> str:
        values = {**binding.as_dict(), **figures}
        out = self.template
        for key, value in values.items():
            out = out.replace("{" + key + "}", value)
        return out


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The risk block's limits; None where the block does not set one."""

    max_total_exposure: float | None = None
    max_single_position: float | None = None
    max_open_positions: int | None = None
    max_hold: float | None = None  # seconds
    stop_loss: float | None = None  # a fraction of the position's notional
    min_confidence: float | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One sub-expression's value in an explanation."""

    text: str
    value: str


@dataclass(slots=True)
class Explanation:
    fired: bool | None  # None when the binding could not be evaluated
    no_data: str | None
    steps: list[Step]


@dataclass(slots=True)
class CompiledRule:
    name: str
    file: str
    line: int
    var_names: tuple[str, ...]
    _expand_bindings: Callable[[], list[Binding]] = field(repr=False)
    subject_kind: str | None
    when: Fn
    exit_when: Fn | None
    actions: list[HedgeAction | CloseAction | AlertAction]
    source: A.Rule
    _make_fingerprint: Callable[[], str] = field(repr=False, default=None)  # type: ignore[assignment]
    _make_markets: Callable[[], Markets] = field(repr=False, default=None)  # type: ignore[assignment]
    _fingerprint: str | None = field(repr=False, default=None)
    _bindings: list[Binding] | None = field(repr=False, default=None)
    _make_traced: Callable[[], tuple[Fn, Fn | None, list[Step]]] = field(repr=False, default=None)  # type: ignore[assignment]
    _traced: tuple[Fn, Fn | None, list[Step]] | None = field(repr=False, default=None)

    @property
    def bindings(self) -> list[Binding]:
        """Every combination of the `for` variables, expanded on first use:
        `validate` never needs them, and a large ruleset has tens of thousands."""
        if self._bindings is None:
            self._bindings = self._expand_bindings()
        return self._bindings

    @property
    def markets(self) -> Markets:
        """Every coin and exchange any market call of the rule can read, over all
        its bindings: what a live source must fetch for it."""
        return self._make_markets()

    @property
    def fingerprint(self) -> str:
        """What the rule means, independent of layout: equal across two loads
        exactly when the rule would behave the same (see rule_fingerprint).
        Computed on first use: only a reload compares fingerprints."""
        if self._fingerprint is None:
            self._fingerprint = self._make_fingerprint()
        return self._fingerprint

    def binding_for(self, values: dict[str, str]) -> Binding:
        """The binding with these variable values (e.g. those of a stored position)."""
        vals = tuple(values[n] for n in self.var_names)
        for b in self.bindings:
            if b.values == vals:
                return b
        raise KeyError(f"rule {self.name} has no binding {values}")

    def explain(self, env: Env, binding: Binding, exit_clause: bool = False) -> Explanation:
        """Evaluate with every sub-expression's value recorded, in evaluation order."""
        if self._traced is None:
            self._traced = self._make_traced()
        when_fn, exit_fn, trace = self._traced
        fn = exit_fn if exit_clause else when_fn
        if fn is None:
            raise ValueError(f"rule {self.name} has no exit clause")
        trace.clear()
        try:
            fired = bool(fn(env, binding))
            return Explanation(fired, None, list(trace))
        except NoData as missing:
            return Explanation(None, missing.reason, list(trace))


@dataclass(slots=True)
class Ruleset:
    """A compiled ruleset: what the engine and runtime run."""

    rules: list[CompiledRule]
    risk: RiskLimits
    files: list[str]
    sha256: str
    sources: dict[str, str]
    # The checked program the rules came from: its name resolutions and types
    # let the engine compile a rule's clauses a second way (over many
    # bindings at once) with exactly the meaning the checker gave them.
    program: Program | None = field(default=None, repr=False, compare=False)

    def markets(self) -> Markets:
        """Every coin and exchange the ruleset's market calls can read (coins in
        first-seen order, exchanges in the language's order)."""
        coins: dict[str, None] = {}
        exchanges: set[str] = set()
        for r in self.rules:
            m = r.markets
            coins.update(dict.fromkeys(m.coins))
            exchanges.update(m.exchanges)
        return Markets(tuple(coins), tuple(e for e in EXCHANGES if e in exchanges))

    def rule(self, name: str) -> CompiledRule:
        for r in self.rules:
            if r.name == name:
                return r
        raise KeyError(name)


def ruleset_digest(sources: dict[str, str]) -> str:
    """sha256 over the loaded files' names and texts, in a stable order."""
    h = hashlib.sha256()
    for path in sorted(sources):
        h.update(path.encode())
        h.update(b"\0")
        h.update(sources[path].encode())
        h.update(b"\0")
    return h.hexdigest()


# -- compiling expressions ----------------------------------------------------------


class _ExprCompiler:
    def __init__(self, program: Program, trace: list[Step] | None, texts: dict[str, list[str]]):
        self.p = program
        self.trace = trace
        self.texts = texts

    def source_text(self, e: A.Expr) -> str:
        lines = self.texts.get(e.span.file, [])
        s = e.span
        if not 1 <= s.line <= len(lines):
            return "?"
        if s.end_line == s.line:
            return lines[s.line - 1][s.column - 1 : s.end_column - 1]
        parts = [lines[s.line - 1][s.column - 1 :]]
        parts += [ln.strip() for ln in lines[s.line : s.end_line - 1]]
        parts.append(lines[s.end_line - 1][: s.end_column - 1].strip())
        return " ".join(p.strip() for p in parts)

    def compile(self, e: A.Expr) -> Fn:
        fn = self._compile(e)
        if self.trace is None or isinstance(
            e, (A.Number, A.RateLit, A.MoneyLit, A.DurationLit, A.CoinLit)
        ):
            return fn
        return self._traced(e, fn)

    def _traced(self, e: A.Expr, fn: Fn) -> Fn:
        trace = self.trace
        assert trace is not None
        text = self.source_text(e)
        type_ = self.p.types.get(id(e), "")

        def traced(env: Env, bd: Binding) -> object:
            try:
                value = fn(env, bd)
            except NoData as missing:
                trace.append(Step(text, f"no data: {missing.reason}"))
                raise
            except ZeroDivisionError:
                trace.append(Step(text, "division by zero"))
                raise
            trace.append(Step(text, format_value(type_, value)))
            return value

        return traced

    def _compile(self, e: A.Expr) -> Fn:
        if isinstance(e, (A.Number, A.RateLit, A.MoneyLit)):
            v = e.value
            return lambda env, bd: v
        if isinstance(e, A.DurationLit):
            v = e.seconds
            return lambda env, bd: v
        if isinstance(e, A.CoinLit):
            sym = e.symbol
            return lambda env, bd: sym
        if isinstance(e, A.RiskMetric):
            return lambda env, bd: env.metric("risk", bd.subject)  # type: ignore[arg-type]
        if isinstance(e, A.Name):
            return self._name(e)
        if isinstance(e, A.Call):
            return self._call(e)
        if isinstance(e, A.Neg):
            f = self.compile(e.operand)
            return lambda env, bd: -f(env, bd)  # type: ignore[operator]
        if isinstance(e, A.BinOp):
            return self._binop(e)
        if isinstance(e, A.Compare):
            return self._compare(e)
        if isinstance(e, A.And):
            a, b = self.compile(e.left), self.compile(e.right)
            return lambda env, bd: bool(a(env, bd)) and bool(b(env, bd))
        if isinstance(e, A.Or):
            a, b = self.compile(e.left), self.compile(e.right)
            return lambda env, bd: bool(a(env, bd)) or bool(b(env, bd))
        if isinstance(e, A.Not):
            a = self.compile(e.operand)
            return lambda env, bd: not a(env, bd)
        raise AssertionError(f"cannot compile {e!r}")

    def _name(self, e: A.Name) -> Fn:
        kind, value = self.p.names[id(e)]
        if kind == "var":
            i = int(value)  # type: ignore[call-overload]
            return lambda env, bd: bd.values[i]
        if kind in ("const", "level", "exchange"):
            return lambda env, bd: value
        if kind == "metric":
            name = str(value)
            return lambda env, bd: env.metric(name, bd.subject)  # type: ignore[arg-type]
        if kind == "position":
            name = str(value)
            return lambda env, bd: env.position(name)
        raise AssertionError(kind)

    def _arg(self, e: A.Expr) -> tuple[str | None, int | None]:
        """A coin or exchange argument: a fixed value, or a variable index."""
        if isinstance(e, A.CoinLit):
            return e.symbol, None
        kind, value = self.p.names[id(e)]
        if kind == "var":
            return None, int(value)  # type: ignore[call-overload]
        return str(value), None

    def _call(self, e: A.Call) -> Fn:
        f = e.func
        if f == "net":
            d = self.compile(e.args[0])

            def net(env: Env, bd: Binding) -> float:
                s = bd.subject
                return env.metric("edge", s) * (d(env, bd) / EIGHT_HOURS) - env.metric("fees", s)  # type: ignore[arg-type, operator]

            return net
        if f == "apr":
            r = self.compile(e.args[0])
            return lambda env, bd: r(env, bd) * 3 * 365  # type: ignore[operator]
        if f == "abs":
            a = self.compile(e.args[0])
            return lambda env, bd: abs(a(env, bd))  # type: ignore[arg-type]
        if f in ("min", "max"):
            fs = [self.compile(a) for a in e.args]
            agg = min if f == "min" else max
            return lambda env, bd: agg(g(env, bd) for g in fs)  # type: ignore[type-var]
        (coin, ci), *exs = [self._arg(a) for a in e.args]
        if f == "spread":
            (ex_a, ai), (ex_b, bi) = exs
            fa = _market_call("funding", coin, ci, ex_a, ai)
            fb = _market_call("funding", coin, ci, ex_b, bi)
            return lambda env, bd: fa(env, bd) - fb(env, bd)  # type: ignore[operator]
        (x, xi) = exs[0]
        return _market_call(f, coin, ci, x, xi)

    def _binop(self, e: A.BinOp) -> Fn:
        a, b = self.compile(e.left), self.compile(e.right)
        op = e.op
        if op == "+":
            return lambda env, bd: a(env, bd) + b(env, bd)  # type: ignore[operator]
        if op == "-":
            return lambda env, bd: a(env, bd) - b(env, bd)  # type: ignore[operator]
        if op == "*":
            return lambda env, bd: a(env, bd) * b(env, bd)  # type: ignore[operator]

        def divide(env: Env, bd: Binding) -> float:
            den = b(env, bd)
            if den == 0:
                raise NoData(f"division by zero in {self.source_text(e)}")
            return a(env, bd) / den  # type: ignore[operator]

        return divide

    def _compare(self, e: A.Compare) -> Fn:
        a, b = self.compile(e.left), self.compile(e.right)
        op = e.op
        if op == ">":
            return lambda env, bd: a(env, bd) > b(env, bd)  # type: ignore[operator]
        if op == ">=":
            return lambda env, bd: a(env, bd) >= b(env, bd)  # type: ignore[operator]
        if op == "<":
            return lambda env, bd: a(env, bd) < b(env, bd)  # type: ignore[operator]
        if op == "<=":
            return lambda env, bd: a(env, bd) <= b(env, bd)  # type: ignore[operator]
        if op == "==":
            return lambda env, bd: a(env, bd) == b(env, bd)
        return lambda env, bd: a(env, bd) != b(env, bd)


def _market_call(func: str, coin: str | None, ci: int | None, ex: str | None, xi: int | None) -> Fn:
    """A market function call specialised on which arguments are variables."""

    def method(env: Env) -> Callable[[str, str], float]:
        return getattr(env, func)

    if ci is None and xi is None:
        return lambda env, bd: method(env)(coin, ex)  # type: ignore[arg-type]
    if ci is None:
        return lambda env, bd: method(env)(coin, bd.values[xi])  # type: ignore[arg-type, index]
    if xi is None:
        return lambda env, bd: method(env)(bd.values[ci], ex)  # type: ignore[arg-type]
    return lambda env, bd: method(env)(bd.values[ci], bd.values[xi])


# -- rules -------------------------------------------------------------------------------


def _expand(cr: CheckedRule) -> list[tuple[str, ...]]:
    """Every combination of the `for` variables, skipping those in which two
    exchange variables take the same value (spec section 3)."""
    if not cr.var_names:
        return [()]
    ex_idx = [i for i, t in enumerate(cr.var_types) if t == EXCHANGE]
    out = []
    for combo in itertools.product(*cr.var_domains):
        if len(ex_idx) > 1 and len({combo[i] for i in ex_idx}) < len(ex_idx):
            continue
        out.append(combo)
    return out


def _subject_maker(
    subject: A.Call | None, program: Program
) -> Callable[[tuple[str, ...]], Subject | None]:
    """A function from a binding's values to its subject, resolved once per rule.

    Subjects are interned, so every binding (of any rule) on one market shares
    one Subject object and the engine can cache metrics per subject cheaply."""
    if subject is None:
        return lambda values: None
    # Each argument is a fixed value or an index into the binding's values.
    spec: list[tuple[int, str]] = []
    for a in subject.args:
        if isinstance(a, A.CoinLit):
            spec.append((-1, a.symbol))
            continue
        kind, value = program.names[id(a)]
        spec.append((int(value), "") if kind == "var" else (-1, str(value)))  # type: ignore[call-overload]
    kind_ = subject.func
    interned = _SUBJECTS
    args_of: Callable[[tuple[str, ...]], tuple[str, ...]]
    if all(i >= 0 for i, _ in spec):
        pick = operator.itemgetter(*(i for i, _ in spec))
        args_of = (lambda v: (pick(v),)) if len(spec) == 1 else pick
    else:

        def args_of(values: tuple[str, ...]) -> tuple[str, ...]:
            return tuple([values[i] if i >= 0 else fixed for i, fixed in spec])

    def make(values: tuple[str, ...]) -> Subject:
        args = args_of(values)
        found = interned.get((kind_, args))
        if found is None:
            found = interned[(kind_, args)] = Subject(kind_, args[0], args[1:])
        return found

    return make


_SUBJECTS: dict[tuple[str, tuple[str, ...]], Subject] = {}


def _compile_rule(cr: CheckedRule, program: Program, texts: dict[str, list[str]]) -> CompiledRule:
    plain = _ExprCompiler(program, None, texts)
    rule = cr.rule
    names = tuple(cr.var_names)
    subject_of = _subject_maker(cr.subject, program)

    def expand() -> list[Binding]:
        return [Binding(names, vals, subject_of(vals)) for vals in _expand(cr)]

    actions: list[HedgeAction | CloseAction | AlertAction] = []
    for act in rule.actions:
        if isinstance(act, A.Hedge):
            actions.append(HedgeAction(plain.compile(act.amount)))  # type: ignore[arg-type]
        elif isinstance(act, A.Close):
            actions.append(CloseAction())
        else:
            actions.append(AlertAction(act.template))
    assert program.types.get(id(rule.when)) == BOOL

    def traced() -> tuple[Fn, Fn | None, list[Step]]:
        # Built on the first `explain` only: most runs never explain.
        trace: list[Step] = []
        tc = _ExprCompiler(program, trace, texts)
        return tc.compile(rule.when), tc.compile(rule.exit_when) if rule.exit_when else None, trace

    return CompiledRule(
        name=rule.name,
        file=rule.span.file,
        line=rule.span.line,
        var_names=names,
        _expand_bindings=expand,
        subject_kind=cr.subject.func if cr.subject else None,
        when=plain.compile(rule.when),
        exit_when=plain.compile(rule.exit_when) if rule.exit_when else None,
        actions=actions,
        source=rule,
        _make_fingerprint=lambda: rule_fingerprint(cr, program),
        _make_markets=lambda: rule_markets(cr, program),
        _make_traced=traced,
    )


# Fields that only say where a node is, or how a literal was spelt: not what it means.
_LAYOUT_FIELDS = frozenset({"span", "name_span", "func_span", "var_span", "source_span"})
_LITERALS = (A.Number, A.RateLit, A.MoneyLit, A.DurationLit)


_FIELDS: dict[type, tuple[str, ...]] = {}


def _meaningful_fields(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        skip = _LAYOUT_FIELDS | ({"text"} if issubclass(cls, _LITERALS) else set())
        names = tuple(f.name for f in dataclasses.fields(cls) if f.name not in skip)
        _FIELDS[cls] = names
    return names


def _canonical(node: object, program: Program, out: list[str]) -> None:
    """Append a layout-free text form of node to out."""
    if isinstance(node, A.Name):
        # what the name resolved to, so that editing a constant the rule uses
        # changes the rule, and renaming a `for` variable does not
        out.append(f"N{program.names.get(id(node), ('?', node.id))!r}")
    elif dataclasses.is_dataclass(node):
        out.append(type(node).__name__ + "(")
        for name in _meaningful_fields(type(node)):
            out.append(name + "=")
            _canonical(getattr(node, name), program, out)
            out.append(",")
        out.append(")")
    elif isinstance(node, list | tuple):
        out.append("[")
        for item in node:
            _canonical(item, program, out)
            out.append(",")
        out.append("]")
    else:
        out.append(repr(node))


@dataclass(frozen=True, slots=True)
class Markets:
    coins: tuple[str, ...]
    exchanges: tuple[str, ...]


def _market_calls(node: object) -> list[A.Call]:
    """Every market function call under an AST node, in source order."""
    found: list[A.Call] = []
    if isinstance(node, A.Call):
        if node.func in MARKET_FUNCTIONS:
            found.append(node)
        for a in node.args:
            found += _market_calls(a)
    elif isinstance(node, (A.BinOp, A.Compare, A.And, A.Or)):
        found += _market_calls(node.left) + _market_calls(node.right)
    elif isinstance(node, (A.Neg, A.Not)):
        found += _market_calls(node.operand)
    elif isinstance(node, A.Hedge):
        found += _market_calls(node.amount)
    return found


def rule_markets(cr: CheckedRule, program: Program) -> Markets:
    """The coins and exchanges a rule's market calls read, in `when`, the hedge
    amounts and `exit when`, whichever binding is evaluated."""
    coins: dict[str, None] = {}
    exchanges: dict[str, None] = {}
    rule = cr.rule
    parts: list[object] = [rule.when, *rule.actions, rule.exit_when]
    for call in (c for part in parts for c in _market_calls(part)):
        for position, arg in enumerate(call.args):
            into = coins if position == 0 else exchanges
            if isinstance(arg, A.CoinLit):
                into[arg.symbol] = None
                continue
            kind, value = program.names[id(arg)]
            if kind == "var":
                into.update(dict.fromkeys(cr.var_domains[int(value)]))  # type: ignore[call-overload]
            else:
                into[str(value)] = None
    return Markets(tuple(coins), tuple(exchanges))


def rule_fingerprint(cr: CheckedRule, program: Program) -> str:
    """sha256 of a rule's meaning: its clauses with names resolved (constants to
    their values, variables to their position) and its variables' domains.

    Comments, whitespace, line moves, literal spelling (`0.10%` vs `0.1%`) and
    variable names do not change it; a threshold, an action, an exit clause, a
    constant the rule uses or a set it runs over does. The rule's own name is
    not part of it: the name is what a fingerprint is compared under.
    """
    rule = cr.rule
    # the `for` clauses count through what they range over, in order
    out = [repr(cr.var_domains)]
    for part in (rule.when, rule.actions, rule.exit_when):
        out.append("|")
        _canonical(part, program, out)
    return hashlib.sha256("".join(out).encode()).hexdigest()


def compile_program(program: Program) -> Ruleset:
    """Compile a checked program that has no errors."""
    rv = program.risk_values
    risk = RiskLimits(
        max_total_exposure=rv.get("max_total_exposure"),
        max_single_position=rv.get("max_single_position"),
        max_open_positions=int(rv["max_open_positions"]) if "max_open_positions" in rv else None,
        max_hold=rv.get("max_hold"),
        stop_loss=rv.get("stop_loss"),
        min_confidence=rv.get("min_confidence"),
    )
    sources = {f.path: f.text for f in program.files}
    texts = {path: text.splitlines() for path, text in sources.items()}
    return Ruleset(
        rules=[_compile_rule(cr, program, texts) for cr in program.rules],
        risk=risk,
        files=[f.path for f in program.files],
        sha256=ruleset_digest(sources),
        sources=sources,
        program=program,
    )
