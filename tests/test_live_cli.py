"""`rulebook run --live` and `rulebook halt --close-all` on live ledgers.

No exchange is reachable from the tests: refusals are checked through the CLI,
and a whole live run through the application layer with a client factory
that gives each exchange the fault-injecting Binance (the real ccxt class).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from live_fakes import FakeBinance
from rich.console import Console
from trading_helpers import sql
from typer.testing import CliRunner

from rulebook.app import LiveRefused, close_all_live, prepare_live
from rulebook.cli import app
from rulebook.lang import load_texts
from rulebook.market import Observation, SnapshotView
from rulebook.trading import CycleRecord, Ledger, RulesetHolder, Runtime, load_config

runner = CliRunner()
SECRET = "cli-secret-never-printed-42"
CARRY = """
rule btc_carry:
    when funding(BTC, binance) > 0.01%
    then hedge 1000 USDT
    exit when funding(BTC, binance) < 0%
"""


def _keys(*exchanges: str) -> dict[str, str]:
    env = {}
    for e in exchanges:
        env[f"RULEBOOK_EXCHANGES__{e.upper()}__API_KEY"] = f"{e}-key-0123456789"
        env[f"RULEBOOK_EXCHANGES__{e.upper()}__SECRET"] = SECRET
    return env


@pytest.fixture
def rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for var in list(os.environ):
        if var.startswith("RULEBOOK_"):
            monkeypatch.delenv(var)
    (tmp_path / "carry.rules").write_text(CARRY)
    (tmp_path / "cross.rules").write_text(
        "rule x:\n    when spread(ETH, okx, bybit) > 0.05%\n    then hedge 500 USDT\n"
    )
    return tmp_path


def test_live_is_never_the_default(rules: Path) -> None:
    res = runner.invoke(app, ["run", "carry.rules"])
    assert res.exit_code == 2 and "choose one: --paper" in res.output
    res = runner.invoke(app, ["run", "carry.rules", "--paper", "--live"])
    assert res.exit_code == 2 and "choose one" in res.output


def test_live_refuses_without_keys_naming_every_missing_exchange(rules: Path) -> None:
    res = runner.invoke(app, ["run", "carry.rules", "cross.rules", "--live", "--yes"])
    assert res.exit_code == 2
    out = " ".join(res.output.split())
    assert "missing:" in out
    for var in ("RULEBOOK_EXCHANGES__BINANCE__API_KEY", "RULEBOOK_EXCHANGES__BYBIT__SECRET",
                "RULEBOOK_EXCHANGES__OKX__PASSWORD"):  # fmt: skip
        assert var in out
    assert "gate" not in out  # only the exchanges the rules can trade
    assert not (rules / "live.db").exists() or sql(rules / "live.db",
        "select * from order_intents") == []  # fmt: skip


def test_live_needs_confirmation(rules: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in _keys("binance").items():
        monkeypatch.setenv(k, v)
    res = runner.invoke(app, ["run", "carry.rules", "--live"])
    assert res.exit_code == 2
    assert "confirm a live run with --yes" in res.output
    assert SECRET not in res.output


def test_a_failing_exchange_is_reported_without_the_secret(rules: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    for k, v in _keys("binance").items():
        monkeypatch.setenv(k, v)
    # api_url to a closed local port: the connection is refused at once, nothing leaves
    monkeypatch.setenv("RULEBOOK_EXCHANGES__BINANCE__API_URL", "http://127.0.0.1:9")
    res = runner.invoke(app, ["run", "carry.rules", "--live", "--yes", "--no-watch"])
    assert res.exit_code == 2
    assert "binance: cannot load markets" in res.output
    assert SECRET not in res.output and "binance-key-0123456789" not in res.output


def test_paper_and_live_ledgers_do_not_mix(rules: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = Ledger(rules / "live.db")
    from rulebook.trading import LiveLedger

    LiveLedger(ledger)
    ledger.close()
    res = runner.invoke(app, ["run", "carry.rules", "--paper", "--db", "live.db", "--no-watch",
                              "--replay", "nope.jsonl"])  # fmt: skip
    assert res.exit_code == 2 and "nope.jsonl: recording not found" in res.output
    (rules / "rec.jsonl").write_text(  # one valid line: an empty replay is refused first
        '{"ts": 1719792000000, "exchange": "binance", "coin": "BTC", "market": "perp"}\n'
    )
    res = runner.invoke(app, ["run", "carry.rules", "--paper", "--db", "live.db", "--no-watch",
                              "--replay", "rec.jsonl"])  # fmt: skip
    assert res.exit_code == 2 and "live.db is a live ledger" in res.output
    paper = Ledger(rules / "paper.db")
    paper.record_cycle(CycleRecord(1, 1, "x", "replay", 0, 0, 0, 0, 0.0, 0.0))
    paper.close()
    for k, v in _keys("binance").items():
        monkeypatch.setenv(k, v)
    res = runner.invoke(app, ["run", "carry.rules", "--live", "--yes", "--db", "paper.db"])
    assert res.exit_code == 2 and "a paper ledger; a live run needs its own ledger" in res.output


# -- a live run through the application layer ----------------------------------------------
def _setup(tmp_path: Path, server: FakeBinance):
    env = _keys("binance") | {"RULEBOOK_LIVE__LEG_TIMEOUT": "5s"}
    cfg = load_config(environ=env).model_copy(update={"ledger": str(tmp_path / "live.db")})
    ruleset = load_texts({"carry.rules": CARRY}).ruleset
    assert ruleset is not None

    def factory(name: str, config: dict):
        assert name == "binance" and config["secret"] == SECRET and config["enableRateLimit"]
        return server.client()

    return cfg, ruleset, factory


def _view(at: int, rate: float, price: float = 50_000.0) -> SnapshotView:
    return SnapshotView.from_observations([
        Observation.checked(ts=at, exchange="binance", coin="BTC", market="perp", symbol="BTC/USDT:USDT",
                    funding_rate=rate, funding_interval_h=8, next_funding_ts=at + 3_600_000,
                    mark=price, index=price, bid=price - 1, ask=price + 1),
        Observation.checked(ts=at, exchange="binance", coin="BTC", market="spot", symbol="BTC/USDT",
                    bid=price - 1, ask=price + 1),
    ])  # fmt: skip


def test_prepare_live_asks_and_a_no_sends_nothing(tmp_path: Path) -> None:
    server = FakeBinance()
    cfg, ruleset, factory = _setup(tmp_path, server)
    ledger = Ledger(cfg.ledger)
    asked: list[str] = []
    with pytest.raises(LiveRefused, match="not confirmed"):
        prepare_live(ruleset, cfg, ledger, yes=False, err=Console(),
                     confirm=lambda q: asked.append(q) or False, factory=factory)  # fmt: skip
    assert "binance (REAL MONEY)" in asked[0]
    assert not [c for c in server.calls if c[0] == "POST"]


def test_live_runtime_opens_closes_and_reconciles_through_ccxt(tmp_path: Path) -> None:
    server = FakeBinance()
    cfg, ruleset, factory = _setup(tmp_path, server)
    ledger = Ledger(cfg.ledger)
    ex = prepare_live(ruleset, cfg, ledger, yes=True, err=Console(), confirm=lambda q: False,
                      factory=factory)  # fmt: skip
    runtime = Runtime(RulesetHolder(ruleset), cfg, ledger, source="live", executor=ex)
    t0 = 1_753_112_400_000
    report = runtime.cycle(_view(t0, 0.0005))
    assert report.opened == 1
    assert server.position == -0.019 and server.spot_btc == 0.019
    (p,) = sql(ledger, "select * from positions")
    assert p["status"] == "open" and p["rule"] == "btc_carry"
    assert len(sql(ledger, "select * from fills")) == 2
    assert sql(ledger, "select count(*) as n from cycles")[0]["n"] == 1
    # the exit clause holds: both legs close, the perp reduce-only
    report = runtime.cycle(_view(t0 + 60_000, -0.0001))
    assert report.closed == 1 and server.position == 0 and server.spot_btc == 0
    closes = [o for o in server.orders if o.client_id[-2] == "c"]
    assert {(o.kind, o.side, o.reduce_only) for o in closes} == {("perp", "BUY", True),
                                                                 ("spot", "SELL", False)}  # fmt: skip
    status = runner.invoke(app, ["status", "--db", cfg.ledger, "--json"])
    assert '"mode": "live"' in status.output and '"funding_reported": 0' in status.output


def test_halt_close_all_without_a_runtime_closes_on_the_exchange(tmp_path: Path) -> None:
    server = FakeBinance()
    cfg, ruleset, factory = _setup(tmp_path, server)
    ledger = Ledger(cfg.ledger)
    ex = prepare_live(ruleset, cfg, ledger, yes=True, err=Console(), confirm=lambda q: False,
                      factory=factory)  # fmt: skip
    runtime = Runtime(RulesetHolder(ruleset), cfg, ledger, source="live", executor=ex)
    runtime.cycle(_view(1_753_112_400_000, 0.0005))
    assert server.position == -0.019
    ledger.close()
    # a new process (no runtime running): `rulebook halt --close-all`
    server.prices["BTCUSDT"] = 50_100.0
    ledger = Ledger(cfg.ledger)
    closed, left = close_all_live(cfg, ledger, err=Console(), factory=factory)
    assert (closed, left) == (1, 0)
    assert server.position == 0 and server.spot_btc == 0
    assert sql(ledger, "select status, close_reason from positions")[0] == {
        "status": "closed", "close_reason": "halt --close-all"}
    # the spot leg sold as an IOC limit under the ticker's bid, the perp bought back
    spot_close = [o for o in server.orders if o.kind == "spot" and o.side == "SELL"]
    assert spot_close[0].type == "LIMIT" and spot_close[0].price < 50_099.0
    assert any(path.endswith("/ticker/24hr") for _, path in server.calls)


def test_market_data_follows_testnet_and_api_url() -> None:
    import asyncio

    from rulebook.app import market_clients

    cfg = load_config(environ={"RULEBOOK_EXCHANGES__BYBIT__TESTNET": "true",
                               "RULEBOOK_EXCHANGES__GATE__API_URL": "http://127.0.0.1:8080/g"})
    clients = market_clients(cfg, ["binance", "bybit", "gate"])
    try:
        assert set(clients) == {"bybit", "gate"}  # binance: the default public client
        assert "testnet" in clients["bybit"].urls["api"]["public"]
        assert str(clients["gate"].urls["api"]["public"]["spot"]).startswith(
            "http://127.0.0.1:8080/g/")
    finally:
        async def close_all() -> None:
            for c in clients.values():
                await c.close()

        asyncio.run(close_all())


def test_halt_close_all_does_not_trade_beside_a_runtime_holding_the_lock(rules: Path) -> None:
    from rulebook.trading import LiveLedger, RuntimeLock

    ledger = Ledger(rules / "live.db")
    LiveLedger(ledger)
    ledger.close()
    with RuntimeLock(rules / "live.db").hold("rulebook run carry.rules --live"):
        res = runner.invoke(app, ["halt", "--close-all", "--db", "live.db"])
    # no keys are set: had it tried to close from here, it would have refused for keys
    assert "missing" not in res.output
    assert "requested halt and close all positions" in " ".join(res.output.split())
