"""rulebook: a declarative rules engine for crypto funding-rate arbitrage.

The stages, in the order data flows (docs/architecture.md): `rulebook.lang`
(text to a checked ruleset), `rulebook.market` (snapshots), `rulebook.engine`
(evaluation), `rulebook.trading` (executors, ledger, runtime), `rulebook.reload`
(hot reload), `rulebook.app` (what the commands do and print), `rulebook.cli`.
Every error rulebook raises on purpose is a `RulebookError` (`rulebook.errors`).
"""

from __future__ import annotations

from rulebook.errors import RulebookError

__version__ = "0.1.0"

__all__ = ["RulebookError", "__version__"]
