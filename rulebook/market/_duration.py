"""Durations as operators write them: 30s, 5m, 8h, 3d."""

from __future__ import annotations

import math
import re

__all__ = ["parse_duration"]

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")


def parse_duration(text: str) -> float:
    """Seconds in ``text`` (``"30s"``, ``"5m"``, ``"1.5h"``); ValueError with a hint otherwise."""
    m = _RE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration; write a number and a unit, like 30s, 5m or 1h")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not math.isfinite(seconds):
        raise ValueError(f"{text!r}: too long to be a duration")
    if seconds <= 0:
        raise ValueError(f"{text!r}: a duration must be longer than zero")
    return seconds
