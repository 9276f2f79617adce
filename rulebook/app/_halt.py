"""`rulebook halt --close-all` when no runtime runs: close the paper book here, now.

    closed = close_all_offline(config, ledger)   # [(position id, pnl), ...]

A running runtime closes at its next cycle's prices. With none running there
are no fresh prices, so each leg closes at the last mark the ledger holds (its
last complete cycle), minus or plus the configured slippage, like a forced
close of a halt, and the closes are stamped at that cycle's time.
"""

from __future__ import annotations

import time

from rulebook.market import SnapshotView
from rulebook.trading import Ledger, PaperExecutor, TradingConfig

__all__ = ["close_all_offline"]

REASON = "halt --close-all (no runtime running: at the last marks)"


def close_all_offline(config: TradingConfig, ledger: Ledger) -> tuple[int, list[tuple[int, float]]]:
    """Close every open paper position at its last mark; returns (the time used, closed
    positions with their pnl). Writes one transaction and a `halt` event."""
    ex = PaperExecutor(config, ledger)
    t = ledger.last_cycle_ts() or int(time.time() * 1000)
    no_prices = SnapshotView(t, {})  # every leg falls back to its last mark (force)
    closed: list[tuple[int, float]] = []
    with ledger.cycle():
        for p in list(ex.positions.values()):
            if ex.close(p, no_prices, t, REASON, force=True).closed:
                closed.append((p.id, p.pnl))
        ex.persist(t)
        ledger.mark_halts_handled()
        ledger.record_event(
            "halt",
            f"halted by rulebook halt --close-all with no runtime running; closed "
            f"{len(closed)} position(s) at their last marks",
        )
    ex.drain_events()  # the positions, orders and fills tables hold the closes
    return t, closed
