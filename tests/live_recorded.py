"""Real ccxt trading clients fed ccxt's own recorded private responses (no network).

The recordings in fixtures/ccxt-static/trading/ are ccxt's static test fixtures
(MIT, see LICENSE there), copied unchanged. `fetch` is the only thing replaced:
requests are built, signed and parsed by the real exchange classes.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ccxt

TRADING = Path(__file__).parent / "fixtures" / "ccxt-static" / "trading"
MARKETS = Path(__file__).parent / "fixtures" / "ccxt-static" / "markets"


def cases(exchange: str, method: str, kind: str = "response") -> list[dict[str, Any]]:
    return copy.deepcopy(json.loads((TRADING / kind / f"{exchange}.json").read_text())[method])


def case(exchange: str, method: str, i: int = 0) -> dict[str, Any]:
    return cases(exchange, method)[i]


def _options(exchange: str, kind: str = "response") -> dict[str, Any]:
    header = json.loads((TRADING / kind / f"{exchange}.json").read_text())["_source"]["file_header"]
    return dict(header.get("options") or {})


def _perp(ex: str, base: str, quote: str, mid: str, size: float = 1.0, **kw: Any) -> dict[str, Any]:
    return dict(id=mid, symbol=f"{base}/{quote}:{quote}", base=base, quote=quote, settle=quote,
                baseId=base, quoteId=quote, settleId=quote.lower() if ex == "gate" else quote,
                type="swap", spot=False, swap=True, future=False, option=False, margin=False,
                contract=True, linear=True, inverse=False, subType="linear", active=True,
                contractSize=size, precision=kw.pop("precision", {"amount": 0.001, "price": 0.01,
                                                                  "base": 1e-8, "quote": 1e-8}),
                limits={"amount": {"min": 0.001}, "cost": {"min": 1}},
                info=kw.pop("info", {}), **kw)  # fmt: skip


def _spot(base: str, quote: str, mid: str, **kw: Any) -> dict[str, Any]:
    return dict(id=mid, symbol=f"{base}/{quote}", base=base, quote=quote, baseId=base,
                quoteId=quote, type="spot", spot=True, swap=False, future=False, option=False,
                margin=True, contract=False, active=True, linear=None, inverse=None, settle=None,
                precision={"amount": 0.0001, "price": 0.01, "base": 1e-8, "quote": 1e-8},
                limits={"amount": {"min": 0.0001}, "cost": {"min": 1}},
                info=kw.pop("info", {}), **kw)  # fmt: skip


def markets(exchange: str) -> list[dict[str, Any]]:
    """The markets the recorded cases trade: ccxt's saved ones, else stubs as the data
    README describes (ids, contract sizes)."""
    if exchange == "binance":
        info = {"info": {"orderTypes": ["LIMIT", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"]}}
        return [_perp("binance", c, "USDT", f"{c}USDT", **copy.deepcopy(info)) for c in ("BTC", "ETH", "LTC", "SOL")] + \
               [_spot(c, "USDT", f"{c}USDT", **copy.deepcopy(info)) for c in ("BTC", "ETH", "LTC", "SOL")]  # fmt: skip
    if exchange == "bybit":
        saved = list(json.loads((MARKETS / "bybit.json").read_text()).values())
        return (
            saved
            + [_spot(c, "USDT", f"{c}USDT") for c in ("XRP", "LTC", "ETH")]
            + [_perp("bybit", "ADA", "USDT", "ADAUSDT", precision={"amount": 1, "price": 0.0001})]
        )
    if exchange == "okx":
        return [_perp("okx", "LTC", "USDT", "LTC-USDT-SWAP", 1.0),
                _perp("okx", "SUSHI", "USDT", "SUSHI-USDT-SWAP", 1.0),
                _perp("okx", "ADA", "USDT", "ADA-USDT-SWAP", 100.0),
                _perp("okx", "BTC", "USDT", "BTC-USDT-SWAP", 0.01),
                _spot("LTC", "USDT", "LTC-USDT"), _spot("BTC", "USDT", "BTC-USDT")]  # fmt: skip
    if exchange == "gate":
        return [_perp("gate", "LTC", "USDT", "LTC_USDT", 0.1), _spot("LTC", "USDT", "LTC_USDT"),
                _perp("gate", "BTC", "USDT", "BTC_USDT", 0.0001), _spot("BTC", "USDT", "BTC_USDT"),
                _perp("gate", "人生K线", "USDT", "人生K线_USDT", 100.0),
                _perp("gate", "XRP", "USDT", "XRP_USDT", 10.0, precision={"amount": 1, "price": 0.0001})]  # fmt: skip
    if exchange == "bitget":
        return [_perp("bitget", "LTC", "USDT", "LTCUSDT"), _spot("LTC", "USDT", "LTCUSDT"),
                _perp("bitget", "BTC", "USDT", "BTCUSDT"), _spot("BTC", "USDT", "BTCUSDT")]  # fmt: skip
    if exchange == "backpack":
        saved = json.loads((TRADING / "markets" / "backpack.json").read_text())
        return [m for k, m in saved.items() if k != "_source"]
    raise KeyError(exchange)


def currencies(exchange: str) -> dict[str, Any]:
    codes = ("BTC", "ETH", "LTC", "USDT", "USDC", "SOL", "ADA", "XRP", "SUSHI")
    return {c: {"id": c.lower() if exchange == "gate" else c, "code": c, "precision": 1e-8}
            for c in codes}  # fmt: skip


def signing_config(exchange: str) -> dict[str, Any]:
    secret = "test-secret-abcdef"
    if exchange == "backpack":  # ed25519 signing needs a decodable 32-byte seed
        secret = base64.b64encode(bytes(range(32))).decode()
    return {"apiKey": "test-key-123456", "secret": secret, "password": "test-pass-1"}


class Replay:
    """`fetch` for one client: answers by URL path (routes), else the default body.

    A route's value is a body, or an exception instance to raise (ccxt's class)."""

    def __init__(self, client: ccxt.Exchange, default: Any = None) -> None:
        self.client = client
        self.default = default
        self.routes: dict[str, Any] = {}
        self.requests: list[tuple[str, str, Any]] = []  # (method, url, body)
        client.fetch = self.fetch

    def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        self.requests.append((method, url, body))
        path = urlsplit(url).path
        for fragment, answer in self.routes.items():
            if path.endswith(fragment):
                if isinstance(answer, BaseException):
                    raise answer
                return copy.deepcopy(answer)
        if isinstance(self.default, BaseException):
            raise self.default
        if self.default is None:
            raise ccxt.ExchangeError(f"no recording for {method} {path}")
        return copy.deepcopy(self.default)

    def route(self, call: Callable[[], Any], answer: Any) -> str:
        """Route the path that `call` requests first to `answer` (found by running it once)."""
        seen: list[str] = []
        saved, self.client.fetch = (
            self.client.fetch,
            lambda url, *a, **k: (
                seen.append(urlsplit(url).path),
                (_ for _ in ()).throw(ccxt.NetworkError("probe")),
            )[1],
        )
        try:
            call()
        except ccxt.BaseError:
            pass
        finally:
            self.client.fetch = saved
        assert seen, "the call made no request"
        self.routes[seen[-1]] = answer
        return seen[-1]


def recorded_client(exchange: str, options: dict[str, Any] | None = None) -> ccxt.Exchange:
    opts = _options(exchange)
    opts.update(options or {})
    ex = getattr(ccxt, exchange)({**signing_config(exchange), "options": opts})
    ex.set_markets(markets(exchange), currencies(exchange))
    return ex
