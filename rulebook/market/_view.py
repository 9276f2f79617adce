"""The snapshot at t: the latest observation per (exchange, coin, market) at or before t."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from ._model import Observation, basis_rate, borrow_per_8h, mid_price, normalise_funding
from ._settlement import Settlement

if TYPE_CHECKING:
    from ._columnar import ObservationColumns

__all__ = ["SnapshotView"]

Key = tuple[str, str, str]

_MARKET_WORDS = {"perp": "perpetual", "spot": "spot market", "borrow": "borrow market"}


class SnapshotView:
    """Read-only figures for the engine, looked up by plain dict access.

    The engine evaluates thousands of bindings per cycle against one view, so
    every accessor is a dict lookup plus a little arithmetic; nothing scans.
    """

    __slots__ = ("at", "_obs", "_exchanges", "_coins", "failures", "settlements", "recorded")

    def __init__(
        self,
        at: int,
        latest: Mapping[Key, Observation],
        failures: Mapping[str, str] | None = None,
        settlements: Iterable[Settlement] = (),
        *,
        recorded: bool = False,
    ) -> None:
        self.at = at
        # Owned by the view: callers hand over a dict they no longer mutate.
        self._obs: dict[Key, Observation] = dict(latest)
        self._exchanges: set[str] | None = None
        self._coins: set[str] | None = None
        #: exchange -> why its last fetch failed (live only); used in missing reasons.
        self.failures: dict[str, str] = dict(failures or {})
        #: settlement records that arrived with this view (since the previous one), for
        #: the runtime's settlement step only: no figure of the view reads them, so
        #: rules never see what settled (spec 9).
        self.settlements: tuple[Settlement, ...] = tuple(settlements)
        #: True for a view of a recording: what it lacks was not recorded, which
        #: says nothing of what the exchange lists (the reasons say so).
        self.recorded = recorded

    @classmethod
    def from_observations(
        cls,
        obs: Iterable[Observation],
        at: int | None = None,
        failures: Mapping[str, str] | None = None,
        *,
        recorded: bool = False,
    ) -> SnapshotView:
        latest: dict[Key, Observation] = {}
        newest = None
        for o in obs:
            if at is not None and o.ts > at:
                continue
            k = (o.exchange, o.coin, o.market)
            cur = latest.get(k)
            # ">=": of two observations with one timestamp, the later line wins,
            # as a writer that corrects itself would expect.
            if cur is None or o.ts >= cur.ts:
                latest[k] = o
            if newest is None or o.ts > newest:
                newest = o.ts
        if at is None:
            at = newest if newest is not None else 0
        return cls(at, latest, failures, recorded=recorded)

    # -- from columns (the contract with the columnar reader: docs/columnar.md) ------------
    @classmethod
    def from_columns(cls, cols: ObservationColumns, *, recorded: bool = True) -> SnapshotView:
        """The view of one cycle of a columnar recording (``market._columnar.iter_columns``).

        FIRST, SIMPLE VERSION: it materialises one ``Observation`` per row through
        the model's validating constructor, so that every accessor below works
        unchanged. The columns are the fast path: a lazy view over them, and
        MarketArrays built straight from them, replace this."""
        latest: dict[Key, Observation] = {}
        for row in cols.rows():
            o = Observation.checked(**row)
            latest[o.key] = o
        return cls(cols.at, latest, settlements=cols.settlements, recorded=recorded)

    # -- raw observations -------------------------------------------------
    def get(self, exchange: str, coin: str, market: str) -> Observation | None:
        return self._obs.get((exchange, coin, market))

    def perp(self, exchange: str, coin: str) -> Observation | None:
        return self._obs.get((exchange, coin, "perp"))

    def spot(self, exchange: str, coin: str) -> Observation | None:
        return self._obs.get((exchange, coin, "spot"))

    def borrow_obs(self, exchange: str, coin: str) -> Observation | None:
        return self._obs.get((exchange, coin, "borrow"))

    def observations(self) -> list[Observation]:
        return list(self._obs.values())

    def __len__(self) -> int:
        return len(self._obs)

    # -- figures (None when data is missing) ---------------------------------
    def funding_8h(self, exchange: str, coin: str) -> float | None:
        o = self._obs.get((exchange, coin, "perp"))
        if o is None or o.funding_rate is None or not o.funding_interval_h:
            return None
        return normalise_funding(o.funding_rate, o.funding_interval_h)

    def spot_mid(self, exchange: str, coin: str) -> float | None:
        o = self._obs.get((exchange, coin, "spot"))
        if o is None or o.bid is None or o.ask is None:
            return None
        return mid_price(o.bid, o.ask)

    def mark(self, exchange: str, coin: str) -> float | None:
        o = self._obs.get((exchange, coin, "perp"))
        return None if o is None else o.mark

    def index(self, exchange: str, coin: str) -> float | None:
        o = self._obs.get((exchange, coin, "perp"))
        return None if o is None else o.index

    def volume(self, exchange: str, coin: str) -> float | None:
        o = self._obs.get((exchange, coin, "perp"))
        return None if o is None else o.volume_24h

    def basis(self, exchange: str, coin: str) -> float | None:
        p = self._obs.get((exchange, coin, "perp"))
        mid = self.spot_mid(exchange, coin)
        if p is None or p.mark is None or mid is None:
            return None
        return basis_rate(p.mark, mid)

    def borrow_8h(self, exchange: str, coin: str) -> float | None:
        o = self._obs.get((exchange, coin, "borrow"))
        if o is None or o.borrow_rate_daily is None:
            return None
        return borrow_per_8h(o.borrow_rate_daily)

    def next_funding_s(self, exchange: str, coin: str) -> float | None:
        o = self._obs.get((exchange, coin, "perp"))
        if o is None or o.next_funding_ts is None:
            return None
        return (o.next_funding_ts - self.at) / 1000.0

    def age_s(self, obs: Observation) -> float:
        return (self.at - obs.ts) / 1000.0

    def taker_fee(self, exchange: str, coin: str, market: str) -> float | None:
        """The observation's own fee; the engine falls back to config, then defaults."""
        o = self._obs.get((exchange, coin, market))
        return None if o is None else o.taker_fee

    # -- why something is missing ------------------------------------------
    def missing_reason(self, exchange: str, coin: str, market: str) -> str:
        """A short operator-facing reason why (exchange, coin, market) has no usable data.

        Returns "" when nothing is missing for that market's main figure. A
        recorded view says "not in this recording" where a live one, whose
        exchanges answered with their market lists, says "not listed".
        """
        o = self._obs.get((exchange, coin, market))
        if o is None and self.recorded:
            # A recording holds what its writer chose to record: an absent
            # market may well be listed on the exchange.
            if exchange not in self.exchanges():
                return f"{exchange} not in this recording"
            if market == "perp":
                return f"{coin} on {exchange} not in this recording"
            return f"no {_MARKET_WORDS.get(market, market)} for {coin} on {exchange} in this recording"
        if o is None:
            if exchange in self.failures and exchange not in self.exchanges():
                return f"no data from {exchange}: {self.failures[exchange]}"
            if exchange not in self.exchanges():
                return f"no data from {exchange}"
            if market == "perp":
                return f"{coin} not listed on {exchange}"
            return f"no {_MARKET_WORDS.get(market, market)} for {coin} on {exchange}"
        if market == "perp":
            if o.funding_rate is None:
                return f"no funding rate for {coin} on {exchange}"
            if not o.funding_interval_h:
                return f"no funding interval for {coin} on {exchange}"
            if o.mark is None:
                return f"no mark price for {coin} on {exchange}"
        elif market == "spot":
            if o.bid is None or o.ask is None:
                return f"no spot bid/ask for {coin} on {exchange}"
        elif market == "borrow" and o.borrow_rate_daily is None:
            return f"no borrow rate for {coin} on {exchange}"
        return ""

    # -- what is in the view -------------------------------------------------
    def exchanges(self) -> set[str]:
        if self._exchanges is None:
            self._exchanges = {k[0] for k in self._obs}
        return self._exchanges

    def coins(self) -> set[str]:
        if self._coins is None:
            self._coins = {k[1] for k in self._obs}
        return self._coins

    def __repr__(self) -> str:
        return f"SnapshotView(at={self.at}, observations={len(self._obs)})"
