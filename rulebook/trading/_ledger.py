"""The SQLite ledger: one writer with named methods, every cycle in one transaction.

A cycle row is written last, in the same transaction as the cycle's fills,
funding payments and position updates, so a cycle is either wholly in the
ledger or not at all: a process killed mid-cycle leaves the previous complete
cycle, and a restart resumes from there. `funding_payments` has a unique key on
(position, exchange, settlement time), so no restart can settle twice.

A replay or backtest may ask for its complete cycles to be committed in groups
(`group_cycles(CommitGroups(...))`: one commit at most every half second, each
cycle a savepoint inside the group's transaction, so a cycle is still whole or
absent and a failed one rolls back alone); a kill then leaves the complete
cycles of the last committed group, and the replay's restart computes the rest
again, identically. Live and paper-live runs commit every cycle
(docs/trading.md, "Commits in a replay").

This module and `_ledger_read.py` are the only ones that know a table, a
column or a line of SQL; everything else goes through `Ledger`'s `record_*`
methods and `LedgerReader`'s typed reads (`ledger.read`).

Schema versions (`SCHEMA_VERSION`, kept in the `meta` table):
  1  the first paper ledger
  2  orders.client_order_id; funding_payments.coin, interval_h, rate_source, mark_source
  3  marks: each held market's last mark. A paper executor rewrites an open
     position's row only when its stored state moves (a payment, borrow interest,
     its close); its legs' marks, and so its price pnl, are read against this
     table (the reader's overlay), which is updated in place every cycle
Opening an older ledger with the writer upgrades it in place (columns are only
added, no row changes) and records a `ledger_upgraded` event; a newer one, or a
file that is not a rulebook ledger, is refused with a one-line `LedgerError`.
"""

from __future__ import annotations

import json
import json.encoder
import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import Any

import sqlite_utils

from rulebook import _json
from rulebook._text import mask_secrets
from rulebook.lang import Subject

from ._book import PaperLeg, PaperPosition
from ._executor import Fill
from ._ledger_read import SCHEMA_VERSION, LedgerError, LedgerReader, ledger_failure, schema_version
from ._records import BorrowCharge, CycleRecord, FundingRecord, OpportunityRecord, OrderRecord

__all__ = ["SCHEMA_VERSION", "CommitGroups", "Ledger", "LedgerError"]

# What each upgrade adds, for the `ledger_upgraded` event.
_UPGRADES: dict[int, str] = {
    2: "orders.client_order_id; funding_payments.coin, interval_h, rate_source, mark_source",
    3: "marks (each held market's last mark, updated in place every cycle)",
}


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class CommitGroups:
    """When a replay's or backtest's complete cycles are committed together: once
    `seconds` of wall-clock time have passed since the first uncommitted one, or once
    `cycles` are waiting, whichever comes first (`Ledger.group_cycles`)."""

    seconds: float = 0.5
    cycles: int = 1000


#: what `rulebook run --replay` and backtests ask for (docs/trading.md)
REPLAY_COMMITS = CommitGroups()
#: how long a writer outside a cycle (a halt request, a reload) waits for the write lock
_BUSY_S = 30.0
#: how often it asks: a replay's runtime leaves the lock free only between two groups
_POLL_S = 0.001


# Every table and its columns (sqlite-utils creates them; a new column is added on open).
_TABLES: dict[str, tuple[dict[str, Any], str]] = {
    "rulesets": (
        {
            "sha256": str,
            "files": str,
            "sources": str,
            "loaded_at": int,
            # set by a hot reload: what it replaced and the rules it
            # added, removed and changed (JSON lists of names)
            "previous_sha256": str,
            "added": str,
            "removed": str,
            "changed": str,
        },
        "sha256",
    ),
    "cycles": (
        {
            "id": int,
            "ts": int,
            "wall_ts": int,
            "ruleset_sha": str,
            "source": str,
            "observations": int,
            "opportunities": int,
            "opened": int,
            "closed": int,
            "funding": float,
            "equity": float,
        },
        "id",
    ),
    "opportunities": (
        {
            "id": int,
            "cycle_ts": int,
            "rule": str,
            "bindings": str,
            "coin": str,
            "subject": str,
            "legs": str,
            "edge": float,
            "apr": float,
            "fees": float,
            "net_8h": float,
            "confidence": float,
            "risk": str,
            "amount": float,
            "decision": str,
            "reason": str,
            "position_id": int,
        },
        "id",
    ),
    "positions": (
        {
            "id": int,
            "rule": str,
            "bindings": str,
            "ruleset_sha": str,
            "coin": str,
            "subject": str,
            "legs": str,
            "notional": float,
            "status": str,
            "opened_at": int,
            "closed_at": int,
            "close_reason": str,
            "pnl_funding": float,
            "pnl_fees": float,
            "pnl_price": float,
            "pnl_borrow": float,
            "pnl": float,
            "updated_at": int,
        },
        "id",
    ),
    "orders": (
        {
            "id": int,
            "ts": int,
            "position_id": int,
            "intent": str,
            "exchange": str,
            "coin": str,
            "market": str,
            "side": str,
            "notional": float,
            "status": str,
            "reason": str,
            "client_order_id": str,  # schema 2
        },
        "id",
    ),
    "fills": (
        {
            "id": int,
            "order_id": int,
            "position_id": int,
            "ts": int,
            "exchange": str,
            "market": str,
            "side": str,
            "price": float,
            "size": float,
            "fee": float,
            "fee_rate": float,
            "price_source": str,
        },
        "id",
    ),
    "funding_payments": (
        {
            "id": int,
            "position_id": int,
            "exchange": str,
            "ts": int,
            "rate": float,
            "mark": float,
            "size": float,
            "amount": float,
            # schema 2: the coin, the interval that settled, where rate and mark came from
            "coin": str,
            "interval_h": float,
            "rate_source": str,
            "mark_source": str,
        },
        "id",
    ),
    "borrow_charges": (
        {
            "id": int,
            "position_id": int,
            "exchange": str,
            "ts": int,
            "rate_daily": float,
            "seconds": float,
            "amount": float,
        },
        "id",
    ),
    "balances": ({"exchange": str, "initial": float, "cash": float}, "exchange"),
    # schema 3: one row per market an open position holds, its mark at `ts`
    "marks": (
        {"id": int, "exchange": str, "coin": str, "market": str, "mark": float, "ts": int},
        "id",
    ),
    "events": ({"id": int, "ts": int, "kind": str, "detail": str}, "id"),
    "halt_requests": (
        {"id": int, "ts": int, "close_all": int, "handled_at": int},
        "id",
    ),
}


#: a position's state as `record_positions` keeps it for a group's commit: its legs'
#: fields and the other cells of `_UPDATE_POSITION` (see `_position_state`), or, for
#: a row the general path had to walk, its cells
_KeptPosition = tuple[tuple[tuple[Any, ...], ...], tuple[Any, ...]] | list[Any]


@dataclass(slots=True)
class _InPlace:
    """The rows a group of cycles updates in place, kept until the group's commit.

    An open position's row (its legs' funding, accrual and next settlement move at
    every payment), each held market's mark and each account's cash are updated in
    place: a cycle-by-cycle writer rewrites them every cycle, and only the last
    write before a commit is ever seen by another process (a group commits whole or
    not at all; a kill leaves the last committed group). So a group keeps each
    row's latest state, already checked (nothing non-finite), and writes it once,
    just before its commit: the same rows at every commit, written once a group
    rather than once a cycle (docs/trading.md, "Commits in a replay")."""

    positions: dict[int, _KeptPosition] = field(default_factory=dict)
    #: positions whose whole row a cycle wrote at once (their close): an update
    #: kept from an earlier cycle is older and must not be written over it
    closed: set[int] = field(default_factory=set)
    marks: dict[tuple[str, str, str], tuple[float, int]] = field(default_factory=dict)
    cash: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.positions or self.closed or self.marks or self.cash)

    def merge(self, later: _InPlace) -> None:
        """Take a later complete cycle's rows over these."""
        for pid in later.closed:
            self.positions.pop(pid, None)
        self.positions.update(later.positions)
        self.marks.update(later.marks)
        self.cash.update(later.cash)

    def write(self, ledger: Ledger, conn: sqlite3.Connection, skip: Iterable[int]) -> None:
        """Write every kept row (positions in `skip` aside). Raises sqlite3's errors."""
        path = ledger.path
        skipped = set(skip)
        rows = [
            kept if isinstance(kept, list) else _state_cells(path, pid, *kept)
            for pid, kept in self.positions.items()
            if pid not in skipped
        ]
        if rows:
            conn.executemany(_UPDATE_POSITION, rows)
        if self.marks:
            ledger._write_marks(conn, [(k, mark, t) for k, (mark, t) in self.marks.items()])
        if self.cash:
            conn.executemany(_UPDATE_CASH, [(cash, ex) for ex, cash in self.cash.items()])


class Ledger:
    """The runtime's record, and its one writer: the runtime with its executor,
    `halt` and hot reload each write through a `Ledger` of their own.

    Every `record_*` method joins the open cycle transaction (`with ledger.cycle():`)
    when there is one, and commits on its own otherwise. `read` is a
    `LedgerReader` on the same connection.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            # A busy timeout: `rulebook halt` and `status` may touch the file while
            # the runtime writes; WAL lets readers in, writers wait their turn.
            conn = sqlite3.connect(str(self.path), timeout=30)
            self._db = sqlite_utils.Database(conn)
            # Before the first write (WAL mode changes the file's header): a SQLite
            # file that is not a rulebook ledger is refused untouched.
            self._refuse_foreign()
            # Read to the end, so the PRAGMA's statement is done at once. sqlite-utils'
            # enable_wal() leaves its journal_mode query's cursor to the garbage
            # collector; once, in a sweep on a Dask cluster, the first savepoint failed
            # with "SQL statements in progress" (our guess: something, such as Dask's
            # worker profiler sampling frames, kept that cursor alive).
            conn.execute("pragma journal_mode = wal").fetchall()
            # In WAL mode NORMAL still survives a killed process (kill -9) intact; only a
            # power cut can drop the last commits, never corrupt. FULL fsyncs every cycle.
            self._db.execute("pragma synchronous = normal")
            # Savepoints (a replay's cycles in a group, an event in a cycle) and multi-row
            # statements keep the pages they change in a statement journal: in memory, not
            # a temporary file written page by page (33,000 writes a month of the year
            # benchmark). It only serves a rollback inside this connection's transaction;
            # what survives a crash is the WAL's, as before.
            self._db.execute("pragma temp_store = memory")
            self._create()
        except sqlite3.DatabaseError as e:
            raise ledger_failure(self.path, e) from None
        except OSError as e:
            raise LedgerError(f"{self.path}: cannot open: {e.strerror or e}") from None
        self._read = LedgerReader(conn, self.path)
        self._mark_ids: dict[tuple[str, str, str], int] | None = None  # see record_marks
        # A group's in-place rows (see _InPlace): the open cycle's, and the complete
        # cycles' not yet written, written once at the group's commit
        self._stage = _InPlace()
        self._pending = _InPlace()
        self._groups: CommitGroups | None = None  # see group_cycles
        self._group_since = 0.0  # monotonic time of the open group's first cycle
        self._grouped = 0  # complete cycles in the open group, not yet committed
        self._in_cycle = False

    def close(self) -> None:
        """Close the file, after committing the complete cycles of an open group."""
        try:
            self.commit()
        finally:
            self._db.close()

    @property
    def read(self) -> LedgerReader:
        """A `LedgerReader` on this connection. In a group of cycles it first writes the
        in-place rows (positions, marks, cash) a group keeps until its commit, so what
        it reads is what a cycle-by-cycle writer would have stored by now."""
        if self._pending or self._stage:
            try:
                self._write_in_place()
            except sqlite3.DatabaseError as e:
                raise ledger_failure(self.path, e) from None
        return self._read

    # -- in-place rows in a group of cycles ----------------------------------------------
    def _deferring(self) -> bool:
        """Whether an in-place row waits for the group's commit: in a cycle of a group."""
        return self._in_cycle and self._groups is not None

    def _write_in_place(self) -> None:
        """Write the in-place rows kept for the group's commit: the complete cycles'
        (then forgotten, outside a cycle), and inside a cycle also the cycle's own, kept
        (its savepoint may still roll them back). Raises sqlite3's errors."""
        conn = self._db.conn
        pending, stage = self._pending, self._stage
        if self._in_cycle:
            # what a cycle-by-cycle writer would have stored by now: the complete
            # cycles' rows, except positions this cycle closed, then this cycle's
            pending.write(self, conn, skip=stage.closed)
            stage.write(self, conn, skip=frozenset())
            return
        pending.write(self, conn, skip=frozenset())
        self._pending = _InPlace()

    def _refuse_foreign(self) -> None:
        """LedgerError, with nothing written, for a file that is not a rulebook ledger
        (an unrelated database, a damaged one, a newer schema)."""
        tables = self._db.table_names()
        if not tables:
            return  # a new file: it becomes a ledger
        if "meta" not in tables:
            raise LedgerError(
                f"{self.path}: not a rulebook ledger (it has tables "
                f"{', '.join(sorted(tables)[:5])} and no meta table); rulebook "
                "never writes into it: give --db a new file"
            )
        schema_version(self._db.conn, self.path)

    # -- schema ------------------------------------------------------------------
    def _create(self) -> None:
        db = self._db
        # a deferred transaction: opening a ledger that needs no change takes no write
        # lock, so `status` or `halt` opens at once while a runtime writes
        with self._atomic(wait_for_lock=False):
            meta = db.table("meta")
            upgraded_from: int | None = None
            if not meta.exists():
                others = db.table_names()
                if others:
                    raise LedgerError(
                        f"{self.path}: not a rulebook ledger (it has tables "
                        f"{', '.join(sorted(others)[:5])} and no meta table); rulebook "
                        "never writes into it: give --db a new file"
                    )
                meta.create({"key": str, "value": str}, pk="key")
                meta.insert({"key": "schema_version", "value": str(SCHEMA_VERSION)})
            else:
                version = schema_version(db.conn, self.path)
                if version < SCHEMA_VERSION:
                    upgraded_from = version
            for name, (columns, pk) in _TABLES.items():
                table = db.table(name)
                if not table.exists():
                    table.create(columns, pk=pk)
                else:  # a ledger from before a column was added: add it, keep the rows
                    have = table.columns_dict
                    for column, type_ in columns.items():
                        if column not in have:
                            table.add_column(column, type_)
            db.execute(
                "create unique index if not exists funding_once "
                "on funding_payments(position_id, exchange, ts)"
            )
            db.execute("create index if not exists positions_status on positions(status)")
            db.execute("create index if not exists cycles_ts on cycles(ts)")
            db.execute(
                "create unique index if not exists marks_market on marks(exchange, coin, market)"
            )
            if upgraded_from is not None:
                db.execute(
                    "update meta set value = ? where key = 'schema_version'", [str(SCHEMA_VERSION)]
                )
                added = "; ".join(
                    _UPGRADES[v] for v in range(upgraded_from + 1, SCHEMA_VERSION + 1)
                )
                self._insert(
                    "events",
                    {
                        "ts": _now_ms(),
                        "kind": "ledger_upgraded",
                        "detail": f"ledger schema {upgraded_from} upgraded to "
                        f"{SCHEMA_VERSION}: added {added}",
                    },
                )

    # -- transactions ------------------------------------------------------------
    @contextmanager
    def _atomic(self, *, wait_for_lock: bool = True) -> Iterator[None]:
        """A transaction whose SQLite failures (full disk, read-only file, damage)
        become one-line LedgerErrors naming the file and what to do; it rolls back.
        Inside an open transaction (a cycle's, a group's) it is a savepoint.

        A transaction of its own takes the write lock first, asking every millisecond
        for up to 30 s (`wait_for_lock`): a replay's runtime holds the lock for a
        group of cycles and leaves it free only for a moment between two groups,
        which SQLite's own busy handler, asking up to 100 ms apart, would mostly miss.
        """
        conn = self._db.conn
        if conn.in_transaction:
            # A savepoint with one fixed name (a nested one is the most recent of that
            # name, which ROLLBACK TO and RELEASE act on): the same two statements every
            # cycle, kept compiled, where sqlite-utils' atomic() names each one afresh.
            try:
                conn.execute("savepoint rulebook")
                try:
                    yield
                except BaseException:
                    # an error such as a full disk may have ended the whole transaction
                    if conn.in_transaction:
                        conn.execute("rollback to rulebook")
                        conn.execute("release rulebook")
                    raise
                conn.execute("release rulebook")
            except sqlite3.DatabaseError as e:
                raise ledger_failure(self.path, e) from None
            return
        try:
            if wait_for_lock:
                self._begin_immediate()
            else:
                conn.execute("begin")
            try:
                yield
            except BaseException:
                if conn.in_transaction:
                    conn.execute("rollback")
                raise
            conn.execute("commit")
        except sqlite3.DatabaseError as e:
            if conn.in_transaction:  # a failed commit: nothing of it stays pending
                conn.execute("rollback")
            raise ledger_failure(self.path, e) from None

    def _begin_immediate(self) -> None:
        conn = self._db.conn
        deadline = time.monotonic() + _BUSY_S
        conn.execute("pragma busy_timeout = 0")
        try:
            while True:
                try:
                    conn.execute("begin immediate")
                    return
                except sqlite3.OperationalError as e:
                    if e.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                        raise
                time.sleep(_POLL_S)
        finally:
            conn.execute(f"pragma busy_timeout = {int(_BUSY_S * 1000)}")

    @contextmanager
    def cycle(self) -> Iterator[Ledger]:
        """One transaction for everything a cycle writes: whole or not at all.

        With `group_cycles`, the cycle is a savepoint inside the group's transaction
        (a failed cycle rolls back alone), committed with the group."""
        groups = self._groups
        conn = self._db.conn
        if groups is not None and not conn.in_transaction:
            try:
                conn.execute("begin")  # the group's: committed by commit()
            except sqlite3.DatabaseError as e:
                raise ledger_failure(self.path, e) from None
            self._group_since = time.monotonic()
            self._grouped = 0
        self._in_cycle = True
        try:
            with self._atomic(wait_for_lock=False):
                yield self
        except BaseException:
            self._mark_ids = None  # rows it inserted are gone with it
            self._stage = _InPlace()  # and what it kept for the group's commit
            if groups is not None and not conn.in_transaction:
                self._grouped = 0  # the failure took the group's transaction with it
                self._pending = _InPlace()
            raise
        finally:
            self._in_cycle = False
        if groups is not None:
            self._pending.merge(self._stage)  # the cycle is complete: its rows wait
            self._stage = _InPlace()
            self._grouped += 1
            if (
                self._grouped >= groups.cycles
                or time.monotonic() - self._group_since >= groups.seconds
            ):
                self.commit()

    def group_cycles(self, groups: CommitGroups | None) -> None:
        """Replays and backtests: commit complete cycles in groups (see CommitGroups)
        rather than one commit per cycle; None (the default) commits every cycle, and
        first commits an open group. Only a runtime replaying a recording asks for it
        (`Runtime.run(..., commits=...)`): a kill loses the cycles since the last
        commit, which a replay's restart computes again, identically."""
        if groups is None:
            self.commit()
        self._groups = groups

    @property
    def uncommitted_cycles(self) -> int:
        """Complete cycles of the open group that are not yet committed (0 without a
        group): what a notification of theirs waits for."""
        return self._grouped

    def commit(self) -> bool:
        """Commit the open group's cycles; False (nothing done) without one."""
        conn = self._db.conn
        if self._groups is None or self._in_cycle:
            return False
        if not conn.in_transaction:
            self._grouped = 0
            self._pending = _InPlace()
            return False
        try:
            self._write_in_place()  # the group's in-place rows, once each
            conn.execute("commit")
        except sqlite3.DatabaseError as e:
            if conn.in_transaction:
                conn.execute("rollback")
            self._grouped = 0
            self._mark_ids = None
            self._pending = _InPlace()
            raise ledger_failure(self.path, e) from None
        self._grouped = 0
        # a moment with the write lock free, for a writer asking for it (_begin_immediate)
        time.sleep(_POLL_S)
        return True

    def _write(self, sql: str, cells: Sequence[Any]) -> sqlite3.Cursor:
        """Run one write statement: inside the open transaction when there is one (a
        cycle's), else committed on its own (as sqlite-utils' `execute` does)."""
        conn = self._db.conn
        try:
            if conn.in_transaction:
                return conn.execute(sql, cells)
        except sqlite3.DatabaseError as e:
            raise ledger_failure(self.path, e) from None
        with self._atomic():
            return conn.execute(sql, cells)

    def _write_many(self, sql: str, rows: list[Sequence[Any]]) -> None:
        """`_write` for many rows of one statement, in their order, atomically."""
        if not rows:
            return
        try:
            if self._db.conn.in_transaction:
                self._db.conn.executemany(sql, rows)
                return
        except sqlite3.DatabaseError as e:
            raise ledger_failure(self.path, e) from None
        with self._atomic():
            self._db.conn.executemany(sql, rows)

    @staticmethod
    def _row_id(cur: sqlite3.Cursor) -> int:
        return cur.lastrowid if cur.rowcount == 1 and cur.lastrowid is not None else 0

    def _insert(self, table: str, row: Mapping[str, Any], verb: str = "insert") -> int:
        cells = _cells(self.path, table, row)
        sql = f"{verb} into {table} ({', '.join(row)}) values ({', '.join('?' * len(row))})"
        return self._row_id(self._write(sql, cells))

    def _update(self, table: str, key: str, value: Any, row: Mapping[str, Any]) -> None:
        sets = ", ".join(f"{k} = ?" for k in row)
        self._write(
            f"update {table} set {sets} where {key} = ?", [*_cells(self.path, table, row), value]
        )

    # -- a cycle's records ---------------------------------------------------------
    def record_cycle(self, cycle: CycleRecord) -> int:
        """A complete cycle; the runtime writes it last in the cycle's transaction."""
        values = _CYCLE_VALUES(cycle)
        return self._row_id(
            self._write(_INSERT_CYCLE, _checked(self.path, "cycles", _CYCLE_COLUMNS, values))
        )

    def record_opportunity(self, opportunity: OpportunityRecord) -> int:
        """A fired binding of a cycle and what became of it."""
        cur = self._write(_INSERT_OPPORTUNITY, _opportunity_cells(self.path, opportunity))
        return cur.lastrowid or 0

    def record_opportunities(
        self,
        opportunities: Iterable[OpportunityRecord],
        gone: Iterable[tuple[str, Iterable[tuple[str, str]]]] = (),
        ts: int = 0,
    ) -> None:
        """A cycle's opportunity records, in one batched statement, in their order (the
        runtime's, at the end of its entries; inside the cycle's transaction, so a
        crash leaves them with their cycle or not at all, as one by one); then, at
        `ts`, a `gone` record for each (rule, bindings' items) of `gone`, in its order:
        the same rows as `record_opportunity` of `gone_opportunity(rule, bindings, ts)`.

        A `gone` row binds only its time, rule and bindings (`_INSERT_GONE` writes the
        rest, its NULLs included, as SQL literals): sqlite3 looks every bound None up
        in its adapters, about 0.4 us each, and a gone row has ten."""
        path = self.path
        rows: list[Sequence[Any]] = [_opportunity_cells(path, o) for o in opportunities]
        gone_rows: list[Sequence[Any]] = [
            _gone_values(path, rule, bindings, ts) for rule, bindings in gone
        ]
        if self._db.conn.in_transaction:
            self._write_many(_INSERT_OPPORTUNITY, rows)
            self._write_many(_INSERT_GONE, gone_rows)
            return
        with self._atomic():  # both statements, or neither
            self._write_many(_INSERT_OPPORTUNITY, rows)
            self._write_many(_INSERT_GONE, gone_rows)

    def record_opening(self, position: PaperPosition, t: int) -> int:
        """A new position; returns its id."""
        return self._row_id(self._write(_INSERT_POSITION, _position_cells(self.path, position, t)))

    def record_position(self, position: PaperPosition, t: int) -> None:
        """A position's state now (legs, marks, pnl parts; its close once closed)."""
        cells = [*_position_cells(self.path, position, t), position.id]
        if self._deferring():
            # written now, whole: an update kept for the group's commit is older
            self._stage.positions.pop(position.id, None)
            self._stage.closed.add(position.id)
        elif self._pending:
            self._flush_pending()
        self._write(_UPDATE_POSITION_ROW, cells)

    def record_positions(self, positions: Iterable[PaperPosition], t: int) -> None:
        """Many positions' state now, in one batched statement (a paper executor's
        persist: the positions a cycle's payments or interest changed).

        In a group of cycles (`group_cycles`) each position's row is written once, at
        the group's commit, with its state at the last complete cycle that changed it:
        the rows a cycle-by-cycle writer leaves at that commit. What is refused (a
        non-finite number) is refused here, in the cycle, as it always was."""
        # Only what can change after opening: the rule, bindings, subject and
        # opening time were written by record_opening and stay as they are.
        # the same checks as every other write: nothing non-finite is stored
        path = self.path
        if self._deferring():
            kept = self._stage.positions
            for p in positions:
                legs, values = _position_state(p, t)
                if _plain([*chain.from_iterable(legs), *values]):
                    kept[p.id] = (legs, values)  # encoded at the group's commit
                else:  # refused now (or, only finite after all, encoded now)
                    kept[p.id] = _state_cells(path, p.id, legs, values)
            return
        if self._pending:
            self._flush_pending()
        self._write_many(_UPDATE_POSITION, [_position_update_cells(path, p, t) for p in positions])

    def _flush_pending(self) -> None:
        """The group's in-place rows, before a row written at once that may follow them."""
        try:
            self._write_in_place()
        except sqlite3.DatabaseError as e:
            raise ledger_failure(self.path, e) from None

    def record_marks(self, marks: Mapping[tuple[str, str, str], float], t: int) -> None:
        """Each (exchange, coin, market)'s mark at `t`, updated in place (one row per
        market): what moves every open position every cycle, written once per market
        rather than as every position's row. Readers take a leg's mark from here when
        it is newer than the position's row (`LedgerReader`'s overlay)."""
        if not marks:
            return
        for mark in marks.values():
            if not math.isfinite(mark):
                raise LedgerError(
                    f"{self.path}: refused to write {mark} into marks.mark (only finite "
                    "numbers reach the ledger); the cycle was not written, nothing stored is lost"
                )
        if self._deferring():  # each market's latest, at the group's commit
            kept = self._stage.marks
            for key, mark in marks.items():
                kept[key] = (mark, t)
            return
        if self._pending:
            self._flush_pending()
        try:
            self._write_marks(self._db.conn, [(key, mark, t) for key, mark in marks.items()])
        except sqlite3.DatabaseError as e:
            raise ledger_failure(self.path, e) from None

    def _write_marks(
        self, conn: sqlite3.Connection, marks: list[tuple[tuple[str, str, str], float, int]]
    ) -> None:
        """Update each market's mark row in place (inserting a market's first); finite
        marks only (checked by the caller). Raises sqlite3's errors."""
        ids = self._mark_ids
        if ids is None:  # each market's row id, read once (one writer per ledger)
            ids = self._mark_ids = {
                (str(e), str(c), str(m)): int(i)
                for i, e, c, m in self._db.conn.execute(
                    "select id, exchange, coin, market from marks"
                )
            }
        updates = []
        for key, mark, t in marks:
            row_id = ids.get(key)
            if row_id is None:  # a market first held: its row
                conn.execute(
                    "insert or ignore into marks (exchange, coin, market, mark, ts)"
                    " values (?, ?, ?, ?, ?)",
                    [*key, mark, t],
                )
                row_id = ids[key] = int(
                    self._one_value(
                        "select id from marks where exchange = ? and coin = ? and market = ?",
                        list(key),
                    )
                )
            updates.append((mark, t, row_id))
        conn.executemany("update marks set mark = ?, ts = ? where id = ?", updates)

    def _one_value(self, sql: str, params: list[Any]) -> Any:
        row = self._db.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def record_order(self, order: OrderRecord) -> int:
        """An order (an intent before it is sent, for a live executor); returns its id."""
        values = _ORDER_VALUES(order)
        return self._row_id(
            self._write(_INSERT_ORDER, _checked(self.path, "orders", _ORDER_COLUMNS, values))
        )

    def update_order(self, order_id: int, status: str, reason: str | None = None) -> None:
        """An order moved on: sent, partial, filled, rejected, cancelled."""
        self._update("orders", "id", order_id, {"status": status, "reason": reason})

    def record_fill(self, order_id: int, position_id: int, ts: int, fill: Fill) -> int:
        """One execution of an order."""
        values = (
            order_id, position_id, ts, fill.exchange, fill.market, fill.side, fill.price,
            fill.size, fill.fee, fill.fee_rate, fill.price_source,
        )  # fmt: skip
        return self._row_id(
            self._write(_INSERT_FILL, _checked(self.path, "fills", _FILL_COLUMNS, values))
        )

    def record_funding_payment(self, payment: FundingRecord) -> bool:
        """A funding payment, once: False, and nothing written, when the ledger already
        holds one for this (position, exchange, settlement time)."""
        return self._write(_INSERT_FUNDING, _funding_cells(self.path, payment)).rowcount == 1

    def record_borrow_charge(self, charge: BorrowCharge) -> int:
        """Interest charged on a borrowed spot leg."""
        return self._insert("borrow_charges", _row(charge))

    def record_account(self, exchange: str, initial: float) -> None:
        """A new exchange account with its starting balance (a new ledger only)."""
        self._insert("balances", {"exchange": exchange, "initial": initial, "cash": initial})

    def record_cash(self, exchange: str, cash: float) -> None:
        """An account's cash now (in a group of cycles, written at the group's commit)."""
        (cell,) = _checked(self.path, "balances", ("cash",), (cash,))
        if self._deferring():
            self._stage.cash[exchange] = cell
            return
        if self._pending:
            self._flush_pending()
        self._write(_UPDATE_CASH, [cell, exchange])

    def record_event(self, kind: str, detail: str | dict[str, Any], ts: int | None = None) -> None:
        """Append an event (reload, reload_failed, halt, outage, error, risk, alert, ...)."""
        text = detail if isinstance(detail, str) else _json.dumps(detail, sort_keys=True)
        with self._atomic():
            self._insert("events", {"ts": ts or _now_ms(), "kind": kind, "detail": text})

    def record_events(self, events: Iterable[tuple[str, str]], ts: int) -> None:
        """Many events of one time (a cycle's, at its end), in their order, in one
        batched statement: the same rows as `record_event` of each."""
        ts = ts or _now_ms()  # as record_event
        rows: list[Sequence[Any]] = [
            _cells(self.path, "events", {"ts": ts, "kind": k, "detail": d}) for k, d in events
        ]
        self._write_many(_INSERT_EVENT, rows)

    # -- rulesets ----------------------------------------------------------------
    def record_ruleset(
        self, sha256: str, files: list[str], sources: dict[str, str], ts: int | None = None
    ) -> None:
        """Keep a ruleset's texts, so a restart can recompile the rule a position was opened
        under even after the files changed."""
        with self._atomic():
            self._insert(
                "rulesets",
                {
                    "sha256": sha256,
                    "files": files,
                    "sources": json.dumps(sources),
                    "loaded_at": ts or _now_ms(),
                },
                verb="insert or ignore",
            )

    def record_reload(
        self,
        sha256: str,
        files: list[str],
        sources: dict[str, str],
        previous_sha256: str,
        added: list[str],
        removed: list[str],
        changed: list[str],
        ts: int | None = None,
    ) -> None:
        """A hot reload made this ruleset live: keep its texts and what changed, and
        mark it the live one. A ruleset that goes live again (an edit undone) keeps
        one row, with the latest reload's changes; the events table has each reload."""
        now = ts or _now_ms()
        with self._atomic():
            self._db.execute(
                "insert into rulesets (sha256, files, sources, loaded_at, previous_sha256,"
                " added, removed, changed) values (?, ?, ?, ?, ?, ?, ?, ?)"
                " on conflict(sha256) do update set loaded_at = excluded.loaded_at,"
                " previous_sha256 = excluded.previous_sha256, added = excluded.added,"
                " removed = excluded.removed, changed = excluded.changed",
                [
                    sha256,
                    json.dumps(files),
                    json.dumps(sources),
                    now,
                    previous_sha256,
                    json.dumps(added),
                    json.dumps(removed),
                    json.dumps(changed),
                ],
            )
            self.set_live_ruleset(sha256)

    def set_live_ruleset(self, sha256: str) -> None:
        """The ruleset the runtime runs now (what `status` compares positions against)."""
        with self._atomic():
            self._db.execute(
                "insert or replace into meta (key, value) values ('live_ruleset', ?)", [sha256]
            )

    # -- the runner and halts ------------------------------------------------------
    def record_runner(self, pid: int | None) -> None:
        """The pid of the runtime running on this ledger; None when it stops."""
        with self._atomic():
            if pid is None:
                self._db.execute("delete from meta where key = 'runner_pid'")
            else:
                self._db.execute(
                    "insert or replace into meta (key, value) values ('runner_pid', ?)",
                    [str(pid)],
                )

    def request_halt(self, close_all: bool) -> int:
        """What `rulebook halt` does: a request the runtime picks up at its next check."""
        with self._atomic():
            return self._insert(
                "halt_requests", {"ts": _now_ms(), "close_all": int(close_all), "handled_at": None}
            )

    def mark_halts_handled(self) -> None:
        """Every pending halt request was acted on (or discarded at start-up)."""
        with self._atomic():
            self._db.execute(
                "update halt_requests set handled_at = ? where handled_at is null", [_now_ms()]
            )

    # -- what the writer's users read back (the same as `read.<name>`) -------------------
    def pending_halt(self) -> tuple[int, bool] | None:
        return self.read.pending_halt()

    def last_cycle_ts(self) -> int | None:
        return self.read.last_cycle_ts()

    def live_ruleset(self) -> str | None:
        return self.read.live_ruleset()

    def ruleset_sources(self, sha256: str) -> dict[str, str] | None:
        return self.read.ruleset_sources(sha256)

    def runner_pid(self) -> int | None:
        return self.read.runner_pid()

    def balances(self) -> dict[str, tuple[float, float]]:
        """(initial, cash) per exchange."""
        return {b.exchange: (b.initial, b.cash) for b in self.read.balances()}

    def open_positions(self) -> list[PaperPosition]:
        """The open positions as the book holds them (to resume after a restart)."""
        return [_position_from_row(r) for r in self.read.open_position_rows()]


# Figures that describe an opportunity: undefined (non-finite) is stored as NULL, as
# JSON shows it. Everywhere else (money, prices, sizes, rates) a non-finite number
# is refused and the cycle is not written: nothing non-finite reaches the ledger.
_FIGURE_TABLES = frozenset({"opportunities"})


def _encoder(sort_keys: bool) -> Callable[[Any], str]:
    """The JSON of a structured cell: sorted keys for a dict, strict (a non-finite
    number raises ValueError). The same text as `json.dumps(v, sort_keys=...,
    allow_nan=False)`, whose call with arguments builds an encoder each time, and whose
    `JSONEncoder.encode` builds the C encoder object on every call: this one is made
    once. Without circular-reference bookkeeping (a cell is made from a record's plain
    values, never a structure that contains itself: that would be a RecursionError)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    encoder = json.JSONEncoder(sort_keys=sort_keys, allow_nan=False, check_circular=False)
    if make is None:  # no C accelerator: the library's own path
        return encoder.encode
    run = make(
        None, encoder.default, json.encoder.encode_basestring_ascii, None,
        encoder.key_separator, encoder.item_separator, sort_keys, False, False,
    )  # fmt: skip
    join = "".join

    def encode(v: Any) -> str:
        return join(run(v, 0))

    return encode


_ENCODE_SORTED = _encoder(sort_keys=True)
_ENCODE = _encoder(sort_keys=False)
#: cells that need no look: every value of these exact types is stored as it is
_PLAIN = frozenset({int, str, bool, type(None)})
_PLAIN_OR_FLOAT = _PLAIN | {float}


def _plain(values: Sequence[Any]) -> bool:
    """Whether every value is a plain scalar or a finite float: stored as it is. Most
    rows are, and this sees it at once, in C. (A sum of finite floats is finite unless
    it overflows, and then `_cells`' walk finds nothing to refuse: the same cells.)"""
    kinds = set(map(type, values))
    return kinds <= _PLAIN or (
        kinds <= _PLAIN_OR_FLOAT and math.isfinite(sum([v for v in values if type(v) is float]))
    )


def _cells(path: Path, table: str, row: Mapping[str, Any]) -> list[Any]:
    values = list(row.values())
    if table != "events" and _plain(values):
        return values
    out = []
    for column, v in zip(row, values, strict=True):
        if isinstance(v, float) and not math.isfinite(v):
            if table in _FIGURE_TABLES:
                v = None
            else:
                raise LedgerError(
                    f"{path}: refused to write {v} into {table}.{column} (only finite numbers "
                    "reach the ledger); the cycle was not written, nothing stored is lost"
                )
        elif isinstance(v, dict | list | tuple):
            v = _json_cell(path, table, column, v)
        elif table == "events" and column == "detail" and isinstance(v, str):
            v = mask_secrets(v)  # an event may quote an exchange error, a URL: no secret
        out.append(v)
    return out


# The rows a replay writes (every changed opportunity, funding payment, order, fill,
# position, cycle), prepared without the general path's walk over a row dict: the
# same cells as `_cells(path, table, _row(record))` (tests/test_ledger_rows.py
# checks it on every kind of value, non-finite ones included), in the columns'
# fixed order, through statements whose text never changes (sqlite3 keeps them
# compiled in its statement cache).
_INSERT_EVENT = "insert into events (ts, kind, detail) values (?, ?, ?)"
_UPDATE_CASH = "update balances set cash = ? where exchange = ?"


def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"insert into {table} ({', '.join(columns)}) values ({', '.join('?' * len(columns))})"


def _record_columns(record: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(record) if f.name != "id")


_CYCLE_COLUMNS = _record_columns(CycleRecord)
_CYCLE_VALUES = attrgetter(*_CYCLE_COLUMNS)
_INSERT_CYCLE = _insert_sql("cycles", _CYCLE_COLUMNS)
_ORDER_COLUMNS = _record_columns(OrderRecord)
_ORDER_VALUES = attrgetter(*_ORDER_COLUMNS)
_INSERT_ORDER = _insert_sql("orders", _ORDER_COLUMNS)
_FILL_COLUMNS = (
    "order_id", "position_id", "ts", "exchange", "market", "side", "price", "size", "fee",
    "fee_rate", "price_source",
)  # fmt: skip
_INSERT_FILL = _insert_sql("fills", _FILL_COLUMNS)
_OPPORTUNITY_COLUMNS = tuple(f.name for f in fields(OpportunityRecord) if f.name != "id")
_INSERT_OPPORTUNITY = (
    f"insert into opportunities ({', '.join(_OPPORTUNITY_COLUMNS)})"
    f" values ({', '.join('?' * len(_OPPORTUNITY_COLUMNS))})"
)
_FUNDING_COLUMNS = tuple(f.name for f in fields(FundingRecord) if f.name != "id")
_INSERT_FUNDING = (
    f"insert or ignore into funding_payments ({', '.join(_FUNDING_COLUMNS)})"
    f" values ({', '.join('?' * len(_FUNDING_COLUMNS))})"
)


def _figure(v: Any) -> Any:
    """An opportunity's figure: a non-finite one is stored as NULL (as `_cells` does)."""
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _json_cell(path: Path, table: str, column: str, v: Any) -> str:
    try:
        return _ENCODE_SORTED(v) if isinstance(v, dict) else _ENCODE(v)
    except ValueError:
        raise LedgerError(
            f"{path}: refused to write a non-finite number inside {table}.{column}; "
            "the cycle was not written, nothing stored is lost"
        ) from None


def _opportunity_cells(path: Path, o: OpportunityRecord) -> tuple[Any, ...]:
    bindings = o.bindings
    if type(bindings) is not dict and isinstance(bindings, Mapping):
        bindings = dict(bindings)
    return (
        o.cycle_ts, o.rule, _json_cell(path, "opportunities", "bindings", bindings), o.coin,
        o.subject, _json_cell(path, "opportunities", "legs", o.legs), _figure(o.edge),
        _figure(o.apr), _figure(o.fees), _figure(o.net_8h), _figure(o.confidence),
        _figure(o.risk), _figure(o.amount), o.decision, o.reason, o.position_id,
    )  # fmt: skip


def gone_opportunity(rule: str, bindings: Iterable[tuple[str, str]], ts: int) -> OpportunityRecord:
    """The record of a binding that fired until the previous cycle and no longer does."""
    return OpportunityRecord(
        cycle_ts=ts, rule=rule, bindings=dict(bindings), coin=None, subject=None, legs=[],
        edge=None, apr=None, fees=None, net_8h=None, confidence=None, risk=None, amount=None,
        decision="gone", reason="no longer fired", position_id=None,
    )  # fmt: skip


def _gone_cells(
    path: Path, rule: str, bindings: Iterable[tuple[str, str]], ts: int
) -> tuple[Any, ...]:
    """`_opportunity_cells(path, gone_opportunity(rule, bindings, ts))`, without the
    record (tests/test_ledger_rows.py): a cycle records as many as it records others.
    `_INSERT_GONE` of `_gone_values` stores this row (the same test)."""
    return (*_gone_values(path, rule, bindings, ts), *_GONE_CONSTANTS)


#: the cells of a gone row after its time, rule and bindings
_GONE_CONSTANTS = (None, None, "[]", *(None,) * 7, "gone", "no longer fired", None)


def _sql_literal(v: str | None) -> str:
    return "NULL" if v is None else "'" + v.replace("'", "''") + "'"


#: a gone row: what `_gone_cells` holds, its constants written as SQL literals
_INSERT_GONE = (
    f"insert into opportunities ({', '.join(_OPPORTUNITY_COLUMNS)}) values (?, ?, ?, "
    + ", ".join(map(_sql_literal, _GONE_CONSTANTS))
    + ")"
)


def _gone_values(
    path: Path, rule: str, bindings: Iterable[tuple[str, str]], ts: int
) -> tuple[int, str, str]:
    """The cells `_INSERT_GONE` binds: the time, the rule, the bindings' JSON text.

    The runtime names a binding by the same tuple object every cycle (its key), so
    the text of a tuple's bindings is kept while the tuple is (`_GONE_TEXT` holds it:
    its id is not reused), and a tuple that hashes holds nothing mutable."""
    kept = _GONE_TEXT.get(id(bindings))
    if kept is not None and kept[0] is bindings:
        text = kept[1]
    else:
        text = _json_cell(path, "opportunities", "bindings", dict(bindings))
        if type(bindings) is tuple and _hashable(bindings):
            if len(_GONE_TEXT) >= _GONE_KEPT:
                _GONE_TEXT.clear()
            _GONE_TEXT[id(bindings)] = (bindings, text)
    return (ts, rule, text)


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


#: id(bindings tuple) -> (the tuple, its bindings' JSON text); a ruleset has a few
#: thousand bindings at most, and the whole is dropped past this many
_GONE_KEPT = 8192
_GONE_TEXT: dict[int, tuple[object, str]] = {}


_FUNDING_VALUES = attrgetter(*_FUNDING_COLUMNS)


def _funding_cells(path: Path, f: FundingRecord) -> tuple[Any, ...]:
    cells: tuple[Any, ...] = _FUNDING_VALUES(f)
    # The usual payment, seen at once: plain scalars, and numbers whose sum is finite
    # (a sum of finite numbers is finite unless it overflows, and then the walk below
    # finds them finite: the same cells). Anything else takes the walk.
    interval = f.interval_h
    try:
        total = f.rate + f.mark + f.size + f.amount + (0.0 if interval is None else interval)
        if math.isfinite(total) and {
            type(f.position_id), type(f.exchange), type(f.coin), type(f.ts),
            type(f.rate_source), type(f.mark_source),
        } <= _PLAIN:  # fmt: skip
            return cells
    except (TypeError, ValueError, OverflowError):
        pass
    for v in cells:
        if isinstance(v, float | dict | list | tuple) and not (
            isinstance(v, float) and math.isfinite(v)
        ):
            # a non-finite number (refused) or a structure: the general path says which
            return tuple(
                _cells(path, "funding_payments", dict(zip(_FUNDING_COLUMNS, cells, strict=True)))
            )
    return cells


_ROW_FIELDS: dict[type, tuple[str, ...]] = {}


def _row(record: Any) -> dict[str, Any]:
    """A record's columns, without its id (the ledger assigns it)."""
    names = _ROW_FIELDS.get(type(record))
    if names is None:
        names = _ROW_FIELDS[type(record)] = tuple(
            k for k in record.__dataclass_fields__ if k != "id"
        )
    row = {k: getattr(record, k) for k in names}
    return {k: dict(v) if isinstance(v, Mapping) else v for k, v in row.items()}


_LEG_FIELDS = tuple(f.name for f in fields(PaperLeg))
_UPDATE_POSITION = (
    "update positions set legs = ?, notional = ?, status = ?, closed_at = ?, close_reason = ?,"
    " pnl_funding = ?, pnl_fees = ?, pnl_price = ?, pnl_borrow = ?, pnl = ?, updated_at = ?"
    " where id = ?"
)


_LEG_VALUES = attrgetter(*_LEG_FIELDS)
_UPDATE_COLUMNS = (
    "legs", "notional", "status", "closed_at", "close_reason", "pnl_funding", "pnl_fees",
    "pnl_price", "pnl_borrow", "pnl", "updated_at",
)  # fmt: skip


def _legs_json(path: Path, p: PaperPosition) -> str:
    """A position's legs as stored: each leg's fields in order (a leg's fields are flat
    scalars: dataclasses.asdict would deep-copy them), strict JSON."""
    return _legs_text(path, tuple(map(_LEG_VALUES, p.legs)))


def _legs_text(path: Path, legs: Iterable[tuple[Any, ...]]) -> str:
    """`_legs_json` of legs given as their fields' values, in `_LEG_FIELDS`' order."""
    rows = [dict(zip(_LEG_FIELDS, values, strict=True)) for values in legs]
    return _json_cell(path, "positions", "legs", rows)


def _position_state(
    p: PaperPosition, t: int
) -> tuple[tuple[tuple[Any, ...], ...], tuple[Any, ...]]:
    """What `_UPDATE_POSITION` writes of `p` at `t`, before any encoding: each leg's
    fields (flat scalars: a copy), then the cells after the legs, without the id."""
    funding, fees, price, borrow = p.parts()
    values = (
        p.notional, p.status, p.closed_at, p.close_reason, funding, fees, price, borrow,
        funding + fees + price + borrow, t,
    )  # fmt: skip
    return tuple(map(_LEG_VALUES, p.legs)), values


def _state_cells(
    path: Path, pid: int, legs: tuple[tuple[Any, ...], ...], values: tuple[Any, ...]
) -> list[Any]:
    """The cells of `_UPDATE_POSITION` of a `_position_state`, then the id."""
    cells = (_legs_text(path, legs), *values)
    return [*_checked(path, "positions", _UPDATE_COLUMNS, cells), pid]


def _position_update_cells(path: Path, p: PaperPosition, t: int) -> list[Any]:
    """The cells of `_UPDATE_POSITION` for `p`: what `_cells` makes of the row of what can
    change after opening (tests/test_ledger_rows.py), then the id."""
    return _state_cells(path, p.id, *_position_state(p, t))


def _checked(
    path: Path, table: str, columns: tuple[str, ...], values: tuple[Any, ...]
) -> Sequence[Any]:
    """`values` as cells: as they are when plain, else `_cells` of them."""
    if table != "events" and _plain(values):
        return values
    return _cells(path, table, dict(zip(columns, values, strict=True)))


_POSITION_COLUMNS = (
    "rule", "bindings", "ruleset_sha", "coin", "subject", "legs", "notional", "status",
    "opened_at", "closed_at", "close_reason", "pnl_funding", "pnl_fees", "pnl_price",
    "pnl_borrow", "pnl", "updated_at",
)  # fmt: skip
_INSERT_POSITION = _insert_sql("positions", _POSITION_COLUMNS)
_UPDATE_POSITION_ROW = (
    f"update positions set {', '.join(f'{c} = ?' for c in _POSITION_COLUMNS)} where id = ?"
)


def _position_cells(path: Path, p: PaperPosition, now_ms: int) -> Sequence[Any]:
    """The cells of `_position_row(p, now_ms)` in `_POSITION_COLUMNS`' order: what
    `_cells` makes of that row (tests/test_ledger_rows.py), the structures encoded
    once here, in the columns' order (so a refusal names the same first column)."""
    funding, fees, price, borrow = p.parts()
    subject = p.subject
    values = (
        p.rule_name,
        _json_cell(path, "positions", "bindings", dict(p.bindings)),
        p.ruleset_sha,
        p.coin,
        _json_cell(path, "positions", "subject", {
            "kind": subject.kind, "coin": subject.coin, "exchanges": list(subject.exchanges),
        }),
        _legs_json(path, p),
        p.notional, p.status, p.opened_at, p.closed_at, p.close_reason, funding, fees, price,
        borrow, funding + fees + price + borrow, now_ms,
    )  # fmt: skip
    return _checked(path, "positions", _POSITION_COLUMNS, values)


def _position_row(p: PaperPosition, now_ms: int) -> dict[str, Any]:
    return {
        "rule": p.rule_name,
        "bindings": p.bindings,
        "ruleset_sha": p.ruleset_sha,
        "coin": p.coin,
        "subject": {
            "kind": p.subject.kind,
            "coin": p.subject.coin,
            "exchanges": list(p.subject.exchanges),
        },
        # a leg's fields are flat scalars: read them directly (dataclasses.asdict
        # deep-copies each value)
        "legs": [dict(zip(_LEG_FIELDS, _LEG_VALUES(leg), strict=True)) for leg in p.legs],
        "notional": p.notional,
        "status": p.status,
        "opened_at": p.opened_at,
        "closed_at": p.closed_at,
        "close_reason": p.close_reason,
        "pnl_funding": p.funding,
        "pnl_fees": p.fees,
        "pnl_price": p.price,
        "pnl_borrow": p.borrow,
        "pnl": p.pnl,
        "updated_at": now_ms,
    }


def _position_from_row(row: Mapping[str, Any]) -> PaperPosition:
    s = json.loads(row["subject"])
    return PaperPosition(
        id=int(row["id"]),
        rule_name=row["rule"],
        bindings=json.loads(row["bindings"]),
        ruleset_sha=row["ruleset_sha"],
        subject=Subject(s["kind"], s["coin"], tuple(s["exchanges"])),
        legs=[PaperLeg(**d) for d in json.loads(row["legs"])],
        notional=float(row["notional"]),
        opened_at=int(row["opened_at"]),
        status=row["status"],
        closed_at=row["closed_at"],
        close_reason=row["close_reason"],
    )
