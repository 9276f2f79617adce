"""rulebook: a declarative rules engine for crypto funding-rate arbitrage."""

from __future__ import annotations

__version__ = "0.1.0"
