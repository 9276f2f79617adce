"""Failures that show: an exchange that does not answer is a warning line at
once, with its error, in dry-run, snapshot and every live cycle; a dry-run or
snapshot that reached no exchange exits non-zero.

The exchanges are real ccxt classes whose `fetch` fails (tests/ccxt_static.py),
so every error text is the one ccxt raises. No test here may reach the network:
a real client's request fails the test at once (`no_network`), since a real
attempt offline fails only after a DNS look-up whose time depends on the load
(a cycle's deadline is 1 s at `--every 1s`, so under load the warning became
"no answer within 1s" instead of the exchange's error)."""

from __future__ import annotations

import ccxt
import ccxt.async_support
import pytest
from ccxt_static import case, client, perp_stub, recorded_markets
from typer.testing import CliRunner

import rulebook.market
import rulebook.market._record
from rulebook.cli import app
from rulebook.market import LiveSource, RetryPolicy

RULES = """
rule sol_spread:
    when spread(SOL, bybit, binance) > 0.01%
    then hedge 1000 USDT
"""
MIDS = {"binance": "SOLUSDT", "bybit": "SOLUSDT", "okx": "SOL-USDT-SWAP"}
runner = CliRunner()


def down(exchange: str):
    def boom(url):
        raise ccxt.ExchangeNotAvailable(f"{exchange} GET {url} connection refused")
    return client(exchange, [perp_stub(exchange, "SOL", "USDT", MIDS[exchange])], {"": boom})


def bybit_up():
    body = case("bybit", "fetchFundingRates")["httpResponse"]
    return client("bybit", recorded_markets("bybit"), {"category=linear": body})


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """A real ccxt client's request (one this file's fakes did not replace) fails the test."""

    async def refuse(self, url, *args, **kwargs):
        pytest.fail(f"a test reached the network: {url}")

    monkeypatch.setattr(ccxt.async_support.Exchange, "fetch", refuse)


@pytest.fixture
def exchanges(monkeypatch):
    """Replace the live source's clients: `up` names the exchanges that answer.

    Every command that goes live makes its source through one of these names:
    dry-run and run through `rulebook.market.LiveSource`, snapshot through
    `record_snapshots`' own import of it."""
    up: set[str] = set()

    class Source(LiveSource):
        def __init__(self, exchanges, coins, **kw):
            clients = {ex: bybit_up() if ex in up else down(ex) for ex in exchanges}
            kw.update(clients=clients, retry=RetryPolicy(base_delay_s=0.01, max_attempts=1))
            super().__init__(exchanges, coins, **kw)

    monkeypatch.setattr(rulebook.market, "LiveSource", Source)
    monkeypatch.setattr(rulebook.market._record, "LiveSource", Source)
    return up


def test_dry_run_that_reaches_no_exchange_exits_non_zero(tmp_path, exchanges) -> None:
    (tmp_path / "s.rules").write_text(RULES)
    res = runner.invoke(app, ["dry-run", str(tmp_path / "s.rules")])
    assert res.exit_code == 2, res.output
    assert "error: no exchange answered, nothing to evaluate:" in res.stderr
    assert "binance unreachable: ExchangeNotAvailable: binance GET" in res.stderr
    assert "bybit unreachable: ExchangeNotAvailable: bybit GET" in res.stderr
    assert "no rule fired" not in res.output


def test_dry_run_warns_of_each_unreachable_exchange_before_the_result(tmp_path, exchanges):
    exchanges.add("bybit")
    (tmp_path / "s.rules").write_text(RULES)
    res = runner.invoke(app, ["dry-run", str(tmp_path / "s.rules")])
    assert res.exit_code == 0, res.output
    first = res.stderr.splitlines()[0]
    assert first.startswith("warning: binance unreachable: ExchangeNotAvailable: binance GET")
    assert "bybit unreachable" not in res.stderr


def test_snapshot_that_reaches_no_exchange_exits_non_zero(tmp_path, exchanges) -> None:
    out = tmp_path / "rec.jsonl"
    res = runner.invoke(app, ["snapshot", "-o", str(out), "-e", "binance,okx", "-c", "SOL",
                              "--count", "2", "--every", "1s"])
    assert res.exit_code == 1, res.output
    lines = res.stderr.splitlines()
    assert sum(ln.startswith("warning: binance unreachable, skipped this cycle: "
                             "ExchangeNotAvailable: binance GET ")
               and ln.endswith(" connection refused") for ln in lines) == 2  # once per cycle
    assert "error: no exchange answered in any cycle; nothing was recorded" in res.stderr


def test_every_live_cycle_warns_of_an_unreachable_exchange(tmp_path, monkeypatch, exchanges):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.rules").write_text(RULES)
    res = runner.invoke(app, ["run", "s.rules", "--paper", "--no-watch", "--db", "p.db",
                              "--every", "1s", "--for", "2s"])
    assert res.exit_code == 0, res.output
    warned = [ln for ln in res.stderr.splitlines()
              if ln.startswith("warning: binance unreachable this cycle: ExchangeNotAvailable")]
    assert len(warned) >= 2, res.stderr  # one per cycle, at once
    assert "cycles 2" in res.stdout or "cycles 3" in res.stdout  # --for 2s, a cycle a second
