"""Step 1 of the cycle (spec section 11): which funding settlements are due, and paying them.

The runtime decides what is due; the executor pays it (`Executor.settle_funding`)
and charges borrow interest (`Executor.accrue_borrow`). Each perp leg remembers
the next settlement it saw and the rate shown for it (`PaperLeg.next_funding_ts`,
`funding_rate`, kept in the ledger with the position so a restart resumes).
"""

from __future__ import annotations

from rulebook.market import SnapshotView

from ._book import PaperLeg, PaperPosition
from ._executor import Executor, Settlement

__all__ = ["due_settlement", "settle_cycle", "watch_funding", "watch_position"]


def settle_cycle(executor: Executor, view: SnapshotView, t: int) -> float:
    """Pay every settlement due at or before `t` on every open perp leg, and accrue
    borrow interest on borrowed spot legs; returns the funding paid this cycle."""
    total = 0.0
    for p in list(executor.positions.values()):
        for leg in p.legs:
            if leg.market == "perp":
                s = due_settlement(p, leg, view, t)
                if s is not None:
                    paid = executor.settle_funding(p, leg, s)
                    if paid is not None:
                        total += paid.amount
                watch_funding(p, leg, view, t)
            elif leg.borrowed:
                executor.accrue_borrow(p, leg, view, t)
    return total


def due_settlement(
    p: PaperPosition, leg: PaperLeg, view: SnapshotView, t: int
) -> Settlement | None:
    """The settlement the leg saw coming, if it fell after the opening and by `t`:
    at the rate shown for it, on the mark of this cycle (else the leg's last)."""
    due, rate = leg.next_funding_ts, leg.funding_rate
    if due is None or rate is None or not p.opened_at < due <= t:
        return None
    obs = view.perp(leg.exchange, p.coin)
    if obs is not None and obs.mark is not None:
        mark, mark_source = obs.mark, "cycle"
    else:
        mark, mark_source = leg.mark, "last mark"
    return Settlement(leg.exchange, p.coin, due, rate, mark, None, "observed", mark_source)


def watch_funding(p: PaperPosition, leg: PaperLeg, view: SnapshotView, t: int) -> None:
    """Remember the next settlement and the rate that will settle then."""
    obs = view.perp(leg.exchange, p.coin)
    if obs is None or obs.next_funding_ts is None or obs.funding_rate is None:
        return  # keep what we knew: an outage does not forget a pending settlement
    if leg.next_funding_ts is not None and leg.next_funding_ts <= t:
        leg.next_funding_ts = None  # consumed (or not ours: opened after it)
    if obs.next_funding_ts > t or leg.next_funding_ts is None:
        leg.next_funding_ts = obs.next_funding_ts
        leg.funding_rate = obs.funding_rate


def watch_position(p: PaperPosition, view: SnapshotView, t: int) -> None:
    """Start watching a position opened at `t` for the settlements of its perp legs."""
    for leg in p.legs:
        if leg.market == "perp":
            watch_funding(p, leg, view, t)
