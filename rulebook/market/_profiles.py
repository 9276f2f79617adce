"""What rulebook knows about each exchange beyond ccxt's unified API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ExchangeProfile", "PROFILES"]

Book = Literal["tickers", "bids_asks", "order_book"]


@dataclass(frozen=True)
class ExchangeProfile:
    id: str
    #: ccxt constructor options; mainly which market types load_markets fetches,
    #: so that loading does not pull options and inverse contracts we never use.
    options: dict[str, Any] = field(default_factory=dict)
    #: settle/quote currencies in order of preference for a coin's perp and spot.
    quotes: tuple[str, ...] = ("USDT", "USDC")
    #: where top of book comes from: the bulk tickers (when they carry bid/ask),
    #: the bulk bids/asks call, or per-symbol order books (named coins only).
    perp_book: Book = "tickers"
    spot_book: Book = "tickers"
    #: False when ccxt's parsed ``interval`` is hard-coded rather than read from
    #: the payload (ccxt 4.5's backpack says "1h" whatever the market says).
    trust_ccxt_interval: bool = True
    #: params for a *public* fetch_cross_borrow_rate; None when the exchange
    #: only serves borrow rates to signed requests (watching needs no keys).
    borrow_params: dict[str, Any] | None = None
    #: also fetch bulk mark prices (OKX funding payloads carry no mark).
    mark_prices: bool = False
    #: also fetch bulk index tickers (OKX: neither funding nor tickers carry the index).
    index_tickers: bool = False
    #: params for fetch_funding_rates (Bitget: the endpoint that states the interval).
    funding_params: dict[str, Any] = field(default_factory=dict)
    #: refresh a per-symbol interval table with fetch_funding_intervals.
    interval_call: bool = False
    order_book_limit: int | None = 5


PROFILES: dict[str, ExchangeProfile] = {
    "backpack": ExchangeProfile(
        "backpack",
        quotes=("USDC", "USDT"),
        perp_book="order_book",
        spot_book="order_book",
        trust_ccxt_interval=False,
    ),
    "binance": ExchangeProfile(
        "binance",
        options={"fetchMarkets": {"types": ["spot", "linear"]}},
        # /fapi/v1/ticker/24hr has volume but no bid/ask; bookTicker is bulk.
        perp_book="bids_asks",
        # premiumIndex states no interval; fundingInfo lists the adjusted ones.
        interval_call=True,
    ),
    "bybit": ExchangeProfile(
        "bybit",
        options={"fetchMarkets": {"types": ["spot", "linear"]}},
        borrow_params={},
    ),
    "okx": ExchangeProfile(
        "okx",
        options={"fetchMarkets": {"types": ["spot", "swap"]}},
        mark_prices=True,
        index_tickers=True,
        order_book_limit=1,
    ),
    "gate": ExchangeProfile(
        "gate",
        options={"fetchMarkets": {"types": ["spot", "swap"]}},
    ),
    "bitget": ExchangeProfile(
        "bitget",
        options={"fetchMarkets": {"types": ["spot", "swap"]}},
        borrow_params={"uta": True},
        # current-fund-rate states rate, interval and next settlement in one bulk
        # call; Bitget changes intervals (8/4/1h) as markets move, so read it each cycle.
        funding_params={"method": "publicMixGetV2MixMarketCurrentFundRate"},
    ),
}
