"""`SnapshotEnv`: the language's `Env` over one snapshot view.

Compiled rules call these methods; missing data raises `NoData` with the
reason an operator reads in `skipped`. A subject's figures (legs, edge, fees,
confidence ...) are computed once per subject per snapshot and cached: a
cross-exchange rule and an alert rule over the same pair share them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rulebook.lang import NoData, Subject
from rulebook.market import Observation, SnapshotView

from . import _metrics as M
from ._fees import EngineConfig, FeeSource, resolve_taker_fee

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
    # the env that computed these, to describe them on demand (not part of the value)
    env: SnapshotEnv | None = field(default=None, repr=False, compare=False)

    @property
    def confidence(self) -> float:
        return M.confidence(self.price_score, self.fresh_score)

    @property
    def breakeven_s(self) -> float:
        return M.breakeven_s(self.edge, self.fees)

    @property
    def risk(self) -> int:
        return M.risk_level(self.confidence, self.breakeven_s)

    @property
    def apr(self) -> float:
        return M.apr(self.edge)

    def net(self, duration_s: float) -> float:
        return M.net_rate(self.edge, self.fees, duration_s)

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


@dataclass(slots=True)
class SnapshotEnv:
    """Implements `rulebook.lang.Env` over a `SnapshotView`.

    Use `with_position` to evaluate an `exit when` clause: it returns an env
    that also answers `held`, `pnl` and `collected`, sharing this one's cache.
    """

    view: SnapshotView
    config: EngineConfig = field(default_factory=EngineConfig)
    position_values: PositionValues | None = None
    _figures: dict[Subject, SubjectFigures | NoData] = field(default_factory=dict, repr=False)
    _details: dict[Subject, FigureDetails] = field(default_factory=dict, repr=False)

    def with_position(self, values: PositionValues) -> SnapshotEnv:
        return SnapshotEnv(self.view, self.config, values, self._figures, self._details)

    # -- market functions (spec 5) ------------------------------------------------
    def _missing(self, coin: str, exchange: str, market: str, what: str) -> str:
        reason = self.view.missing_reason(exchange, coin, market)
        return reason or f"no {what} for {coin} on {exchange}"

    def missing_reason(self, kind: str, coin: str, exchange: str) -> str:
        """Why the market function `kind(coin, exchange)` has no value: the
        reason its NoData carries (meaningful only when the value is missing).

        The one place these reasons are worded. The vector evaluator words
        thousands of skipped entries with it directly: raising and catching a
        NoData per datum cost four times the wording itself.
        """
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

    def funding(self, coin: str, exchange: str) -> float:
        v = self.view.funding_8h(exchange, coin)
        if v is None:
            raise NoData(self.missing_reason("funding", coin, exchange))
        return v

    def basis(self, coin: str, exchange: str) -> float:
        v = self.view.basis(exchange, coin)
        if v is None:
            raise NoData(self.missing_reason("basis", coin, exchange))
        return v

    def spot_mid(self, coin: str, exchange: str) -> float:
        """The spot mid price; not a language function, but a leg of carry subjects."""
        v = self.view.spot_mid(exchange, coin)
        if v is None:
            raise NoData(self.missing_reason("spot_mid", coin, exchange))
        return v

    def borrow(self, coin: str, exchange: str) -> float:
        v = self.view.borrow_8h(exchange, coin)
        if v is None:
            raise NoData(self.missing_reason("borrow", coin, exchange))
        return v

    def price(self, coin: str, exchange: str) -> float:
        v = self.view.mark(exchange, coin)
        if v is None:
            raise NoData(self.missing_reason("price", coin, exchange))
        return v

    def volume(self, coin: str, exchange: str) -> float:
        v = self.view.volume(exchange, coin)
        if v is None:
            raise NoData(self.missing_reason("volume", coin, exchange))
        return v

    def next_funding(self, coin: str, exchange: str) -> float:
        v = self.view.next_funding_s(exchange, coin)
        if v is None:
            raise NoData(self.missing_reason("next_funding", coin, exchange))
        return v

    # -- metrics (spec 6) ---------------------------------------------------------------
    def metric(self, name: str, subject: Subject) -> float:
        f = self.figures(subject)
        if name == "edge":
            return f.edge
        if name == "fees":
            return f.fees
        if name == "breakeven":
            return f.breakeven_s
        if name == "confidence":
            return f.confidence
        if name == "risk":
            return f.risk
        raise NoData(f"unknown metric {name!r}")

    def position(self, name: str) -> float:
        if self.position_values is None:
            raise NoData(f"'{name}' is known only for an open position (in `exit when`)")
        return float(getattr(self.position_values, name))

    def figures(self, subject: Subject) -> SubjectFigures:
        """The subject's legs and metrics; raises NoData when a leg's data is missing."""
        cached = self._figures.get(subject)
        if cached is None:
            try:
                cached = self._compute(subject)
            except NoData as missing:
                cached = missing
            self._figures[subject] = cached
        if isinstance(cached, NoData):
            raise NoData(cached.reason)
        return cached

    def _perp(self, coin: str, exchange: str) -> tuple[Observation, float, float]:
        """A perp leg's observation, funding per 8h and mark; NoData when any is missing."""
        funding = self.funding(coin, exchange)
        mark = self.price(coin, exchange)
        obs = self.view.perp(exchange, coin)
        assert obs is not None
        return obs, funding, mark

    def _taker(self, obs: Observation) -> TakerFee:
        fee, source = resolve_taker_fee(
            obs.exchange, obs.market, obs.taker_fee, self.config.taker_fees
        )
        return TakerFee(obs.exchange, obs.market, fee, source)

    def _age(self, used: list[Observation]) -> float:
        return max(self.view.age_s(o) for o in used)

    def _used(self, s: Subject, funding: float | None = None) -> list[Observation]:
        """The observations a subject uses: its legs' markets, and borrow when it borrows."""
        coin = s.coin
        if s.kind == "spread":
            return [self.view.perp(x, coin) for x in s.exchanges]  # type: ignore[misc]
        (x,) = s.exchanges
        used = [self.view.perp(x, coin), self.view.spot(x, coin)]
        if funding is None:
            funding = self.funding(coin, x)
        if s.kind == "borrow" or funding < 0:
            used.append(self.view.borrow_obs(x, coin))
        return used  # type: ignore[return-value]

    def _compute(self, s: Subject) -> SubjectFigures:
        coin = s.coin
        if s.kind == "spread":
            a, b = s.exchanges
            pa, fa, ma = self._perp(coin, a)
            pb, fb, mb = self._perp(coin, b)
            legs, edge = M.spread_legs(a, b, fa, fb)
            used = [pa, pb]
            dev = M.pair_deviation(ma, mb)
        else:
            (x,) = s.exchanges
            perp, funding, mark = self._perp(coin, x)
            # Every non-spread subject trades spot on x: without it there is no position.
            mid = self.spot_mid(coin, x)
            spot = self.view.spot(x, coin)
            assert spot is not None
            used = [perp, spot]
            borrow = None
            if s.kind == "borrow" or funding < 0:
                borrow = self.borrow(coin, x)
                bobs = self.view.borrow_obs(x, coin)
                assert bobs is not None
                used.append(bobs)
            if s.kind == "borrow":
                assert borrow is not None
                legs, edge = M.borrow_legs(x), M.borrow_edge(funding, borrow)
            else:
                legs, edge = M.carry_legs(x, funding), M.carry_edge(funding, borrow)
            # No index reported: the spot mid on the same exchange is the nearest
            # stand-in, and this subject trades that spot anyway.
            ref = perp.index if perp.index is not None else mid
            dev = M.index_deviation(mark, ref)
        t1, t2 = (self._taker(o) for o in used[:2])
        age = self._age(used)
        return SubjectFigures(
            subject=s,
            legs=legs,
            edge=edge,
            fees=M.round_trip_fees(t1.fee, t2.fee),
            price_deviation=dev,
            price_score=M.price_score(dev),
            oldest_age_s=age,
            fresh_score=M.fresh_score(age),
            env=self,
        )

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
