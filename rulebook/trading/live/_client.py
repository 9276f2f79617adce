"""The one place that gives keys to ccxt: a signed client per exchange, rate limiter on.

    client = trading_client("okx", creds["okx"], config.exchanges["okx"])

Synchronous ccxt classes: the live executor places the two legs of a hedge
from two threads, one client per exchange, so each client is used by one
thread at a time. `testnet = true` turns on ccxt's sandbox mode (refused for
an exchange ccxt has no sandbox for); `api_url` sends every request to
another base URL (a proxy or a local endpoint) with the same paths.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import ccxt

from rulebook.errors import RulebookError
from rulebook.market import PROFILES

from .._config import ExchangeConfig
from ._keys import Credentials

__all__ = ["ClientError", "rebase_urls", "trading_client"]


class ClientError(RulebookError):
    """A client cannot be made as configured (no sandbox, a bad api_url)."""


def rebase_urls(urls: Any, base: str) -> Any:
    """Every URL in ccxt's `urls['api']` tree, moved to `base`'s scheme and host."""
    target = urlsplit(base)
    if isinstance(urls, dict):
        return {k: rebase_urls(v, base) for k, v in urls.items()}
    if isinstance(urls, str) and "://" in urls:
        u = urlsplit(urls)
        path = target.path.rstrip("/") + u.path
        return urlunsplit((target.scheme, target.netloc, path, u.query, u.fragment))
    return urls


def trading_client(
    exchange_id: str,
    creds: Credentials,
    settings: ExchangeConfig,
    *,
    factory: Callable[[dict[str, Any]], ccxt.Exchange] | None = None,
) -> ccxt.Exchange:
    """A signed ccxt client for `exchange_id`, with the rate limiter on.

    `factory` builds the client from its config (tests pass one that returns a
    client whose transport is replaced); by default ccxt's class.
    """
    profile = PROFILES[exchange_id]
    config: dict[str, Any] = {
        "enableRateLimit": True,  # ccxt spaces requests by the exchange's published limits
        # a copy per client: ccxt merges into its options, the profile's stay as written
        "options": copy.deepcopy(dict(profile.options)),
    }
    # The only place keys are unwrapped: straight into the client's config.
    if creds.api_key is not None:
        config["apiKey"] = creds.api_key.get_secret_value()
    if creds.secret is not None:
        config["secret"] = creds.secret.get_secret_value()
    if creds.password is not None:
        config["password"] = creds.password.get_secret_value()
    make = factory or getattr(ccxt, profile.ccxt_class)
    client = make(config)
    client.enableRateLimit = True
    client.verbose = False  # verbose mode prints signed requests
    if settings.testnet:
        if "test" not in client.urls or not client.urls["test"]:
            raise ClientError(
                f"{exchange_id}: testnet = true, but ccxt has no sandbox for {exchange_id}; "
                "remove testnet for it or trade it only after testing elsewhere"
            )
        client.set_sandbox_mode(True)
    if settings.api_url:
        u = urlsplit(settings.api_url)
        if u.scheme not in ("http", "https") or not u.netloc:
            raise ClientError(
                f"{exchange_id}: api_url {settings.api_url!r} is not an http(s) base URL"
            )
        client.urls["api"] = rebase_urls(client.urls["api"], settings.api_url)
    return client
