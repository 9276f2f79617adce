"""Keys: from the environment or a keys file, never from rulebook.toml, never in text."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rulebook.trading import ConfigError, load_config
from rulebook.trading.live import (
    Redactor,
    describe_missing,
    load_credentials,
    missing_keys,
    trading_client,
)

SECRET = "s3cr3t-value-never-shown"
KEY = "api-key-value-0123456789"


def test_keys_from_environment_are_secret_strings() -> None:
    env = {
        "RULEBOOK_EXCHANGES__BYBIT__API_KEY": KEY,
        "RULEBOOK_EXCHANGES__BYBIT__SECRET": SECRET,
    }
    cfg = load_config(environ=env)
    creds = load_credentials(cfg)
    assert creds["bybit"].secret is not None
    assert creds["bybit"].secret.get_secret_value() == SECRET
    for text in (repr(cfg), str(cfg), repr(creds), str(creds["bybit"])):
        assert SECRET not in text and KEY not in text
    assert missing_keys(creds, ["bybit"]) == {}


def test_missing_keys_are_named_with_their_variables() -> None:
    cfg = load_config(
        environ={"RULEBOOK_EXCHANGES__OKX__API_KEY": KEY, "RULEBOOK_EXCHANGES__OKX__SECRET": SECRET}
    )
    missing = missing_keys(load_credentials(cfg), ["okx", "binance"])
    # OKX keys come with a passphrase (ccxt's password)
    assert missing == {"okx": ["password"], "binance": ["api_key", "secret"]}
    text = describe_missing(missing)
    assert "RULEBOOK_EXCHANGES__OKX__PASSWORD" in text
    assert "RULEBOOK_EXCHANGES__BINANCE__API_KEY" in text


def test_keys_in_the_configuration_file_are_refused(tmp_path: Path) -> None:
    toml = tmp_path / "rulebook.toml"
    toml.write_text(f'[exchanges.binance]\nsecret = "{SECRET}"\n')
    with pytest.raises(ConfigError) as e:
        load_config(toml, environ={})
    assert "RULEBOOK_EXCHANGES__BINANCE__SECRET" in str(e.value)
    assert SECRET not in str(e.value)


def test_keys_file_must_be_private_and_is_read(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(
        f'[bitget]\napi_key = "{KEY}"\nsecret = "{SECRET}"\npassword = "passphrase-1"\n'
    )
    toml = tmp_path / "rulebook.toml"
    toml.write_text(f'keys_file = "{keys}"\n')
    os.chmod(keys, 0o644)
    cfg = load_config(toml, environ={})
    with pytest.raises(ConfigError, match="chmod 600"):
        load_credentials(cfg)
    os.chmod(keys, 0o600)
    creds = load_credentials(cfg)
    assert missing_keys(creds, ["bitget"]) == {}
    # the environment wins over the file
    cfg2 = load_config(toml, environ={"RULEBOOK_EXCHANGES__BITGET__API_KEY": "other-key-9876"})
    key = load_credentials(cfg2)["bitget"].api_key
    assert key is not None and key.get_secret_value() == "other-key-9876"


def test_bad_keys_file_messages_never_show_values(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(f'[bitget]\napi_key = "{KEY}"\nsecrett = "{SECRET}"\n')
    os.chmod(keys, 0o600)
    toml = tmp_path / "rulebook.toml"
    toml.write_text(f'keys_file = "{keys}"\n')
    with pytest.raises(ConfigError) as e:
        load_credentials(load_config(toml, environ={}))
    assert "secrett: unknown key" in str(e.value)
    assert SECRET not in str(e.value) and KEY not in str(e.value)


def test_redactor_masks_every_key_in_any_text() -> None:
    cfg = load_config(
        environ={
            "RULEBOOK_EXCHANGES__BYBIT__API_KEY": KEY,
            "RULEBOOK_EXCHANGES__BYBIT__SECRET": SECRET,
        }
    )
    redact = Redactor(load_credentials(cfg).values())
    text = f"bybit GET https://x/?apiKey={KEY}&sig=1 failed: {SECRET}"
    out = redact(text)
    assert KEY not in out and SECRET not in out
    assert out == "bybit GET https://x/?apiKey=***&sig=1 failed: ***"


def test_client_factory_signs_with_the_keys_and_rate_limits() -> None:
    cfg = load_config(
        environ={
            "RULEBOOK_EXCHANGES__OKX__API_KEY": KEY,
            "RULEBOOK_EXCHANGES__OKX__SECRET": SECRET,
            "RULEBOOK_EXCHANGES__OKX__PASSWORD": "passphrase-1",
            "RULEBOOK_EXCHANGES__OKX__TESTNET": "true",
        }
    )
    creds = load_credentials(cfg)
    client = trading_client("okx", creds["okx"], cfg.exchanges["okx"])
    assert client.apiKey == KEY and client.secret == SECRET and client.password == "passphrase-1"
    assert client.enableRateLimit is True and client.verbose is False
    # ccxt's sandbox mode: OKX's demo trading header
    assert client.headers.get("x-simulated-trading") == "1"


def test_testnet_refused_where_ccxt_has_no_sandbox() -> None:
    from rulebook.trading.live import ClientError

    cfg = load_config(environ={"RULEBOOK_EXCHANGES__BACKPACK__TESTNET": "true"})
    with pytest.raises(ClientError, match="no sandbox for backpack"):
        trading_client("backpack", load_credentials(cfg)["backpack"], cfg.exchanges["backpack"])


def test_api_url_moves_every_endpoint_to_the_proxy() -> None:
    cfg = load_config(environ={"RULEBOOK_EXCHANGES__BINANCE__API_URL": "http://127.0.0.1:8080/bn"})
    client = trading_client("binance", load_credentials(cfg)["binance"], cfg.exchanges["binance"])
    urls = []

    def walk(u: object) -> None:
        if isinstance(u, dict):
            for v in u.values():
                walk(v)
        elif isinstance(u, str):
            urls.append(u)

    walk(client.urls["api"])
    assert urls and all(u.startswith("http://127.0.0.1:8080/bn/") for u in urls)
    assert "http://127.0.0.1:8080/bn/fapi/v1" in urls


def test_keys_file_secrets_are_masked_in_every_message(tmp_path: Path) -> None:
    from rulebook._text import mask_secrets

    keys = tmp_path / "keys.toml"
    keys.write_text('[gate]\napi_key = "gate-file-key-31337"\nsecret = "gate-file-secret-4242"\n')
    os.chmod(keys, 0o600)
    toml = tmp_path / "rulebook.toml"
    toml.write_text(f'keys_file = "{keys}"\n')
    load_credentials(load_config(toml, environ={}))
    assert mask_secrets("gate said: bad key gate-file-key-31337 / gate-file-secret-4242") == (
        "gate said: bad key *** / ***"
    )
