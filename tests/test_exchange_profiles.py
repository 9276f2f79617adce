"""One profile per exchange: every profile complete, everything else derived from them."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import ccxt
import ccxt.async_support as ccxt_async
import pytest

import rulebook.lang
import rulebook.market
from rulebook._exchanges import EXCHANGES, PROFILES, ExchangeProfile
from rulebook.engine import DEFAULT_TAKER_FEES
from rulebook.market import DEFAULT_INTERVAL_H, parse_interval_h
from rulebook.trading import TradingConfig

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_every_profile_is_complete(exchange: str) -> None:
    p = PROFILES[exchange]
    assert isinstance(p, ExchangeProfile) and p.id == exchange
    # a real ccxt class, sync and async, that calls itself by the same id
    assert getattr(ccxt, p.ccxt_class)().id == p.ccxt_class
    assert hasattr(ccxt_async, p.ccxt_class)
    # quote currencies: upper-case codes, none twice
    assert p.quotes and len(set(p.quotes)) == len(p.quotes)
    assert all(q.isalnum() and q.isupper() for q in p.quotes)
    # default fees for both markets, fractions of a trade
    for fee in (p.taker_fees.perp, p.taker_fees.spot):
        assert math.isfinite(fee) and 0 < fee < 0.05
    # a default interval, and where the interval is read from, ending in the default
    assert 1 / 60 <= p.default_interval_h <= 24
    sources = p.interval_sources()
    assert sources[-1] == f"default {p.default_interval_h:g}h"
    if p.market_interval is not None:
        assert p.market_interval.name
        assert parse_interval_h("1", p.market_interval.unit) is not None  # a unit we parse
    # payload quirks that name ccxt things name real ones
    types = p.options.get("fetchMarkets", {}).get("types", ["spot", "linear"])
    assert set(types) <= {"spot", "linear", "swap"} and "spot" in types
    assert p.perp_book in ("tickers", "bids_asks", "order_book")
    assert p.spot_book in ("tickers", "bids_asks", "order_book")
    client = getattr(ccxt, p.ccxt_class)()
    for call in (p.index_tickers_call, p.funding_params.get("method")):
        assert call is None or callable(getattr(client, call, None)), call
    assert p.order_book_limit is None or p.order_book_limit >= 1
    assert p.client_id in ("text", "uint31")


def test_the_list_of_exchanges_is_derived_from_the_profiles() -> None:
    assert EXCHANGES == tuple(PROFILES) == ("backpack", "binance", "bybit", "okx", "gate", "bitget")
    assert rulebook.lang.EXCHANGES == EXCHANGES  # the language's known exchanges
    assert rulebook.market.EXCHANGES == EXCHANGES
    assert rulebook.market.PROFILES is PROFILES
    assert list(DEFAULT_TAKER_FEES) == list(EXCHANGES)
    assert DEFAULT_TAKER_FEES["gate"] == {"perp": 0.0005, "spot": 0.002}
    assert DEFAULT_INTERVAL_H == {e: PROFILES[e].default_interval_h for e in EXCHANGES}
    assert DEFAULT_INTERVAL_H["backpack"] == 1.0
    assert list(TradingConfig().exchanges) == list(EXCHANGES)


def test_the_profiles_are_read_only() -> None:
    with pytest.raises(TypeError):
        PROFILES["kraken"] = PROFILES["okx"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        PROFILES["okx"].quotes = ("EUR",)  # type: ignore[misc]


def _exchange_literals(path: Path) -> list[tuple[int, str]]:
    """String constants in code (not docstrings) that are an exchange's id."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in PROFILES
        and id(node) not in docstrings
    ]


def test_no_code_names_an_exchange_outside_its_profile() -> None:
    """Adding a seventh exchange touches rulebook/_exchanges.py: nothing else branches
    on an exchange's id or keeps a table by exchange."""
    # a data set's clock (the time zone of its CSV files), not an exchange's quirk
    allowed = {"rulebook/history/_importers.py": {"SUPERVIK_UTC_OFFSET_H"}}
    offenders = []
    for path in sorted((ROOT / "rulebook").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        if rel == "rulebook/_exchanges.py":
            continue
        lines = path.read_text().splitlines()
        for lineno, value in _exchange_literals(path):
            line = lines[lineno - 1]
            if any(name in line for name in allowed.get(rel, ())):
                continue
            offenders.append(f"{rel}:{lineno}: {value!r}: {line.strip()}")
    assert offenders == []
