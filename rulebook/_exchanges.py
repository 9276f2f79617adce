"""One profile per exchange: everything rulebook knows about an exchange beyond ccxt's
unified API, in one place.

Each `ExchangeProfile` holds the exchange's id and ccxt class, its quote
currencies, its published default taker fees (perp and spot), its default
funding interval and where the interval is read from, and the quirks of its
payloads and its trading API. Everything else is derived from `PROFILES`: the
list of exchanges (`EXCHANGES`, in the spec's order), the language's known
exchanges, the default fee and interval tables, the configuration's
`[exchanges.*]` tables, the live feeds' calls, the live executor's keys.

This is plain data (no I/O, no imports beyond the standard library), so every
stage may import it: the language checks `Exchange` values against
`EXCHANGES` without importing the market stage. Adding a seventh exchange is
one entry here (and `tests/test_exchange_profiles.py` says what it must fill
in); docs/market.md describes each field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "EXCHANGES",
    "PROFILES",
    "BookSource",
    "ExchangeProfile",
    "IntervalField",
    "TakerFees",
]

BookSource = Literal["tickers", "bids_asks", "order_book"]


@dataclass(frozen=True, slots=True)
class TakerFees:
    """Published default (lowest tier, no discounts) taker fees, as fractions.

    The engine uses them last: after the observation's own `taker_fee` and the
    configuration's (spec 6). A missing fee must never become 0, which would
    make every trade look free.
    """

    perp: float
    spot: float

    def by_market(self) -> dict[str, float]:
        return {"perp": self.perp, "spot": self.spot}


@dataclass(frozen=True, slots=True)
class IntervalField:
    """Where an exchange's raw market (ccxt `market["info"]`) states the funding
    interval, and in what unit ("ms", "s", "min", "h")."""

    name: str
    unit: str


@dataclass(frozen=True, slots=True)
class ExchangeProfile:
    #: rulebook's name for the exchange (what rules, recordings and the config say)
    id: str
    #: the ccxt class (`ccxt.<name>` and `ccxt.async_support.<name>`)
    ccxt_class: str
    #: settle/quote currencies in order of preference for a coin's perp and spot
    quotes: tuple[str, ...]
    #: published default taker fees (docs/market.md has the sources)
    taker_fees: TakerFees
    #: hours between settlements when nothing states the interval
    default_interval_h: float
    #: where the funding interval is read from, first found wins (docs/market.md):
    #: the funding payload as ccxt parses it (False when ccxt hard-codes it:
    #: ccxt 4.5's backpack says "1h" whatever the market says) ...
    trust_ccxt_interval: bool = True
    #: ... then a per-symbol table refreshed with fetch_funding_intervals ...
    interval_call: bool = False
    #: ... then the raw market data's field, then `default_interval_h`
    market_interval: IntervalField | None = None
    # -- payload quirks (market data) ----------------------------------------------------
    #: ccxt constructor options; mainly which market types load_markets fetches,
    #: so that loading does not pull options and inverse contracts we never use
    options: Mapping[str, Any] = field(default_factory=dict)
    #: where top of book comes from: the bulk tickers (when they carry bid/ask),
    #: the bulk bids/asks call, or per-symbol order books (named coins only)
    perp_book: BookSource = "tickers"
    spot_book: BookSource = "tickers"
    order_book_limit: int | None = 5
    #: params for a *public* fetch_cross_borrow_rate; None when the exchange only
    #: serves borrow rates to signed requests (watching needs no keys)
    borrow_params: Mapping[str, Any] | None = None
    #: also fetch bulk mark prices (the funding payload carries no mark)
    mark_prices: bool = False
    #: the implicit-API method that answers every index price of a quote currency
    #: in one call, when neither funding nor tickers carry the index
    index_tickers_call: str | None = None
    #: params for fetch_funding_rates (an endpoint that states the interval)
    funding_params: Mapping[str, Any] = field(default_factory=dict)
    #: the field of the funding payload's raw `info` that states the taker fee
    taker_fee_field: str | None = None
    # -- trading quirks (the live executor) ---------------------------------------------
    #: API keys come with a passphrase (ccxt's `password`)
    needs_password: bool = False
    #: ccxt's unified funding-history `amount` is what the account paid (positive
    #: when paying), not what it received
    funding_history_paid_positive: bool = False
    #: how the exchange takes a client order id: text, or an unsigned 31-bit integer
    client_id: Literal["text", "uint31"] = "text"

    def interval_sources(self) -> tuple[str, ...]:
        """Where the interval is read from, in order (for docs and `--explain`)."""
        out = []
        if self.trust_ccxt_interval:
            out.append("funding payload")
        if self.interval_call:
            out.append("funding-interval call")
        if self.market_interval is not None:
            out.append(f"market info {self.market_interval.name} ({self.market_interval.unit})")
        out.append(f"default {self.default_interval_h:g}h")
        return tuple(out)


_SPOT_AND_LINEAR = MappingProxyType({"fetchMarkets": {"types": ["spot", "linear"]}})
_SPOT_AND_SWAP = MappingProxyType({"fetchMarkets": {"types": ["spot", "swap"]}})

_ALL: tuple[ExchangeProfile, ...] = (
    ExchangeProfile(
        "backpack",
        ccxt_class="backpack",
        quotes=("USDC", "USDT"),
        taker_fees=TakerFees(perp=0.0005, spot=0.001),
        default_interval_h=1.0,  # Backpack settles hourly
        trust_ccxt_interval=False,
        market_interval=IntervalField("fundingInterval", "ms"),
        perp_book="order_book",
        spot_book="order_book",
        client_id="uint31",
    ),
    ExchangeProfile(
        "binance",
        ccxt_class="binance",
        quotes=("USDT", "USDC"),
        taker_fees=TakerFees(perp=0.0005, spot=0.001),
        default_interval_h=8.0,
        # premiumIndex states no interval; fundingInfo lists the adjusted ones.
        interval_call=True,
        options=_SPOT_AND_LINEAR,
        # /fapi/v1/ticker/24hr has volume but no bid/ask; bookTicker is bulk.
        perp_book="bids_asks",
    ),
    ExchangeProfile(
        "bybit",
        ccxt_class="bybit",
        quotes=("USDT", "USDC"),
        taker_fees=TakerFees(perp=0.00055, spot=0.001),
        default_interval_h=8.0,
        market_interval=IntervalField("fundingInterval", "min"),
        options=_SPOT_AND_LINEAR,
        borrow_params=MappingProxyType({}),
        funding_history_paid_positive=True,  # ccxt 4.5 passes execFee through
    ),
    ExchangeProfile(
        "okx",
        ccxt_class="okx",
        quotes=("USDT", "USDC"),
        taker_fees=TakerFees(perp=0.0005, spot=0.001),
        default_interval_h=8.0,
        options=_SPOT_AND_SWAP,
        # OKX funding payloads carry neither mark nor index.
        mark_prices=True,
        index_tickers_call="publicGetMarketIndexTickers",
        order_book_limit=1,
        needs_password=True,
    ),
    ExchangeProfile(
        "gate",
        ccxt_class="gate",
        quotes=("USDT", "USDC"),
        taker_fees=TakerFees(perp=0.0005, spot=0.002),
        default_interval_h=8.0,
        market_interval=IntervalField("funding_interval", "s"),
        options=_SPOT_AND_SWAP,
        # Gate's contract object (its funding payload) states the taker fee.
        taker_fee_field="taker_fee_rate",
    ),
    ExchangeProfile(
        "bitget",
        ccxt_class="bitget",
        quotes=("USDT", "USDC"),
        taker_fees=TakerFees(perp=0.0006, spot=0.001),
        default_interval_h=8.0,
        market_interval=IntervalField("fundInterval", "h"),
        options=_SPOT_AND_SWAP,
        borrow_params=MappingProxyType({"uta": True}),
        # current-fund-rate states rate, interval and next settlement in one bulk
        # call; Bitget changes intervals (8/4/1h) as markets move, so read it each cycle.
        funding_params=MappingProxyType({"method": "publicMixGetV2MixMarketCurrentFundRate"}),
        needs_password=True,
    ),
)

#: every exchange's profile by id, in the spec's order
PROFILES: Mapping[str, ExchangeProfile] = MappingProxyType({p.id: p for p in _ALL})

#: the exchanges rulebook knows, in the spec's order (`rulebook.lang.EXCHANGES`,
#: `rulebook.market.EXCHANGES` are this tuple)
EXCHANGES: tuple[str, ...] = tuple(PROFILES)
