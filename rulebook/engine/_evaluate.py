"""Rules over one snapshot: opportunities with their figures and decisions (spec 6, 7, 10)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from rulebook.lang import (
    AlertAction,
    Binding,
    CompiledRule,
    Explanation,
    HedgeAction,
    NoData,
    Ruleset,
    Subject,
    format_value,
)
from rulebook.market import SnapshotView

from ._decide import Book, DecisionKind, RiskBudget
from ._env import SnapshotEnv, SubjectFigures
from ._fees import EngineConfig
from ._metrics import EIGHT_HOURS_S, RISK_LEVELS, Leg
from ._vector import MarketArrays, vector_ruleset

__all__ = ["Evaluation", "Opportunity", "Skipped", "evaluate", "decide"]


@dataclass(slots=True)
class Opportunity:
    """One evaluated binding of one rule, with its subject's figures.

    `requested` is what the rule's hedge asks for; `amount` is what the
    decision allows (the cut size when cut). Figures are None only for a rule
    without a subject (an alert on prices, say).
    """

    rule: str
    bindings: dict[str, str]
    subject: Subject | None
    figures: SubjectFigures | None
    fired: bool
    requested: float | None  # None: the rule has no hedge action
    amount: float | None = None
    decision: DecisionKind | None = None
    reason: str | None = None
    alerts: list[str] = field(default_factory=list)
    explanation: Explanation | None = None
    order: int = 0  # rule and binding position in the ruleset, for stable sorting

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
            "bindings": dict(self.bindings),
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


@dataclass(frozen=True, slots=True)
class Skipped:
    """A binding that could not be evaluated, and why (spec 5)."""

    rule: str
    bindings: dict[str, str]
    reason: str
    explanation: Explanation | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "rule": self.rule,
            "bindings": dict(self.bindings),
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
    skipped: list[Skipped]
    bindings: int = 0  # how many bindings were evaluated in all

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
    rate = lambda x: format_value("Rate", x)  # noqa: E731
    fees = " + ".join(f"{t.exchange} {t.market} {rate(t.fee)} ({t.source})" for t in f.taker_fees)
    be = format_value("Duration", f.breakeven_s)
    return [
        f"legs: {', '.join(leg.describe() for leg in f.legs)}",
        f"edge {rate(f.edge)} per 8h (apr {rate(f.apr)})",
        f"fees 2 x ({fees}) = {rate(f.fees)}",
        f"breakeven {be}; net(8h) {rate(f.net(EIGHT_HOURS_S))}",
        f"price deviation {rate(f.price_deviation)} ({f.price_basis}) -> price_score "
        f"{f.price_score:.3f}",
        f"oldest observation {f.oldest_age_s:g}s old (uses {', '.join(f.uses)}) -> fresh_score "
        f"{f.fresh_score:.3f}",
        f"confidence {f.confidence:.3f}, risk {RISK_LEVELS[f.risk]}",
    ]


def _figures(env: SnapshotEnv, subject: Subject | None, required: bool) -> SubjectFigures | None:
    """The subject's figures. A binding that fired cannot be opened without them
    (NoData makes it skipped); one that did not fire is listed without them."""
    if subject is None:
        return None
    if required:
        return env.figures(subject)
    try:
        return env.figures(subject)
    except NoData:
        return None


def _hedge_amount(rule: CompiledRule, env: SnapshotEnv, binding: Binding) -> float | None:
    amounts = [a.amount(env, binding) for a in rule.actions if isinstance(a, HedgeAction)]
    return float(sum(amounts)) if amounts else None


def _alerts(rule: CompiledRule, binding: Binding, f: SubjectFigures | None) -> list[str]:
    templates = [a for a in rule.actions if isinstance(a, AlertAction)]
    if not templates:
        return []
    figures: dict[str, str] = {}
    if f is not None:
        figures = {
            "edge": format_value("Rate", f.edge),
            "confidence": f"{f.confidence:.2f}",
            "apr": format_value("Rate", f.apr),
        }
    return [a.render(binding, figures) for a in templates]


def _sort_key(o: Opportunity) -> tuple[float, int]:
    net = o.expected_net_8h
    if net is None and o.figures is not None:
        net = o.figures.net(EIGHT_HOURS_S)  # no hedge: order by the rate itself
    return (-(net if net is not None else -math.inf), o.order)


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
        d = budget.decide(o.subject, o.requested, o.figures.confidence, o.rule)
        o.decision, o.amount, o.reason = d.kind, d.amount, d.reason


def evaluate(
    ruleset: Ruleset,
    view: SnapshotView,
    book: Book | None = None,
    config: EngineConfig | None = None,
    *,
    include_unfired: bool = False,
    explain: bool = False,
    vectorized: bool = True,
) -> Evaluation:
    """Evaluate every rule and binding over `view` and decide the entries.

    A binding is skipped, with the reason, when its `when` clause lacks data,
    or when it fired but its subject's legs or hedge amount lack data (it
    could not be opened). `include_unfired` (dry-run --all) also lists the
    bindings whose `when` was false, with figures None where their subject's
    legs lack data. `explain` attaches each binding's sub-expression values.

    Conditions are evaluated over all of a rule's bindings at once with numpy
    (`_vector`); `vectorized=False`, or `explain`, calls the compiled closures
    binding by binding instead. Both give the same result (tested).
    """
    env = SnapshotEnv(view, config or EngineConfig())
    vec = None if (explain or not vectorized) else vector_ruleset(ruleset)
    out = _Collector(env, include_unfired, explain)
    if vec is None:
        for rule in ruleset.rules:
            for binding in rule.bindings:
                out.binding(rule, binding, None)
    else:
        market = MarketArrays(view, vec.coins, env.config)
        coin_names = list(vec.coins)
        for rule, vrule in zip(ruleset.rules, vec.rules, strict=True):
            result = vrule.run(market)
            bindings = rule.bindings
            base = out.order
            listed = ~result.skipped if include_unfired else result.fired
            for i in np.flatnonzero(result.skipped | listed):
                out.order = base + int(i) + 1
                b = bindings[i]
                if result.skipped[i]:
                    code = int(result.reason[i])
                    reason = out.cell_reason(market, coin_names, code) if code > 0 else None
                    out.skip(rule, b, reason)
                else:
                    out.binding(rule, b, bool(result.fired[i]))
            out.order = base + len(bindings)
            out.total += len(bindings)
    out.opportunities.sort(key=_sort_key)
    out.skipped.sort(key=lambda pair: pair[0])
    decide(out.opportunities, ruleset, book)
    return Evaluation(
        view.at, ruleset.sha256, out.opportunities, [s for _, s in out.skipped], out.total
    )


class _Collector:
    """Builds opportunities and skipped entries, binding by binding, in ruleset order."""

    def __init__(self, env: SnapshotEnv, include_unfired: bool, explain: bool) -> None:
        self.env = env
        self.include_unfired = include_unfired
        self.explain = explain
        self.opportunities: list[Opportunity] = []
        self.skipped: list[tuple[int, Skipped]] = []
        self.order = 0
        self.total = 0
        self._cells: dict[int, str] = {}

    def binding(self, rule: CompiledRule, binding: Binding, fired: bool | None) -> None:
        """One binding; `fired` None means evaluate its `when` clause here."""
        env = self.env
        if fired is None:
            self.order += 1
            self.total += 1
        try:
            if fired is None:
                fired = bool(rule.when(env, binding))
            figures = _figures(env, binding.subject, required=fired)
            requested = _hedge_amount(rule, env, binding) if fired else None
        except NoData as missing:
            self.skip(rule, binding, missing.reason)
            return
        if not fired and not self.include_unfired:
            return
        if not fired:
            try:
                requested = _hedge_amount(rule, env, binding)
            except NoData:
                requested = None
        self.opportunities.append(
            Opportunity(
                rule=rule.name,
                bindings=binding.as_dict(),
                subject=binding.subject,
                figures=figures,
                fired=fired,
                requested=requested,
                amount=requested,
                alerts=_alerts(rule, binding, figures) if fired else [],
                explanation=rule.explain(env, binding) if self.explain else None,
                order=self.order,
            )
        )

    def skip(self, rule: CompiledRule, binding: Binding, reason: str | None) -> None:
        if reason is None:
            reason = self._closure_reason(rule, binding)
        why = rule.explain(self.env, binding) if self.explain else None
        self.skipped.append((self.order, Skipped(rule.name, binding.as_dict(), reason, why)))

    def _closure_reason(self, rule: CompiledRule, binding: Binding) -> str:
        """The reason in the closures' own words (subject legs, division by zero)."""
        try:
            fired = bool(rule.when(self.env, binding))
            _figures(self.env, binding.subject, required=fired)
            if fired:
                _hedge_amount(rule, self.env, binding)
        except NoData as missing:
            return missing.reason
        return "no data"  # not reached: the vector evaluator and the closures agree

    def cell_reason(self, market: MarketArrays, coin_names: list[str], code: int) -> str:
        """The reason for one missing market datum, from the env's own wording."""
        got = self._cells.get(code)
        if got is None:
            kind, exchange, c = market.decode(code)
            try:
                getattr(self.env, kind)(coin_names[c], exchange)
                got = f"no {kind} for {coin_names[c]} on {exchange}"
            except NoData as missing:
                got = missing.reason
            self._cells[code] = got
        return got
