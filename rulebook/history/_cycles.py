"""What the rules see at each cycle of a backtest: a history turned into a recording.

History holds what settled; rules read what an exchange *shows* (spec 9: a
perp observation's ``funding_rate`` is the rate shown at ``ts`` for the
settlement at ``next_funding_ts``). A history has no record of what was
shown, so the backtest has to choose, and says which it chose:

``last-settled`` (the default, conservative)
    A cycle at every settlement time s. The rules see the rate that settled
    at s as the current rate, with the next settlement one interval later.
    Nothing from the future is used: a position opened at s is first paid at
    the next settlement, at the rate that settles *then*, which the rules did
    not see. This is a persistence forecast, the worst a live exchange's
    predicted rate would be.

``next-settlement`` (optimistic)
    A cycle one minute before every settlement s. The rules see the rate that
    *will* settle at s, as an exchange's predicted rate shows it a minute
    before (nearly final by then), and prices as at s. A position opened then
    is paid at s. This is the look-ahead a recording like the shipped example
    has: an upper bound, not a result.

Prices are used only where observed: a perp observation carries a mark only
when the history has a price (or a settlement mark) at that time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._format import History

__all__ = ["LOOKAHEADS", "LOOKAHEAD_TEXT", "RecordingStats", "build_recording", "write_recording"]

LOOKAHEADS = ("last-settled", "next-settlement")

LOOKAHEAD_TEXT = {
    "last-settled": (
        "at each settlement time s the rules saw the rate that settled at s (the last "
        "settled rate) as the current rate; positions opened at s were paid from the next "
        "settlement on, at rates the rules had not seen (no look-ahead)"
    ),
    "next-settlement": (
        "one minute before each settlement s the rules saw the rate that settled at s, as "
        "an exchange's predicted rate shows it then, and prices as at s (optimistic: the "
        "last minute of the premium is look-ahead)"
    ),
}

_H = 3_600_000
LEAD_MS = 60_000


@dataclass(frozen=True, slots=True)
class RecordingStats:
    lookahead: str
    cycles: int
    observations: int
    settlements: int
    start: int | None
    end: int | None


def _settlements_readable() -> bool:
    """Whether the market stage reads settlement records (spec 9) in a recording."""
    import rulebook.market as market

    return hasattr(market, "Settlement")


def _at(ts: np.ndarray, t: int) -> int | None:
    """Index of the observation at exactly t, if any."""
    i = int(np.searchsorted(ts, t))
    return i if i < ts.size and int(ts[i]) == t else None


def _events(
    history: History, start: int | None, end: int | None
) -> dict[tuple[str, str], list[int]]:
    """Per perp series: the times it has something (a settlement or a perp price)."""
    out: dict[tuple[str, str], list[int]] = {}
    for key, s in history.settlements.items():
        times = set(s.ts.tolist())
        p = history.prices.get((key[0], key[1], "perp"))
        if p is not None:
            times.update(p.ts.tolist())
        out[key] = sorted(
            t for t in times if (start is None or t >= start) and (end is None or t <= end)
        )
    return out


def build_recording(
    history: History,
    lookahead: str = "last-settled",
    start: int | None = None,
    end: int | None = None,
) -> Iterator[dict[str, Any]]:
    """The observations (and settlement records) of the backtest, unsorted."""
    if lookahead not in LOOKAHEADS:
        raise ValueError(f"lookahead {lookahead!r}: expected one of {', '.join(LOOKAHEADS)}")
    lead = LEAD_MS if lookahead == "next-settlement" else 0
    with_settlements = _settlements_readable()
    for (ex, coin), times in _events(history, start, end).items():
        s = history.settlements[(ex, coin)]
        p = history.prices.get((ex, coin, "perp"))
        spot = history.prices.get((ex, coin, "spot"))
        for t in times:
            if lookahead == "last-settled":
                j = int(np.searchsorted(s.ts, t, side="right")) - 1
                if j < 0:
                    continue  # nothing has settled yet: no rate to show
                step = int(round(float(s.interval_h[j]) * _H))
                nxt = int(s.ts[j]) + step
                while nxt <= t:
                    nxt += step
            else:
                j = int(np.searchsorted(s.ts, t, side="left"))
                if j >= s.ts.size:
                    continue  # no later settlement: nothing to forecast
                nxt = int(s.ts[j])
            obs: dict[str, Any] = {
                "ts": t - lead,
                "exchange": ex,
                "coin": coin,
                "market": "perp",
                "funding_rate": float(s.rate[j]),
                "funding_interval_h": float(s.interval_h[j]),
                "next_funding_ts": nxt,
            }
            k = None if p is None else _at(p.ts, t)
            if p is not None and k is not None:
                obs["mark"] = float(p.price[k])
                if np.isfinite(p.index[k]):
                    obs["index"] = float(p.index[k])
                if np.isfinite(p.volume[k]):
                    obs["volume_24h"] = float(p.volume[k])
            else:
                i = _at(s.ts, t)
                if i is not None and np.isfinite(s.mark[i]):
                    obs["mark"] = float(s.mark[i])
            yield obs
            if spot is not None and (k := _at(spot.ts, t)) is not None:
                sp: dict[str, Any] = {
                    "ts": t - lead,
                    "exchange": ex,
                    "coin": coin,
                    "market": "spot",
                    "bid": float(spot.price[k]),
                    "ask": float(spot.price[k]),
                }
                if np.isfinite(spot.volume[k]):
                    sp["volume_24h"] = float(spot.volume[k])
                yield sp
        if with_settlements:
            for i in range(s.ts.size):
                ts = int(s.ts[i])
                if (start is not None and ts < start) or (end is not None and ts > end):
                    continue
                rec: dict[str, Any] = {
                    "ts": ts,
                    "exchange": ex,
                    "coin": coin,
                    "market": "settlement",
                    "funding_rate": float(s.rate[i]),
                    "funding_interval_h": float(s.interval_h[i]),
                }
                if np.isfinite(s.mark[i]):
                    rec["mark"] = float(s.mark[i])
                yield rec


_ORDER = {"settlement": 0, "perp": 1, "spot": 2, "borrow": 3}


def write_recording(
    history: History,
    path: str | os.PathLike[str],
    lookahead: str = "last-settled",
    start: int | None = None,
    end: int | None = None,
) -> RecordingStats:
    """Write what the rules see, in time order, as a snapshot file (spec 9)."""
    rows = sorted(
        build_recording(history, lookahead, start, end),
        key=lambda r: (r["ts"], r["exchange"], r["coin"], _ORDER[r["market"]]),
    )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, separators=(",", ":")) + "\n")
    cycles = {r["ts"] for r in rows if r["market"] != "settlement"}
    return RecordingStats(
        lookahead=lookahead,
        cycles=len(cycles),
        observations=sum(r["market"] != "settlement" for r in rows),
        settlements=sum(r["market"] == "settlement" for r in rows),
        start=min(cycles) if cycles else None,
        end=max(cycles) if cycles else None,
    )
