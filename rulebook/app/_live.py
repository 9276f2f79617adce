"""`rulebook run --live` and `rulebook halt --close-all` on a live ledger.

    executor = prepare_live(ruleset, config, ledger, confirm=ask, yes=False, err=err)
    summary = run_paper(ruleset, paths, config, ledger, ..., executor=executor)
    closed, left = close_all_live(config, ledger, err=err)

Every refusal is a `LiveRefused` with the operator's reason: keys missing
(naming the exchanges and the variables), no confirmation, a paper ledger,
a market the rules need that an exchange does not list, a borrow ccxt
cannot make, a balance that cannot be read. Nothing is sent before all of
them pass.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console

from rulebook.errors import RulebookError
from rulebook.lang import Ruleset
from rulebook.market import Observation, SnapshotView
from rulebook.trading import Ledger, LedgerError, LiveLedger, Notifier, TradingConfig

__all__ = ["LiveRefused", "close_all_live", "market_clients", "prepare_live"]

ClientFactory = Callable[[str, dict[str, Any]], Any]


class LiveRefused(RulebookError):
    """A live run or close that must not start, with the reason."""


def _venues(config: TradingConfig, exchanges: list[str], factory: ClientFactory | None):
    from rulebook.trading.live import (
        ClientError,
        OrderGateway,
        Redactor,
        Venue,
        describe_missing,
        load_credentials,
        missing_keys,
        trading_client,
    )

    creds = load_credentials(config)
    missing = missing_keys(creds, exchanges)
    if missing:
        raise LiveRefused(
            "live trading needs API keys for every exchange the ruleset can trade; missing: "
            + describe_missing(missing)
        )
    redact = Redactor(creds[name] for name in exchanges)
    venues = {}
    for name in exchanges:
        try:
            client = trading_client(
                name, creds[name], config.exchanges[name],
                factory=None if factory is None else _for_exchange(factory, name),
            )  # fmt: skip
        except ClientError as e:
            raise LiveRefused(redact(str(e))) from None
        venues[name] = Venue(name, client, OrderGateway(name, client, redact), config.exchanges[name])
    return venues, redact


def _for_exchange(factory: ClientFactory, name: str) -> Callable[[dict[str, Any]], Any]:
    """The factory with its exchange bound (a lambda in the loop would bind the last one)."""
    return lambda cfg: factory(name, cfg)


def _describe(config: TradingConfig, exchanges: list[str]) -> str:
    parts = []
    for name in exchanges:
        ex = config.exchanges[name]
        where = "TESTNET" if ex.testnet else "REAL MONEY"
        if ex.api_url:
            where += f" via {ex.api_url}"
        parts.append(f"{name} ({where})")
    return ", ".join(parts)


def prepare_live(
    ruleset: Ruleset,
    config: TradingConfig,
    ledger: Ledger,
    *,
    yes: bool,
    confirm: Callable[[str], bool],
    err: Console,
    factory: ClientFactory | None = None,
):
    """Every check before a live run, then the started live executor."""
    from rulebook.trading.live import LiveExecutor, tradable

    needs = tradable(ruleset)
    try:
        LiveLedger(ledger)  # refuses a paper ledger before anything else is written
    except LedgerError as e:
        raise LiveRefused(str(e)) from None
    for held in ledger.read.positions():
        if held.status != "closed":
            needs.add_positions((leg.exchange, held.coin, leg.market) for leg in held.legs)
    exchanges = needs.exchanges
    if not exchanges:
        raise LiveRefused("the ruleset has no rule with a hedge action: nothing to trade live")
    venues, redact = _venues(config, exchanges, factory)
    question = (
        f"Trade LIVE on {_describe(config, exchanges)} with the ledger {config.ledger}? "
        "Orders will be sent. [y/N]"
    )
    if not yes:
        if not sys.stdin.isatty() and factory is None:
            raise LiveRefused("not a terminal: confirm a live run with --yes")
        if not confirm(question):
            raise LiveRefused("not confirmed; nothing was sent")
    notifier = Notifier(config.notify.urls, config.notify.events)
    executor = LiveExecutor(config, ledger, venues, notifier=notifier, redact=redact)
    problems = executor.start(needs)
    if problems:
        raise LiveRefused("live start refused:\n  " + "\n  ".join(redact(p) for p in problems))
    for cause, why in executor.entries_stopped.items():
        err.print(f"warning: entries stopped ({cause}): {why}", markup=False)
    return executor


def _ticker_view(executor: Any, coins_markets: set[tuple[str, str, str]]) -> SnapshotView:
    """Top of book for the legs to close, from the exchanges' tickers."""
    now = int(time.time() * 1000)
    obs = []
    failures = {}
    for exchange, coin, market in sorted(coins_markets):
        venue = executor.venues[exchange]
        ref = venue.ref(coin, market)
        if ref is None:
            continue
        try:
            t = venue.client.fetch_ticker(ref.symbol)
        except Exception as e:  # noqa: BLE001 - a missing price closes at the last mark
            failures[exchange] = executor.redact(str(e))[:200]
            continue
        scale = ref.scale
        bid, ask, last = t.get("bid"), t.get("ask"), t.get("last")
        mark = t.get("markPrice") or last
        obs.append(Observation.checked(
            ts=now, exchange=exchange, coin=coin, market=market, symbol=ref.symbol,
            bid=None if bid is None else bid * scale, ask=None if ask is None else ask * scale,
            mark=None if (market != "perp" or mark is None) else float(mark) * scale,
        ))  # fmt: skip
    return SnapshotView.from_observations(obs, at=now, failures=failures)


def close_all_live(
    config: TradingConfig, ledger: Ledger, *, err: Console, factory: ClientFactory | None = None
) -> tuple[int, int]:
    """`rulebook halt --close-all` with no runtime running: close every live position now."""
    from rulebook.trading.live import LiveExecutor, TradeNeeds

    needs = TradeNeeds()
    for held in ledger.read.positions():
        if held.status in ("open", "opening", "closing", "unhedged"):
            needs.add_positions((leg.exchange, held.coin, leg.market) for leg in held.legs)
    if not needs.markets:
        return 0, 0
    venues, redact = _venues(config, needs.exchanges, factory)
    notifier = Notifier(config.notify.urls, config.notify.events)
    executor = LiveExecutor(config, ledger, venues, notifier=notifier, redact=redact)
    problems = executor.start(needs)
    if problems:
        raise LiveRefused("cannot close: " + "; ".join(redact(p) for p in problems))
    view = _ticker_view(executor, needs.markets)
    closed, left = executor.close_all(view, view.at)
    executor.persist(view.at)
    ledger.record_event("halt", f"halt --close-all without a runtime: {closed} closed, {left} left open")
    return closed, left


def market_clients(config: TradingConfig, exchanges: list[str]) -> dict[str, Any]:
    """Keyless market-data clients for exchanges on a testnet or behind an `api_url`, so a
    live run on a testnet prices its orders from the testnet's own books."""
    from rulebook.market import make_exchange
    from rulebook.trading.live import rebase_urls

    clients: dict[str, Any] = {}
    for name in exchanges:
        settings = config.exchanges[name]
        if not (settings.testnet or settings.api_url):
            continue
        client = make_exchange(name)
        if settings.testnet and client.urls.get("test"):
            client.set_sandbox_mode(True)
        if settings.api_url:
            client.urls["api"] = rebase_urls(client.urls["api"], settings.api_url)
        clients[name] = client
    return clients
