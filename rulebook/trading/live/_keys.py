"""API keys: where they come from, which are missing, and how they are kept out of text.

Keys come from `RULEBOOK_EXCHANGES__<NAME>__API_KEY` / `__SECRET` / `__PASSWORD`
(the configuration's environment overrides) or from the `keys_file` the
configuration names; the environment wins. They are held as pydantic
`SecretStr` from the moment they are read: their repr is masked, and the one
place that unwraps them is the ccxt client factory. Every text rulebook
writes about an exchange (events, notifications, errors) goes through
`Redactor`, which replaces any key it holds with `***`.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from rulebook._text import register_secret
from rulebook.market import PROFILES

from .._config import ConfigError, TradingConfig

__all__ = [
    "Credentials",
    "Redactor",
    "describe_missing",
    "load_credentials",
    "missing_keys",
    "needs_password",
]

MASK = "***"

def needs_password(exchange: str) -> bool:
    """Whether the exchange's API keys come with a passphrase (ccxt's `password`)."""
    profile = PROFILES.get(exchange)
    return profile is not None and profile.needs_password


@dataclass(frozen=True, slots=True)
class Credentials:
    """One exchange's keys; `repr` and `str` never show them."""

    exchange: str
    api_key: SecretStr | None = None
    secret: SecretStr | None = None
    password: SecretStr | None = None

    def missing(self) -> list[str]:
        """The key fields this exchange needs that are not set."""
        need = ["api_key", "secret"] + (["password"] if needs_password(self.exchange) else [])
        return [f for f in need if not _value(getattr(self, f))]

    def secrets(self) -> list[str]:
        return [v for v in (_value(self.api_key), _value(self.secret), _value(self.password)) if v]


def _value(s: SecretStr | None) -> str:
    return "" if s is None else s.get_secret_value()


def _read_keys_file(path: Path) -> dict[str, dict[str, SecretStr]]:
    """The keys file: one TOML table per exchange with api_key, secret, password."""
    try:
        mode = path.stat().st_mode
    except OSError as e:
        raise ConfigError(f"keys_file {path}: cannot read: {e.strerror or e}") from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"keys_file {path}: readable by other users; run `chmod 600 {path}` first"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        # tomllib's message names a line and column, never the file's text
        raise ConfigError(f"keys_file {path}: not valid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"keys_file {path}: cannot read: {e}") from None
    out: dict[str, dict[str, SecretStr]] = {}
    for name, table in data.items():
        if not isinstance(table, Mapping):
            raise ConfigError(f"keys_file {path}: [{name}] must be a table of keys")
        keys: dict[str, SecretStr] = {}
        for field, value in table.items():
            if field not in ("api_key", "secret", "password"):
                raise ConfigError(
                    f"keys_file {path}: [{name}] {field}: unknown key "
                    "(expected api_key, secret, password)"
                )
            if not isinstance(value, str):
                raise ConfigError(f"keys_file {path}: [{name}] {field}: must be a string")
            keys[field] = SecretStr(value)
        out[str(name)] = keys
    return out


def load_credentials(config: TradingConfig, base: Path | None = None) -> dict[str, Credentials]:
    """Every exchange's keys: the configuration's (from the environment) over the keys file."""
    from_file: dict[str, dict[str, SecretStr]] = {}
    if config.keys_file:
        path = Path(config.keys_file).expanduser()
        if not path.is_absolute() and base is not None:
            path = base / path
        from_file = _read_keys_file(path)
        unknown = sorted(set(from_file) - set(config.exchanges))
        if unknown:
            raise ConfigError(f"keys_file {path}: unknown exchange(s): {', '.join(unknown)}")
    for keys in from_file.values():
        for value in keys.values():  # masked in every message from now on, like the config's
            register_secret(value.get_secret_value())
    creds: dict[str, Credentials] = {}
    for name, ex in config.exchanges.items():
        f = from_file.get(name, {})
        creds[name] = Credentials(
            name,
            api_key=ex.api_key or f.get("api_key"),
            secret=ex.secret or f.get("secret"),
            password=ex.password or f.get("password"),
        )
    return creds


def missing_keys(creds: Mapping[str, Credentials], exchanges: Iterable[str]) -> dict[str, list[str]]:
    """Per exchange the ruleset can trade, the key fields that are missing (none: omitted)."""
    out: dict[str, list[str]] = {}
    for name in exchanges:
        c = creds.get(name, Credentials(name))
        gap = c.missing()
        if gap:
            out[name] = gap
    return out


def describe_missing(missing: Mapping[str, list[str]]) -> str:
    """'binance (api_key, secret), okx (password)' with the variables that would set them."""
    parts = []
    for name, fields in missing.items():
        vars_ = ", ".join(f"RULEBOOK_EXCHANGES__{name.upper()}__{f.upper()}" for f in fields)
        parts.append(f"{name} ({vars_})")
    return "; ".join(parts)


class Redactor:
    """Replaces every secret it holds with `***` in any text; short values are ignored
    (a 3-character 'secret' would mask ordinary words)."""

    def __init__(self, creds: Iterable[Credentials] = ()) -> None:
        self._secrets: list[str] = []
        for c in creds:
            self.add(*c.secrets())

    def add(self, *secrets: str) -> None:
        for s in secrets:
            if s and len(s) >= 6 and s not in self._secrets:
                self._secrets.append(s)
        self._secrets.sort(key=len, reverse=True)  # a key inside another is masked whole

    def __call__(self, text: object) -> str:
        out = str(text)
        for s in self._secrets:
            out = out.replace(s, MASK)
        return out
