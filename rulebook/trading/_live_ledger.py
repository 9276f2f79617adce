"""The live side of the ledger: order intents, exchange-reported funding, reconciliations.

A ledger module (with `_ledger.py` and `_ledger_read.py`): the only other place
that knows tables and SQL. It works on the writer's own connection.

    live = LiveLedger(ledger)                 # marks the ledger live; refuses a paper one
    iid, cid = live.write_intent(...)         # committed before the order is sent
    live.update_intent(iid, status="filled", filled_qty=0.5, average=182.3, fee=0.05)

An order on an exchange cannot be rolled back, so unlike the paper cycle's
single transaction, every intent and every outcome is committed at once,
also inside a cycle's transaction (which is committed at that point and
reopened): after a kill -9 the ledger holds every order that may have been
sent, with its client order id, and a restart looks each one up.
"""

from __future__ import annotations

import json
import math
import secrets
import string
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._book import PaperPosition
from ._ledger import Ledger, LedgerError, _position_from_row
from ._records import FundingAmount, OrderIntent

__all__ = ["LiveLedger", "ledger_mode", "reported_funding"]

_INTENT_COLUMNS: dict[str, Any] = {
    "id": int,
    "ts": int,
    "position_id": int,
    "leg": int,
    "intent": str,  # open | close | unwind
    "attempt": int,
    "client_id": str,
    "exchange": str,
    "symbol": str,
    "market": str,
    "side": str,  # buy | sell
    "amount": float,  # exchange units
    "qty": float,  # coins
    "reduce_only": int,
    "limit_price": float,
    "status": str,  # intent | sent | filled | partial | rejected | unknown | missing
    "order_id": str,
    "filled_qty": float,  # coins
    "average": float,
    "fee": float,  # quote currency
    "fee_detail": str,
    "reason": str,
    "updated_at": int,
}

#: intents that may still have an order on the exchange to account for
OPEN_STATUSES = ("intent", "sent", "unknown")


def _now_ms() -> int:
    return int(time.time() * 1000)


def ledger_mode(ledger: Ledger) -> str:
    """'live' or 'paper' (a ledger that never ran live is a paper one)."""
    return ledger.read.mode()


def reported_funding(ledger: Ledger) -> dict[int, float]:
    """Per position, the funding the exchanges reported (read only; {} on a paper ledger)."""
    return ledger.read.reported_funding()


class LiveLedger:
    """Typed writes and reads of the live tables, on the runtime's ledger connection."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.db = ledger._db
        mode = ledger_mode(ledger)
        has_history = ledger.read.last_cycle_ts() is not None
        if mode != "live" and has_history:
            raise LedgerError(
                f"{ledger.path}: a paper ledger; a live run needs its own ledger (--db live.db)"
            )
        with self._durable():
            for name, columns, pk in (
                ("order_intents", _INTENT_COLUMNS, "id"),
                (
                    "exchange_funding",
                    {"id": int, "exchange": str, "symbol": str, "ts": int, "amount": float,
                     "currency": str, "ref": str, "position_id": int, "recorded_at": int},
                    "id",
                ),
                (
                    "reconciliations",
                    {"id": int, "ts": int, "exchange": str, "what": str, "expected": float,
                     "actual": float, "difference": float, "ok": int},
                    "id",
                ),
            ):  # fmt: skip
                table = self.db.table(name)
                if not table.exists():
                    table.create(columns, pk=pk)
            self.db.execute(
                "create unique index if not exists intents_client_id on order_intents(client_id)"
            )
            self.db.execute(
                "create unique index if not exists exchange_funding_once "
                "on exchange_funding(exchange, symbol, ts, ref)"
            )
            self.db.execute(
                "insert or ignore into meta (key, value) values ('mode', 'live')"
            )
            alphabet = string.ascii_lowercase + string.digits
            nonce = "".join(secrets.choice(alphabet) for _ in range(6))
            self.db.execute(
                "insert or ignore into meta (key, value) values ('client_nonce', ?)", [nonce]
            )
        self.nonce = str(
            self.db.execute("select value from meta where key = 'client_nonce'").fetchone()[0]
        )

    # -- durability --------------------------------------------------------------------
    @contextmanager
    def _durable(self) -> Iterator[None]:
        """Commit what is written here now, also inside an open cycle transaction (whose
        writes so far are committed with it; the cycle carries on in a new one)."""
        conn = self.db.conn
        reopen = conn.in_transaction
        if reopen:
            conn.execute("COMMIT")
        try:
            with self.db.atomic():
                yield
        finally:
            if reopen and not conn.in_transaction:
                conn.execute("BEGIN")

    # -- intents -------------------------------------------------------------------------
    def write_intent(
        self,
        *,
        position_id: int,
        leg: int,
        intent: str,
        attempt: int,
        client_id: str,
        exchange: str,
        symbol: str,
        market: str,
        side: str,
        amount: float,
        qty: float,
        reduce_only: bool,
        limit_price: float | None,
        ts: int | None = None,
    ) -> int:
        """The order about to be sent, committed before it is; returns the intent id."""
        now = ts or _now_ms()
        with self._durable():
            _finite(self.ledger.path, "order_intents", [amount, qty, limit_price])
            cur = self.db.execute(
                "insert into order_intents (ts, position_id, leg, intent, attempt, client_id,"
                " exchange, symbol, market, side, amount, qty, reduce_only, limit_price, status,"
                " updated_at) values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,'intent',?)",
                [now, position_id, leg, intent, attempt, client_id, exchange, symbol, market,
                 side, amount, qty, int(reduce_only), limit_price, now],
            )  # fmt: skip
            assert cur.lastrowid is not None
            return cur.lastrowid

    def update_intent(self, intent_id: int, **fields: Any) -> None:
        allowed = set(_INTENT_COLUMNS) - {"id", "client_id"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"not an intent column: {', '.join(sorted(bad))}")
        fields["updated_at"] = _now_ms()
        if "fee_detail" in fields and not isinstance(fields["fee_detail"], str | None):
            fields["fee_detail"] = json.dumps(fields["fee_detail"])
        sets = ", ".join(f"{k} = ?" for k in fields)
        _finite(self.ledger.path, "order_intents", list(fields.values()))
        with self._durable():
            self.db.execute(
                f"update order_intents set {sets} where id = ?", [*fields.values(), intent_id]
            )

    def intents(self, position_id: int | None = None, *, unresolved: bool = False) -> list[OrderIntent]:
        where: list[str] = []
        params: list[object] = []
        if position_id is not None:
            where.append("position_id = ?")
            params.append(position_id)
        if unresolved:
            where.append(f"status in ({', '.join('?' * len(OPEN_STATUSES))})")
            params.extend(OPEN_STATUSES)
        sql = "select * from order_intents"
        if where:
            sql += " where " + " and ".join(where)
        out = []
        for r in self._rows(sql + " order by id", params):
            r["reduce_only"] = bool(r["reduce_only"])
            out.append(OrderIntent(**r))
        return out

    def next_attempt(self, position_id: int, leg: int, intent: str) -> int:
        row = self.db.execute(
            "select max(attempt) from order_intents where position_id = ? and leg = ? "
            "and intent = ?",
            [position_id, leg, intent],
        ).fetchone()
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    # -- positions in flight -------------------------------------------------------------
    def insert_position(self, p: PaperPosition, t: int) -> int:
        """A position before its orders go out (status opening), committed now."""
        with self._durable():
            return self.ledger.record_opening(p, t)

    def update_position(self, p: PaperPosition, t: int) -> None:
        with self._durable():
            self.ledger.record_position(p, t)

    def positions_in_flight(self) -> list[PaperPosition]:
        rows = self._rows(
            "select * from positions where status in ('opening', 'closing', 'unhedged') order by id"
        )
        return [_position_from_row(r) for r in rows]

    def positions_to_reconcile(self, since: int) -> list[PaperPosition]:
        """Positions still held, and those closed at or after `since` (ms)."""
        rows = self._rows(
            "select * from positions where status in ('open', 'unhedged', 'closing') "
            "or closed_at >= ? order by id",
            [since],
        )
        return [_position_from_row(r) for r in rows]

    def event(self, kind: str, detail: str, ts: int | None = None) -> None:
        with self._durable():
            self.ledger.record_event(kind, detail, ts=ts or _now_ms())

    def has_event(self, kind: str, detail_prefix: str) -> bool:
        """Whether an event of `kind` whose detail starts with `detail_prefix` is recorded."""
        return bool(
            self._rows(
                "select 1 from events where kind = ? and substr(detail, 1, ?) = ? limit 1",
                [kind, len(detail_prefix), detail_prefix],
            )
        )

    def _rows(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        return list(self.db.query(sql, params))

    def _amounts(self, sql: str, params: Any = ()) -> list[FundingAmount]:
        return [FundingAmount(int(r["ts"]), float(r["amount"])) for r in self._rows(sql, params)]

    # -- funding the exchanges report -----------------------------------------------------
    def record_exchange_funding(
        self,
        *,
        exchange: str,
        symbol: str,
        ts: int,
        amount: float,
        currency: str | None,
        ref: str,
        position_id: int | None,
    ) -> bool:
        """One payment from fetchFundingHistory; False when it is already recorded."""
        _finite(self.ledger.path, "exchange_funding", [amount])
        cur = self.db.execute(
            "insert or ignore into exchange_funding (exchange, symbol, ts, amount, currency, ref,"
            " position_id, recorded_at) values (?,?,?,?,?,?,?,?)",
            [exchange, symbol, ts, amount, currency, ref, position_id, _now_ms()],
        )
        return cur.rowcount == 1

    def computed_funding(self, position_id: int, exchange: str) -> list[FundingAmount]:
        return self._amounts(
            "select ts, amount from funding_payments where position_id = ? and exchange = ? "
            "order by ts",
            [position_id, exchange],
        )

    def reported_funding(self, position_id: int, exchange: str) -> list[FundingAmount]:
        return self._amounts(
            "select ts, amount from exchange_funding where position_id = ? and exchange = ? "
            "order by ts",
            [position_id, exchange],
        )

    def funding_totals(self) -> dict[int, dict[str, float]]:
        """Per position: the ledger's computed funding and what the exchanges reported."""
        out: dict[int, dict[str, float]] = {}
        for r in self._rows(
            "select position_id, sum(amount) as s from funding_payments group by position_id"
        ):
            out.setdefault(int(r["position_id"]), {})["computed"] = float(r["s"] or 0.0)
        for r in self._rows(
            "select position_id, sum(amount) as s from exchange_funding "
            "where position_id is not null group by position_id"
        ):
            out.setdefault(int(r["position_id"]), {})["reported"] = float(r["s"] or 0.0)
        return out

    # -- reconciliations -------------------------------------------------------------------
    def record_reconciliation(
        self, *, ts: int, exchange: str, what: str, expected: float, actual: float, ok: bool
    ) -> None:
        with self._durable():
            self.ledger._insert(
                "reconciliations",
                {"ts": ts, "exchange": exchange, "what": what, "expected": expected,
                 "actual": actual, "difference": actual - expected, "ok": int(ok)},
            )  # fmt: skip


def _finite(path: Path, table: str, values: list[Any]) -> None:
    """The ledger's boundary for the live tables: an exchange's NaN or inf (a quantity,
    a price, a reported payment) is refused with one line, never stored."""
    for v in values:
        if isinstance(v, float) and not math.isfinite(v):
            raise LedgerError(
                f"{path}: refused to write {v} into {table} (only finite numbers reach the "
                "ledger); nothing stored is lost"
            )
