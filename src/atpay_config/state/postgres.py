"""The shared store: PostgreSQL (psycopg 3), for several pipelines on one truth.

`postgresql://user@host:5432/db?schema=atpay` — the tables live in their own
schema (default `atpay`), created and migrated by the tool in one transaction
under an advisory lock, so two runs starting together do not both migrate.

Per-tenant locks are session advisory locks held on a second connection (one per
store, reused across tenants so an apply does not connect once per tenant): they
work across machines and vanish with a dead holder's session, so there is no stale
lock to clean up; a row in `locks` records who holds it for the waiting run's
message. Taking a lock (with its row) is one round trip, giving it back another.
An apply's steps for one tenant go to the server in one pipeline, each still its
own version-checked transaction (`write_steps`). Connection failures become
StateError naming host:port; reads retry once on a connection lost while idle;
the next call after a failure reconnects.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

from atpay_config.errors import StateError, UsageError
from atpay_config.state.store import (
    LOCK_HOLDER_SQL,
    LockHolder,
    Row,
    SqlStateStore,
    StepWrite,
    TenantLock,
    Tx,
    check_tenant_name,
    lock_timeout,
    now_iso,
    redact_url,
    this_host,
)

log = logging.getLogger(__name__)
# psycopg logs "error ignored terminating <Pipeline>" when a dropped connection is cleaned
# up; we already report the loss as one StateError line, so its own note is noise.
logging.getLogger("psycopg").addHandler(logging.NullHandler())
T = TypeVar("T")

DEFAULT_SCHEMA = "atpay"
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

Migration = tuple[str, ...]

# Schema history: entry N takes the schema from version N to N+1. Append, never edit.
# The same tables as the SQLite store, with PostgreSQL types.
MIGRATIONS: tuple[Migration, ...] = (
    (
        """CREATE TABLE tenants (
            name text PRIMARY KEY,
            version bigint NOT NULL CHECK (version >= 1),
            audit_count bigint NOT NULL DEFAULT 0 CHECK (audit_count >= 0),
            state jsonb NOT NULL,
            state_digest text NOT NULL,
            record jsonb,
            record_digest text,
            updated_at text NOT NULL
        )""",
        """CREATE TABLE audit (
            tenant text NOT NULL REFERENCES tenants (name) ON DELETE CASCADE,
            seq bigint NOT NULL CHECK (seq >= 1),
            version bigint NOT NULL,
            entry jsonb NOT NULL,
            PRIMARY KEY (tenant, seq)
        )""",
        """CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$""",
        """CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit
           FOR EACH ROW EXECUTE FUNCTION audit_append_only()""",
        """CREATE TABLE locks (
            tenant text PRIMARY KEY,
            holder text NOT NULL,
            pid integer NOT NULL,
            host text NOT NULL,
            acquired_at text NOT NULL,
            token text NOT NULL
        )""",
    ),
)


def advisory_key(schema: str, *parts: str) -> int:
    """A signed 64-bit advisory lock key for `parts` within one schema."""
    raw = "\0".join(("atpay-config", schema, *parts)).encode("utf-8")
    return int.from_bytes(hashlib.sha256(raw).digest()[:8], "big", signed=True)


def split_schema(url: str) -> tuple[str, str]:
    """The libpq URL without our `schema=` parameter, and that schema."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = DEFAULT_SCHEMA
    rest = []
    for key, value in query:
        if key == "schema":
            schema = value
        else:
            rest.append((key, value))
    if not SCHEMA_NAME.fullmatch(schema):
        raise UsageError(
            f"state URL schema {schema!r} is not a plain lower-case SQL name (a-z, 0-9, _)"
        )
    return urlunsplit(parts._replace(query=urlencode(rest))), schema


def _text(sql_text: str) -> str:
    return sql_text.replace("?", "%s")


class _PgTx:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def all(self, sql_text: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._conn.cursor() as cur:
            cur.execute(_text(sql_text), tuple(params))
            return [tuple(row) for row in cur.fetchall()]

    def one(self, sql_text: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self.all(sql_text, params)
        return rows[0] if rows else None

    def run(self, sql_text: str, params: Sequence[Any] = ()) -> int:
        with self._conn.cursor() as cur:
            cur.execute(_text(sql_text), tuple(params))
            return int(cur.rowcount)

    def many(self, sql_text: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(_text(sql_text), [tuple(r) for r in rows])


class PostgresStore(SqlStateStore):
    """The state store in a PostgreSQL schema."""

    def __init__(self, url: str, *, connect_timeout: int = 10) -> None:
        self.conninfo, self.schema = split_schema(url)
        self.url = redact_url(url)
        self.connect_timeout = connect_timeout
        info = conninfo_to_dict(self.conninfo)
        self.where = (
            f"{info.get('host') or 'localhost'}:{info.get('port') or 5432}"
            f"/{info.get('dbname') or info.get('user') or ''}"
        )
        self._held: set[str] = set()
        self._conn: psycopg.Connection[Any] | None = None
        self._lock_conn: psycopg.Connection[Any] | None = None
        try:
            self.schema_version = self._migrate(self._connection())
        except BaseException:
            self.close()
            raise

    @classmethod
    def open(cls, url: str) -> PostgresStore:
        """`postgresql://…` or `postgres://…`, with an optional `?schema=NAME`."""
        return cls(url)

    # --- connections and errors ------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(
                self.conninfo,
                autocommit=True,
                connect_timeout=self.connect_timeout,
                application_name="atpay-config",
            )
        except psycopg.Error as exc:
            raise StateError(
                f"cannot connect to the PostgreSQL state store at {self.where}: {_first_line(exc)}",
                hint="check that the server runs and accepts connections there, and the URL "
                "given with --state / ATPAY_STATE (user, database, password)",
            ) from None
        try:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        except psycopg.Error as exc:
            conn.close()
            self._fail(exc, "setting up the connection")
        return conn

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _fail(self, exc: psycopg.Error, doing: str) -> NoReturn:
        if isinstance(exc, psycopg.OperationalError):
            raise StateError(
                f"lost the connection to the PostgreSQL state store at {self.where} while "
                f"{doing}: {_first_line(exc)}",
                hint="nothing half-written is kept (each step is one transaction); check the "
                "server, then re-run: plan/apply converge",
            ) from None
        raise StateError(
            f"PostgreSQL state store at {self.where} refused {doing}: {_first_line(exc)}"
        ) from None

    def close(self) -> None:
        self._drop_connection()
        if self._lock_conn is not None:
            self._lock_conn.close()  # ends the session: any lock still held goes with it
            self._lock_conn = None

    # --- transactions --------------------------------------------------------

    def _run_read(self, action: Callable[[Tx], T], *, consistent: bool = False) -> T:
        for attempt in (1, 2):
            conn = self._connection()
            try:
                with conn.transaction():
                    if consistent:
                        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    return action(_PgTx(conn))
            except psycopg.OperationalError as exc:
                lost = conn.broken or conn.closed
                self._drop_connection()
                if lost and attempt == 1:
                    continue  # a read is safe to repeat on a fresh connection
                self._fail(exc, "reading")
            except psycopg.Error as exc:
                self._fail(exc, "reading")
        raise AssertionError("unreachable")

    def _run_write(self, action: Callable[[Tx], T]) -> T:
        conn = self._connection()
        try:
            with conn.transaction():
                return action(_PgTx(conn))
        except psycopg.OperationalError as exc:
            # Never retried here: a lost COMMIT may have landed; the version check on the
            # caller's re-run tells.
            self._drop_connection()
            self._fail(exc, "writing")
        except psycopg.Error as exc:
            if conn.broken:
                self._drop_connection()
            self._fail(exc, "writing")

    @staticmethod
    def _with_audit_sql(update_sql: str) -> str:
        # One statement, so one round trip and atomic without BEGIN/COMMIT: the audit
        # rows are inserted only when the version-checked UPDATE matched.
        return (
            f"WITH t AS ({update_sql}), a AS (INSERT INTO audit (tenant, seq, version, entry) "
            "SELECT ?, t.audit_count - ? + e.ord, t.version, e.entry "
            "FROM t, jsonb_array_elements(?) WITH ORDINALITY AS e (entry, ord)) "
            "SELECT version, audit_count FROM t"
        )

    def _with_audit_params(self, params: Sequence[Any], name: str, entries: list[str]) -> list[Any]:
        return [*params, name, len(entries), self._json_param("[" + ",".join(entries) + "]")]

    def _update_with_audit(
        self, update_sql: str, params: Sequence[Any], name: str, entries: list[str]
    ) -> Row | None:
        conn = self._connection()
        try:
            return _PgTx(conn).one(
                self._with_audit_sql(update_sql), self._with_audit_params(params, name, entries)
            )
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError) or conn.broken:
                self._drop_connection()
            self._fail(exc, "writing")

    def write_steps(
        self,
        name: str,
        *,
        expected_version: int,
        steps: Sequence[StepWrite],
        on_written: Callable[[int, int], None],
    ) -> int:
        """Every step in one round trip, still each its own transaction (BEGIN … COMMIT).

        The statements go in one pipeline (prepared, one Sync); an explicit COMMIT per
        step ends each transaction. Step k (k ≥ 1) applies only at the version step k-1
        produced AND on exactly the state it wrote (its digest), so once one step is
        refused none after it applies, even if the version reaches the number it expects.

        Durability: every step but the last commits without waiting for its WAL flush;
        the last one's synchronous commit flushes the WAL up to its own commit record,
        which covers every earlier step. No step is reported written before that flush:
        when the batch stops early, an explicit flush comes first (`_flush_wal`). A server
        crash mid-batch loses at most a suffix of it, each step still all-or-nothing.
        """
        check_tenant_name(name)
        if not steps:
            return expected_version
        statements: list[tuple[str, Sequence[Any]]] = []
        updates: list[int] = []  # where each step's UPDATE is among the statements
        digests: list[str] = []
        last = len(steps) - 1
        for index, step in enumerate(steps):
            update_sql, params, entries, state_digest = self._step_update(
                name,
                expected_version + index,
                step,
                prior_digest=digests[-1] if digests else None,
            )
            digests.append(state_digest)
            statements.append(("BEGIN", ()))
            if index < last:
                statements.append(("SET LOCAL synchronous_commit TO off", ()))
            updates.append(len(statements))
            statements += [
                (self._with_audit_sql(update_sql), self._with_audit_params(params, name, entries)),
                ("COMMIT", ()),
            ]
        conn = self._connection()
        try:
            results = _pipelined(conn, statements)
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError) or conn.broken:
                # The steps sent may have landed; the version check on the re-run tells.
                self._drop_connection()
                self._fail(exc, "writing")
            self._report_committed(name, expected_version, digests, on_written)
            self._fail(exc, "writing")
        versions: list[int] = []
        for position in updates:
            row = results[position]
            if row is None:
                break
            versions.append(int(row[0]))
        if 0 < len(versions) < len(steps):
            self._flush_wal(name)
        for index, version in enumerate(versions):
            on_written(index, version)
        if len(versions) == len(steps):
            return versions[-1]
        refused = expected_version + len(versions)  # what the refused step expected
        raise self._run_read(lambda tx: self._refuse_write(tx, name, refused))

    def _flush_wal(self, name: str) -> None:
        """Make every commit so far durable. A synchronous commit waits for the WAL to be
        flushed up to its commit record, but only a transaction that wrote WAL flushes at
        all (an id alone is not enough): so rewrite the tenant's row as it is."""
        conn = self._connection()
        try:
            _pipelined(
                conn,
                [
                    ("BEGIN", ()),
                    ("SET LOCAL synchronous_commit TO on", ()),
                    ("UPDATE tenants SET updated_at = updated_at WHERE name = ?", (name,)),
                    ("COMMIT", ()),
                ],
            )
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError) or conn.broken:
                self._drop_connection()
            self._fail(exc, "writing")

    def _report_committed(
        self,
        name: str,
        expected_version: int,
        digests: Sequence[str],
        on_written: Callable[[int, int], None],
    ) -> None:
        """After a statement of a batch failed: say which steps before it committed."""
        conn = self._connection()
        try:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
        except psycopg.Error:
            self._drop_connection()
            return
        row = self._run_read(
            lambda tx: tx.one("SELECT version, state_digest FROM tenants WHERE name = ?", (name,))
        )
        if row is None:
            return
        done = int(row[0]) - expected_version
        if 0 < done <= len(digests) and row[1] == digests[done - 1]:
            self._flush_wal(name)  # they committed without waiting for the flush
            for index in range(done):
                on_written(index, expected_version + index + 1)

    def _json_param(self, text: str) -> Any:
        return Jsonb(text, dumps=_as_is)

    def _in_names(self, column: str, names: Sequence[str]) -> tuple[str, Any]:
        return f"{column} = ANY(?)", list(names)

    # --- schema ------------------------------------------------------------------

    def _migrate(
        self, conn: psycopg.Connection[Any], migrations: Sequence[Migration] = MIGRATIONS
    ) -> int:
        latest = len(migrations)
        try:
            current = self._schema_version(conn)
            if current == latest:
                return current
            with conn.transaction():
                conn.execute(
                    "SELECT pg_advisory_xact_lock(%s)", (advisory_key(self.schema, "migrate"),)
                )
                conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
                )
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text NOT NULL)"
                )
                current = self._schema_version(conn)
                if current > latest:
                    raise StateError(
                        f"PostgreSQL state schema {self.schema!r} at {self.where} has version "
                        f"{current}, newer than this atpay understands ({latest})",
                        hint="upgrade atpay-config",
                    )
                for steps in migrations[current:]:
                    for statement in steps:
                        conn.execute(statement)
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(latest),),
                )
        except psycopg.Error as exc:
            self._drop_connection()
            self._fail(exc, f"migrating schema {self.schema!r}")
        return latest

    def _schema_version(self, conn: psycopg.Connection[Any]) -> int:
        row = conn.execute("SELECT to_regclass(%s)", (f"{self.schema}.meta",)).fetchone()
        if row is None or row[0] is None:
            return 0
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    # --- locks -------------------------------------------------------------------

    def _lock_connection(self) -> psycopg.Connection[Any]:
        """The store's one lock session, (re)opened when missing or broken."""
        conn = self._lock_conn
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                conn.close()
            conn = self._connect()
            try:
                # Only `locks` rows are written on this session, and they are a note for the
                # waiting run's message: the advisory lock is the lock. A row lost to a server
                # crash goes with the locks themselves (a crash ends every session), so its
                # commit need not wait for the WAL flush. Visibility is not delayed by this.
                conn.execute("SET synchronous_commit TO off")
            except psycopg.Error as exc:
                conn.close()
                self._fail(exc, "setting up the lock session")
            self._lock_conn = conn
        return conn

    @contextmanager
    def lock(self, name: str, *, holder: str, timeout: float = 30.0) -> Iterator[TenantLock]:
        check_tenant_name(name)
        if name in self._held:
            raise StateError(f"this run already holds the lock on tenant {name!r}")
        me = LockHolder(holder=holder, pid=os.getpid(), host=this_host(), since=now_iso())
        token = uuid.uuid4().hex
        key = advisory_key(self.schema, "tenant", name)
        conn = self._lock_connection()  # the lock lives as long as this session
        reclaimed = self._acquire(conn, name, me, token, key, timeout)
        self._held.add(name)
        try:
            yield TenantLock(tenant=name, holder=me, reclaimed=reclaimed)
        finally:
            self._held.discard(name)
            self._release(conn, name, token, key)

    def _acquire(
        self,
        conn: psycopg.Connection[Any],
        name: str,
        me: LockHolder,
        token: str,
        key: int,
        timeout: float,
    ) -> LockHolder | None:
        # One round trip per attempt: two statements in one simple query. The first takes
        # the advisory lock and notes the outcome in a session setting; the second, with a
        # snapshot taken after the lock (READ COMMITTED), reads any row left behind and
        # writes ours, only when the lock was got. A previous holder deletes its row and
        # commits before unlocking, so a row seen here is from a session that ended
        # without cleaning up (killed, or its connection dropped).
        got = "current_setting('atpay.lock_got') = 'true'"
        attempt: list[tuple[str, Sequence[Any]]] = [
            ("SELECT set_config('atpay.lock_got', pg_try_advisory_lock(?)::text, false)", (key,)),
            (
                "WITH old AS (SELECT holder, pid, host, acquired_at FROM locks "
                f"WHERE tenant = ? AND {got}), "
                "up AS (INSERT INTO locks (tenant, holder, pid, host, acquired_at, token) "
                f"SELECT ?, ?, ?, ?, ?, ? WHERE {got} ON CONFLICT (tenant) DO UPDATE SET "
                "holder = excluded.holder, pid = excluded.pid, host = excluded.host, "
                "acquired_at = excluded.acquired_at, token = excluded.token) "
                f"SELECT {got}, old.holder, old.pid, old.host, old.acquired_at "
                "FROM (SELECT 1) AS one LEFT JOIN old ON true",
                (name, name, me.holder, me.pid, me.host, me.since, token),
            ),
        ]
        deadline = time.monotonic() + timeout
        delay = 0.02
        try:
            while True:
                row = _pipelined(conn, attempt)[1]
                if row is not None and row[0]:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    held = _PgTx(conn).one(LOCK_HOLDER_SQL, (name,))
                    raise lock_timeout(name, None if held is None else LockHolder(*held), timeout)
                time.sleep(min(delay, remaining))
                delay = min(delay * 2, 0.25)
        except psycopg.Error as exc:
            self._abandon_lock(conn, key)
            self._fail(exc, f"locking tenant {name!r}")
        reclaimed = None if row[1] is None else LockHolder(*row[1:])
        if reclaimed is not None:
            log.warning(
                "tenant %r: took over the lock record of %s (that session ended)",
                name,
                reclaimed.describe(),
            )
        return reclaimed

    def _abandon_lock(self, conn: psycopg.Connection[Any], key: int) -> None:
        """After a failed attempt: give back the advisory lock if it was got, or end the session."""
        if not conn.broken and not conn.closed:
            try:
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.execute("ROLLBACK")
                # The tenant was not held before this attempt (`_held`), so unlocking once
                # gives back exactly what the attempt may have taken; a no-op otherwise.
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
                return
            except psycopg.Error:
                pass
        conn.close()  # ending the session releases whatever it held

    def _release(self, conn: psycopg.Connection[Any], name: str, token: str, key: int) -> None:
        # One round trip: the row's delete commits before the advisory lock is given back,
        # so the next holder never sees our row as left behind.
        release: list[tuple[str, Sequence[Any]]] = [
            ("BEGIN", ()),
            ("DELETE FROM locks WHERE tenant = ? AND token = ?", (name, token)),
            ("COMMIT", ()),
            ("SELECT pg_advisory_unlock(?)", (key,)),
        ]
        try:
            _pipelined(conn, release)
        except psycopg.Error as exc:
            # The server dropped the session and with it the advisory lock; the row is
            # taken over by the next holder. Not worth failing a finished apply for.
            conn.close()
            log.warning("tenant %r: could not release the lock cleanly: %s", name, _first_line(exc))


def _pipelined(
    conn: psycopg.Connection[Any], statements: Sequence[tuple[str, Sequence[Any]]]
) -> list[Row | None]:
    """Run `statements` in one pipeline (one round trip); each one's first row, if any.

    No Sync between them: without an explicit BEGIN/COMMIT they share one implicit
    transaction, though each still reads with its own snapshot (READ COMMITTED).
    """
    cursors: list[psycopg.Cursor[Any]] = []
    try:
        with conn.pipeline():
            for text, params in statements:
                cur = conn.cursor()
                cursors.append(cur)
                cur.execute(_text(text), tuple(params))
        return [None if cur.description is None else _first(cur.fetchone()) for cur in cursors]
    finally:
        for cur in cursors:
            cur.close()


def _first(row: Any) -> Row | None:
    return None if row is None else tuple(row)


def _as_is(text: str) -> str:
    return text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
