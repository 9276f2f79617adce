"""What rulebook reads from ccxt's unified answers: positions, balances, funding payments.

Pure functions over ccxt's parsed structures, so each is tested on every
exchange's recorded responses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rulebook.market import PROFILES

__all__ = ["balance_amounts", "funding_records", "signed_positions"]


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if v == v and abs(v) != float("inf") else None


def signed_positions(
    positions: Iterable[Mapping[str, Any]], markets: Mapping[str, Mapping[str, Any]]
) -> dict[str, float]:
    """Coins per symbol, + long / - short (contracts x contract size; hedge-mode sides net)."""
    out: dict[str, float] = {}
    for pos in positions:
        sym = pos.get("symbol")
        contracts = _num(pos.get("contracts"))
        if sym is None or contracts is None:
            continue
        size = _num(pos.get("contractSize")) or _num((markets.get(sym) or {}).get("contractSize"))
        coins = abs(contracts) * (size or 1.0)
        sign = -1.0 if pos.get("side") == "short" else 1.0
        out[sym] = out.get(sym, 0.0) + sign * coins
    return out


def balance_amounts(balance: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """(free, total) per currency from a ccxt balance."""
    free = balance.get("free") or {}
    total = balance.get("total") or {}
    out: dict[str, tuple[float, float]] = {}
    for cur in set(free) | set(total):
        f, t = _num(free.get(cur)), _num(total.get(cur))
        if f is None and t is None:
            continue
        out[cur] = (f if f is not None else (t or 0.0), t if t is not None else (f or 0.0))
    return out



def funding_records(
    exchange: str, history: Iterable[Mapping[str, Any]]
) -> list[tuple[str, int, float, str | None, str]]:
    """(symbol, ts, amount received (+) or paid (-), currency, id) per reported payment."""
    # Some exchanges' unified `amount` is what the account paid (ccxt 4.5 passes Bybit's
    # `execFee` through: execValue x feeRate, positive when a long pays a positive rate).
    profile = PROFILES.get(exchange)
    sign = -1.0 if profile is not None and profile.funding_history_paid_positive else 1.0
    out = []
    for h in history:
        ts, amount = h.get("timestamp"), _num(h.get("amount"))
        if ts is None or amount is None or h.get("symbol") is None:
            continue
        out.append((str(h["symbol"]), int(ts), sign * amount, h.get("code"), str(h.get("id") or ts)))
    return out
