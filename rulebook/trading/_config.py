"""The paper runtime's configuration: `rulebook.toml` plus `RULEBOOK_*` variables.

    every = "30s"                 # live cycle interval
    ledger = "rulebook.db"        # SQLite ledger
    slippage = 0.0005             # fill at mark -/+ this fraction when a book side is missing
    leverage = 1                  # margin reserved per leg = notional / leverage
    settle_wait = "10m"           # wait this long after a settlement for its settled rate

    [exchanges.binance]
    balance = 10000               # paper balance in the quote currency
    perp_taker_fee = 0.0005       # used when an observation carries no taker_fee
    spot_taker_fee = 0.001

    [notify]
    urls = ["tgram://bottoken/chatid", "mailto://user:pass@example.com"]

Environment variables override the file, one key each, nested keys joined by
double underscores: `RULEBOOK_EVERY=10s`, `RULEBOOK_EXCHANGES__GATE__BALANCE=5000`,
`RULEBOOK_NOTIFY__URLS=json://localhost:8080,tgram://t/c` (a comma-separated list).
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from rulebook._text import mask_secrets, register_secret
from rulebook.engine import EngineConfig, resolve_taker_fee
from rulebook.errors import RulebookError
from rulebook.market import EXCHANGES, PriceBand, parse_duration

__all__ = [
    "ConfigError",
    "ExchangeConfig",
    "LiveConfig",
    "NotifyConfig",
    "TradingConfig",
    "load_config",
]


def _seconds(value: object) -> float:
    """'30s', '5m', '1h' (the market stage's parser) or a positive number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 5m or 1h")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number of seconds")
        if not value > 0:
            raise ValueError("a duration must be longer than zero")
        seconds = float(value)
    else:
        seconds = parse_duration(str(value))
    if seconds > MAX_EVERY_S:
        raise ValueError(f"{value!r} is longer than a day; cycles run at least daily")
    return seconds


#: the longest cycle interval (`every`): a day
MAX_EVERY_S = 86_400.0
#: the largest balance (any figure beyond is a typo, and its sums overflow)
MAX_BALANCE = 1e15


class ConfigError(RulebookError):
    """A configuration problem, already phrased for the operator (key and source)."""


class _Strict(BaseModel):
    # allow_inf_nan=False: `balance = inf` (TOML has inf and nan) is an error naming the key
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ExchangeConfig(_Strict):
    balance: float = Field(10_000.0, ge=0, le=MAX_BALANCE)
    perp_taker_fee: float | None = Field(None, ge=0, lt=0.05)
    spot_taker_fee: float | None = Field(None, ge=0, lt=0.05)
    # -- live trading (docs/live.md) ------------------------------------------------
    #: trade on the exchange's testnet (ccxt sandbox mode)
    testnet: bool = False
    #: send every API request to this base URL instead (a proxy, a local endpoint)
    api_url: str | None = None
    #: per-exchange leverage and margin mode set at start-up where ccxt can
    leverage: float | None = Field(None, gt=0, le=100)
    margin_mode: Literal["cross", "isolated"] | None = None
    # Keys come from RULEBOOK_EXCHANGES__<NAME>__API_KEY / __SECRET / __PASSWORD or
    # from `keys_file`, never from rulebook.toml (load_config refuses them there).
    api_key: SecretStr | None = None
    secret: SecretStr | None = None
    password: SecretStr | None = None  # the passphrase of OKX and Bitget


class LiveConfig(_Strict):
    """How `rulebook run --live` trades (docs/live.md)."""

    #: "market", or "ioc": a limit order at the book's far side +/- ioc_slippage
    order_type: Literal["market", "ioc"] = "market"
    ioc_slippage: float = Field(0.002, ge=0, lt=0.05)
    #: the time within which a one-legged hedge is brought back to neutral
    leg_timeout: float = 30.0
    #: attempts to fill the missing part of a leg before the filled leg is reduced
    leg_retries: int = Field(2, ge=0, le=10)
    #: reconcile positions and balances with the exchanges every this many cycles
    reconcile_every: int = Field(5, ge=1)
    #: a position difference beyond this fraction of the expected size stops entries
    position_tolerance: float = Field(0.01, ge=0, lt=1)
    #: exchange-reported funding differing from the ledger's by more than this
    #: fraction of the payment (or 0.01 in money, whichever is larger) is an event
    funding_tolerance: float = Field(0.05, ge=0)

    @field_validator("leg_timeout", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return _seconds(v)


class NotifyConfig(_Strict):
    urls: list[str] = Field(default_factory=list)
    # Which events notify: open, close, risk, outage, halt, alert, error, interval
    # (a held leg's funding interval changed), funding (a settlement paid at the
    # estimate, or one whose rate nothing showed).
    events: list[str] = Field(
        default_factory=lambda: [
            "open", "close", "risk", "outage", "halt", "alert", "error", "interval", "funding",
        ]
    )

    @field_validator("urls", "events", mode="before")
    @classmethod
    def _comma_list(cls, v: object) -> object:
        if isinstance(v, str):
            return [s.strip() for s in v.split(",") if s.strip()]
        return v

    @field_validator("events")
    @classmethod
    def _known_events(cls, v: list[str]) -> list[str]:
        known = {
            "open", "close", "risk", "outage", "halt", "alert", "error", "reload", "interval",
            "funding",
        }
        for e in v:
            if e not in known:
                raise ValueError(f"unknown event {e!r}; known: {', '.join(sorted(known))}")
        return v


def _default_exchanges() -> dict[str, ExchangeConfig]:
    return {name: ExchangeConfig() for name in EXCHANGES}


class PriceBandConfig(_Strict):
    """`[price_band]`: when a price is implausible and rejected for the cycle (docs/limits.md)."""

    #: the largest move from the market's previous accepted price (0.5 = 50%)
    jump: float = Field(0.5, gt=0, le=100)
    #: the largest distance from the median of the other venues' prices (0.25 = 25%)
    venues: float = Field(0.25, gt=0, le=100)
    #: other venues a cross-venue check needs
    min_venues: int = Field(2, ge=1, le=10)
    #: consecutive observations at a new level that make it accepted
    confirm: int = Field(3, ge=1, le=1000)

    def band(self) -> PriceBand:
        return PriceBand(self.jump, self.venues, self.min_venues, self.confirm)


class TradingConfig(_Strict):
    every: float = 30.0  # seconds
    ledger: str = "rulebook.db"
    slippage: float = Field(0.0005, ge=0, lt=0.05)
    leverage: float = Field(1.0, gt=0, le=100)
    #: seconds to wait after a settlement for the exchange's settled rate before paying
    #: the estimate (spec 11 step 1; docs/settlement.md); a replay counts recording time
    settle_wait: float = Field(600.0, ge=0, le=86_400)
    exchanges: dict[str, ExchangeConfig] = Field(default_factory=_default_exchanges)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    live: LiveConfig = Field(default_factory=LiveConfig)
    price_band: PriceBandConfig = Field(default_factory=PriceBandConfig)
    #: a TOML file of keys, one table per exchange (docs/live.md); mode 600
    keys_file: str | None = None

    @field_validator("every", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return _seconds(v)

    @field_validator("settle_wait", mode="before")
    @classmethod
    def _wait(cls, v: object) -> float:
        if v == 0 or v == "0":  # pay the estimate at once
            return 0.0
        return _seconds(v)

    @field_validator("exchanges", mode="before")
    @classmethod
    def _exchange_names(cls, v: object) -> object:
        if not isinstance(v, Mapping):
            return v
        merged: dict[str, Any] = {name: {} for name in EXCHANGES}
        for name, section in v.items():
            if name not in EXCHANGES:
                raise ValueError(f"unknown exchange {name!r}; known: {', '.join(EXCHANGES)}")
            merged[name] = section
        return merged

    def engine_config(self) -> EngineConfig:
        """The engine's view of this configuration: the configured taker fees."""
        fees: dict[str, dict[str, float]] = {}
        for name, ex in self.exchanges.items():
            by_market = {"perp": ex.perp_taker_fee, "spot": ex.spot_taker_fee}
            chosen = {m: f for m, f in by_market.items() if f is not None}
            if chosen:
                fees[name] = chosen
        return EngineConfig(taker_fees=fees)

    def taker_fee(self, exchange: str, market: str, observed: float | None = None) -> float:
        """The observation's fee, else the configuration's, else the published default
        (the engine's table, so that dry-run figures and paper fills agree)."""
        return resolve_taker_fee(exchange, market, observed, self.engine_config().taker_fees)[0]

    def balances(self) -> dict[str, float]:
        return {name: ex.balance for name, ex in self.exchanges.items()}


def _env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """RULEBOOK_A__B=v to {"a": {"b": "v"}}; also returns key path -> variable name."""
    tree: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for var, value in environ.items():
        if not var.startswith("RULEBOOK_") or var == "RULEBOOK_CONFIG":
            continue
        path = [p.lower() for p in var.removeprefix("RULEBOOK_").split("__")]
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{var}: conflicts with another RULEBOOK_ variable")
        node[path[-1]] = value
        origin[".".join(path)] = var
    return tree, origin


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


def _describe(err: ValidationError, source: str, origin: Mapping[str, str]) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        where = _origin_of(key, origin)
        place = f"environment variable {where}" if where else source
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        else:
            msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{place}: {key}: {msg}")
    return "\n".join(lines)


def _origin_of(key: str, origin: Mapping[str, str]) -> str | None:
    """The variable that set `key`, or a key under it or above it (an error on
    `exchanges` may come from RULEBOOK_EXCHANGES__BINANSE__BALANCE)."""
    if key in origin:
        return origin[key]
    for k, var in origin.items():
        if k.startswith(key + ".") or key.startswith(k + "."):
            return var
    return None


_KEY_FIELDS = ("api_key", "secret", "password")


def _refuse_keys_in_file(data: Mapping[str, Any], file: Path) -> None:
    """API keys in rulebook.toml end up in version control and backups: refuse them."""
    exchanges = data.get("exchanges")
    if not isinstance(exchanges, Mapping):
        return
    for name, section in exchanges.items():
        if isinstance(section, Mapping):
            for key in _KEY_FIELDS:
                if key in section:
                    var = f"RULEBOOK_EXCHANGES__{str(name).upper()}__{key.upper()}"
                    raise ConfigError(
                        f"{file}: exchanges.{name}.{key}: keys do not belong in the "
                        f"configuration file; set {var} or name a keys_file (docs/live.md)"
                    )


def load_config(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> TradingConfig:
    """Read the configuration; raise ConfigError naming the key and its file or variable.

    Without a path, `rulebook.toml` in the working directory is read when it
    exists (RULEBOOK_CONFIG names another); an explicit path must exist.
    """
    env = os.environ if environ is None else environ
    explicit = path is not None or "RULEBOOK_CONFIG" in env
    file = Path(path if path is not None else env.get("RULEBOOK_CONFIG", "rulebook.toml"))
    data: dict[str, Any] = {}
    if file.exists():
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{file}: not valid TOML: {e}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{file}: cannot read: {e}") from None
    elif explicit:
        raise ConfigError(f"{file}: configuration file not found")
    _refuse_keys_in_file(data, file)
    overrides, origin = _env_overrides(env)
    try:
        config = TradingConfig.model_validate(_merge(data, overrides))
    except ValidationError as e:
        source = str(file) if file.exists() else "configuration"
        raise ConfigError(mask_secrets(_describe(e, source, origin))) from None
    _register_secrets(config)
    return config


def _register_secrets(config: TradingConfig) -> None:
    """Every key and notification URL is masked in every message from now on."""
    for url in config.notify.urls:
        register_secret(url)
    for ex in config.exchanges.values():
        for secret in (ex.api_key, ex.secret, ex.password):
            if secret is not None:
                register_secret(secret.get_secret_value())
