"""The state store Protocol both backends implement, and what they share.

A store keeps, per tenant: the simulated Autotask state (a JSON document the
store does not interpret), our record beside it (last applied manifest digest,
keyed key fingerprints, keys' saved-at seen at apply), an append-only audit log,
and an optimistic version that every write bumps. Apply holds a per-tenant lock.
Neither state nor record ever holds a plaintext key: callers store fingerprints.

The SQL both backends run is the same apart from placeholders and types, and the
consistency rules (`consistency_problems`) are shared, so a behaviour proven on
one store by the contract tests holds on the other.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from atpay_config.errors import StateError

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class StoredTenant:
    """One tenant as persisted: Autotask state, our record, and the version they are at."""

    name: str
    version: int
    state: JsonDict
    record: JsonDict | None


@dataclass(frozen=True)
class LockHolder:
    """Who holds a tenant lock, for the message the waiting run prints."""

    holder: str
    pid: int
    host: str
    since: str

    def describe(self) -> str:
        return f"{self.holder} (pid {self.pid} on {self.host}, since {self.since})"


@dataclass(frozen=True)
class TenantLock:
    """A held tenant lock; `reclaimed` names a dead holder whose stale lock was taken over."""

    tenant: str
    holder: LockHolder
    reclaimed: LockHolder | None = None


@dataclass(frozen=True)
class TenantSnapshot:
    """Everything a store holds for one tenant, for migration between stores.

    `audit` pairs each entry with the tenant version its write produced.
    """

    name: str
    version: int
    state: JsonDict
    record: JsonDict | None
    audit: tuple[tuple[int, JsonDict], ...] = ()


@dataclass(frozen=True)
class StoreSummary:
    """Counts and one digest over a store's content: equal summaries, equal stores."""

    tenants: int
    records: int
    audit_entries: int
    digest: str = field(repr=False)

    def describe(self) -> str:
        return (
            f"{self.tenants} tenants, {self.records} records, {self.audit_entries} audit entries "
            f"(sha256 {self.digest[:12]})"
        )


@dataclass(frozen=True)
class StepWrite:
    """One apply step's write: the state it produced, its audit entries, maybe our record."""

    state: JsonDict
    audit: Sequence[JsonDict]
    record: JsonDict | None = None


@runtime_checkable
class StateStore(Protocol):
    """Where simulated tenants and our apply records persist (SPEC section 6)."""

    url: str  # for display: never carries a password

    def list_tenants(self) -> list[str]:
        """Names of every tenant, sorted."""
        ...

    def read_tenants(self, names: Sequence[str] | None = None) -> dict[str, StoredTenant]:
        """The named tenants (all when None) in one query; unknown names are left out."""
        ...

    def versions(self, names: Sequence[str] | None = None) -> dict[str, int]:
        """Current versions (cheap): a saved plan is bound to these."""
        ...

    def init_tenant(
        self,
        name: str,
        state: JsonDict,
        *,
        replace: bool = False,
        audit: Sequence[JsonDict] = (),
    ) -> StoredTenant:
        """Create a tenant from a fixture; `replace` resets an existing one (record cleared)."""
        ...

    def lock(
        self, name: str, *, holder: str, timeout: float = 30.0
    ) -> AbstractContextManager[TenantLock]:
        """Hold the tenant's lock across processes and machines; StateError naming the holder."""
        ...

    def write_step(
        self,
        name: str,
        *,
        expected_version: int,
        state: JsonDict,
        audit: Sequence[JsonDict],
        record: JsonDict | None = None,
    ) -> int:
        """One transaction: check the version, write state, append audit, maybe the record."""
        ...

    def write_steps(
        self,
        name: str,
        *,
        expected_version: int,
        steps: Sequence[StepWrite],
        on_written: Callable[[int, int], None],
    ) -> int:
        """`write_step` for each step in order, each its own transaction on the version the
        one before produced; `on_written(index, new_version)` as each is known committed.

        Raises as `write_step` does at the first step refused (none after it is written);
        returns the last version.
        """
        ...

    def write_record(
        self, name: str, *, record: JsonDict, expected_version: int | None = None
    ) -> int:
        """Replace our record for the tenant; returns the new version."""
        ...

    def history(self, name: str) -> list[JsonDict]:
        """The tenant's audit entries, oldest first."""
        ...

    def integrity_check(self) -> list[str]:
        """Problems found in the stored data; empty when the store is sound."""
        ...

    def snapshot(self) -> list[TenantSnapshot]:
        """Every tenant with its record and audit log, read consistently (for migration)."""
        ...

    def restore(self, tenants: Sequence[TenantSnapshot], *, replace: bool = False) -> StoreSummary:
        """Write `tenants` in one transaction, verified by reading them back.

        Refuses a non-empty store unless `replace`, which first removes everything.
        """
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def canonical_json(value: Any) -> str:
    """The one JSON spelling digests are taken over: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def digest(value: Any) -> str:
    """sha256 over the canonical JSON of `value`."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def encode_document(tenant: str, what: str, value: Any) -> str:
    """Canonical JSON of a state/record/audit document, or StateError saying which one is bad."""
    if not isinstance(value, Mapping):
        raise StateError(
            f"{what} of tenant {tenant!r} must be a JSON object, not {type(value).__name__}"
        )
    try:
        return canonical_json(value)
    except (TypeError, ValueError) as exc:
        raise StateError(f"{what} of tenant {tenant!r} is not JSON: {exc}") from None


def check_tenant_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise StateError(f"tenant name must be a non-empty string, not {name!r}")
    return name


def summarize(tenants: Iterable[TenantSnapshot]) -> StoreSummary:
    """Counts and a digest over tenants in name order (independent of the store)."""
    hasher = hashlib.sha256()
    count = records = entries = 0
    for tenant in sorted(tenants, key=lambda t: t.name):
        count += 1
        records += tenant.record is not None
        entries += len(tenant.audit)
        line = canonical_json(
            [
                tenant.name,
                tenant.version,
                tenant.state,
                tenant.record,
                [list(a) for a in tenant.audit],
            ]
        )
        hasher.update(line.encode("utf-8") + b"\n")
    return StoreSummary(
        tenants=count, records=records, audit_entries=entries, digest=hasher.hexdigest()
    )


def stale_version(name: str, expected: int, current: int) -> StateError:
    return StateError(
        f"tenant {name!r} changed since it was read (version {expected} != {current}); re-run plan"
    )


def unknown_tenant(name: str, url: str) -> StateError:
    return StateError(
        f"no tenant {name!r} in state store {url}", hint="initialise it with `atpay state init`"
    )


def lock_timeout(name: str, holder: LockHolder | None, timeout: float) -> StateError:
    who = holder.describe() if holder else "another run (holder not recorded)"
    return StateError(
        f"tenant {name!r} is locked by {who}; gave up after {timeout:g}s",
        hint="wait for that run to finish, or raise the lock timeout",
    )


def this_host() -> str:
    return socket.gethostname()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (signal 0 probes without killing)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def redact_url(url: str) -> str:
    """The URL with any password masked, for messages and `store.url`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


@dataclass(frozen=True)
class AuditStats:
    """Per-tenant aggregate over the audit table, as the shared consistency SQL returns it."""

    tenant: str
    entries: int
    first_seq: int
    last_seq: int
    last_version: int


# One query, the same on both backends: the aggregate `consistency_problems` checks.
AUDIT_STATS_SQL = (
    "SELECT tenant, COUNT(*), MIN(seq), MAX(seq), MAX(version) FROM audit "
    "GROUP BY tenant ORDER BY tenant"
)
LOCK_HOLDER_SQL = "SELECT holder, pid, host, acquired_at FROM locks WHERE tenant = ?"
TENANT_ROWS_SQL = (
    "SELECT name, version, audit_count, state, state_digest, record, record_digest "
    "FROM tenants ORDER BY name"
)


def consistency_problems(
    tenant_rows: Iterable[tuple[str, int, int, JsonDict, str, JsonDict | None, str | None]],
    audit_stats: Iterable[AuditStats],
) -> list[str]:
    """What is inconsistent between tenants, their digests and their audit logs."""
    problems: list[str] = []
    counts: dict[str, tuple[int, int]] = {}
    logged: set[str] = set()
    for name, version, audit_count, state, state_digest, record, record_digest in tenant_rows:
        counts[name] = (version, audit_count)
        if digest(state) != state_digest:
            problems.append(f"tenant {name!r}: state does not match its digest")
        if (record is None) != (record_digest is None):
            problems.append(f"tenant {name!r}: record and record digest disagree")
        elif record is not None and digest(record) != record_digest:
            problems.append(f"tenant {name!r}: record does not match its digest")
    for stats in audit_stats:
        if stats.tenant not in counts:
            problems.append(f"audit entries for unknown tenant {stats.tenant!r}")
            continue
        version, audit_count = counts[stats.tenant]
        if stats.entries != audit_count:
            problems.append(
                f"tenant {stats.tenant!r}: {stats.entries} audit entries stored, "
                f"the tenant counts {audit_count}"
            )
        if stats.first_seq != 1 or stats.last_seq != stats.entries:
            problems.append(f"tenant {stats.tenant!r}: audit sequence has gaps")
        if stats.last_version > version:
            problems.append(
                f"tenant {stats.tenant!r}: audit entry from version {stats.last_version}, "
                f"the tenant is at version {version}"
            )
        logged.add(stats.tenant)
    for name, (_version, audit_count) in counts.items():
        if audit_count > 0 and name not in logged:
            problems.append(f"tenant {name!r}: counts {audit_count} audit entries, none stored")
    return problems


Row = tuple[Any, ...]
T = TypeVar("T")


class Tx(Protocol):
    """The few statements a backend's transaction runs; SQL uses `?` placeholders."""

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def run(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


class SqlStateStore:
    """The StateStore behaviour both SQL backends share; they supply transactions and types.

    Keeping one copy of every statement is what makes the backends drop-in
    replacements for each other: only locking and connection handling differ.
    """

    url: str

    # --- what a backend supplies ---------------------------------------------

    def _run_read(self, action: Callable[[Tx], T], *, consistent: bool = False) -> T:
        raise NotImplementedError

    def _run_write(self, action: Callable[[Tx], T]) -> T:
        raise NotImplementedError

    def _json_param(self, text: str) -> Any:
        """A canonical JSON text as the backend's column parameter."""
        return text

    def _json_value(self, value: Any) -> Any:
        """A JSON column as read back, decoded."""
        return json.loads(value) if isinstance(value, str) else value

    def _in_names(self, column: str, names: Sequence[str]) -> tuple[str, Any]:
        """`column IN names` as SQL with ONE parameter, whatever the count."""
        raise NotImplementedError

    def _backend_problems(self, tx: Tx) -> list[str]:
        return []

    def close(self) -> None:
        raise NotImplementedError

    # --- the shared behaviour ----------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def list_tenants(self) -> list[str]:
        rows = self._run_read(lambda tx: tx.all("SELECT name FROM tenants ORDER BY name"))
        return [row[0] for row in rows]

    def _where(self, column: str, names: Sequence[str] | None) -> tuple[str, tuple[Any, ...]]:
        if names is None:
            return "", ()
        clause, param = self._in_names(column, [str(n) for n in names])
        return f" WHERE {clause}", (param,)

    def read_tenants(self, names: Sequence[str] | None = None) -> dict[str, StoredTenant]:
        if names is not None and not names:
            return {}
        where, params = self._where("name", names)
        sql = f"SELECT name, version, state, record FROM tenants{where} ORDER BY name"
        rows = self._run_read(lambda tx: tx.all(sql, params))
        return {
            name: StoredTenant(
                name=name,
                version=version,
                state=self._json_value(state),
                record=None if record is None else self._json_value(record),
            )
            for name, version, state, record in rows
        }

    def versions(self, names: Sequence[str] | None = None) -> dict[str, int]:
        if names is not None and not names:
            return {}
        where, params = self._where("name", names)
        sql = f"SELECT name, version FROM tenants{where} ORDER BY name"
        return {name: version for name, version in self._run_read(lambda tx: tx.all(sql, params))}

    def _append_audit(
        self, tx: Tx, name: str, version: int, first_seq: int, entries: list[str]
    ) -> None:
        if entries:
            tx.many(
                "INSERT INTO audit (tenant, seq, version, entry) VALUES (?, ?, ?, ?)",
                [
                    (name, first_seq + i, version, self._json_param(e))
                    for i, e in enumerate(entries)
                ],
            )

    def _encode_audit(self, name: str, audit: Sequence[JsonDict]) -> list[str]:
        if isinstance(audit, Mapping):
            raise StateError(f"audit of tenant {name!r} must be a list of entries, not one entry")
        return [encode_document(name, "audit entry", entry) for entry in audit]

    def init_tenant(
        self,
        name: str,
        state: JsonDict,
        *,
        replace: bool = False,
        audit: Sequence[JsonDict] = (),
    ) -> StoredTenant:
        check_tenant_name(name)
        text = encode_document(name, "state", state)
        entries = self._encode_audit(name, audit)
        state_digest = _sha256(text)

        def action(tx: Tx) -> int:
            row = tx.one("SELECT version, audit_count FROM tenants WHERE name = ?", (name,))
            if row is not None and not replace:
                raise StateError(
                    f"tenant {name!r} already exists in state store {self.url}",
                    hint="pass --replace to reset it from the fixture",
                )
            if row is None:
                inserted = tx.run(
                    "INSERT INTO tenants (name, version, audit_count, state, state_digest, "
                    "record, record_digest, updated_at) VALUES (?, 1, ?, ?, ?, NULL, NULL, ?) "
                    "ON CONFLICT (name) DO NOTHING",
                    (name, len(entries), self._json_param(text), state_digest, now_iso()),
                )
                if not inserted:
                    raise StateError(f"tenant {name!r} was created by another run at the same time")
                version, first_seq = 1, 1
            else:
                # The version keeps counting up, so plans made before the reset go stale.
                version, first_seq = row[0] + 1, row[1] + 1
                tx.run(
                    "UPDATE tenants SET version = ?, audit_count = ?, state = ?, state_digest = ?, "
                    "record = NULL, record_digest = NULL, updated_at = ? WHERE name = ?",
                    (
                        version,
                        row[1] + len(entries),
                        self._json_param(text),
                        state_digest,
                        now_iso(),
                        name,
                    ),
                )
            self._append_audit(tx, name, version, first_seq, entries)
            return version

        version = self._run_write(action)
        return StoredTenant(name=name, version=version, state=json.loads(text), record=None)

    def _refuse_write(self, tx: Tx, name: str, expected_version: int | None) -> StateError:
        row = tx.one("SELECT version FROM tenants WHERE name = ?", (name,))
        if row is None:
            return unknown_tenant(name, self.url)
        return stale_version(name, expected_version or 0, row[0])

    def _step_update(
        self,
        name: str,
        expected_version: int,
        step: StepWrite,
        *,
        prior_digest: str | None = None,
    ) -> tuple[str, list[Any], list[str], str]:
        """The version-checked UPDATE of one step, its params, encoded audit, new state digest.

        `prior_digest` also requires the stored state to be exactly that one: a step
        chained on an earlier one of the same batch applies only on the state it produced.
        """
        text = encode_document(name, "state", step.state)
        entries = self._encode_audit(name, step.audit)
        state_digest = _sha256(text)
        sets = (
            "version = version + 1, audit_count = audit_count + ?, state = ?, state_digest = ?, "
            "updated_at = ?"
        )
        params: list[Any] = [len(entries), self._json_param(text), state_digest, now_iso()]
        if step.record is not None:
            record_text = encode_document(name, "record", step.record)
            sets += ", record = ?, record_digest = ?"
            params += [self._json_param(record_text), _sha256(record_text)]
        where = "name = ? AND version = ?"
        params += [name, expected_version]
        if prior_digest is not None:
            where += " AND state_digest = ?"
            params.append(prior_digest)
        sql = f"UPDATE tenants SET {sets} WHERE {where} RETURNING version, audit_count"
        return sql, params, entries, state_digest

    def write_step(
        self,
        name: str,
        *,
        expected_version: int,
        state: JsonDict,
        audit: Sequence[JsonDict],
        record: JsonDict | None = None,
    ) -> int:
        check_tenant_name(name)
        sql, params, entries, _ = self._step_update(
            name, expected_version, StepWrite(state=state, audit=audit, record=record)
        )
        row = self._update_with_audit(sql, params, name, entries)
        if row is None:
            raise self._run_read(lambda tx: self._refuse_write(tx, name, expected_version))
        return int(row[0])

    def write_steps(
        self,
        name: str,
        *,
        expected_version: int,
        steps: Sequence[StepWrite],
        on_written: Callable[[int, int], None],
    ) -> int:
        version = expected_version
        for index, step in enumerate(steps):
            version = self.write_step(
                name,
                expected_version=version,
                state=step.state,
                audit=step.audit,
                record=step.record,
            )
            on_written(index, version)
        return version

    def _update_with_audit(
        self, update_sql: str, params: Sequence[Any], name: str, entries: list[str]
    ) -> Row | None:
        """Run the version-checked UPDATE and append `entries` atomically; None: no row matched.

        `update_sql` returns (version, audit_count) after the update.
        """

        def action(tx: Tx) -> Row | None:
            row = tx.one(update_sql, params)
            if row is not None:
                self._append_audit(tx, name, row[0], row[1] - len(entries) + 1, entries)
            return row

        return self._run_write(action)

    def write_record(
        self, name: str, *, record: JsonDict, expected_version: int | None = None
    ) -> int:
        check_tenant_name(name)
        text = encode_document(name, "record", record)
        sql = (
            "UPDATE tenants SET version = version + 1, record = ?, record_digest = ?, "
            "updated_at = ? WHERE name = ?"
        )
        params: list[Any] = [self._json_param(text), _sha256(text), now_iso(), name]
        if expected_version is not None:
            sql += " AND version = ?"
            params.append(expected_version)
        sql += " RETURNING version"

        def action(tx: Tx) -> int:
            row = tx.one(sql, params)
            if row is None:
                raise self._refuse_write(tx, name, expected_version)
            return int(row[0])

        return self._run_write(action)

    def history(self, name: str) -> list[JsonDict]:
        def action(tx: Tx) -> list[Row] | None:
            if tx.one("SELECT 1 FROM tenants WHERE name = ?", (name,)) is None:
                return None
            return tx.all("SELECT entry FROM audit WHERE tenant = ? ORDER BY seq", (name,))

        rows = self._run_read(action, consistent=True)
        if rows is None:
            raise unknown_tenant(name, self.url)
        return [self._json_value(row[0]) for row in rows]

    def _snapshot_in(self, tx: Tx) -> list[TenantSnapshot]:
        tenants = tx.all("SELECT name, version, state, record FROM tenants ORDER BY name")
        audit: dict[str, list[tuple[int, JsonDict]]] = {}
        for tenant, version, entry in tx.all(
            "SELECT tenant, version, entry FROM audit ORDER BY tenant, seq"
        ):
            audit.setdefault(tenant, []).append((version, self._json_value(entry)))
        return [
            TenantSnapshot(
                name=name,
                version=version,
                state=self._json_value(state),
                record=None if record is None else self._json_value(record),
                audit=tuple(audit.get(name, ())),
            )
            for name, version, state, record in tenants
        ]

    def snapshot(self) -> list[TenantSnapshot]:
        return self._run_read(self._snapshot_in, consistent=True)

    def restore(self, tenants: Sequence[TenantSnapshot], *, replace: bool = False) -> StoreSummary:
        expected = summarize(tenants)
        tenant_rows: list[tuple[Any, ...]] = []
        audit_rows: list[tuple[Any, ...]] = []
        stamp = now_iso()
        for t in tenants:
            check_tenant_name(t.name)
            state = encode_document(t.name, "state", t.state)
            record = None if t.record is None else encode_document(t.name, "record", t.record)
            tenant_rows.append(
                (
                    t.name,
                    t.version,
                    len(t.audit),
                    self._json_param(state),
                    _sha256(state),
                    None if record is None else self._json_param(record),
                    None if record is None else _sha256(record),
                    stamp,
                )
            )
            for seq, (version, entry) in enumerate(t.audit, start=1):
                text = encode_document(t.name, "audit entry", entry)
                audit_rows.append((t.name, seq, version, self._json_param(text)))

        def action(tx: Tx) -> StoreSummary:
            count_row = tx.one("SELECT COUNT(*) FROM tenants")
            existing = count_row[0] if count_row else 0
            if existing and not replace:
                raise StateError(
                    f"state store {self.url} already holds {existing} tenant(s); nothing copied",
                    hint="pass --replace to overwrite it",
                )
            if replace:
                tx.run("DELETE FROM audit")
                tx.run("DELETE FROM tenants")
            if tenant_rows:
                tx.many(
                    "INSERT INTO tenants (name, version, audit_count, state, state_digest, record, "
                    "record_digest, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    tenant_rows,
                )
            if audit_rows:
                tx.many(
                    "INSERT INTO audit (tenant, seq, version, entry) VALUES (?, ?, ?, ?)",
                    audit_rows,
                )
            written = summarize(self._snapshot_in(tx))
            if written != expected:
                raise StateError(
                    f"copy into {self.url} does not verify: read back {written.describe()} "
                    f"instead of {expected.describe()}; rolled back"
                )
            return written

        return self._run_write(action)

    def integrity_check(self) -> list[str]:
        def action(tx: Tx) -> list[str]:
            problems = self._backend_problems(tx)
            rows = [
                (
                    name,
                    version,
                    count,
                    self._json_value(state),
                    state_digest,
                    None if record is None else self._json_value(record),
                    record_digest,
                )
                for name, version, count, state, state_digest, record, record_digest in tx.all(
                    TENANT_ROWS_SQL
                )
            ]
            stats = [AuditStats(*row) for row in tx.all(AUDIT_STATS_SQL)]
            return problems + consistency_problems(rows, stats)

        return self._run_read(action, consistent=True)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
