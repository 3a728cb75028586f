"""SQLite specifics: migrations, pragmas, stale lock reclaim, integrity, URLs."""

from __future__ import annotations

import logging
import socket
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from atpay_config.errors import StateError, UsageError
from atpay_config.state import open_store, store_scheme
from atpay_config.state.sqlite import MIGRATIONS, SQLiteStore, migrate, schema_version


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def _tables(conn: sqlite3.Connection) -> set[str]:
    with closing(conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")) as cur:
        return {row[0] for row in cur.fetchall()}


def test_a_new_database_is_migrated_to_the_latest_schema(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dirs" / "state.db"
    with SQLiteStore(path) as store:
        assert store.schema_version == len(MIGRATIONS)
    with closing(_connect(path)) as conn:
        assert schema_version(conn) == len(MIGRATIONS)
        assert {"meta", "tenants", "audit", "locks"} <= _tables(conn)
        with closing(conn.execute("PRAGMA journal_mode")) as cur:
            assert cur.fetchone()[0] == "wal"


def test_reopening_keeps_the_data_and_does_not_migrate_again(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with SQLiteStore(path) as store:
        store.init_tenant("contoso", {"n": 1})
    with SQLiteStore(path) as store:
        assert store.read_tenants()["contoso"].state == {"n": 1}


def test_a_new_migration_applies_on_open(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SQLiteStore(path).close()
    with closing(_connect(path)) as conn:
        added = (*MIGRATIONS, ("CREATE TABLE plans (id INTEGER PRIMARY KEY)",))
        assert migrate(conn, path=str(path), migrations=added) == len(MIGRATIONS) + 1
        assert "plans" in _tables(conn)


def test_a_failing_migration_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SQLiteStore(path).close()
    broken = (*MIGRATIONS, ("CREATE TABLE plans (id INTEGER)", "THIS IS NOT SQL"))
    with closing(_connect(path)) as conn:
        with pytest.raises(sqlite3.OperationalError):
            migrate(conn, path=str(path), migrations=broken)
        assert schema_version(conn) == len(MIGRATIONS)
        assert "plans" not in _tables(conn)
        assert not conn.in_transaction


def test_a_schema_newer_than_this_tool_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SQLiteStore(path).close()
    with closing(_connect(path)) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StateError, match="schema version 99, newer than this atpay"):
        SQLiteStore(path)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_text("not sqlite at all, just text " * 100)
    with pytest.raises(StateError, match=r"state database .* is unreadable"):
        SQLiteStore(path)


def test_foreign_keys_are_enforced_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with SQLiteStore(path) as store:
        with closing(_connect(path)) as conn:  # foreign keys are off on this connection
            conn.execute("INSERT INTO audit (tenant, seq, version, entry) VALUES ('x', 1, 1, '{}')")
        problems = store.integrity_check()
        assert "foreign key violation: audit row 1 has no tenants" in problems
        assert "audit entries for unknown tenant 'x'" in problems


def test_read_tenants_is_one_query(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "state.db") as store:
        for i in range(50):
            store.init_tenant(f"t{i}", {"i": i})
        statements: list[str] = []
        store._conn.set_trace_callback(statements.append)
        store.read_tenants([f"t{i}" for i in range(40)])
        store._conn.set_trace_callback(None)
    assert [s for s in statements if s.lstrip().upper().startswith("SELECT")] == [
        "SELECT name, version, state, record FROM tenants "
        "WHERE name IN (SELECT value FROM json_each("
        + repr('["' + '", "'.join(f"t{i}" for i in range(40)) + '"]')
        + ")) ORDER BY name"
    ]


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _plant_lock(path: Path, *, pid: int, host: str) -> None:
    with closing(_connect(path)) as conn:
        conn.execute(
            "INSERT INTO locks VALUES "
            "('contoso', 'crashed-apply', ?, ?, '2024-01-01T00:00:00+00:00', 't')",
            (pid, host),
        )


def test_a_stale_lock_of_a_dead_process_on_this_host_is_reclaimed_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.db"
    with SQLiteStore(path) as store:
        dead = _dead_pid()
        _plant_lock(path, pid=dead, host=socket.gethostname())
        with (
            caplog.at_level(logging.WARNING),
            store.lock("contoso", holder="me", timeout=1) as lock,
        ):
            assert lock.reclaimed is not None
            assert (lock.reclaimed.holder, lock.reclaimed.pid) == ("crashed-apply", dead)
        assert f"reclaimed the stale lock of crashed-apply (pid {dead}" in caplog.text
        with closing(_connect(path)) as conn, closing(conn.execute("SELECT * FROM locks")) as cur:
            assert cur.fetchall() == []


def test_a_lock_from_another_host_is_never_reclaimed(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with SQLiteStore(path) as store:
        _plant_lock(path, pid=_dead_pid(), host="ci-runner-9")
        with (
            pytest.raises(StateError, match=r"locked by crashed-apply \(pid \d+ on ci-runner-9"),
            store.lock("contoso", holder="me", timeout=0.2),
        ):
            pass


def test_a_database_busy_past_the_timeout_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with SQLiteStore(path, busy_timeout=0.2) as store:
        store.init_tenant("contoso", {})
        with closing(_connect(path)) as other:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StateError, match=r"stayed busy for 0\.2s"):
                store.write_step("contoso", expected_version=1, state={"n": 1}, audit=[])
            other.execute("ROLLBACK")
        assert store.write_step("contoso", expected_version=1, state={"n": 1}, audit=[]) == 2


def test_open_store_reads_paths_and_sqlite_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store(".atpay/state.db") as store:
        assert isinstance(store, SQLiteStore)
        assert store.url == ".atpay/state.db"
    assert (tmp_path / ".atpay" / "state.db").exists()
    with open_store("sqlite:///rel/state.db") as store:
        assert isinstance(store, SQLiteStore) and store.path == "rel/state.db"
    absolute = tmp_path / "abs" / "state.db"
    with open_store(f"sqlite:///{absolute}") as store:
        assert isinstance(store, SQLiteStore) and store.path == str(absolute)
    with pytest.raises(StateError, match="has no path"):
        open_store("sqlite://")


def test_unknown_store_schemes_are_a_usage_error() -> None:
    assert store_scheme("state.db") == "sqlite"
    assert store_scheme("postgres://x/y") == "postgres"
    with pytest.raises(UsageError, match="unsupported state store 'mysql'"):
        open_store("mysql://db/state")
    with pytest.raises(UsageError, match="no state store given"):
        open_store("")
