"""Run statistics and the positions table, read from a ledger (what `rulebook status` prints).

Everything is read with SQL aggregates (sums, counts, the latest rows) and the
open positions (bounded by the book, not by the ledger's length), so memory does
not grow with the ledger: `ledger_status` lists the open positions and the
latest closed ones; `status_json` streams every position a row at a time;
`position_status` reads one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from rulebook.reload import position_rule_states
from rulebook.trading import FundingRecord, Ledger, LedgerReader, PositionRecord

from ._report import SHOWN_CLOSED

__all__ = ["ledger_status", "position_status", "status_json"]

_SHOWN_LEG = ("exchange", "market", "side", "size", "entry_price")


def _payment(f: FundingRecord) -> dict[str, Any]:
    """One funding payment as status shows it (docs/settlement.md): `source` is where
    the rate came from (settled | estimated), `mark_source` where the mark did."""
    return {
        "ts": f.ts,
        "exchange": f.exchange,
        "interval_h": f.interval_h,
        "rate": f.rate,
        "mark": f.mark,
        "size": f.size,
        "amount": f.amount,
        "source": f.rate_source,
        "mark_source": f.mark_source,
    }


def _venues(read: Any, open_positions: list[Any], leverage: float) -> list[dict[str, Any]]:
    """Per exchange: cash, the margin the open legs reserve (leg notional / leverage,
    as the executor reserves it), what is free, and the open legs' value by side."""
    rows: dict[str, dict[str, Any]] = {}
    for b in read.balances():
        rows[b.exchange] = {"exchange": b.exchange, "initial": b.initial, "cash": b.cash,
                            "margin": 0.0, "free": b.cash, "long": 0.0, "short": 0.0, "legs": 0}
    for p in open_positions:
        for leg in p.legs:
            row = rows.setdefault(leg.exchange, {
                "exchange": leg.exchange, "initial": 0.0, "cash": 0.0, "margin": 0.0,
                "free": 0.0, "long": 0.0, "short": 0.0, "legs": 0})
            row["margin"] += p.notional / leverage
            row["free"] -= p.notional / leverage
            row[leg.side] += leg.size * (leg.mark if leg.mark is not None else leg.entry_price)
            row["legs"] += 1
    return sorted(rows.values(), key=lambda r: r["exchange"])


def _coins(open_positions: list[Any]) -> list[dict[str, Any]]:
    """Per coin: the open legs' value long and short (at their last marks), and the net."""
    rows: dict[str, dict[str, Any]] = {}
    for p in open_positions:
        for leg in p.legs:
            row = rows.setdefault(
                p.coin, {"coin": p.coin, "long": 0.0, "short": 0.0, "net": 0.0, "venues": []})
            value = leg.size * (leg.mark if leg.mark is not None else leg.entry_price)
            row[leg.side] += value
            row["net"] += value if leg.side == "long" else -value
            if leg.exchange not in row["venues"]:
                row["venues"].append(leg.exchange)
    return sorted(rows.values(), key=lambda r: r["coin"])


class _Context:
    """What every position's row needs besides its own record."""

    def __init__(self, ledger: Ledger) -> None:
        self.read: LedgerReader = ledger.read
        self.live = self.read.mode() == "live"
        # open positions whose rule a reload changed or removed run on the exit
        # clause they were opened with (and the risk limits): status marks them
        self.rule_states = position_rule_states(ledger)

    def row(self, p: PositionRecord, reported: dict[int, float]) -> dict[str, Any]:
        return {
            "id": p.id,
            "rule": p.rule,
            # open positions only: current | changed | removed | unknown
            "rule_state": self.rule_states.get(p.id),
            "bindings": p.bindings,
            "coin": p.coin,
            "legs": [{k: getattr(leg, k) for k in _SHOWN_LEG} for leg in p.legs],
            "notional": p.notional,
            "status": p.status,
            "opened_at": p.opened_at,
            "closed_at": p.closed_at,
            "close_reason": p.close_reason,
            "pnl_funding": p.pnl_funding,
            "funding_reported": reported.get(p.id) if self.live else None,
            "pnl_fees": p.pnl_fees,
            "pnl_price": p.pnl_price,
            "pnl_borrow": p.pnl_borrow,
            "pnl": p.pnl,
            # every settlement paid on the position's perp legs (spec 11 step 1)
            "funding_payments": [_payment(f) for f in self.read.funding_payments(p.id)],
        }

    def reported(self, ids: list[int]) -> dict[int, float]:
        """Live: the funding the exchanges reported for these positions."""
        return self.read.reported_funding(ids) if self.live else {}


def _head(ctx: _Context, leverage: float) -> tuple[dict[str, Any], list[PositionRecord]]:
    """The statistics, venues and coins, and the open positions."""
    read = ctx.read
    stats: dict[str, Any] = asdict(read.stats())
    # a notification channel that failed: counted here, each one an event
    stats["notify_failed"] = read.count_events("notify_failed")
    stats["mode"] = read.mode()
    # live: the funding the exchanges reported, beside the ledger's computed payments
    stats["funding_reported"] = read.reported_funding_total() if ctx.live else None
    stats["positions_on_old_rules"] = sum(
        s in ("changed", "removed") for s in ctx.rule_states.values()
    )
    held = read.positions(status="open")
    head = {"stats": stats, "venues": _venues(read, held, leverage), "coins": _coins(held)}
    return head, held


def ledger_status(
    ledger: Ledger, leverage: float = 1.0, closed: int | None = SHOWN_CLOSED
) -> dict[str, Any]:
    """Statistics operators expect, every venue's cash, margin and exposure, the
    exposure by coin, and the positions with their pnl parts: every open one and
    the latest `closed` closed ones (every one with `closed=None`), by id;
    `closed_omitted` counts the closed positions not listed.

    Cumulative profit is realised pnl of closed positions plus the open ones
    marked at the last complete cycle. `leverage` is the configuration's (the
    margin a leg reserves is its notional / leverage).
    """
    ctx = _Context(ledger)
    head, held = _head(ctx, leverage)
    read = ctx.read
    if closed is None:
        listed = list(read.iter_positions())
        omitted = 0
    else:
        # every open position and the latest others (closed, or live ones in flight)
        latest, not_open = read.latest_not_open(max(closed, 0))
        listed = sorted([*held, *latest], key=lambda p: p.id)
        omitted = not_open - len(latest)
    reported = ctx.reported([p.id for p in listed])
    head["positions"] = [ctx.row(p, reported) for p in listed]
    # the positions not open that are not listed (`status` says how many)
    head["closed_omitted"] = omitted
    return head


def position_status(ledger: Ledger, position_id: int) -> dict[str, Any] | None:
    """One position as `status` lists it (with its funding payments), or None."""
    ctx = _Context(ledger)
    p = ctx.read.position(position_id)
    if p is None:
        return None
    return ctx.row(p, ctx.reported([p.id]))


def status_json(ledger: Ledger, leverage: float = 1.0) -> Iterator[str]:
    """`rulebook status --json`, streamed: the same text as
    `_json.dumps(ledger_status(ledger, leverage, closed=None), indent=2)` (every
    position, non-finite numbers as null), written a position at a time by the
    report's streaming encoder (`rulebook.report.iter_json`), so memory does not
    grow with the ledger and no position leaves garbage for the cyclic collector
    (json.dumps with an indent does, on every call)."""
    from rulebook.report import Report, iter_json  # only --json needs the encoder

    ctx = _Context(ledger)
    head, _held = _head(ctx, leverage)

    def positions() -> Iterator[dict[str, Any]]:
        for p in ctx.read.iter_positions():
            yield ctx.row(p, ctx.reported([p.id]))

    return iter_json(Report({**head, "positions": None}, {"positions": positions}))
