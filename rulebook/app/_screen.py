"""What `rulebook screen` shows: the market per coin and venue, and the rules now.

    screen = build_screen(view, coins=["BTC", "ETH"], exchanges=EXCHANGES,
                          ruleset=ruleset, source="live")
    screen.venues     # one row per (coin, exchange) with data: funding, interval...
    screen.spreads    # per coin, the best cross-exchange pair
    screen.rules      # per (rule, coin): would it fire now, and if not, why not
    screen.to_dict()  # the `screen --json` object (docs/json.md)

Every figure comes from the snapshot view and the engine's metrics, as in a
dry-run: funding per 8h is the view's normalisation, APR the engine's `apr`,
and "would fire" is the engine's evaluation of the ruleset over the view.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from rulebook.engine import EngineConfig, Opportunity, apr, evaluate
from rulebook.lang import Ruleset
from rulebook.market import SnapshotView

__all__ = ["SORT_KEYS", "RuleNow", "Screen", "SpreadRow", "VenueRow", "build_screen"]

# The `--sort` keys for the venue rows, and how each orders them (largest first
# for magnitudes, soonest first for the next settlement).
SORT_KEYS = ("funding", "apr", "basis", "volume", "next", "coin", "exchange")


@dataclass(slots=True)
class VenueRow:
    coin: str
    exchange: str
    funding_rate: float | None  # per interval, as the exchange states it
    interval_h: float | None
    funding_8h: float | None
    apr: float | None
    next_funding_ts: int | None
    next_funding_s: float | None  # seconds from the snapshot's now; negative when past
    mark: float | None
    basis: float | None  # (mark - spot mid) / spot mid
    volume_24h: float | None  # quote currency


@dataclass(slots=True)
class SpreadRow:
    coin: str
    short: str  # the perp paid most: short it
    long: str  # the perp paid least: long it
    spread_8h: float
    apr: float
    venues: int  # how many exchanges have a funding rate for the coin


@dataclass(slots=True)
class RuleNow:
    rule: str
    coin: str
    fires: bool
    decision: str | None  # open | cut | blocked | already_open, for the best firing binding
    bindings: dict[str, str] | None  # the binding shown
    why: str  # what fires, or the first false condition, or why there is no data
    firing: int = 0  # bindings of this rule and coin that fire
    evaluated: int = 0  # bindings that could be evaluated
    skipped: int = 0  # bindings without data


@dataclass(slots=True)
class Screen:
    at: int
    source: str
    exchanges: list[str]
    coins: list[str]
    ruleset: str | None
    venues: list[VenueRow] = field(default_factory=list)
    spreads: list[SpreadRow] = field(default_factory=list)
    rules: list[RuleNow] = field(default_factory=list)
    #: exchange -> why it did not answer (live), or that the recording lacks it
    missing: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "at": self.at,
            "source": self.source,
            "ruleset": self.ruleset,
            "exchanges": self.exchanges,
            "coins": self.coins,
            "missing": self.missing,
            "venues": [asdict(v) for v in self.venues],
            "spreads": [asdict(s) for s in self.spreads],
            "rules": [asdict(r) for r in self.rules],
        }


def _venue(view: SnapshotView, coin: str, exchange: str) -> VenueRow | None:
    perp = view.perp(exchange, coin)
    if perp is None:
        return None
    f8 = view.funding_8h(exchange, coin)
    return VenueRow(
        coin=coin,
        exchange=exchange,
        funding_rate=perp.funding_rate,
        interval_h=perp.funding_interval_h,
        funding_8h=f8,
        apr=None if f8 is None else apr(f8),
        next_funding_ts=perp.next_funding_ts,
        next_funding_s=view.next_funding_s(exchange, coin),
        mark=perp.mark,
        basis=view.basis(exchange, coin),
        volume_24h=perp.volume_24h,
    )


def _best_spread(coin: str, rows: Iterable[VenueRow]) -> SpreadRow | None:
    rated = [r for r in rows if r.funding_8h is not None]
    if len(rated) < 2:
        return None
    hi = max(rated, key=lambda r: r.funding_8h or 0.0)
    lo = min(rated, key=lambda r: r.funding_8h or 0.0)
    spread = (hi.funding_8h or 0.0) - (lo.funding_8h or 0.0)
    return SpreadRow(coin, hi.exchange, lo.exchange, spread, apr(spread), len(rated))


_COMPARISONS = (" >= ", " <= ", " == ", " != ", " > ", " < ")


def why_not(o: Opportunity) -> str:
    """The first false condition of a binding's `when`, with its sides' values:
    `spread(coin, hi, lo) = 0.048371%, not > cross_min_spread = 0.05%`."""
    e = o.explanation
    if e is None:
        return "the when clause is false"
    values = {s.text: s.value for s in e.steps}
    for s in e.steps:
        if s.value != "false" or " and " in s.text or " or " in s.text:
            continue
        for op in _COMPARISONS:
            left, sep, right = s.text.partition(op)
            if sep and left in values:
                shown = f"{right} = {values[right]}" if right in values else right
                return f"{left} = {values[left]}, not {op.strip()} {shown}"
        return f"{s.text} is false"
    return "the when clause is false"


def _number(text: str) -> float:
    try:
        return float(text.rstrip("%hdms"))
    except ValueError:
        return float("-inf")


def _closeness(o: Opportunity) -> tuple[int, float, float]:
    """How near a binding that did not fire came: its true conditions, then its
    edge, then its first figure (of `spread(c, a, b)` and `spread(c, b, a)`, the
    positive one)."""
    e = o.explanation
    edge = o.figures.edge if o.figures is not None else float("-inf")
    if e is None or not e.steps:
        return (0, edge, float("-inf"))
    true = sum(
        s.value == "true" and " and " not in s.text and " or " not in s.text for s in e.steps
    )
    return (true, edge, _number(e.steps[0].value))


def _legs(o: Opportunity) -> str:
    sign = {"short": "-", "long": "+"}
    if len({leg.exchange for leg in o.legs}) == 1 and o.legs:
        return f"{o.legs[0].exchange} " + " ".join(sign[x.side] + x.market for x in o.legs)
    return " ".join(sign[x.side] + x.exchange for x in o.legs)


def _coin_of(bindings: dict[str, str], coins: set[str]) -> str | None:
    return next((v for v in bindings.values() if v in coins), None)


def _rules_now(
    ruleset: Ruleset, view: SnapshotView, coins: Sequence[str], config: EngineConfig
) -> list[RuleNow]:
    ev = evaluate(ruleset, view, config=config, include_unfired=True, explain=True)
    wanted = set(coins)
    by_key: dict[tuple[str, str], list[Opportunity]] = {}
    for o in ev.opportunities:
        if o.coin in wanted:
            by_key.setdefault((o.rule, o.coin), []).append(o)
    skipped: dict[tuple[str, str], Counter[str]] = {}
    for s in ev.skipped:
        coin = _coin_of(s.bindings, wanted)
        if coin is not None:
            skipped.setdefault((s.rule, coin), Counter())[s.reason] += 1
    out: list[RuleNow] = []
    for rule in ruleset.rules:
        for coin in coins:
            opps = by_key.get((rule.name, coin), [])
            reasons = skipped.get((rule.name, coin), Counter())
            if not opps and not reasons:
                continue  # the rule does not trade this coin
            firing = [o for o in opps if o.fired]
            n_skipped = sum(reasons.values())
            if firing:
                # the engine sorts fired entries best expected net first; an entry
                # it would take beats one it finds already open
                best = next((o for o in firing if o.decision in ("open", "cut")), firing[0])
                what = _legs(best) or "fires"
                if best.figures is not None:
                    what += f" edge {best.figures.edge * 100:.4f}%"
                if best.reason and best.decision in ("cut", "blocked"):
                    what += f" ({best.reason})"
                out.append(RuleNow(rule.name, coin, True, best.decision, best.bindings, what,
                                   len(firing), len(opps), n_skipped))
            elif opps:
                best = max(opps, key=_closeness)
                out.append(RuleNow(rule.name, coin, False, None, best.bindings, why_not(best),
                                   0, len(opps), n_skipped))
            else:
                reason, n = reasons.most_common(1)[0]
                extra = f" (and {len(reasons) - 1} other reasons)" if len(reasons) > 1 else ""
                out.append(RuleNow(rule.name, coin, False, None, None,
                                   f"{reason}{extra}", 0, 0, n_skipped))
    return out


def build_screen(
    view: SnapshotView,
    coins: Sequence[str],
    exchanges: Sequence[str],
    *,
    ruleset: Ruleset | None = None,
    config: EngineConfig | None = None,
    source: str = "live",
    sort: str = "funding",
    reverse: bool = False,
) -> Screen:
    """The screen of `view` for `coins` across `exchanges`, venue rows sorted by `sort`
    (the other way round with `reverse`)."""
    if sort not in SORT_KEYS:
        raise ValueError(f"unknown sort key {sort!r}; expected one of {', '.join(SORT_KEYS)}")
    screen = Screen(view.at, source, list(exchanges), list(coins),
                    ruleset.sha256 if ruleset is not None else None)
    present = view.exchanges()
    for ex in exchanges:
        if ex in view.failures:
            screen.missing[ex] = f"unreachable: {view.failures[ex]}"
        elif ex not in present:
            screen.missing[ex] = "not in this recording" if view.recorded else "no data"
    for coin in coins:
        rows = [r for ex in exchanges if (r := _venue(view, coin, ex)) is not None]
        screen.venues.extend(rows)
        best = _best_spread(coin, rows)
        if best is not None:
            screen.spreads.append(best)
    screen.venues = sort_venues(screen.venues, sort, reverse)
    screen.spreads.sort(key=lambda s: -s.spread_8h)
    if ruleset is not None:
        screen.rules = _rules_now(ruleset, view, coins, config or EngineConfig())
    return screen


def sort_venues(rows: list[VenueRow], key: str, reverse: bool = False) -> list[VenueRow]:
    """Largest magnitude first for figures, soonest first for `next`, alphabetical for
    names; `reverse` the other way round. Rows without the figure stay last either way."""
    inf = float("inf")
    figure = {
        "funding": lambda r: r.funding_8h,
        "apr": lambda r: r.apr,
        "basis": lambda r: r.basis,
        "volume": lambda r: r.volume_24h,
        "next": lambda r: r.next_funding_s,
    }.get(key)

    def magnitude(x: float | None) -> float:
        return -abs(x) if x is not None else inf

    keys = {
        "funding": lambda r: (magnitude(r.funding_8h), r.coin, r.exchange),
        "apr": lambda r: (magnitude(r.apr), r.coin, r.exchange),
        "basis": lambda r: (magnitude(r.basis), r.coin, r.exchange),
        "volume": lambda r: (magnitude(r.volume_24h), r.coin, r.exchange),
        "next": lambda r: (r.next_funding_s if r.next_funding_s is not None else inf,
                           r.coin, r.exchange),
        "coin": lambda r: (r.coin, r.exchange),
        "exchange": lambda r: (r.exchange, r.coin),
    }
    ordered = sorted(rows, key=keys[key])
    if not reverse:
        return ordered
    missing = [r for r in ordered if figure is not None and figure(r) is None]
    last = {id(r) for r in missing}
    return [r for r in reversed(ordered) if id(r) not in last] + missing
