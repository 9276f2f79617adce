"""`SnapshotEnv` (one snapshot as the engine reads it) and a subject's figures.

`SubjectFigures` is one binding's figures as plain floats, read off the
evaluator's arrays; its derived figures (confidence, breakeven, risk, apr,
net) call the same `_metrics` functions the evaluator calls on arrays.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rulebook.lang import Ruleset, Subject
from rulebook.market import Observation, SnapshotView

from . import _metrics as M
from ._fees import EngineConfig, FeeSource, resolve_taker_fee
from ._vector import MarketArrays

__all__ = ["FigureDetails", "SnapshotEnv", "SubjectFigures", "PositionValues", "TakerFee"]


@dataclass(frozen=True, slots=True)
class TakerFee:
    exchange: str
    market: str
    fee: float
    source: FeeSource


@dataclass(frozen=True, slots=True)
class FigureDetails:
    """How a subject's figures were reached, for --explain (computed on demand)."""

    taker_fees: tuple[TakerFee, ...]
    #: the observations the subject uses, as "exchange market"
    uses: tuple[str, ...]
    #: what the price deviation compares
    price_basis: str


@dataclass(slots=True)
class SubjectFigures:
    """Everything spec section 6 says about one subject in one snapshot.

    Read-only by convention (not frozen: thousands are built per evaluation,
    and a frozen dataclass's constructor costs twice as much).
    """

    subject: Subject
    legs: tuple[M.Leg, ...]
    edge: float  # per 8h
    fees: float  # round trip, a rate of leg notional
    price_deviation: float
    price_score: float
    oldest_age_s: float
    fresh_score: float
    #: price_score * fresh_score (`_metrics.confidence`), read off the
    #: evaluator's arrays: every fired entry's decision reads it
    confidence: float
    # the env that computed these, to describe them on demand (not part of the value)
    env: SnapshotEnv | None = field(default=None, repr=False, compare=False)

    @property
    def breakeven_s(self) -> float:
        return float(M.breakeven_s(self.edge, self.fees))

    @property
    def risk(self) -> int:
        return int(M.risk_level(self.confidence, self.breakeven_s))

    @property
    def apr(self) -> float:
        return float(M.apr(self.edge))

    def net(self, duration_s: float) -> float:
        return float(M.net_rate(self.edge, self.fees, duration_s))

    def details(self) -> FigureDetails:
        assert self.env is not None, "figures built without an env cannot describe themselves"
        return self.env.details(self.subject)

    @property
    def taker_fees(self) -> tuple[TakerFee, ...]:
        return self.details().taker_fees

    @property
    def uses(self) -> tuple[str, ...]:
        return self.details().uses


@dataclass(frozen=True, slots=True)
class PositionValues:
    """An open position's values for `exit when` (spec 6): held (s), pnl and collected (money)."""

    held: float
    pnl: float
    collected: float


#: (coding, coins) pairs known to cover (every coin of the tuple has a code), by ids,
#: each kept so that its ids stay theirs: a runtime asks every cycle about the same
#: plan's coding and rules' coin tuples
_COVERED: dict[tuple[int, int], tuple[Mapping[str, int], tuple[str, ...]]] = {}


def _covers(coding: Mapping[str, int], coins: tuple[str, ...]) -> bool:
    key = (id(coding), id(coins))
    got = _COVERED.get(key)
    if got is not None and got[0] is coding and got[1] is coins:
        return True
    if not all(c in coding for c in coins):
        return False
    if len(_COVERED) > 1024:
        _COVERED.clear()
    _COVERED[key] = (coding, coins)
    return True


@dataclass(slots=True)
class SnapshotEnv:
    """One snapshot view as the engine reads it, with its configuration.

    Holds the view's market arrays (built on first use, for the coins asked
    for) for evaluating single bindings, such as an open position's `exit
    when`; words the reason a market datum is missing; and describes how a
    subject's figures were reached (for `--explain`). It evaluates nothing
    itself: the one evaluator (`_evaluator.py`) does.
    """

    view: SnapshotView
    config: EngineConfig = field(default_factory=EngineConfig)
    #: the coin codes to make the arrays with first (a ruleset's, `for_ruleset`):
    #: `evaluate(..., env=env)` then reads the very arrays the exit checks read
    coins: Mapping[str, int] | None = field(default=None, repr=False)
    _arrays: MarketArrays | None = field(default=None, repr=False)
    _details: dict[Subject, FigureDetails] = field(default_factory=dict, repr=False)
    _reasons: dict[int, str] = field(default_factory=dict, repr=False)
    #: coin tuples `arrays` was asked for and covers (a rule's, asked for per
    #: open position), by id, each kept so that its id is not reused
    _covered: dict[int, object] = field(default_factory=dict, repr=False)
    #: whether the arrays are coded exactly as `coins` (made by `arrays` from them)
    _planned: bool = field(default=False, repr=False)

    @classmethod
    def for_ruleset(
        cls, view: SnapshotView, ruleset: Ruleset, config: EngineConfig | None = None
    ) -> SnapshotEnv:
        """An env whose arrays are coded as `evaluate` codes this ruleset's: a
        runtime cycle's exit checks and its evaluation then share one set of
        market arrays (and the lookups and figures made on them)."""
        from ._evaluator import plan  # the plan is the evaluator's

        return cls(view, config or EngineConfig(), coins=plan(ruleset).coins)

    def shared_arrays(self, coins: Mapping[str, int]) -> MarketArrays | None:
        """The env's arrays if they are coded exactly as `coins` (made now if
        none yet and this env was made for those codes); else None."""
        mk = self._arrays
        if mk is None:
            if self.coins is not coins and self.coins != coins:
                return None
            mk = self._arrays = MarketArrays(self.view, dict(coins), self.config)
            self._reasons.clear()
            self._planned = True  # coded as `self.coins` (equal to `coins`)
            return mk
        return mk if mk.coins == coins else None

    def arrays(self, coins: tuple[str, ...] | list[str]) -> MarketArrays:
        """The view as market arrays covering at least these coins."""
        mk = self._arrays
        if mk is not None and self._covered.get(id(coins)) is coins:
            return mk  # these very coins (a rule's) were covered already: arrays only grow
        planned = self.coins
        plain = mk is None or self._planned
        if plain and planned is not None and type(coins) is tuple and _covers(planned, coins):
            # the runtime's case: the env's coding (its ruleset's plan) has every coin
            if mk is None:
                mk = self._arrays = MarketArrays(self.view, dict(planned), self.config)
                self._reasons.clear()
                self._planned = True
        elif mk is None or any(c not in mk.coins for c in coins):
            self._planned = False
            index = dict(mk.coins) if mk is not None else dict(planned or {})
            for c in coins:
                index.setdefault(c, len(index))
            mk = self._arrays = MarketArrays(self.view, index, self.config)
            self._reasons.clear()
        if type(coins) is tuple:  # (a list could grow after)
            self._covered[id(coins)] = coins  # kept, so that the id stays this object's
        return mk

    # -- why a datum is missing ------------------------------------------------------------
    def _missing(self, coin: str, exchange: str, market: str, what: str) -> str:
        reason = self.view.missing_reason(exchange, coin, market)
        return reason or f"no {what} for {coin} on {exchange}"

    def missing_reason(self, kind: str, coin: str, exchange: str) -> str:
        """Why the market function `kind(coin, exchange)` has no value: the
        reason an operator reads in `skipped`. The one place these reasons are
        worded (meaningful only when the value is missing)."""
        if kind == "funding":
            return self._missing(coin, exchange, "perp", "funding rate")
        if kind == "price":
            return self._missing(coin, exchange, "perp", "mark price")
        if kind == "basis":
            if self.view.mark(exchange, coin) is None:
                return self._missing(coin, exchange, "perp", "mark price")
            return self._missing(coin, exchange, "spot", "spot bid/ask")
        if kind == "spot_mid":
            return self._missing(coin, exchange, "spot", "spot bid/ask")
        if kind == "borrow":
            return self._missing(coin, exchange, "borrow", "borrow rate")
        if kind in ("volume", "next_funding"):
            if self.view.perp(exchange, coin) is None:
                return self._missing(coin, exchange, "perp", "perpetual")
            what = "24h volume" if kind == "volume" else "next funding time"
            return f"no {what} for {coin} on {exchange}"
        raise ValueError(f"unknown market function {kind!r}")

    def cell_reason(self, mk: MarketArrays, code: int) -> str:
        """The words for a positive reason code of `mk` (one missing market datum)."""
        cache = self._reasons if mk is self._arrays else None
        got = cache.get(code) if cache is not None else None
        if got is None:
            kind, exchange, c = mk.decode(code)
            got = self.missing_reason(kind, mk.coin_names[c], exchange)
            if cache is not None:
                cache[code] = got
        return got

    # -- how a subject's figures were reached (for --explain) ---------------------------------
    def _taker(self, obs: Observation) -> TakerFee:
        fee, source = resolve_taker_fee(
            obs.exchange, obs.market, obs.taker_fee, self.config.taker_fees
        )
        return TakerFee(obs.exchange, obs.market, fee, source)

    def _used(self, s: Subject) -> list[Observation]:
        """The observations a subject uses: its legs' markets, and borrow when it borrows."""
        coin = s.coin
        if s.kind == "spread":
            return [self.view.perp(x, coin) for x in s.exchanges]  # type: ignore[misc]
        (x,) = s.exchanges
        used = [self.view.perp(x, coin), self.view.spot(x, coin)]
        funding = self.view.funding_8h(x, coin)
        if s.kind == "borrow" or (funding is not None and M.carry_needs_borrow(funding)):
            used.append(self.view.borrow_obs(x, coin))
        return used  # type: ignore[return-value]

    def details(self, s: Subject) -> FigureDetails:
        """Fee sources, observations used and price comparison of a subject with figures."""
        got = self._details.get(s)
        if got is not None:
            return got
        used = self._used(s)
        coin = s.coin
        if s.kind == "spread":
            a, b = s.exchanges
            basis = f"mark {a} {used[0].mark:g} vs mark {b} {used[1].mark:g}"
        else:
            (x,) = s.exchanges
            perp = used[0]
            if perp.index is not None:
                basis = f"mark {perp.mark:g} vs index {perp.index:g} on {x}"
            else:
                mid = self.view.spot_mid(x, coin)
                basis = f"mark {perp.mark:g} vs spot mid {mid:g} on {x} (no index)"
        got = FigureDetails(
            taker_fees=tuple(self._taker(o) for o in used[:2]),
            uses=tuple(f"{o.exchange} {o.market}" for o in used),
            price_basis=basis,
        )
        self._details[s] = got
        return got
