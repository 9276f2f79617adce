"""Feed recorded raw exchange responses to real ccxt clients (no network).

The recordings in fixtures/ccxt-static/ are ccxt's own static test fixtures
(MIT, see its LICENSE), copied unchanged. A client's ``fetch`` (the one place
ccxt touches the network) is replaced by a router from URL fragments to
recorded bodies, so every request goes through ccxt's real request building
and response parsing.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
from pathlib import Path
from typing import Any

import ccxt

from rulebook.market import make_exchange

FIXTURES = Path(__file__).parent / "fixtures" / "ccxt-static"


def case(exchange: str, method: str, index: int = 0) -> dict[str, Any]:
    data = json.loads((FIXTURES / "response" / f"{exchange}.json").read_text())
    return copy.deepcopy(data["methods"][method][index])


def recorded_markets(exchange: str) -> list[dict[str, Any]]:
    return list(json.loads((FIXTURES / "markets" / f"{exchange}.json").read_text()).values())


class NoRecording(ccxt.ExchangeError):
    pass


def client(
    exchange: str, markets: list[dict[str, Any]], routes: dict[str, Any], delay_s: float = 0.0
):
    """A ccxt async client with ``markets`` set and ``fetch`` answering from ``routes``.

    A route's value is a body, or a callable(url) returning a body or raising.
    Unrouted URLs raise NoRecording (a ccxt ExchangeError), like an endpoint
    that is down; ``client.calls`` lists every URL requested.
    """
    ex = make_exchange(exchange, enableRateLimit=False)
    ex.set_markets([ex.safe_market_structure(m) if "precision" not in m else m for m in markets])
    ex.calls = []

    async def fetch(url, method="GET", headers=None, body=None):
        ex.calls.append(url)
        if delay_s:
            await asyncio.sleep(delay_s)
        for fragment, answer in routes.items():
            if fragment in url:
                if not callable(answer):
                    return copy.deepcopy(answer)
                got = answer(url)
                return await got if inspect.isawaitable(got) else got
        raise NoRecording(f"no recording for {url}")

    ex.fetch = fetch
    return ex


def perp_stub(ex_id: str, base: str, quote: str, mid: str, **kw) -> dict[str, Any]:
    return dict(
        id=mid,
        symbol=f"{base}/{quote}:{quote}",
        base=base,
        quote=quote,
        settle=quote,
        baseId=base,
        quoteId=quote,
        settleId=quote.lower() if ex_id == "gate" else quote,
        type="swap",
        spot=False,
        swap=True,
        contract=True,
        linear=True,
        inverse=False,
        subType="linear",
        active=True,
        contractSize=kw.pop("contractSize", 1),
        stock=False,
        info=kw.pop("info", {}),
        **kw,
    )


def spot_stub(base: str, quote: str, mid: str, **kw) -> dict[str, Any]:
    return dict(
        id=mid,
        symbol=f"{base}/{quote}",
        base=base,
        quote=quote,
        baseId=base,
        quoteId=quote,
        type="spot",
        spot=True,
        swap=False,
        contract=False,
        active=True,
        stock=False,
        info=kw.pop("info", {}),
        **kw,
    )
