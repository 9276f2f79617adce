"""The ledger's reader: typed reads for `status`, reports, backtests and tests.

    with LedgerReader.open("paper.db") as read:     # read-only; never creates a file
        stats = read.stats()                         # LedgerStats
        for p in read.positions():                   # PositionRecord, pnl parts included
            ...
        payments = read.funding_payments(position_id=3)

A writer's `Ledger.read` is the same reader on the writer's connection. Every
method returns dataclasses of `_records.py`; no caller sees a table or SQL.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from rulebook.errors import RulebookError

from ._records import (
    BalanceRecord,
    BorrowCharge,
    CycleRecord,
    EventRecord,
    FillRecord,
    FundingRecord,
    LedgerStats,
    LegRecord,
    OpportunityRecord,
    OrderRecord,
    PositionRecord,
    RulesetRecord,
)

__all__ = ["SCHEMA_VERSION", "LedgerError", "LedgerReader", "ledger_failure", "schema_version"]

#: The ledger schema this rulebook writes (see `_ledger.py` for the history).
SCHEMA_VERSION = 3


class LedgerError(RulebookError):
    """The ledger cannot be opened, is not a rulebook ledger, or has another schema."""


def ledger_failure(path: Path, error: sqlite3.DatabaseError) -> LedgerError:
    """A SQLite failure as one line naming the file and what to do."""
    text = str(error)
    low = text.lower()
    if "readonly" in low or "read-only" in low:
        why = "the ledger is read-only; make it writable (chmod u+w, and its directory) or copy it to a new --db"
    elif "disk is full" in low or "disk i/o" in low or "too big" in low:
        why = (
            f"the ledger cannot be written ({text}): the disk may be full; free space and "
            "run again, every complete cycle is kept"
        )
    elif "not a database" in low or "file is encrypted" in low:
        why = "not a SQLite file, so not a rulebook ledger; nothing was written: give --db a new file"
    elif "malformed" in low or "corrupt" in low:
        why = "the ledger is damaged (SQLite: malformed); restore a backup or start a new --db; nothing was written"
    elif "unable to open" in low:
        why = "the ledger cannot be opened; check the path and that its directory exists and is writable"
    elif "locked" in low or "busy" in low:
        why = "the ledger is locked by another process for too long; try again"
    else:
        why = f"the ledger failed: {text}"
    return LedgerError(f"{path}: {why}")


def schema_version(conn: sqlite3.Connection, path: Path) -> int:
    """The ledger's schema version; LedgerError (one line) when it is not readable here."""
    try:
        row = conn.execute("select value from meta where key = 'schema_version'").fetchone()
    except sqlite3.OperationalError:
        raise LedgerError(
            f"{path}: not a rulebook ledger (no meta table); nothing was written: "
            "give --db a new file"
        ) from None
    try:
        version = int(row[0]) if row is not None else None
    except (TypeError, ValueError):
        shown = repr(row[0])[:40] if row is not None else "none"
        raise LedgerError(
            f"{path}: damaged or not a rulebook ledger (schema version {shown} is not a "
            "number); nothing was written: restore a backup or give --db a new file"
        ) from None
    if version is None:
        raise LedgerError(
            f"{path}: not a rulebook ledger (no schema version); nothing was written: "
            "give --db a new file"
        )
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"{path}: ledger schema {version} was written by a newer rulebook;"
            f" this one reads up to {SCHEMA_VERSION}: upgrade rulebook to open it"
        )
    return version


class LedgerReader:
    """Typed reads of one ledger. Build it with `LedgerReader.open(path)` (read-only)
    or use a writer's `ledger.read`."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._own = False

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> LedgerReader:
        """Open a ledger read-only. An older ledger is refused with a message saying how
        to upgrade it; nothing is written, and a missing file is not created."""
        p = Path(path)
        if not p.is_file():
            raise LedgerError(f"{p}: no ledger here")
        try:
            # a URI (percent-encoded, so any file name works) opened read-only
            conn = sqlite3.connect(p.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)
            version = schema_version(conn, p)
        except sqlite3.DatabaseError as e:
            raise ledger_failure(p, e) from None
        if version < SCHEMA_VERSION:
            conn.close()
            raise LedgerError(
                f"{p}: ledger schema {version} is older than this rulebook's {SCHEMA_VERSION};"
                f" `rulebook status --db {p}` upgrades it in place (nothing is lost)"
            )
        reader = cls(conn, p)
        reader._own = True
        return reader

    def close(self) -> None:
        if self._own:
            self._conn.close()

    def __enter__(self) -> LedgerReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- helpers -------------------------------------------------------------------
    def _rows(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        cur = self._conn.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def _one(self, sql: str, params: Any = ()) -> Any:
        row = self._conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def _meta(self, key: str) -> str | None:
        value = self._one("select value from meta where key = ?", [key])
        return None if value is None else str(value)

    # -- the run -------------------------------------------------------------------
    def stats(self) -> LedgerStats:
        """Statistics operators expect. Cumulative profit is the realised pnl of closed
        positions plus the open ones marked at the last complete cycle."""
        one = self._one
        realised = float(one("select coalesce(sum(pnl), 0) from positions where status='closed'"))
        # the open positions marked at the marks table (bounded by the book, not the ledger)
        held = self.open_position_rows()
        unrealised = float(sum(r["pnl"] for r in held))
        price_held = float(sum(r["pnl_price"] for r in held))
        return LedgerStats(
            cycles=int(one("select count(*) from cycles")),
            first_cycle=one("select min(ts) from cycles"),
            last_cycle=one("select max(ts) from cycles"),
            # every fired binding of every cycle; the opportunities table holds
            # only the changes (appeared, changed decision, gone)
            opportunities_found=int(one("select coalesce(sum(opportunities), 0) from cycles")),
            opportunities_distinct=int(
                one(
                    "select count(*) from (select distinct rule, bindings from opportunities"
                    " where decision is not 'gone')"
                )
            ),
            positions_opened=int(one("select count(*) from positions")),
            positions_closed=int(one("select count(*) from positions where status='closed'")),
            active_positions=int(one("select count(*) from positions where status='open'")),
            trades_executed=int(one("select count(*) from fills")),
            funding_payments=int(one("select count(*) from funding_payments")),
            funding=float(one("select coalesce(sum(pnl_funding), 0) from positions")),
            fees=float(one("select coalesce(sum(pnl_fees), 0) from positions")),
            price=float(
                one("select coalesce(sum(pnl_price), 0) from positions where status != 'open'")
            )
            + price_held,
            borrow=float(one("select coalesce(sum(pnl_borrow), 0) from positions")),
            realised_pnl=realised,
            unrealised_pnl=unrealised,
            cumulative_profit=realised + unrealised,
            initial_balance=float(one("select coalesce(sum(initial), 0) from balances")),
            cash=float(one("select coalesce(sum(cash), 0) from balances")),
            exposure=float(
                one("select coalesce(sum(notional), 0) from positions where status='open'")
            ),
            halts=int(one("select count(*) from events where kind='halt'")),
            errors=int(one("select count(*) from events where kind like '%error%'")),
            outages=int(one("select count(*) from events where kind='outage'")),
            runner_pid=self.runner_pid(),
        )

    def last_cycle_ts(self) -> int | None:
        value = self._one("select max(ts) from cycles")
        return None if value is None else int(value)

    def cycles(self) -> list[CycleRecord]:
        return [CycleRecord(**r) for r in self._rows("select * from cycles order by ts, id")]

    def runner_pid(self) -> int | None:
        """The pid of a runtime that is running on this ledger, if any (checked alive)."""
        value = self._meta("runner_pid")
        if value is None:
            return None
        pid = int(value)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None  # it died without clearing (kill -9)
        except PermissionError:
            pass
        return pid

    def mode(self) -> str:
        """'live' or 'paper' (a ledger that never ran live is a paper one)."""
        return self._meta("mode") or "paper"

    def reported_funding(self, position_ids: Iterable[int] | None = None) -> dict[int, float]:
        """Per position (every one, or those of `position_ids`), the funding the
        exchanges reported ({} on a paper ledger)."""
        if not self._has_table("exchange_funding"):
            return {}
        sql = (
            "select position_id, sum(amount) as s from exchange_funding "
            "where position_id is not null group by position_id"
        )
        if position_ids is None:
            rows = self._rows(sql)
        else:
            wanted = sorted(set(position_ids))
            rows = []
            for i in range(0, len(wanted), 500):  # SQLite's bound on parameters
                chunk = wanted[i : i + 500]
                rows += self._rows(
                    "select position_id, sum(amount) as s from exchange_funding where "
                    f"position_id in ({', '.join('?' * len(chunk))}) group by position_id",
                    chunk,
                )
        return {int(r["position_id"]): float(r["s"] or 0.0) for r in rows}

    def reported_funding_total(self) -> float:
        """The funding the exchanges reported over every position (0 on a paper ledger)."""
        if not self._has_table("exchange_funding"):
            return 0.0
        return float(
            self._one(
                "select coalesce(sum(amount), 0) from exchange_funding"
                " where position_id is not null"
            )
        )

    def schema_version(self) -> int:
        return schema_version(self._conn, self.path)

    # -- positions and what they did -------------------------------------------------
    def positions(self, status: str | None = None) -> list[PositionRecord]:
        """Every position (or those with `status`, open or closed), by id."""
        if status is None:
            rows = self._rows("select * from positions order by id")
        else:
            rows = self._rows("select * from positions where status = ? order by id", [status])
        marks = self.marks()
        return [_position(_marked(r, marks)) for r in rows]

    def iter_positions(self) -> Iterator[PositionRecord]:
        """Every position by id, read a row at a time (memory does not grow with the
        ledger: what `status --json` and reports stream)."""
        marks = self.marks()
        cur = self._conn.execute("select * from positions order by id")
        names = [d[0] for d in cur.description]
        for r in cur:
            yield _position(_marked(dict(zip(names, r, strict=True)), marks))

    # -- streamed reads (reports: memory that does not grow with the ledger) ---------
    @contextmanager
    def snapshot(self) -> Iterator[LedgerReader]:
        """One read transaction: every read inside sees the same ledger, even while a
        runtime writes cycles (WAL). For a read-only reader (`LedgerReader.open`)."""
        if self._conn.in_transaction:
            yield self
            return
        self._conn.execute("begin")
        try:
            yield self
        finally:
            self._conn.rollback()  # nothing was written: ends the read transaction

    def _iter(self, sql: str, params: Any = ()) -> Iterator[dict[str, Any]]:
        cur = self._conn.execute(sql, params)
        names = [d[0] for d in cur.description]
        for r in cur:
            yield dict(zip(names, r, strict=True))

    def iter_equity(self) -> Iterator[tuple[int, float]]:
        """(ts, equity) of every cycle, as `cycles()` orders them, a row at a time."""
        yield from self._conn.execute("select ts, equity from cycles order by ts, id")

    def iter_leg_sizes(
        self, by: Literal["opened", "closed"]
    ) -> Iterator[tuple[int, list[tuple[float, float]]]]:
        """(opened_at, [(size, entry_price) per leg]) of every position by opening time,
        or (closed_at, ...) of the closed ones by closing time; a row at a time (what
        a report's exposure needs, without building the positions)."""
        sql = (
            "select opened_at, legs from positions order by opened_at, id"
            if by == "opened"
            else "select closed_at, legs from positions where closed_at is not null"
            " order by closed_at, id"
        )
        for t, legs in self._conn.execute(sql):
            yield t, [(leg["size"], leg["entry_price"]) for leg in json.loads(legs)]

    def iter_fill_amounts(self) -> Iterator[tuple[int, float, float, float]]:
        """(ts, price, size, fee) of every fill, in `fills()`' order, a row at a time."""
        yield from self._conn.execute("select ts, price, size, fee from fills order by ts, id")

    def iter_funding_amounts(self) -> Iterator[tuple[int, float]]:
        """(ts, amount) of every payment, in `funding_payments()`' order, a row at a time."""
        yield from self._conn.execute(
            "select ts, amount from funding_payments order by ts, exchange, id"
        )

    def iter_funding_payments(self, *, by_position: bool = False) -> Iterator[FundingRecord]:
        """Every payment in settlement order (as `funding_payments()`), or with
        `by_position` by position, then settlement, exchange; a row at a time."""
        order = "position_id, ts, exchange, id" if by_position else "ts, exchange, id"
        for r in self._iter(f"select * from funding_payments order by {order}"):
            yield FundingRecord(**r)

    def latest_not_open(self, n: int) -> tuple[list[PositionRecord], int]:
        """The `n` positions not open (closed, or a live one in flight) with the highest
        ids, by id, and how many positions are not open in all."""
        rows = self._rows(
            "select * from (select * from positions where status != 'open'"
            " order by id desc limit ?) order by id",
            [n],
        )
        total = int(self._one("select count(*) from positions where status != 'open'"))
        return [_position(r) for r in rows], total

    def position_ids(self) -> tuple[int, int] | None:
        """The lowest and highest position id, if there is a position."""
        row = self._conn.execute("select min(id), max(id) from positions").fetchone()
        return None if row is None or row[0] is None else (int(row[0]), int(row[1]))

    def count_events(self, kind: str) -> int:
        return int(self._one("select count(*) from events where kind = ?", [kind]))

    def position(self, position_id: int) -> PositionRecord | None:
        rows = self._rows("select * from positions where id = ?", [position_id])
        return _position(_marked(rows[0], self.marks())) if rows else None

    def open_position_rows(self) -> list[dict[str, Any]]:
        """The open positions' state, their legs marked at the latest marks, for the
        writer to rebuild its book from."""
        marks = self.marks()
        rows = self._rows("select * from positions where status = 'open' order by id")
        return [_marked(r, marks) for r in rows]

    def marks(self) -> dict[MarkKey, tuple[float, int]]:
        """(exchange, coin, market) -> (mark, ts): each held market's last mark (one row
        per market, so bounded by the markets, not by the ledger's length)."""
        if not self._has_table("marks"):
            return {}
        return {
            (str(e), str(c), str(m)): (float(mark), int(ts))
            for e, c, m, mark, ts in self._conn.execute(
                "select exchange, coin, market, mark, ts from marks"
            )
        }

    def _has_table(self, name: str) -> bool:
        return bool(
            self._one(
                "select count(*) from sqlite_master where type = 'table' and name = ?", [name]
            )
        )

    def orders(self, position_id: int | None = None) -> list[OrderRecord]:
        return [OrderRecord(**r) for r in self._by_position("orders", position_id)]

    def fills(self, position_id: int | None = None) -> list[FillRecord]:
        """Fills in time order."""
        return [FillRecord(**r) for r in self._by_position("fills", position_id, order="ts, id")]

    def funding_payments(self, position_id: int | None = None) -> list[FundingRecord]:
        """Payments in settlement order (then exchange)."""
        rows = self._by_position("funding_payments", position_id, order="ts, exchange, id")
        return [FundingRecord(**r) for r in rows]

    def last_funding_payments(self) -> dict[tuple[int, str], tuple[int, float | None]]:
        """Per (position, exchange) of the positions not closed: the latest settlement paid and
        the interval that settled then (what a restart resumes each leg after)."""
        rows = self._rows(
            "select f.position_id, f.exchange, f.ts, f.interval_h from funding_payments f "
            "join (select position_id, exchange, max(ts) as ts from funding_payments "
            "where position_id in (select id from positions where status != 'closed') "
            "group by position_id, exchange) m on f.position_id = m.position_id "
            "and f.exchange = m.exchange and f.ts = m.ts"
        )
        return {
            (int(r["position_id"]), str(r["exchange"])): (
                int(r["ts"]),
                None if r["interval_h"] is None else float(r["interval_h"]),
            )
            for r in rows
        }

    def borrow_charges(self, position_id: int | None = None) -> list[BorrowCharge]:
        return [BorrowCharge(**r) for r in self._by_position("borrow_charges", position_id)]

    def _by_position(
        self, table: str, position_id: int | None, order: str = "id"
    ) -> list[dict[str, Any]]:
        if position_id is None:
            return self._rows(f"select * from {table} order by {order}")
        return self._rows(
            f"select * from {table} where position_id = ? order by {order}", [position_id]
        )

    def standing_opportunities(
        self,
    ) -> dict[tuple[str, tuple[tuple[str, str], ...]], tuple[str | None, str | None]]:
        """Each binding that fired in the latest cycle it was recorded in and has not
        gone since: (rule, sorted bindings) -> (decision, reason). A resumed runtime
        starts from this, so it records only what changes, as an uninterrupted one does."""
        rows = self._rows(
            "select rule, bindings, decision, reason from opportunities where id in"
            " (select max(id) from opportunities group by rule, bindings)"
        )
        return {
            (r["rule"], tuple(sorted(json.loads(r["bindings"]).items()))): (
                r["decision"],
                r["reason"],
            )
            for r in rows
            if r["decision"] != "gone"
        }

    def opportunities(self, rule: str | None = None) -> list[OpportunityRecord]:
        if rule is None:
            rows = self._rows("select * from opportunities order by id")
        else:
            rows = self._rows("select * from opportunities where rule = ? order by id", [rule])
        out = []
        for r in rows:
            r["bindings"] = json.loads(r["bindings"])
            r["legs"] = json.loads(r["legs"])
            out.append(OpportunityRecord(**r))
        return out

    # -- money, events, rules, halts ------------------------------------------------------
    def balances(self) -> list[BalanceRecord]:
        return [BalanceRecord(**r) for r in self._rows("select * from balances order by exchange")]

    def events(self, kind: str | None = None) -> list[EventRecord]:
        if kind is None:
            rows = self._rows("select * from events order by id")
        else:
            rows = self._rows("select * from events where kind = ? order by id", [kind])
        return [EventRecord(**r) for r in rows]

    def rulesets(self) -> list[RulesetRecord]:
        out = []
        for r in self._rows("select * from rulesets order by loaded_at, sha256"):
            for key in ("files", "sources", "added", "removed", "changed"):
                if r[key] is not None:
                    r[key] = json.loads(r[key])
            out.append(RulesetRecord(**r))
        return out

    def ruleset_sources(self, sha256: str) -> dict[str, str] | None:
        value = self._one("select sources from rulesets where sha256 = ?", [sha256])
        return None if value is None else dict(json.loads(value))

    def live_ruleset(self) -> str | None:
        """The ruleset the runtime runs (or ran last)."""
        value = self._meta("live_ruleset")
        if value is not None:
            return value
        value = self._one("select ruleset_sha from cycles order by id desc limit 1")
        return None if value is None else str(value)

    def pending_halt(self) -> tuple[int, bool] | None:
        """The halt request to act on (a --close-all one first): (id, close_all)."""
        row = self._conn.execute(
            "select id, close_all from halt_requests where handled_at is null "
            "order by close_all desc, id limit 1"
        ).fetchone()
        return None if row is None else (int(row[0]), bool(row[1]))


_LEG_FIELDS = tuple(LegRecord.__dataclass_fields__)

#: a market as the marks table keys it: (exchange, coin, market)
MarkKey = tuple[str, str, str]


def _marked(row: dict[str, Any], marks: Mapping[MarkKey, tuple[float, int]]) -> dict[str, Any]:
    """An open position's row with each leg at its market's mark when the marks table's
    is newer than the row (a paper executor rewrites a position only when its stored
    state moves; the marks move every cycle), and its price pnl and pnl to match:
    the same arithmetic, in the same order, as `PaperPosition.price` and `.pnl`."""
    if row["status"] != "open" or not marks:
        return row
    legs = json.loads(row["legs"])
    written = row["updated_at"] or 0
    newest = written
    for leg in legs:
        got = marks.get((leg["exchange"], row["coin"], leg["market"]))
        if got is not None and got[1] > written:
            leg["mark"] = got[0]
            newest = max(newest, got[1])
    if newest == written:
        return row
    price = 0.0
    for leg in legs:
        exit_price = leg.get("exit_price")
        px = exit_price if exit_price is not None else leg["mark"]
        price += (1 if leg["side"] == "long" else -1) * leg["size"] * (px - leg["entry_price"])
    out = dict(row)
    out["legs"] = json.dumps(legs)
    out["pnl_price"] = price
    out["pnl"] = row["pnl_funding"] + row["pnl_fees"] + price + row["pnl_borrow"]
    out["updated_at"] = newest
    return out


def _position(r: Mapping[str, Any]) -> PositionRecord:
    legs = [LegRecord(**{k: leg[k] for k in _LEG_FIELDS if k in leg}) for leg in json.loads(r["legs"])]
    return PositionRecord(
        id=int(r["id"]),
        rule=r["rule"],
        bindings=json.loads(r["bindings"]),
        ruleset_sha=r["ruleset_sha"],
        coin=r["coin"],
        legs=legs,
        notional=float(r["notional"]),
        status=r["status"],
        opened_at=int(r["opened_at"]),
        closed_at=r["closed_at"],
        close_reason=r["close_reason"],
        pnl_funding=float(r["pnl_funding"]),
        pnl_fees=float(r["pnl_fees"]),
        pnl_price=float(r["pnl_price"]),
        pnl_borrow=float(r["pnl_borrow"]),
        pnl=float(r["pnl"]),
        updated_at=r["updated_at"],
    )
