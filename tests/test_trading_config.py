"""Configuration: the file, the environment, and errors that name the key and the place."""

from __future__ import annotations

import pytest

from rulebook.trading import ConfigError, load_config


def test_defaults_without_a_file(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(environ={})
    assert cfg.every == 30.0 and cfg.ledger == "rulebook.db" and cfg.slippage == 0.0005
    assert cfg.balances() == {
        e: 10_000.0 for e in ("backpack", "binance", "bybit", "okx", "gate", "bitget")
    }


def test_file_and_environment(tmp_path) -> None:
    f = tmp_path / "rulebook.toml"
    f.write_text(
        'every = "1m"\n[exchanges.gate]\nbalance = 2500\nperp_taker_fee = 0.0004\n'
        '[notify]\nurls = ["json://localhost:1/x"]\n'
    )
    cfg = load_config(
        f, environ={"RULEBOOK_EXCHANGES__BINANCE__BALANCE": "700", "RULEBOOK_SLIPPAGE": "0.001"}
    )
    assert cfg.every == 60.0
    assert cfg.exchanges["gate"].balance == 2500 and cfg.exchanges["binance"].balance == 700
    assert cfg.exchanges["okx"].balance == 10_000  # untouched exchanges keep the default
    assert cfg.slippage == 0.001
    assert cfg.taker_fee("gate", "perp") == 0.0004  # configured
    assert cfg.taker_fee("gate", "perp", 0.0002) == 0.0002  # the observation wins
    assert cfg.notify.urls == ["json://localhost:1/x"]


def test_typo_names_key_and_file(tmp_path) -> None:
    f = tmp_path / "rulebook.toml"
    f.write_text("[exchanges.binance]\nbalanse = 5\n")
    with pytest.raises(ConfigError) as e:
        load_config(f, environ={})
    assert str(e.value) == f"{f}: exchanges.binance.balanse: unknown key; did you mean 'balance'?"


def test_bad_value_names_key_and_file(tmp_path) -> None:
    f = tmp_path / "rulebook.toml"
    f.write_text('every = "soon"\n[exchanges.binanse]\nbalance = 1\n')
    with pytest.raises(ConfigError) as e:
        load_config(f, environ={})
    msg = str(e.value)
    assert (
        f"{f}: every: 'soon' is not a duration; write a number and a unit, like 30s, 5m or 1h"
        in msg
    )
    assert f"{f}: exchanges: unknown exchange 'binanse'; did you mean 'binance'?" in msg


@pytest.mark.parametrize("text, message", [
    ('evry = "30s"\n', "evry: unknown key; did you mean 'every'?"),
    ("[notfy]\nurls = []\n", "notfy: unknown key; did you mean 'notify'?"),
    ('[notify]\nevents = ["opne"]\n', "notify.events: unknown event 'opne'; did you mean 'open'?"),
    ("[live]\nlegtimeout = 1\n", "live.legtimeout: unknown key; did you mean 'leg_timeout'?"),
    ("colour = 1\n", "colour: unknown key"),  # nothing close: no guess
])
def test_config_errors_say_what_was_meant(tmp_path, text, message) -> None:
    f = tmp_path / "rulebook.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(f, environ={})
    assert str(e.value) == f"{f}: {message}"


def test_missing_named_file(tmp_path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(environ={"RULEBOOK_CONFIG": "/nonexistent.toml"})
    assert str(e.value) == "/nonexistent.toml: configuration file not found"
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "absent.toml", environ={})
    assert "configuration file not found" in str(e.value)


def test_bad_environment_variable(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as e:
        load_config(environ={"RULEBOOK_SLIPPAGE": "lots"})
    assert str(e.value).startswith("environment variable RULEBOOK_SLIPPAGE: slippage: ")
    with pytest.raises(ConfigError) as e:
        load_config(environ={"RULEBOOK_SLIPAGE": "0.1"})
    assert str(e.value) == (
        "environment variable RULEBOOK_SLIPAGE: slipage: unknown key; did you mean 'slippage'?"
    )


def test_invalid_toml(tmp_path) -> None:
    f = tmp_path / "rulebook.toml"
    f.write_text("every = \n")
    with pytest.raises(ConfigError) as e:
        load_config(f, environ={})
    assert str(e.value).startswith(f"{f}: not valid TOML:")
