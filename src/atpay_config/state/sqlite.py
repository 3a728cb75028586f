"""The embedded default store: one SQLite file (`.atpay/state.db`).

WAL mode so plans read while an apply writes; every write is one `BEGIN
IMMEDIATE` transaction, so a SIGKILL at any point leaves the file at the last
commit. Per-tenant locks are rows in `locks`: a row whose process is gone from
this host is stale and reclaimed; a live one is waited for up to the timeout.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from atpay_config.errors import StateError
from atpay_config.state.store import (
    LOCK_HOLDER_SQL,
    LockHolder,
    Row,
    SqlStateStore,
    TenantLock,
    Tx,
    check_tenant_name,
    lock_timeout,
    now_iso,
    pid_alive,
    this_host,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

Migration = tuple[str, ...]

# Schema history: entry N takes the schema from version N to N+1. Append, never edit.
MIGRATIONS: tuple[Migration, ...] = (
    (
        """CREATE TABLE tenants (
            name TEXT PRIMARY KEY,
            version INTEGER NOT NULL CHECK (version >= 1),
            audit_count INTEGER NOT NULL DEFAULT 0 CHECK (audit_count >= 0),
            state TEXT NOT NULL,
            state_digest TEXT NOT NULL,
            record TEXT,
            record_digest TEXT,
            updated_at TEXT NOT NULL
        )""",
        """CREATE TABLE audit (
            tenant TEXT NOT NULL REFERENCES tenants (name) ON DELETE CASCADE,
            seq INTEGER NOT NULL CHECK (seq >= 1),
            version INTEGER NOT NULL,
            entry TEXT NOT NULL,
            PRIMARY KEY (tenant, seq)
        )""",
        """CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit
           BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
        """CREATE TABLE locks (
            tenant TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            pid INTEGER NOT NULL,
            host TEXT NOT NULL,
            acquired_at TEXT NOT NULL,
            token TEXT NOT NULL
        )""",
    ),
)


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in `meta` (0 for a new database)."""
    with closing(
        conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'")
    ) as cur:
        if cur.fetchone() is None:
            return 0
    with closing(conn.execute("SELECT value FROM meta WHERE key = 'schema_version'")) as cur:
        row = cur.fetchone()
    return int(row[0]) if row else 0


def migrate(
    conn: sqlite3.Connection, *, path: str, migrations: Sequence[Migration] = MIGRATIONS
) -> int:
    """Bring the schema to the latest version in ONE transaction; returns that version."""
    latest = len(migrations)
    current = schema_version(conn)
    if current == latest:
        return current
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        current = schema_version(conn)  # another process may have migrated meanwhile
        if current > latest:
            raise StateError(
                f"state database {path} has schema version {current}, newer than this atpay "
                f"understands ({latest})",
                hint="upgrade atpay-config",
            )
        for steps in migrations[current:]:
            for statement in steps:
                conn.execute(statement)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(latest),),
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return latest


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with closing(self._conn.execute(sql, tuple(params))) as cur:
            return [tuple(row) for row in cur.fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        with closing(self._conn.execute(sql, tuple(params))) as cur:
            return cur.rowcount

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with closing(self._conn.executemany(sql, [tuple(r) for r in rows])):
            pass


class SQLiteStore(SqlStateStore):
    """The state store in one SQLite file."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0) -> None:
        self.path = str(path)
        self.url = self.path
        self.busy_timeout = busy_timeout
        self._held: set[str] = set()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise StateError(f"cannot open state database {self.path}: {exc}") from None
        try:
            with self._errors():
                self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
                self._conn.execute("PRAGMA foreign_keys = ON")
                self._conn.execute("PRAGMA journal_mode = WAL")
                # NORMAL in WAL: a killed process loses nothing committed; power loss may
                # drop the last commits but never leaves the file inconsistent.
                self._conn.execute("PRAGMA synchronous = NORMAL")
                self.schema_version = migrate(self._conn, path=self.path)
        except BaseException:
            self._conn.close()
            raise

    @classmethod
    def open(cls, url: str) -> SQLiteStore:
        """A path, or `sqlite:///relative/path` / `sqlite:////absolute/path`."""
        if url.startswith("sqlite://"):
            path = url.removeprefix("sqlite://")
            if not path.startswith("/") or path == "/":
                raise StateError(f"state URL {url!r} has no path; write sqlite:///PATH")
            url = path[1:]
        return cls(url)

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise StateError(
                    f"state database {self.path} stayed busy for {self.busy_timeout:g}s: {exc}",
                    hint="another atpay run holds it; retry when it finishes",
                ) from None
            raise StateError(f"state database {self.path}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            raise StateError(
                f"state database {self.path} is unreadable: {exc}",
                hint="is --state / ATPAY_STATE pointing at an atpay state database?",
            ) from None
        except sqlite3.Error as exc:
            raise StateError(f"state database {self.path}: {exc}") from None

    def _transaction(self, begin: str, action: Callable[[Tx], T]) -> T:
        conn = self._conn
        with self._errors():
            conn.execute(begin)
            try:
                result = action(_SqliteTx(conn))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return result

    def _run_read(self, action: Callable[[Tx], T], *, consistent: bool = False) -> T:
        # A deferred transaction: every statement reads the same WAL snapshot.
        return self._transaction("BEGIN", action)

    def _run_write(self, action: Callable[[Tx], T]) -> T:
        return self._transaction("BEGIN IMMEDIATE", action)

    def _in_names(self, column: str, names: Sequence[str]) -> tuple[str, Any]:
        return f"{column} IN (SELECT value FROM json_each(?))", json.dumps(list(names))

    def _backend_problems(self, tx: Tx) -> list[str]:
        problems = [
            f"sqlite integrity_check: {row[0]}"
            for row in tx.all("PRAGMA integrity_check")
            if row[0] != "ok"
        ]
        problems += [
            f"foreign key violation: {table} row {rowid} has no {parent}"
            for table, rowid, parent, _fk in tx.all("PRAGMA foreign_key_check")
        ]
        return problems

    @contextmanager
    def lock(self, name: str, *, holder: str, timeout: float = 30.0) -> Iterator[TenantLock]:
        check_tenant_name(name)
        if name in self._held:
            raise StateError(f"this run already holds the lock on tenant {name!r}")
        me = LockHolder(holder=holder, pid=os.getpid(), host=this_host(), since=now_iso())
        token = uuid.uuid4().hex

        def attempt(tx: Tx) -> tuple[LockHolder | None, LockHolder | None]:
            row = tx.one(LOCK_HOLDER_SQL, (name,))
            current = None if row is None else LockHolder(*row)
            reclaimed = None
            if current is not None and current.host == me.host and not pid_alive(current.pid):
                reclaimed, current = current, None
            if current is None:
                tx.run(
                    "INSERT OR REPLACE INTO locks (tenant, holder, pid, host, acquired_at, token) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (name, me.holder, me.pid, me.host, me.since, token),
                )
            return current, reclaimed

        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            current, reclaimed = self._run_write(attempt)
            if current is None:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise lock_timeout(name, current, timeout)
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.25)
        if reclaimed is not None:
            log.warning(
                "tenant %r: reclaimed the stale lock of %s (that process is gone)",
                name,
                reclaimed.describe(),
            )
        self._held.add(name)
        try:
            yield TenantLock(tenant=name, holder=me, reclaimed=reclaimed)
        finally:
            self._held.discard(name)
            self._run_write(
                lambda tx: tx.run("DELETE FROM locks WHERE tenant = ? AND token = ?", (name, token))
            )
