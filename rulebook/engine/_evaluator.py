"""The one evaluator: a rule's resolved clauses over a batch of bindings.

Every construct of the language has exactly one meaning here, written once:
the default path, `--explain`, `exit when` and the hedge amounts all run
this code. A batch is all of a rule's bindings at once (numpy arrays of
coin and exchange codes, one element per binding) or a single binding
(plain ints); the arithmetic is the same either way.

Semantics kept from the language (spec 4 to 6):

- a value is `V(values, missing, reason)`: `missing` marks the bindings
  whose data is missing, `reason` the first missing datum in evaluation
  order (a code, worded only for the bindings shown);
- `a and b` counts b's missing data only where a held, `a or b` only where
  a did not (left to right, as a reader expects of short-circuit);
  arithmetic and comparisons read left first, a division its denominator
  first (and a zero denominator is missing data, "division by zero in ...");
- metrics come from the subject's figures, computed once per snapshot by
  `_vector._figures` with the formulas of `_metrics`.

Evaluation walks a *tape*: the clause's nodes in post-order, built once
without recursion, so a flat `and` of 10,000 terms is a loop, not a stack.
Run with `trace=True`, it keeps every node's value; `explanation` then says,
per binding, which nodes were evaluated (the short-circuit above) and their
values, in evaluation order: `--explain` is this evaluator with a trace.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rulebook.lang import (
    EXCHANGES,
    Binding,
    CompiledRule,
    Explanation,
    Ruleset,
    Step,
    format_value,
    ir,
)

from . import _metrics as M
from ._vector import (
    EX_INDEX,
    Figures,
    MarketArrays,
    Subjects,
    V,
    figures_at,
    figures_of,
    some,
    spread_over,
    where_true,
)

__all__ = [
    "Batch",
    "Tape",
    "Traced",
    "RuleResult",
    "RulePlan",
    "Plan",
    "DIV_ZERO",
    "tape",
    "run",
    "run_many",
    "explanation",
    "plan",
    "plan_held_batch",
    "single",
]

# reason code of a division by zero at division k of a rule: DIV_ZERO - k
DIV_ZERO = -2

#: Batches of at least this many bindings short-circuit `and`/`or` on
#: sub-batches, and compute a subject's figures only for the bindings read.
#: Each numpy call costs a few microseconds whatever its size, and a
#: sub-batch costs some twenty of them: under a few thousand bindings,
#: evaluating every operand for every binding is cheaper (bench_engine: 1,800
#: bindings per rule lost, 9,000 won). Tests set it to 0 to run every path.
SHORT_CIRCUIT_MIN = 4096

_COMPARE = {
    ">": np.greater,
    ">=": np.greater_equal,
    "<": np.less,
    "<=": np.less_equal,
    "==": np.equal,
    "!=": np.not_equal,
}
_ARITH = {"+": np.add, "-": np.subtract, "*": np.multiply}


@dataclass(slots=True)
class Batch:
    """The bindings a clause is evaluated for.

    `vars` holds, per `for` variable (slot), the bindings' codes: exchange
    indices into EXCHANGES, coin indices into the market arrays' coins; an
    array over the batch, or an int for a batch of one. `subject` the
    subject's codes the same way. `keys` names each slot's codes (see
    `Subjects.key`). `position` the open position's values (`exit when`
    only): held, pnl, collected; floats for a batch of one, else arrays.
    """

    n: int
    vars: list[np.ndarray | int]
    keys: list[Hashable]
    subject: Subjects | None
    position: Mapping[str, float | np.ndarray] | None = None
    #: division node -> its number k in the rule (reason code DIV_ZERO - k)
    divisions: dict[ir.Expr, int] = field(default_factory=dict)
    #: a sub-batch (the short-circuit of `and`/`or`): the bindings of this
    #: batch at these positions; `vars`, `keys` and `subject` are this batch's
    positions: np.ndarray | None = None


@dataclass(slots=True)
class Tape:
    """A clause's nodes in evaluation order (post-order), children by position."""

    nodes: list[ir.Expr]
    kids: list[tuple[int, ...]]
    #: the first position of each `and`/`or` operand after the first, with
    #: its node's position and its number: where the short-circuit may stop
    deferred: dict[int, tuple[int, int]] = field(default_factory=dict)


def _operands(e: ir.Expr) -> tuple[ir.Expr, ...]:
    """The operands evaluated before `e`, in the order they are evaluated."""
    if isinstance(e, ir.Arith) and e.op == "/":
        return (e.right, e.left)  # the denominator first: it may be zero
    if isinstance(e, (ir.MarketCall, ir.Const, ir.Var, ir.Metric, ir.PositionValue)):
        return ()  # a market call's arguments are resolved, not evaluated
    return ir.children(e)


@dataclass(slots=True)
class _Frame:
    node: ir.Expr
    operands: tuple[ir.Expr, ...]
    next: int = 0  # the next operand to visit
    done: list[int] = field(default_factory=list)  # tape positions of the visited ones


def tape(root: ir.Expr) -> Tape:
    """The post-order of `root`, without recursion."""
    nodes: list[ir.Expr] = []
    kids: list[tuple[int, ...]] = []
    stack = [_Frame(root, _operands(root))]
    while stack:
        frame = stack[-1]
        if frame.next < len(frame.operands):
            op = frame.operands[frame.next]
            frame.next += 1
            stack.append(_Frame(op, _operands(op)))
            continue
        stack.pop()
        nodes.append(frame.node)
        kids.append(tuple(frame.done))
        if stack:
            stack[-1].done.append(len(nodes) - 1)
    # where each node's subtree starts, and so where each deferred operand does
    first: list[int] = []
    deferred: dict[int, tuple[int, int]] = {}
    for pos, ks in enumerate(kids):
        first.append(first[ks[0]] if ks else pos)
        if isinstance(nodes[pos], (ir.And, ir.Or)):
            for j in range(1, len(ks)):
                deferred[ks[j - 1] + 1] = (pos, j)
    return Tape(nodes, kids, deferred)


# -- combining missing masks in evaluation order --------------------------------------


def _seq(a: V, b: V, value: object) -> V:
    """`a` evaluated, then `b` (everywhere): the first missing one gives the reason."""
    if a.m is None:
        return V(value, b.m, b.r)
    if b.m is None or (b.m is a.m and b.r is a.r):  # (a subject's figures share one mask)
        return V(value, a.m, a.r)
    return V(value, a.m | b.m, np.where(a.m, a.r, b.r))


def _guarded(a: V, b: V, evaluated: object, value: object) -> V:
    """`a`, then `b` only where `evaluated` (short-circuit)."""
    if b.m is None:
        return V(value, a.m, a.r)
    bm = b.m & evaluated
    assert b.r is not None
    if a.m is None:
        return V(value, bm, np.where(bm, b.r, 0)) if some(bm) else V(value)
    return V(value, a.m | bm, np.where(a.m, a.r, np.where(bm, b.r, 0)))


def _held(x: V) -> Any:
    """Where a condition is true and known."""
    return x.v if x.m is None else np.logical_and(x.v, ~x.m)


def _failed(x: V) -> Any:
    """Where a condition is false and known."""
    out = np.logical_not(x.v)
    return out if x.m is None else out & ~x.m


# -- evaluation ------------------------------------------------------------------------


class _Run:
    """One evaluation of tapes over one batch: shares market lookups and figures."""

    def __init__(self, mk: MarketArrays, batch: Batch) -> None:
        self.mk = mk
        self.batch = batch

    def arg(self, a: ir.Arg) -> tuple[np.ndarray | int, Hashable]:
        """A market call's coin or exchange: its codes and their key."""
        if isinstance(a, ir.Var):
            return self.batch.vars[a.slot], self.batch.keys[a.slot]
        code = EX_INDEX[str(a.value)] if a.type == "Exchange" else self.mk.coin_code(str(a.value))
        return code, code

    def market(
        self, kind: str, c: tuple[np.ndarray | int, Hashable], x: tuple[np.ndarray | int, Hashable]
    ) -> V:
        # a sub-batch reads the whole batch's lookup (shared by every rule
        # over the same variables) at its positions
        return _take(self.mk.lookup(kind, c[0], x[0], (c[1], x[1])), self.batch.positions)

    def metric(self, name: str) -> V:
        subject = self.batch.subject
        assert subject is not None  # the checker requires a subject
        positions = self.batch.positions
        figs = figures_of(self.mk, subject) if positions is None else figures_at(self.mk, subject, positions)
        values = getattr(figs, name)
        v = V(values) if figs.missing is None else V(values, figs.missing, figs.reason)
        return _take(v, positions)

    def node(self, e: ir.Expr, x: list[V]) -> V:  # noqa: C901 - one branch per node type
        if isinstance(e, ir.Const):
            if e.type == "Exchange":
                return V(EX_INDEX[str(e.value)])
            if e.type == "Coin":
                return V(self.mk.coin_code(str(e.value)))
            if e.type == "Level":
                return V(int(e.value))
            return V(float(e.value))
        if isinstance(e, ir.Var):
            return _take(V(self.batch.vars[e.slot]), self.batch.positions)
        if isinstance(e, ir.MarketCall):
            c = self.arg(e.coin)
            if e.func == "spread":
                a = self.market("funding", c, self.arg(e.exchanges[0]))
                b = self.market("funding", c, self.arg(e.exchanges[1]))
                return _seq(a, b, M.spread(a.v, b.v))
            return self.market(e.func, c, self.arg(e.exchanges[0]))
        if isinstance(e, ir.Metric):
            return self.metric(e.name)
        if isinstance(e, ir.Net):
            # net(d) = edge * (d / 8h) - fees: edge is read first, then d, then fees
            edge, fees = self.metric("edge"), self.metric("fees")
            (d,) = x
            return _seq(_seq(edge, d, None), fees, M.net_rate(edge.v, fees.v, d.v))
        if isinstance(e, ir.Apply):
            if e.func == "apr":
                return V(M.apr(x[0].v), x[0].m, x[0].r)
            if e.func == "abs":
                return V(np.abs(x[0].v), x[0].m, x[0].r)
            agg = np.minimum if e.func == "min" else np.maximum
            out = x[0]
            for y in x[1:]:
                out = _seq(out, y, agg(out.v, y.v))
            return out
        if isinstance(e, ir.Neg):
            return V(np.negative(x[0].v), x[0].m, x[0].r)
        if isinstance(e, ir.Not):
            return V(np.logical_not(x[0].v), x[0].m, x[0].r)
        if isinstance(e, ir.Arith):
            if e.op == "/":
                b, a = x  # the denominator was evaluated first
                zero = np.asarray(b.v == 0)
                value = np.divide(a.v, np.where(zero, 1.0, b.v))
                divisions = self.batch.divisions
                k = divisions.get(e)
                if k is None:  # a batch of one numbers them as it meets them
                    k = divisions[e] = len(divisions)
                code = DIV_ZERO - k
                z = V(None, zero, np.where(zero, code, 0)) if some(zero) else V(None)
                return _seq(_seq(b, z, None), a, value)
            a, b = x
            return _seq(a, b, _ARITH[e.op](a.v, b.v))
        if isinstance(e, ir.Compare):
            a, b = x
            return _seq(a, b, _COMPARE[e.op](a.v, b.v))
        if isinstance(e, ir.And):
            out = x[0]
            for y in x[1:]:
                out = _guarded(out, y, _held(out), np.logical_and(out.v, y.v))
            return out
        if isinstance(e, ir.Or):
            out = x[0]
            for y in x[1:]:
                out = _guarded(out, y, _failed(out), np.logical_or(out.v, y.v))
            return out
        if isinstance(e, ir.PositionValue):
            if self.batch.position is None:
                raise ValueError(f"'{e.name}' is known only in `exit when`")
            value = self.batch.position[e.name]
            if isinstance(value, np.ndarray):  # one per binding (`held_batch`)
                return _take(V(value), self.batch.positions)
            return V(float(value))
        raise TypeError(f"cannot evaluate {type(e).__name__}")

    def tape(self, t: Tape, trace: bool = False) -> tuple[V, list[V] | None]:
        values: list[V] = []
        stack: list[V] = []
        node = self.node
        for e, kids in zip(t.nodes, t.kids, strict=True):
            k = len(kids)
            if k:
                x = stack[-k:]
                del stack[-k:]
            else:
                x = []
            v = node(e, x)
            stack.append(v)
            if trace:
                # a net(d) node keeps the figures' mask: d is read only where
                # the edge was (see _evaluated)
                values.append(V(v.v, v.m, v.r, self.metric("edge").m) if isinstance(e, ir.Net) else v)
        return stack[-1], (values if trace else None)


    def walk(self, t: Tape, lo: int, hi: int) -> V:
        """The value of the subtree at tape positions lo..hi, short-circuiting:
        an `and` operand is evaluated only for the bindings where the operands
        before it held (`or`: failed), on a sub-batch of those bindings when
        they are few. The same values as `tape` wherever they are known (a
        value under a missing mask is never read), without a trace.

        Recursion happens only per nested short-circuit (and/or nesting is at
        most 100 deep, E111); a flat chain of terms is a loop."""
        stack: list[V] = []
        running: dict[int, V] = {}  # and/or node -> its operands combined so far
        node = self.node
        nodes, kids, deferred = t.nodes, t.kids, t.deferred
        i = lo
        while i <= hi:
            d = deferred.get(i) if i != lo else None
            if d is not None:
                p, j = d
                last = stack.pop()
                so_far = running.get(p)
                out = last if so_far is None else _combine(nodes[p], so_far, last)
                running[p] = out
                end = kids[p][j]
                stack.append(self.only_where(t, i, end, _held(out) if isinstance(nodes[p], ir.And) else _failed(out)))
                i = end + 1
                continue
            e, ks = nodes[i], kids[i]
            if i in running:
                stack.append(_combine(e, running.pop(i), stack.pop()))
            else:
                k = len(ks)
                if k:
                    x = stack[-k:]
                    del stack[-k:]
                else:
                    x = []
                stack.append(node(e, x))
            i += 1
        return stack[-1]

    def only_where(self, t: Tape, lo: int, hi: int, gate: Any) -> V:
        """The subtree lo..hi evaluated where `gate` holds (elsewhere a known
        false that its and/or ignores)."""
        n = self.batch.n
        gate = spread_over(gate, (n,))
        count = int(np.count_nonzero(gate))
        if count == 0:
            return V(False)
        if count * 2 > n:
            return self.walk(t, lo, hi)  # most of the batch: not worth a sub-batch
        sel = where_true(gate)
        b = self.batch
        positions = sel if b.positions is None else b.positions[sel]
        sub = Batch(len(sel), b.vars, b.keys, b.subject, b.position, b.divisions, positions)
        y = _Run(self.mk, sub).walk(t, lo, hi)
        return _scatter(y, sel, n)


def _combine(e: ir.Expr, out: V, y: V) -> V:
    """`out and y` / `out or y`, y read where out left the outcome open."""
    if isinstance(e, ir.And):
        return _guarded(out, y, _held(out), np.logical_and(out.v, y.v))
    return _guarded(out, y, _failed(out), np.logical_or(out.v, y.v))


def _take(x: V, positions: np.ndarray | None) -> V:
    """`x` at the positions of a sub-batch (a value for all stays as it is)."""
    if positions is None:
        return x
    v = x.v[positions] if isinstance(x.v, np.ndarray) and x.v.ndim else x.v
    if x.m is None:
        return V(v)
    m = x.m[positions] if isinstance(x.m, np.ndarray) and x.m.ndim else x.m
    if not some(m):
        return V(v)
    r = x.r[positions] if isinstance(x.r, np.ndarray) and x.r.ndim else x.r
    return V(v, m, r)


def _scatter(y: V, sel: np.ndarray, n: int) -> V:
    """A sub-batch's condition over the whole batch: false (and known) off `sel`."""
    v = np.zeros(n, dtype=bool)
    v[sel] = y.v
    if y.m is None:
        return V(v)
    m = np.zeros(n, dtype=bool)
    m[sel] = y.m
    r = np.zeros(n, dtype=np.int64)
    r[sel] = y.r
    return V(v, m, r)


def run(
    t: Tape, mk: MarketArrays, batch: Batch, trace: bool = False
) -> tuple[V, list[V] | None]:
    """Evaluate a tape over a batch: its value, and every node's value when tracing.

    Without a trace, a batch of many bindings short-circuits `and`/`or`
    (`_Run.walk`); with one, every node is evaluated for every binding, which
    `explanation` then reads per binding."""
    with np.errstate(all="ignore"):
        return _run(t, mk, batch, trace)


def _run(t: Tape, mk: MarketArrays, batch: Batch, trace: bool) -> tuple[V, list[V] | None]:
    """`run`, inside the caller's `np.errstate(all="ignore")`."""
    if trace or batch.n < SHORT_CIRCUIT_MIN or not batch.vars:
        return _Run(mk, batch).tape(t, trace)
    return _Run(mk, batch).walk(t, 0, len(t.nodes) - 1), None


def run_many(tapes: list[Tape], mk: MarketArrays, batch: Batch) -> list[V]:
    """Several tapes over one batch (a rule's hedge amounts), sharing lookups."""
    with np.errstate(all="ignore"):
        r = _Run(mk, batch)
        return [r.tape(t)[0] for t in tapes]


# -- explanations ----------------------------------------------------------------------------


def _at(x: Any, i: int) -> Any:
    if isinstance(x, np.ndarray) and x.ndim:
        x = x[i]
    return x.item() if isinstance(x, (np.ndarray, np.generic)) else x


def _evaluated(t: Tape, values: list[V], n: int) -> list[np.ndarray]:
    """Per node, the bindings for which it was evaluated: every binding for the
    root; an operand only where the operands before it left the outcome open
    (`and`, `or`) or had their data (everything else)."""
    everywhere = np.ones(n, dtype=bool)
    out: list[np.ndarray] = [everywhere] * len(t.nodes)
    for pos in range(len(t.nodes) - 1, -1, -1):
        e, kids, running = t.nodes[pos], t.kids[pos], out[pos]
        for k in kids:
            out[k] = running
            v = values[k]
            if isinstance(e, ir.And):
                running = running & np.broadcast_to(_held(v), (n,))
            elif isinstance(e, ir.Or):
                running = running & np.broadcast_to(_failed(v), (n,))
            else:
                if v.m is not None:
                    running = running & ~np.broadcast_to(v.m, (n,))
                if isinstance(e, ir.Arith) and e.op == "/" and k == kids[0]:
                    running = running & ~np.broadcast_to(np.asarray(v.v == 0), (n,))
        if isinstance(e, ir.Net) and kids:
            # edge is read before the duration: missing figures stop it
            edge_missing = values[pos].aux
            if edge_missing is not None:
                out[kids[0]] = out[kids[0]] & ~np.broadcast_to(edge_missing, (n,))
    return out


@dataclass(slots=True)
class Traced:
    """A clause evaluated with a trace, ready to explain any of its bindings."""

    tape: Tape
    values: list[V]
    evaluated: list[np.ndarray]
    text: Callable[[ir.Expr], str]
    reason: Callable[[int], str]  # a reason code in words
    coin_names: list[str]

    def explain(self, i: int) -> Explanation:
        steps: list[Step] = []
        for e, v, ev in zip(self.tape.nodes, self.values, self.evaluated, strict=True):
            if not ev[i] or (isinstance(e, ir.Const) and e.literal):
                continue
            steps.append(Step(self.text(e), self.value(e, v, i)))
        top = self.values[-1]
        if top.m is not None and _at(top.m, i):
            return Explanation(None, self.reason(int(_at(top.r, i))), steps)
        return Explanation(bool(_at(top.v, i)), None, steps)

    def value(self, e: ir.Expr, v: V, i: int) -> str:
        if v.m is not None and _at(v.m, i):
            return f"no data: {self.reason(int(_at(v.r, i)))}"
        x = _at(v.v, i)
        if e.type == "Exchange":
            return EXCHANGES[int(x)]
        if e.type == "Coin":
            return self.coin_names[int(x)]
        return format_value(e.type, x)


def explanation(
    t: Tape,
    values: list[V],
    n: int,
    text: Callable[[ir.Expr], str],
    reason: Callable[[int], str],
    coin_names: list[str],
) -> Traced:
    return Traced(t, values, _evaluated(t, values, n), text, reason, coin_names)


# -- a ruleset's plan: its rules' tapes and binding codes, made once ------------------------


@dataclass(slots=True)
class RuleResult:
    fired: np.ndarray  # bool per binding (False where skipped)
    skipped: np.ndarray  # bool per binding
    reason: np.ndarray  # reason code per binding (meaningful where skipped)
    figures: Figures | None  # the subject's figures per binding (rules with a subject)
    amounts: np.ndarray | None  # the hedge amount per binding (rules with a hedge)
    amount_missing: np.ndarray | None  # where the hedge amount lacks data
    when: V  # the `when` clause's value
    subject: Subjects | None  # the batch's subjects, whose figures these are
    trace: list[V] | None = None  # every node's value (with a trace)


@dataclass(slots=True)
class RulePlan:
    """One rule over all its bindings: tapes of its clauses, its bindings' codes."""

    rule: CompiledRule
    batch: Batch
    when: Tape
    amounts: list[Tape]
    #: whether the hedge amounts are made of literals and constants only
    #: (`hedge 1000 USDT`): then they are computed once, not per snapshot
    amounts_constant: bool = False
    constant_amount: V | None = None
    #: `constant_amount` over the batch, made once
    constant_amounts: np.ndarray | None = None
    #: id of each of the rule's bindings -> its position (`plan_held_batch`)
    held_index: dict[int, int] | None = None
    #: the last held bindings asked for: their ids, themselves, their positions
    held: tuple[tuple[int, ...], list[Binding], np.ndarray] | None = None

    def run(self, mk: MarketArrays, trace: bool = False, all_figures: bool = True) -> RuleResult:
        """The rule over all its bindings. `all_figures=False`: the figures are
        computed only for the bindings that fired (see `figures_at`), for a
        caller that reads no others."""
        n = (self.batch.n,)
        with np.errstate(all="ignore"):  # one for the clause and what follows it
            w, values = _run(self.when, mk, self.batch, trace)
            fired = spread_over(np.asarray(w.v, dtype=bool), n)
            missing = np.zeros(n, dtype=bool) if w.m is None else spread_over(w.m, n)
            reason = np.zeros(n, dtype=np.int64) if w.r is None else spread_over(w.r, n)
            fired = fired & ~missing
            skipped = missing
            figs = None
            if self.batch.subject is not None:
                if all_figures or self.batch.n < SHORT_CIRCUIT_MIN:
                    figs = figures_of(mk, self.batch.subject)
                else:
                    figs = figures_at(mk, self.batch.subject, where_true(fired))
                if figs.missing is not None:
                    # fired, but the subject's legs lack data: it could not be opened
                    cut = fired & figs.missing
                    if some(cut):
                        assert figs.reason is not None  # a mask always comes with its reasons
                        skipped = skipped | cut
                        reason = np.where(cut, figs.reason, reason)
                        fired = fired & ~cut
            amounts = amount_missing = None
            if self.amounts:
                total = self.constant_amount
                if total is None:
                    total = V(0.0)
                    for a in run_many(self.amounts, mk, self.batch):
                        total = _seq(total, a, total.v + a.v)  # added in order
                    if self.amounts_constant:
                        self.constant_amount = total  # the same in every snapshot
                if total is self.constant_amount and self.constant_amounts is not None:
                    amounts = self.constant_amounts
                else:
                    amounts = spread_over(np.asarray(total.v, dtype=float), n)
                    if total is self.constant_amount:
                        self.constant_amounts = amounts  # read-only: a broadcast, or the plan's
                        amounts.setflags(write=False)
                if total.m is not None:
                    amount_missing = spread_over(total.m, n)
                    cut = fired & amount_missing
                    if some(cut):
                        skipped = skipped | cut
                        reason = np.where(cut, total.r, reason)
                        fired = fired & ~cut
        return RuleResult(
            fired, skipped, reason, figs, amounts, amount_missing, w, self.batch.subject, values
        )


@dataclass(slots=True)
class Plan:
    coins: dict[str, int]
    rules: list[RulePlan]
    #: the evaluation's position code of each subject asked for, by id (in this
    #: plan's coin coding; see `_evaluate._Collector._position_code`)
    position_codes: dict[int, tuple[Any, Hashable]] = field(default_factory=dict)


def _binding_codes(
    rule: CompiledRule,
    bindings: Sequence[Binding],
    coin: Callable[[str], int],
    codes_of: Callable[[list[int]], tuple[np.ndarray, Hashable]],
) -> tuple[list[tuple[np.ndarray, Hashable]], Subjects | None]:
    """Each variable's codes over `bindings` (an exchange's index, a coin's code from
    `coin`), and the subjects' (coin, first and, for a spread, second exchange), each
    as `codes_of` makes them: an array and the key that names its contents. One
    formula for a plan's batches and for the held bindings' exit checks."""
    slots = [
        codes_of([EX_INDEX[b.values[i]] if t == "Exchange" else coin(b.values[i]) for b in bindings])
        for i, t in enumerate(rule.var_types)
    ]
    if rule.subject_kind is None:
        return slots, None
    subs = [b.subject for b in bindings]
    assert all(s is not None for s in subs)  # a rule with a subject kind has them
    sc = codes_of([coin(s.coin) for s in subs])  # type: ignore[union-attr]
    sa = codes_of([EX_INDEX[s.exchanges[0]] for s in subs])  # type: ignore[union-attr]
    sb = (
        codes_of([EX_INDEX[s.exchanges[1]] for s in subs])  # type: ignore[union-attr]
        if rule.subject_kind == "spread"
        else None
    )
    subject = Subjects(
        rule.subject_kind, sc[0], sa[0], None if sb is None else sb[0],
        (sc[1], sa[1], None if sb is None else sb[1]),
    )  # fmt: skip
    return slots, subject


def _plan(ruleset: Ruleset) -> Plan:
    coins: dict[str, int] = {}
    for c in ruleset.markets().coins:
        coins.setdefault(c, len(coins))
    shared: dict[bytes, tuple[np.ndarray, Hashable]] = {}

    def coin(sym: str) -> int:
        return coins.setdefault(sym, len(coins))

    def dedup(values: list[int]) -> tuple[np.ndarray, Hashable]:
        """The codes as an array, and a key naming its contents: one number per
        distinct array, so that rules over the same variables share results."""
        arr = np.array(values, np.intp)
        arr.setflags(write=False)
        got = shared.get(arr.tobytes())
        if got is None:
            got = shared[arr.tobytes()] = (arr, ("codes", len(shared)))
        return got

    rules: list[RulePlan] = []
    for rule in ruleset.rules:
        bindings = rule.bindings
        slots, subject = _binding_codes(rule, bindings, coin, dedup)
        codes: list[np.ndarray | int] = [c for c, _ in slots]
        batch = Batch(len(bindings), codes, [k for _, k in slots], subject)
        when, amounts = tape(rule.when), [tape(a) for a in rule.hedge_amounts]
        # number the divisions now: a plan's batch is not changed by evaluating it
        for t in (when, *amounts):
            for node in t.nodes:
                if isinstance(node, ir.Arith) and node.op == "/":
                    batch.divisions.setdefault(node, len(batch.divisions))
        constant = all(
            isinstance(node, (ir.Const, ir.Arith, ir.Neg, ir.Apply)) for t in amounts for node in t.nodes
        )
        rp = RulePlan(rule, batch, when, amounts, constant)
        rules.append(rp)
        # the exit checks of this rule's held bindings read this plan's batch
        # (`plan_held_batch`); kept with the coin coding its codes are in
        rule.derived["engine.rule_plan"] = (coins, rp)
    return Plan(coins, rules)


def plan(ruleset: Ruleset) -> Plan:
    """The ruleset's plan, made once per ruleset (kept with it)."""
    made = ruleset.derived.get("engine.plan")
    if not isinstance(made, Plan):
        made = ruleset.derived["engine.plan"] = _plan(ruleset)
    return made


def single(rule: CompiledRule, binding: Binding, mk: MarketArrays, position: dict[str, float] | None) -> Batch:
    """A batch of one binding (plain int codes), e.g. an open position's."""
    codes: list[np.ndarray | int] = [
        EX_INDEX[v] if t == "Exchange" else mk.coin_code(v)
        for v, t in zip(binding.values, rule.var_types, strict=True)
    ]
    s = binding.subject
    subject = None
    if s is not None:
        c, a = mk.coin_code(s.coin), EX_INDEX[s.exchanges[0]]
        b = EX_INDEX[s.exchanges[1]] if s.kind == "spread" else None
        subject = Subjects(s.kind, c, a, b, (c, a, b))
    return Batch(1, codes, [int(c) for c in codes], subject, position)


def held_batch(
    rule: CompiledRule,
    bindings: list[Binding],
    mk: MarketArrays,
    position: Mapping[str, np.ndarray],
) -> Batch:
    """A batch of several bindings of one rule (open positions' exit checks):
    each binding's codes as `single` gives them, as arrays, keyed by their
    contents (so that lookups and figures are shared only with the same codes).

    The codes are kept with the rule for the next call (`CompiledRule.derived`):
    the runtime asks for the same held bindings cycle after cycle, and making
    their codes cost as much as running the clause. They are made again when
    the bindings (the very objects, in order) or the coins' coding differ."""
    ids = tuple(map(id, bindings))
    got = rule.derived.get("engine.held_codes")
    if not (isinstance(got, _HeldCodes) and got.ids == ids and got.coins == mk.coins):
        got = rule.derived["engine.held_codes"] = _held_codes(rule, bindings, mk, ids)
    return Batch(len(bindings), list(got.vars), list(got.keys), got.subject, position)


def plan_held_batch(
    rule: CompiledRule,
    bindings: Sequence[Binding],
    mk: MarketArrays,
    position: Mapping[str, np.ndarray],
) -> Batch | None:
    """The held bindings of `rule` as a sub-batch of its plan's batch (the
    bindings at their positions in `rule.bindings`), or None when that cannot
    be: the rule has no plan, `mk` is coded otherwise, a binding is not one of
    the rule's own objects, or one is held twice.

    The clause then reads the very lookups and figures (memoised in `mk` under
    the plan's keys) that the cycle's evaluation of the rule reads: an exit
    check costs a take of each at the held positions, and the evaluation finds
    them made. `position[name][i]` is binding i's value; the batch carries them
    spread over the plan's positions (NaN elsewhere, never read), as a sub-batch
    reads every per-binding array at its positions."""
    got = rule.derived.get("engine.rule_plan")
    if not isinstance(got, tuple):
        return None
    coins, rp = got
    if mk.coins is not coins and mk.coins != coins:
        return None
    ids = tuple(map(id, bindings))
    held = rp.held
    if held is not None and held[0] == ids:
        positions = held[2]  # the same held bindings as the last call (cycle after cycle)
    else:
        index = rp.held_index
        if index is None:
            index = rp.held_index = {id(b): i for i, b in enumerate(rule.bindings)}
        try:
            where = [index[i] for i in ids]
        except KeyError:
            return None  # a binding object the rule does not hold (a copy, say)
        if len(set(where)) != len(where):
            return None  # one held twice: its values cannot share one position
        positions = np.array(where, dtype=np.intp)
        positions.setflags(write=False)
        rp.held = (ids, list(bindings), positions)  # the bindings kept: the ids stay theirs
    full = rp.batch
    spread: dict[str, np.ndarray] = {}
    for name, values in position.items():
        arr = np.empty(full.n)
        arr.fill(np.nan)
        arr[positions] = values
        spread[name] = arr
    return Batch(len(ids), full.vars, full.keys, full.subject, spread, {}, positions)


@dataclass(frozen=True, slots=True)
class _HeldCodes:
    """`held_batch`'s codes of some bindings of a rule, in one coins' coding."""

    ids: tuple[int, ...]
    bindings: list[Binding]  # kept, so that the ids stay theirs
    coins: dict[str, int]
    vars: list[np.ndarray | int]
    keys: list[Hashable]
    subject: Subjects | None


def _held_codes(
    rule: CompiledRule, bindings: list[Binding], mk: MarketArrays, ids: tuple[int, ...]
) -> _HeldCodes:
    def codes_of(values: list[int]) -> tuple[np.ndarray, Hashable]:
        arr = np.array(values, dtype=np.intp)
        arr.setflags(write=False)
        return arr, ("held", tuple(values))

    slots, subject = _binding_codes(rule, bindings, mk.coin_code, codes_of)
    return _HeldCodes(
        ids, list(bindings), dict(mk.coins), [c for c, _ in slots], [k for _, k in slots], subject
    )
