"""Live trading through ccxt: keys, clients, orders, leg risk, reconciliation.

    creds = load_credentials(config)                 # SecretStr keys, env over keys_file
    missing = missing_keys(creds, needs.exchanges)   # refuse to start without them
    client = trading_client("bybit", creds["bybit"], config.exchanges["bybit"])

See docs/live.md for the operator's side.
"""

from __future__ import annotations

from ._client import ClientError, rebase_urls, trading_client
from ._executor import LiveExecutor, Venue
from ._hedge import HedgeLeg, HedgeResult, HedgeTrader, LegFill
from ._keys import Credentials, Redactor, describe_missing, load_credentials, missing_keys
from ._markets import TradeNeeds, tradable
from ._orders import Fill, OrderGateway, OrderRequest, OrderState, client_order_id, wire_client_id

__all__ = [
    "ClientError",
    "Credentials",
    "Fill",
    "HedgeLeg",
    "HedgeResult",
    "HedgeTrader",
    "LegFill",
    "LiveExecutor",
    "OrderGateway",
    "OrderRequest",
    "OrderState",
    "Redactor",
    "TradeNeeds",
    "Venue",
    "client_order_id",
    "describe_missing",
    "load_credentials",
    "missing_keys",
    "rebase_urls",
    "tradable",
    "trading_client",
    "wire_client_id",
]
