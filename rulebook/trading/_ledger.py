"""The SQLite ledger: every cycle's writes in one transaction, WAL mode.

A cycle row is written last, in the same transaction as the cycle's fills,
funding payments and position updates, so a cycle is either wholly in the
ledger or not at all: a process killed mid-cycle leaves the previous complete
cycle, and a restart resumes from there. `funding_payments` has a unique key on
(position, exchange, settlement time), so no restart can settle twice.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from rulebook.errors import RulebookError

__all__ = ["Ledger", "LedgerError"]

SCHEMA_VERSION = 1


class LedgerError(RulebookError):
    """The ledger cannot be opened or is not a rulebook ledger."""


def _now_ms() -> int:
    return int(time.time() * 1000)


class Ledger:
    """The paper runtime's record. Writers: the runtime (one per file), `halt`, reload.

    `record_event(kind, detail)` is the public hook for other components (the
    reloader writes `reload` / `reload_failed`); it joins the open cycle
    transaction when one is open, and commits on its own otherwise.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            # A busy timeout: `rulebook halt` and `status` may touch the file while
            # the runtime writes; WAL lets readers in, writers wait their turn.
            conn = sqlite3.connect(str(self.path), timeout=30)
            self.db = sqlite_utils.Database(conn)
            self.db.enable_wal()
            # In WAL mode NORMAL still survives a killed process (kill -9) intact; only a
            # power cut can drop the last commits, never corrupt. FULL fsyncs every cycle.
            self.db.execute("pragma synchronous = normal")
            self._create()
        except sqlite3.DatabaseError as e:
            raise LedgerError(f"{self.path}: not a usable SQLite ledger: {e}") from None
        except OSError as e:
            raise LedgerError(f"{self.path}: cannot open: {e}") from None

    def close(self) -> None:
        self.db.close()

    # -- schema ------------------------------------------------------------------
    def _create(self) -> None:
        db = self.db
        with db.atomic():
            t = db.table("meta")
            if not t.exists():
                t.create({"key": str, "value": str}, pk="key")
                t.insert({"key": "schema_version", "value": str(SCHEMA_VERSION)})
            else:
                row = db.execute("select value from meta where key='schema_version'").fetchone()
                if row is None or int(row[0]) != SCHEMA_VERSION:
                    raise LedgerError(
                        f"{self.path}: ledger schema {row and row[0]} is not {SCHEMA_VERSION}"
                    )
            tables: dict[str, tuple[dict[str, Any], str]] = {
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
                "events": ({"id": int, "ts": int, "kind": str, "detail": str}, "id"),
                "halt_requests": (
                    {"id": int, "ts": int, "close_all": int, "handled_at": int},
                    "id",
                ),
            }
            for name, (columns, pk) in tables.items():
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

    # -- transactions ------------------------------------------------------------
    @contextmanager
    def cycle(self) -> Iterator[Ledger]:
        """One transaction for everything a cycle writes."""
        with self.db.atomic():
            yield self

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.db.execute(sql, params)

    def insert(self, table: str, row: dict[str, Any]) -> int:
        cur = self.db.execute(
            f"insert into {table} ({', '.join(row)}) values ({', '.join('?' * len(row))})",
            [_cell(v) for v in row.values()],
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def update(self, table: str, key: str, value: Any, row: dict[str, Any]) -> None:
        sets = ", ".join(f"{k} = ?" for k in row)
        self.db.execute(
            f"update {table} set {sets} where {key} = ?",
            [*(_cell(v) for v in row.values()), value],
        )

    # -- public writes -----------------------------------------------------------
    def record_event(self, kind: str, detail: str | dict[str, Any], ts: int | None = None) -> None:
        """Append an event (reload, reload_failed, halt, outage, error, ...)."""
        text = detail if isinstance(detail, str) else json.dumps(detail, sort_keys=True)
        with self.db.atomic():
            self.insert("events", {"ts": ts or _now_ms(), "kind": kind, "detail": text})

    def record_ruleset(
        self, sha256: str, files: list[str], sources: dict[str, str], ts: int | None = None
    ) -> None:
        """Keep a ruleset's texts, so a restart can recompile the rule a position was opened
        under even after the files changed."""
        with self.db.atomic():
            self.db.execute(
                "insert or ignore into rulesets (sha256, files, sources, loaded_at) "
                "values (?, ?, ?, ?)",
                [sha256, json.dumps(files), json.dumps(sources), ts or _now_ms()],
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
        with self.db.atomic():
            self.db.execute(
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
        with self.db.atomic():
            self.db.execute(
                "insert or replace into meta (key, value) values ('live_ruleset', ?)", [sha256]
            )

    def live_ruleset(self) -> str | None:
        row = self.db.execute("select value from meta where key = 'live_ruleset'").fetchone()
        if row is not None:
            return str(row[0])
        row = self.db.execute("select ruleset_sha from cycles order by id desc limit 1").fetchone()
        return None if row is None else str(row[0])

    def ruleset_sources(self, sha256: str) -> dict[str, str] | None:
        row = self.db.execute("select sources from rulesets where sha256 = ?", [sha256]).fetchone()
        return None if row is None or row[0] is None else json.loads(row[0])

    def request_halt(self, close_all: bool) -> int:
        """What `rulebook halt` does: a request the runtime picks up at its next check."""
        with self.db.atomic():
            return self.insert(
                "halt_requests", {"ts": _now_ms(), "close_all": int(close_all), "handled_at": None}
            )

    def pending_halt(self) -> tuple[int, bool] | None:
        row = self.db.execute(
            "select id, close_all from halt_requests where handled_at is null "
            "order by close_all desc, id limit 1"
        ).fetchone()
        return None if row is None else (int(row[0]), bool(row[1]))

    def mark_halts_handled(self) -> None:
        self.db.execute(
            "update halt_requests set handled_at = ? where handled_at is null", [_now_ms()]
        )

    # -- reads -------------------------------------------------------------------
    def last_cycle_ts(self) -> int | None:
        row = self.db.execute("select max(ts) from cycles").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def open_position_rows(self) -> list[dict[str, Any]]:
        return list(self.db.query("select * from positions where status = 'open' order by id"))

    def balances(self) -> dict[str, tuple[float, float]]:
        return {
            r["exchange"]: (r["initial"], r["cash"])
            for r in self.db.query("select * from balances")
        }

    def runner_pid(self) -> int | None:
        """The pid of a runtime that is running on this ledger, if any (checked alive)."""
        row = self.db.execute("select value from meta where key = 'runner_pid'").fetchone()
        if row is None:
            return None
        pid = int(row[0])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None  # it died without clearing (kill -9)
        except PermissionError:
            pass
        return pid

    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        return list(self.db.query(sql, params))

    # -- reads for reports (rulebook.report) ---------------------------------------
    def report_rows(self) -> dict[str, Any]:
        """What a backtest or paper report is computed from: every position, fill,
        funding payment and cycle's equity, in time order, and the initial balances."""
        db = self.db
        return {
            "positions": list(db.query("select * from positions order by id")),
            "fills": list(db.query("select * from fills order by ts, id")),
            "funding_payments": list(db.query("select * from funding_payments order by ts, id")),
            "cycles": list(db.query("select ts, equity from cycles order by ts, id")),
            "initial_balance": float(
                db.execute("select coalesce(sum(initial), 0) from balances").fetchone()[0]
            ),
        }


def _cell(v: Any) -> Any:
    if isinstance(v, dict | list | tuple):
        return json.dumps(v, sort_keys=isinstance(v, dict))
    return v
