"""Rules over one snapshot: opportunities with their figures and decisions (spec 6, 7, 10)."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import attrgetter, itemgetter
from typing import TypeVar, overload

import msgspec
import numpy as np

from rulebook.lang import (
    AlertAction,
    Binding,
    CompiledRule,
    Explanation,
    Ruleset,
    Subject,
    format_value,
)
from rulebook.market import SnapshotView

from ._decide import Book, DecisionKind, RiskBudget, position_key
from ._env import SnapshotEnv, SubjectFigures
from ._evaluator import DIV_ZERO, RulePlan, RuleResult, Traced, explanation, plan
from ._fees import EngineConfig
from ._metrics import (
    EIGHT_HOURS_S,
    RISK_LEVELS,
    Leg,
    borrow_legs,
    carry_legs,
    net_rate,
    spread_legs,
)
from ._vector import EX_INDEX, N_EX, Figures, MarketArrays, Subjects, every, some, where_true

__all__ = ["Evaluation", "Opportunity", "Skipped", "evaluate", "decide"]


class Opportunity(msgspec.Struct, gc=False):
    """One evaluated binding of one rule, with its subject's figures.

    `requested` is what the rule's hedge asks for; `amount` is what the
    decision allows (the cut size when cut). Figures are None only for a rule
    without a subject (an alert on prices, say).

    A `msgspec.Struct` rather than a dataclass: an evaluation makes thousands
    of these per cycle, and a Struct is made in C (about a fifth of a slotted
    dataclass's constructor), and is not tracked by the garbage collector (it
    is never part of a reference cycle: nothing it refers to refers back to
    an opportunity).
    """

    rule: str
    binding: Binding
    # the figures, or None until made by `_maker` (see `figures`)
    _figures: SubjectFigures | None
    fired: bool
    requested: float | None  # None: the rule has no hedge action
    amount: float | None = None
    decision: DecisionKind | None = None
    reason: str | None = None
    explanation: Explanation | None = None
    order: int = 0  # rule and binding position in the ruleset, for stable sorting
    # the rule itself, to render its alerts on demand
    compiled: CompiledRule | None = None
    # the default evaluation decides on arrays and makes a binding's figures
    # object when first read: a runtime cycle reads few of them
    _maker: _FigureMaker | None = None
    _at: int = 0

    @property
    def subject(self) -> Subject | None:
        """The binding's subject (spec 6); None for a rule without one."""
        return self.binding.subject

    @property
    def figures(self) -> SubjectFigures | None:
        """The subject's figures (spec 6); None for a rule without a subject."""
        maker = self._maker
        if maker is not None:
            self._figures = maker.at(self._at)
            self._maker = None
        return self._figures

    @property
    def bindings(self) -> dict[str, str]:
        return self.binding.as_dict()

    @property
    def alerts(self) -> list[str]:
        """The rule's alert texts for this binding, when it fired."""
        if not self.fired or self.compiled is None:
            return []
        return _alerts(self.compiled, self.binding, self.figures)

    @property
    def coin(self) -> str | None:
        return self.subject.coin if self.subject else None

    @property
    def legs(self) -> tuple[Leg, ...]:
        return self.figures.legs if self.figures else ()

    @property
    def expected_8h(self) -> float | None:
        """Expected funding over 8h in money: `N * edge`."""
        if self.figures is None or self.amount is None:
            return None
        return self.amount * self.figures.edge

    @property
    def expected_net_8h(self) -> float | None:
        """Expected net after the round-trip fees over 8h in money: `N * net(8h)`."""
        if self.figures is None or self.amount is None:
            return None
        return self.amount * self.figures.net(EIGHT_HOURS_S)

    def to_dict(self) -> dict[str, object]:
        """The spec section 10 object (plus `explain` when an explanation was asked for)."""
        f = self.figures
        breakeven_h = None
        if f is not None and not math.isinf(f.breakeven_s):
            breakeven_h = f.breakeven_s / 3600.0
        out: dict[str, object] = {
            "rule": self.rule,
            "bindings": self.bindings,
            "coin": self.coin,
            "subject": self.subject.kind if self.subject else None,
            "legs": [leg.to_dict() for leg in self.legs],
            "edge": f.edge if f else None,
            "apr": f.apr if f else None,
            "fees": f.fees if f else None,
            "net_8h": f.net(EIGHT_HOURS_S) if f else None,
            "breakeven_h": breakeven_h,
            "confidence": f.confidence if f else None,
            "risk": RISK_LEVELS[f.risk] if f else None,
            "amount": self.amount,
            "expected_8h": self.expected_8h,
            "expected_net_8h": self.expected_net_8h,
            "fired": self.fired,
            "decision": self.decision,
            "reason": self.reason,
        }
        if self.explanation is not None:
            out["explain"] = explanation_dict(self.explanation, f)
        return out


class Skipped(msgspec.Struct, gc=False):
    """A binding that could not be evaluated, and why (spec 5).

    A `msgspec.Struct`, as `Opportunity` is: thousands per cycle."""

    rule: str
    binding: Binding
    reason: str
    explanation: Explanation | None = None
    order: int = 0  # rule and binding position in the ruleset

    @property
    def bindings(self) -> dict[str, str]:
        return self.binding.as_dict()

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "rule": self.rule,
            "bindings": self.bindings,
            "reason": self.reason,
        }
        if self.explanation is not None:
            out["explain"] = explanation_dict(self.explanation, None)
        return out


@dataclass(slots=True)
class Evaluation:
    """A ruleset evaluated over one snapshot."""

    at: int  # ms: "now" (spec 6)
    ruleset: str  # sha256 of the loaded files
    opportunities: list[Opportunity]
    # the skipped bindings, or batches that list them on first access: which
    # bindings are skipped and why is decided during evaluate(); turning
    # thousands of them into objects is left until someone reads them
    _skipped: list[Skipped] | list[Callable[[], list[Skipped]]] = field(default_factory=list)
    bindings: int = 0  # how many bindings were evaluated in all
    _ready: bool = True

    @property
    def skipped(self) -> list[Skipped]:
        if not self._ready:
            self._skipped = [s for batch in self._skipped for s in batch()]  # type: ignore[operator]
            self._ready = True
        return self._skipped  # type: ignore[return-value]

    @property
    def fired(self) -> list[Opportunity]:
        return [o for o in self.opportunities if o.fired]

    def to_dict(self, include_unfired: bool = True) -> dict[str, object]:
        """Spec section 10; `include_unfired=False` keeps only fired bindings (the default view)."""
        return {
            "at": self.at,
            "ruleset": self.ruleset,
            "opportunities": [
                o.to_dict() for o in self.opportunities if include_unfired or o.fired
            ],
            "skipped": [s.to_dict() for s in self.skipped],
        }


def explanation_dict(e: Explanation, figures: SubjectFigures | None) -> dict[str, object]:
    out: dict[str, object] = {
        "fired": e.fired,
        "no_data": e.no_data,
        "steps": [{"text": s.text, "value": s.value} for s in e.steps],
    }
    if figures is not None:
        out["figures"] = figure_notes(figures)
    return out


def figure_notes(f: SubjectFigures) -> list[str]:
    """How each figure was reached, in words and numbers, for --explain."""

    def rate(x: float) -> str:
        return format_value("Rate", x)

    d = f.details()
    fees = " + ".join(f"{t.exchange} {t.market} {rate(t.fee)} ({t.source})" for t in d.taker_fees)
    be = format_value("Duration", f.breakeven_s)
    return [
        f"legs: {', '.join(leg.describe() for leg in f.legs)}",
        f"edge {rate(f.edge)} per 8h (apr {rate(f.apr)})",
        f"fees 2 x ({fees}) = {rate(f.fees)}",
        f"breakeven {be}; net(8h) {rate(f.net(EIGHT_HOURS_S))}",
        f"price deviation {rate(f.price_deviation)} ({d.price_basis}) -> price_score "
        f"{f.price_score:.3f}",
        f"oldest observation {f.oldest_age_s:g}s old (uses {', '.join(d.uses)}) -> fresh_score "
        f"{f.fresh_score:.3f}",
        f"confidence {f.confidence:.3f}, risk {RISK_LEVELS[f.risk]}",
    ]


_LEG_CACHE: dict[tuple[str, tuple[str, ...], bool], tuple[Leg, ...]] = {}


def _legs(s: Subject, first_short: bool) -> tuple[Leg, ...]:
    """The legs of a subject given which way round they go (shared tuples)."""
    key = (s.kind, s.exchanges, first_short)
    legs = _LEG_CACHE.get(key)
    if legs is None:
        if s.kind == "spread":
            a, b = s.exchanges
            legs = spread_legs(a, b, 1.0, 0.0)[0] if first_short else spread_legs(a, b, 0.0, 1.0)[0]
        elif s.kind == "borrow":
            legs = borrow_legs(s.exchanges[0])
        else:
            legs = carry_legs(s.exchanges[0], 1.0 if first_short else -1.0)
        _LEG_CACHE[key] = legs
    return legs


_T = TypeVar("_T")


def _pick(seq: list[_T], positions: list[int]) -> list[_T]:
    """`[seq[i] for i in positions]`, with the loop in C."""
    if len(positions) == 1:
        return [seq[positions[0]]]
    return list(itemgetter(*positions)(seq)) if positions else []


def _gather(codes: np.ndarray | int, idx: np.ndarray) -> np.ndarray:
    """The codes at `idx` (a batch's array, or one code for all)."""
    if isinstance(codes, np.ndarray):
        out: np.ndarray = codes[idx]
        return out
    return np.full(len(idx), codes, dtype=np.intp)


def _percent(x: float, places: int) -> str:
    text = f"{x * 100:.{places}f}".rstrip("0").rstrip(".")
    return f"{text if text not in ('', '-0') else '0'}%"


def _alerts(rule: CompiledRule, binding: Binding, f: SubjectFigures | None) -> list[str]:
    templates = [a for a in rule.actions if isinstance(a, AlertAction)]
    if not templates:
        return []
    figures: dict[str, str] = {}
    if f is not None:
        # Rounded as a person reads a notification: 0.0563%, 61.7%, 0.86.
        figures = {
            "edge": _percent(f.edge, 4),
            "confidence": f"{f.confidence:.2f}",
            "apr": _percent(f.apr, 1),
        }
    return [a.render(binding, figures) for a in templates]


def _sort_key(o: Opportunity) -> tuple[float, int]:
    """Expected net over 8h in money, best first; ties in ruleset order."""
    f = o.figures
    if f is None:
        return (math.inf, o.order)
    net = f.net(EIGHT_HOURS_S)
    if o.amount is not None:
        net = o.amount * net  # == expected_net_8h
    return (-net, o.order)


def decide(opportunities: list[Opportunity], ruleset: Ruleset, book: Book | None = None) -> None:
    """Set `decision`, `reason` and `amount` of each fired opportunity with a hedge.

    Entries are decided in the order given (evaluate passes them sorted by
    expected net over 8h, best first, ties in ruleset order), each against
    the room left by the book and by the entries decided before it.
    """
    budget = RiskBudget(ruleset.risk, book)
    for o in opportunities:
        if not o.fired or o.requested is None or o.subject is None or o.figures is None:
            o.amount, o.decision, o.reason = o.requested, None, None
            continue
        o.decision, o.amount, o.reason = budget.verdict(
            o.subject, o.requested, o.figures.confidence, o.rule
        )


def evaluate(
    ruleset: Ruleset,
    view: SnapshotView,
    book: Book | None = None,
    config: EngineConfig | None = None,
    *,
    include_unfired: bool = False,
    explain: bool = False,
    env: SnapshotEnv | None = None,
) -> Evaluation:
    """Evaluate every rule and binding over `view` and decide the entries.

    A binding is skipped, with the reason, when its `when` clause lacks data,
    or when it fired but its subject's legs or hedge amount lack data (it
    could not be opened). `include_unfired` (dry-run --all) also lists the
    bindings whose `when` was false, with figures None where their subject's
    legs lack data. `explain` attaches each listed binding's sub-expression
    values: the same evaluation, run with a trace.

    Each rule is evaluated over all its bindings at once (`_evaluator`).
    `env`, the cycle's `SnapshotEnv.for_ruleset(view, ruleset, config)`, lets
    the evaluation read the market arrays the exit checks made (or make them
    for them); any other env, or another view or config, is not used.
    """
    p = plan(ruleset)
    market = None
    if env is not None and env.view is view and (config is None or config == env.config):
        market = env.shared_arrays(p.coins)
    if market is None or env is None:
        env = SnapshotEnv(view, config or EngineConfig())
        market = MarketArrays(view, p.coins, env.config)
    out = _Collector(env, market, p.position_codes)
    # Without --all or --explain every listed entry fired: they are sorted and
    # decided on the arrays, and each Opportunity is built once, decided
    # (`_Collector.finish`). The general path builds them first, then sorts
    # and decides the objects; tests/test_engine_fast.py checks both agree.
    fast = not (include_unfired or explain)
    for rp in p.rules:
        rule = rp.rule
        result = rp.run(market, trace=explain, all_figures=not fast)
        bindings = rule.bindings
        base = out.order
        traced = out.traced(rp, result) if explain else None
        out.skipped_from_arrays(rp, result, base, traced)
        if fast:
            out.fired_chunk(rule, result, base)
        else:
            out.fired_from_arrays(rule, bindings, result, base, traced)
        if include_unfired:
            out.unfired_from_arrays(rule, bindings, result, base, traced)
        out.order = base + len(bindings)
        out.total += len(bindings)
    if not (fast and out.finish(ruleset, book)):
        out.sort()
        decide(out.opportunities, ruleset, book)
    if out.batches:
        return Evaluation(
            view.at, ruleset.sha256, out.opportunities, out.batches, out.total, _ready=False
        )
    return Evaluation(view.at, ruleset.sha256, out.opportunities, [], out.total)


class _SubjectsOf(Sequence[Subject]):
    """The subjects of some bindings, read one by one when asked for: the
    decisions name a subject only in a few reasons (already open), and
    reading each of thousands of bindings only to hand its subject on cost
    a tenth of an evaluation (the bindings are cold in the CPU's caches).
    Every binding here has a subject (only those are decided)."""

    __slots__ = ("bindings",)

    def __init__(self, bindings: list[Binding]) -> None:
        self.bindings = bindings

    def __len__(self) -> int:
        return len(self.bindings)

    @overload
    def __getitem__(self, i: int) -> Subject: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Subject]: ...
    def __getitem__(self, i: int | slice) -> Subject | Sequence[Subject]:
        if isinstance(i, slice):
            return _SubjectsOf(self.bindings[i])
        s = self.bindings[i].subject
        assert s is not None
        return s

    def __iter__(self) -> Iterator[Subject]:
        return map(_subject_of, self.bindings)

    def take(self, positions: list[int]) -> Iterator[Subject]:
        """The subjects at `positions`, read with the loop in C."""
        if len(positions) == 1:
            return map(_subject_of, [self.bindings[positions[0]]])
        return map(_subject_of, itemgetter(*positions)(self.bindings))


_subject_of = attrgetter("subject")


class _FigureMaker:
    """Makes the figures objects of one rule's bindings from its arrays, on
    demand, shared with every rule over the same subjects (by position)."""

    __slots__ = ("bindings", "f", "objects", "env")

    def __init__(
        self,
        bindings: list[Binding],
        f: Figures,
        objects: list[SubjectFigures | None],
        env: SnapshotEnv,
    ) -> None:
        self.bindings, self.f, self.objects, self.env = bindings, f, objects, env

    def at(self, i: int) -> SubjectFigures | None:
        got = self.objects[i]
        if got is None:
            f = self.f
            if f.missing is not None and f.missing[i]:
                return None  # no legs: no figures
            s = self.bindings[i].subject
            assert s is not None  # a rule with figures has a subject
            got = self.objects[i] = SubjectFigures(
                s,
                _legs(s, bool(f.first_short[i])),
                float(f.edge[i]),
                float(f.fees[i]),
                float(f.deviation[i]),
                float(f.price_score[i]),
                float(f.age[i]),
                float(f.fresh[i]),
                float(f.confidence[i]),
                self.env,
            )
        return got


#: at most this many subjects' position codes are kept with a plan (`_Collector._codes`)
_KEPT_CODES = 100_000


class _Collector:
    """Builds opportunities and skipped entries off the evaluator's arrays, in ruleset order."""

    def __init__(
        self,
        env: SnapshotEnv,
        market: MarketArrays,
        codes: dict[int, tuple[Subject, Hashable]] | None = None,
    ) -> None:
        self.env = env
        self.market = market
        # `_position_code` by id of the subject (kept with it, so that the id
        # stays its own), for this coin coding: the book's subjects are asked for
        # every cycle (the risk budget's held positions)
        self._codes: dict[int, tuple[Subject, Hashable]] = {} if codes is None else codes
        self.opportunities: list[Opportunity] = []
        self.batches: list[Callable[[], list[Skipped]]] = []
        self.order = 0
        self.total = 0
        # figures per (subject arrays, kind), by binding position
        self._made: dict[
            tuple[Hashable, str | None], tuple[list[SubjectFigures | None], np.ndarray]
        ] = {}
        # _sort_key of each opportunity, per rule, while they all come from
        # fired_from_arrays (None once an unfired one is listed): sorting by
        # arrays spares a Python key call per opportunity
        self._keys: list[tuple[np.ndarray, np.ndarray]] | None = []
        # the fast path's fired bindings per rule: (rule, result, positions, base)
        self._chunks: list[tuple[CompiledRule, RuleResult, np.ndarray, int]] = []
        # position codes: spreads first (coin, lower, higher exchange), then carries
        self._carry_base = market.n_coins * N_EX * N_EX

    def sort(self) -> None:
        """Opportunities in `_sort_key` order: best expected net first, ties in ruleset order."""
        keys = self._keys
        if keys:
            net = np.concatenate([k for k, _ in keys])
            order = np.concatenate([o for _, o in keys])
            # NaN compares unlike in Python's tuple sort: leave those to Python
            if len(net) == len(self.opportunities) and not some(np.isnan(net)):
                # the same total order as the key tuples (order is unique);
                # lexsort sorts by the last key first
                perm = np.lexsort((order, net)).tolist()
                ops = self.opportunities
                self.opportunities = [ops[i] for i in perm]
                return
        self.opportunities.sort(key=_sort_key)

    def reason(self, rp: RulePlan, code: int) -> str:
        """A reason code in words: a missing market datum, or a division by zero."""
        if code > 0:
            return self.env.cell_reason(self.market, code)
        division = list(rp.batch.divisions)[DIV_ZERO - code]
        return f"division by zero in {rp.rule.text_of(division)}"

    def traced(self, rp: RulePlan, result: RuleResult) -> Traced:
        assert result.trace is not None
        return explanation(
            rp.when,
            result.trace,
            rp.batch.n,
            rp.rule.text_of,
            lambda code: self.reason(rp, code),
            self.market.coin_names,
        )

    def _figures_at(
        self, rule: CompiledRule, bindings: list[Binding], f: Figures, key: Hashable, idx: np.ndarray
    ) -> list[SubjectFigures | None]:
        """The figures of the bindings at `idx` (None where their legs lack data).

        Rules over the same subjects share their figures objects, found by
        binding position (funding and basis subjects share arrays, but each
        figures object names its subject)."""
        made = self._made.get((key, rule.subject_kind))
        if made is None:
            made = self._made[(key, rule.subject_kind)] = (
                [None] * len(f.edge),
                np.zeros(len(f.edge), dtype=bool),
            )
        objects, have = made
        todo = idx[~have[idx]]
        if f.missing is not None:
            todo = todo[~f.missing[todo]]  # no legs: no figures
        if len(todo):
            positions = todo.tolist()
            subjects = [bindings[i].subject for i in positions]
            # built with the loop in C: SubjectFigures(subject, legs, edge,
            # fees, deviation, price score, age, fresh score, confidence, env)
            new = map(
                SubjectFigures,
                subjects,
                map(_legs, subjects, f.first_short[todo].tolist()),
                f.edge[todo].tolist(),
                f.fees[todo].tolist(),
                f.deviation[todo].tolist(),
                f.price_score[todo].tolist(),
                f.age[todo].tolist(),
                f.fresh[todo].tolist(),
                f.confidence[todo].tolist(),
                repeat(self.env),
            )
            for i, made_one in zip(positions, new, strict=True):
                objects[i] = made_one
            have[todo] = True
        return list(map(objects.__getitem__, idx.tolist()))

    def fired_chunk(self, rule: CompiledRule, result: RuleResult, base: int) -> None:
        """Keep a rule's fired bindings, as arrays, for `finish`."""
        idx = where_true(result.fired)
        if len(idx):
            self._chunks.append((rule, result, idx, base))

    def finish(self, ruleset: Ruleset, book: Book | None) -> bool:
        """The fired entries of `fired_chunk`, sorted and decided on arrays, then
        built as Opportunities: the same as `fired_from_arrays` for each chunk,
        then `sort` and `decide`. False (and the opportunities built, unsorted
        and undecided) when a sort key is NaN: that order is Python's."""
        chunks, self._chunks = self._chunks, []
        nets: list[np.ndarray] = []
        orders: list[np.ndarray] = []
        for _rule, result, idx, base in chunks:
            nets.append(self._net_key(result, idx))
            orders.append(idx + (base + 1))
        if not chunks:
            return True
        net = np.concatenate(nets)
        if some(np.isnan(net)):
            for rule, result, idx, base in chunks:
                wanted: list[float | None] = [None] * len(idx)
                if result.amounts is not None:
                    wanted = result.amounts[idx].tolist()
                self._append(
                    rule, rule.bindings, result.figures, result.subject, idx, base, True, wanted,
                    None,
                )
            self._keys = None
            return False
        order = np.concatenate(orders)
        # the same total order as _sort_key's tuples (order is unique); lexsort
        # sorts by the last key first
        perm = np.lexsort((order, net))
        names: list[str] = []
        rules: list[CompiledRule] = []
        chosen: list[Binding] = []
        makers: list[_FigureMaker | None] = []
        positions: list[int] = []
        requested: list[float | None] = []
        decided = np.zeros(len(net), dtype=bool)
        keys = np.full(len(net), -1, dtype=np.int64)
        confidence = np.zeros(len(net))
        asked = np.full(len(net), np.nan)  # the hedge amounts, as floats
        at = 0
        for rule, result, idx, _base in chunks:
            n = len(idx)
            bindings = rule.bindings
            names.extend(repeat(rule.name, n))
            rules.extend(repeat(rule, n))
            chosen.extend(map(bindings.__getitem__, idx.tolist()))
            f, subject = result.figures, result.subject
            if f is not None and subject is not None:
                makers.extend(repeat(self._maker(rule, bindings, f, subject.key), n))
                keys[at : at + n] = self._position_codes(subject, idx)
                confidence[at : at + n] = f.confidence[idx]
            else:
                makers.extend(repeat(None, n))
            positions.extend(idx.tolist())
            if result.amounts is not None:
                requested.extend(result.amounts[idx].tolist())
                asked[at : at + n] = result.amounts[idx]
                decided[at : at + n] = subject is not None
            else:
                requested.extend(repeat(None, n))
            at += n
        ranked = perm.tolist()
        chosen = _pick(chosen, ranked)
        # read only where a decision's reason names them (see verdict_columns)
        subjects = _SubjectsOf(chosen)
        requested = _pick(requested, ranked)
        amounts: list[float | None] = list(requested)
        kinds: list[DecisionKind | None] = [None] * len(ranked)
        reasons: list[str | None] = [None] * len(ranked)
        decided = decided[perm]
        if some(decided):
            budget = RiskBudget(ruleset.risk, book, self._position_code)
            sorted_names = _pick(names, ranked)
            if every(decided):  # the common case: every rule has a subject and a hedge
                got = budget.verdict_columns(
                    keys[perm], subjects, asked[perm], confidence[perm], sorted_names
                )
                kinds, amounts, reasons = got  # type: ignore[assignment]
            else:
                sel = where_true(decided).tolist()
                got = budget.verdict_columns(
                    keys[perm][sel],
                    _SubjectsOf(_pick(chosen, sel)),
                    asked[perm][sel],
                    confidence[perm][sel],
                    _pick(sorted_names, sel),
                )
                for j, kind, amount, reason in zip(sel, *got, strict=True):
                    kinds[j], amounts[j], reasons[j] = kind, amount, reason
        n = len(ranked)
        self.opportunities = list(map(
            Opportunity,
            _pick(names, ranked),
            chosen,
            repeat(None, n),
            repeat(True, n),
            requested,
            amounts,
            kinds,
            reasons,
            repeat(None, n),
            order[perm].tolist(),
            _pick(rules, ranked),
            _pick(makers, ranked),
            _pick(positions, ranked),
        ))
        return True

    def _maker(
        self, rule: CompiledRule, bindings: list[Binding], f: Figures, key: Hashable
    ) -> _FigureMaker:
        made = self._made.get((key, rule.subject_kind))
        if made is None:
            made = self._made[(key, rule.subject_kind)] = (
                [None] * len(f.edge),
                np.zeros(len(f.edge), dtype=bool),
            )
        return _FigureMaker(bindings, f, made[0], self.env)

    def _net_key(self, result: RuleResult, idx: np.ndarray) -> np.ndarray:
        """_sort_key's first element over the arrays, same operations:
        -(amount * net(8h)), -net(8h) without an amount, inf without figures."""
        f = result.figures
        if f is None:
            return np.full(len(idx), np.inf)
        net: np.ndarray = net_rate(f.edge[idx], f.fees[idx], EIGHT_HOURS_S)
        if result.amounts is not None:
            net = result.amounts[idx] * net
        return -net

    def _position_codes(self, s: Subjects, idx: np.ndarray) -> np.ndarray:
        """`_position_code` of the subjects at `idx`, over arrays."""
        c, a = _gather(s.coin, idx), _gather(s.a, idx)
        if s.kind == "spread":
            assert s.b is not None
            b = _gather(s.b, idx)
            codes: np.ndarray = (c * N_EX + np.minimum(a, b)) * N_EX + np.maximum(a, b)
            return codes
        codes = self._carry_base + c * N_EX + a
        return codes

    def _position_code(self, s: Subject) -> Hashable:
        """A subject's position (`position_key`) as one integer: the same
        markets give the same code. A coin outside the ruleset's has no code
        (no rule can trade it): its position_key stands for it."""
        got = self._codes.get(id(s))
        if got is not None and got[0] is s:
            return got[1]
        code = self._code_of(s)
        if len(self._codes) > _KEPT_CODES:
            self._codes.clear()
        self._codes[id(s)] = (s, code)
        return code

    def _code_of(self, s: Subject) -> Hashable:
        c = self.market.coins.get(s.coin)
        if c is None:
            return position_key(s)
        a = EX_INDEX[s.exchanges[0]]
        if s.kind == "spread":
            b = EX_INDEX[s.exchanges[1]]
            return (c * N_EX + min(a, b)) * N_EX + max(a, b)
        return self._carry_base + c * N_EX + a

    def fired_from_arrays(
        self,
        rule: CompiledRule,
        bindings: list[Binding],
        result: RuleResult,
        base: int,
        traced: Traced | None,
    ) -> None:
        """Opportunities for the fired bindings, their figures read off the arrays."""
        idx = where_true(result.fired)
        if not len(idx):
            return
        amounts = result.amounts[idx] if result.amounts is not None else None
        f = result.figures
        if self._keys is not None:
            self._keys.append((self._net_key(result, idx), idx + (base + 1)))
        n = len(idx)
        requested = amounts.tolist() if amounts is not None else [None] * n
        self._append(rule, bindings, f, result.subject, idx, base, True, requested, traced)

    def _append(
        self,
        rule: CompiledRule,
        bindings: list[Binding],
        f: Figures | None,
        subject: Subjects | None,
        idx: np.ndarray,
        base: int,
        fired: bool,
        requested: list[float | None],
        traced: Traced | None,
    ) -> None:
        """Opportunities for the bindings at `idx`, built with the loop in C:
        the same as Opportunity(rule.name, bindings[i], its figures, fired, requested, requested, None, None, explanation,
        base + i + 1, rule) for each i."""
        n = len(idx)
        positions = idx.tolist()
        chosen = list(map(bindings.__getitem__, positions))
        figures: Iterable[SubjectFigures | None] = repeat(None, n)
        if f is not None:
            assert subject is not None  # figures come from the batch's subject
            figures = self._figures_at(rule, bindings, f, subject.key, idx)
        self.opportunities.extend(map(
            Opportunity,
            repeat(rule.name, n),
            chosen,
            figures,
            repeat(fired, n),
            requested,
            requested,
            repeat(None, n),
            repeat(None, n),
            [traced.explain(i) for i in positions] if traced is not None else repeat(None, n),
            (idx + (base + 1)).tolist(),
            repeat(rule, n),
        ))

    def unfired_from_arrays(
        self,
        rule: CompiledRule,
        bindings: list[Binding],
        result: RuleResult,
        base: int,
        traced: Traced | None,
    ) -> None:
        """Opportunities for the bindings whose `when` was false (dry-run --all):
        figures None where their legs lack data, amount None where it does."""
        idx = where_true(~(result.skipped | result.fired))
        if not len(idx):
            return
        self._keys = None  # sorted by _sort_key (see sort)
        requested: list[float | None] = [None] * len(idx)
        if result.amounts is not None:
            requested = result.amounts[idx].tolist()
            if result.amount_missing is not None:
                gaps = result.amount_missing[idx].tolist()
                requested = [None if gap else a for a, gap in zip(requested, gaps, strict=True)]
        self._append(
            rule, bindings, result.figures, result.subject, idx, base, False, requested, traced
        )

    def skipped_from_arrays(
        self, rp: RulePlan, result: RuleResult, base: int, traced: Traced | None
    ) -> None:
        idx = where_true(result.skipped)
        if not len(idx):
            return
        codes = result.reason[idx]
        rule, bindings = rp.rule, rp.rule.bindings

        def batch() -> list[Skipped]:
            words = {c: self.reason(rp, c) for c in np.unique(codes).tolist()}
            n = len(idx)
            positions = idx.tolist()
            whys = [traced.explain(i) for i in positions] if traced is not None else repeat(None, n)
            # map() over whole columns builds the thousands of entries with the
            # loop in C; the same as [Skipped(name, bindings[i], words[code],
            # why, base + i + 1) for i, code, why in zip(idx, codes, whys)]
            return list(map(
                Skipped,
                repeat(rule.name, n),
                map(bindings.__getitem__, positions),
                map(words.__getitem__, codes.tolist()),
                whys,
                (idx + (base + 1)).tolist(),
            ))

        self.batches.append(batch)
