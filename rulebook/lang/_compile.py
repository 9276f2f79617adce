"""The compiler: a checked program to a `Ruleset` the engine and runtime run.

A compiled rule holds its resolved clauses (`ir`), its actions, and its
bindings (every combination of its `for` variables, expanded on first use,
each with its subject). Nothing here evaluates anything: the engine's one
evaluator does, over many bindings at once.
"""

from __future__ import annotations

import hashlib
import itertools
import operator
from collections.abc import Callable
from dataclasses import dataclass, field

from . import _ast as A
from . import ir
from ._check import CheckedRule, Program
from ._types import EXCHANGE, EXCHANGES
from .ir import AlertAction, CloseAction, HedgeAction

__all__ = [
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
    "SourceText",
    "rule_fingerprint",
]


@dataclass(frozen=True, slots=True)
class Subject:
    """A rule's subject for one binding (spec section 6)."""

    kind: str  # spread | funding | basis | borrow
    coin: str
    exchanges: tuple[str, ...]  # (a, b) for spread, (x,) otherwise
    # describe()'s text, made on first use: the engine words thousands of
    # already_open reasons per cycle with it, for the same subjects each cycle
    _text: str | None = field(default=None, init=False, repr=False, compare=False)

    def describe(self) -> str:
        text = self._text
        if text is None:
            text = f"{self.kind}({self.coin}, {', '.join(self.exchanges)})"
            object.__setattr__(self, "_text", text)  # frozen: a cache, not a change
        return text


@dataclass(frozen=True, slots=True)
class Binding:
    """One combination of a rule's `for` variables."""

    names: tuple[str, ...]
    values: tuple[str, ...]
    subject: Subject | None

    def as_dict(self) -> dict[str, str]:
        return dict(zip(self.names, self.values, strict=True))


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


class SourceText:
    """The source text of a span, for explanations and reasons ("division by
    zero in price(c, x) / 0"): computed on demand, never for a plain run."""

    def __init__(self, sources: dict[str, str]):
        self.sources = sources
        self._lines: dict[str, list[str]] = {}

    def of(self, s: A.Span) -> str:
        lines = self._lines.get(s.file)
        if lines is None:
            lines = self._lines[s.file] = self.sources.get(s.file, "").splitlines()
        if not 1 <= s.line <= len(lines):
            return "?"
        if s.end_line == s.line:
            return lines[s.line - 1][s.column - 1 : s.end_column - 1]
        parts = [lines[s.line - 1][s.column - 1 :]]
        parts += [ln.strip() for ln in lines[s.line : s.end_line - 1]]
        parts.append(lines[s.end_line - 1][: s.end_column - 1].strip())
        return " ".join(p.strip() for p in parts)


@dataclass(slots=True)
class CompiledRule:
    """A rule ready to run: resolved clauses, actions and bindings.

    `when`, `exit_when` and each `HedgeAction.amount` are resolved
    expressions (`rulebook.lang.ir`); the engine evaluates them.
    """

    name: str
    file: str
    line: int
    var_names: tuple[str, ...]
    var_types: tuple[str, ...]  # "Coin" or "Exchange" per variable
    _expand_bindings: Callable[[], list[Binding]] = field(repr=False)
    subject_kind: str | None
    when: ir.Expr
    exit_when: ir.Expr | None
    actions: list[HedgeAction | CloseAction | AlertAction]
    source: A.Rule
    _text: SourceText = field(repr=False)
    _make_fingerprint: Callable[[], str] = field(repr=False)
    _make_markets: Callable[[], Markets] = field(repr=False)
    _fingerprint: str | None = field(repr=False, default=None)
    _bindings: list[Binding] | None = field(repr=False, default=None)
    _markets: Markets | None = field(repr=False, default=None)
    _by_values: dict[tuple[str, ...], Binding] | None = field(
        repr=False, compare=False, default=None
    )
    #: what later stages derive from this rule once and keep with it (the
    #: engine's compiled exit clause), by a name of their choosing; a reloaded
    #: rule is a new object, so what was derived from the old one goes with it
    derived: dict[str, object] = field(default_factory=dict, repr=False, compare=False)

    @property
    def bindings(self) -> list[Binding]:
        """Every combination of the `for` variables, expanded on first use:
        `validate` never needs them, and a large ruleset has tens of thousands."""
        if self._bindings is None:
            self._bindings = self._expand_bindings()
        return self._bindings

    @property
    def hedge_amounts(self) -> list[ir.Expr]:
        return [a.amount for a in self.actions if isinstance(a, HedgeAction)]

    @property
    def markets(self) -> Markets:
        """Every coin and exchange any market call of the rule can read, over all
        its bindings: what a live source must fetch for it."""
        if self._markets is None:
            self._markets = self._make_markets()
        return self._markets

    @property
    def fingerprint(self) -> str:
        """What the rule means, independent of layout: equal across two loads
        exactly when the rule would behave the same (see rule_fingerprint).
        Computed on first use: only a reload compares fingerprints."""
        if self._fingerprint is None:
            self._fingerprint = self._make_fingerprint()
        return self._fingerprint

    def text_of(self, e: ir.Expr) -> str:
        """An expression as written in the rule's file."""
        return self._text.of(e.span)

    def binding_for(self, values: dict[str, str]) -> Binding:
        """The binding with these variable values (e.g. those of a stored position)."""
        vals = tuple(values[n] for n in self.var_names)
        if self._by_values is None:  # the runtime asks for every open position every cycle
            self._by_values = {}
            for b in self.bindings:
                self._by_values.setdefault(b.values, b)
        got = self._by_values.get(vals)
        if got is None:
            raise KeyError(f"rule {self.name} has no binding {values}")
        return got


@dataclass(slots=True)
class Ruleset:
    """A compiled ruleset: what the engine and runtime run."""

    rules: list[CompiledRule]
    risk: RiskLimits
    files: list[str]
    sha256: str
    sources: dict[str, str]
    # The checked program the rules came from (for tools; the engine reads
    # the compiled rules only).
    program: Program | None = field(default=None, repr=False, compare=False)
    #: what later stages derive from this ruleset once and keep with it
    #: (the engine's evaluation plan), by a name of their choosing
    derived: dict[str, object] = field(default_factory=dict, repr=False, compare=False)

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


def _subject_maker(subject: ir.MarketCall | None) -> Callable[[tuple[str, ...]], Subject | None]:
    """A function from a binding's values to its subject, resolved once per rule.

    Subjects are interned, so every binding (of any rule) on one market shares
    one Subject object and the engine can cache metrics per subject cheaply."""
    if subject is None:
        return lambda values: None
    # Each argument is a fixed value or an index into the binding's values.
    spec: list[tuple[int, str]] = [
        (a.slot, "") if isinstance(a, ir.Var) else (-1, str(a.value))
        for a in (subject.coin, *subject.exchanges)
    ]
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


def _compile_rule(cr: CheckedRule, text: SourceText) -> CompiledRule:
    rule = cr.rule
    names = tuple(cr.var_names)
    subject_of = _subject_maker(cr.subject)

    def expand() -> list[Binding]:
        return [Binding(names, vals, subject_of(vals)) for vals in _expand(cr)]

    return CompiledRule(
        name=rule.name,
        file=rule.span.file,
        line=rule.span.line,
        var_names=names,
        var_types=tuple(cr.var_types),
        _expand_bindings=expand,
        subject_kind=cr.subject.func if cr.subject else None,
        when=cr.when,
        exit_when=cr.exit_when,
        actions=list(cr.actions),
        source=rule,
        _text=text,
        _make_fingerprint=lambda: rule_fingerprint(cr),
        _make_markets=lambda: rule_markets(cr),
    )


@dataclass(frozen=True, slots=True)
class Markets:
    coins: tuple[str, ...]
    exchanges: tuple[str, ...]


def _clauses(cr: CheckedRule) -> list[ir.Expr]:
    """The rule's expressions: `when`, the hedge amounts, `exit when`."""
    out = [cr.when]
    out += [a.amount for a in cr.actions if isinstance(a, HedgeAction)]
    if cr.exit_when is not None:
        out.append(cr.exit_when)
    return out


def rule_markets(cr: CheckedRule) -> Markets:
    """The coins and exchanges a rule's market calls read, in `when`, the hedge
    amounts and `exit when`, whichever binding is evaluated."""
    coins: dict[str, None] = {}
    exchanges: dict[str, None] = {}
    for clause in _clauses(cr):
        for call in ir.walk(clause):
            if not isinstance(call, ir.MarketCall):
                continue
            for into, arg in ((coins, call.coin), *((exchanges, x) for x in call.exchanges)):
                if isinstance(arg, ir.Var):
                    into.update(dict.fromkeys(cr.var_domains[arg.slot]))
                else:
                    into[str(arg.value)] = None
    return Markets(tuple(coins), tuple(exchanges))


def _canonical(e: ir.Expr) -> str:
    """A layout-free text form of an expression: what it means, not where it
    is or how it was spelt. Constants by value (so editing a constant the rule
    uses changes it), variables by slot (so renaming one does not)."""
    out: list[str] = []
    # iterative: (node, children done?)
    stack: list[tuple[ir.Expr, bool]] = [(e, False)]
    while stack:
        node, done = stack.pop()
        if done:
            out.append(")")
            continue
        if isinstance(node, ir.Const):
            out.append(f"C{node.type}:{node.value!r}")
            continue
        if isinstance(node, ir.Var):
            out.append(f"V{node.slot}")
            continue
        label = type(node).__name__
        for attr in ("op", "func", "name"):
            if hasattr(node, attr):
                label += ":" + str(getattr(node, attr))
        out.append(label + "(")
        stack.append((node, True))
        stack.extend((c, False) for c in reversed(ir.children(node)))
    return " ".join(out)


def rule_fingerprint(cr: CheckedRule) -> str:
    """sha256 of a rule's meaning: its resolved clauses and actions, and its
    variables' domains.

    Comments, whitespace, line moves, literal spelling (`0.10%` vs `0.1%`) and
    variable names do not change it; a threshold, an action, an exit clause, a
    constant the rule uses or a set it runs over does. The rule's own name is
    not part of it: the name is what a fingerprint is compared under.
    """
    # the `for` clauses count through what they range over, in order
    out = [repr(cr.var_domains), "|", _canonical(cr.when), "|"]
    for a in cr.actions:
        if isinstance(a, HedgeAction):
            out.append("hedge " + _canonical(a.amount))
        elif isinstance(a, CloseAction):
            out.append("close")
        else:
            out.append("alert " + repr(a.template))
        out.append(",")
    out += ["|", _canonical(cr.exit_when) if cr.exit_when is not None else "-"]
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
    text = SourceText(sources)
    return Ruleset(
        rules=[_compile_rule(cr, text) for cr in program.rules],
        risk=risk,
        files=[f.path for f in program.files],
        sha256=ruleset_digest(sources),
        sources=sources,
        program=program,
    )
