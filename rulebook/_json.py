"""Strict JSON out (spec 9 and 10): never ``NaN`` or ``Infinity``; an undefined figure is ``null``.

Python's ``json.dumps`` writes ``NaN`` and ``Infinity``, which no JSON parser
but Python's accepts. Every JSON rulebook prints or stores goes through
:func:`dumps`, which turns a non-finite float into ``null`` wherever it sits
and then dumps with ``allow_nan=False``, so a missed one is an error, not
invalid output.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["dumps", "finite_or_none"]


def finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float (at any depth) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` that writes strict JSON: non-finite numbers become ``null``."""
    return json.dumps(finite_or_none(value), allow_nan=False, **kwargs)
