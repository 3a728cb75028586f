"""PostgreSQL specifics: schema migration, advisory locks, dropped connections, URLs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from atpay_config.errors import StateError, UsageError
from atpay_config.state import open_store
from atpay_config.state.postgres import MIGRATIONS, PostgresStore, advisory_key

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_store_url(new_store_url: Callable[[str], str]) -> str:
    return new_store_url("postgres")


@pytest.fixture
def pg_store(pg_store_url: str) -> Iterator[PostgresStore]:
    with PostgresStore(pg_store_url) as store:
        yield store


@pytest.fixture
def admin(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


def _backend_pid(store: PostgresStore) -> int:
    return int(store._connection().info.backend_pid)


def _wait_for(condition: Callable[[], bool], *, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_runs_starting_together_migrate_the_schema_once(pg_store_url: str) -> None:
    opened: list[int] = []
    failures: list[BaseException] = []

    def start() -> None:
        try:
            with PostgresStore(pg_store_url) as store:
                opened.append(store.schema_version)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert opened == [len(MIGRATIONS)] * 6


def test_the_tables_live_in_their_own_schema(
    pg_store: PostgresStore, admin: psycopg.Connection[Any]
) -> None:
    rows = admin.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1",
        (pg_store.schema,),
    ).fetchall()
    assert [r[0] for r in rows] == ["audit", "locks", "meta", "tenants"]


def test_a_schema_newer_than_this_tool_is_refused(
    pg_store: PostgresStore, pg_store_url: str, raw_sql: Any
) -> None:
    raw_sql(pg_store_url, "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StateError, match="has version 99, newer than this atpay"):
        PostgresStore(pg_store_url)


def test_a_schema_name_must_be_a_plain_name(pg_url: str) -> None:
    with pytest.raises(UsageError, match="not a plain lower-case SQL name"):
        open_store(pg_url + "?schema=Robert%27);DROP")


def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    started = time.monotonic()
    with pytest.raises(StateError) as failed:
        open_store("postgresql://atpay:hunter2@127.0.0.1:1/teamdb")
    message = str(failed.value)
    assert message.startswith("cannot connect to the PostgreSQL state store at 127.0.0.1:1/teamdb:")
    assert "check that the server runs" in message
    assert "hunter2" not in message
    assert time.monotonic() - started < 10


def test_the_store_url_never_shows_the_password(pg_store_url: str) -> None:
    with_password = pg_store_url.replace("://postgres@", "://postgres:hunter2@")
    assert with_password != pg_store_url
    with open_store(with_password) as store:  # trust auth ignores the password
        assert "hunter2" not in store.url
        assert "postgres:***@" in store.url


def test_a_tenant_lock_is_an_advisory_lock_seen_by_every_connection(
    pg_store: PostgresStore, admin: psycopg.Connection[Any]
) -> None:
    key = advisory_key(pg_store.schema, "tenant", "contoso")
    try_lock = "SELECT pg_try_advisory_lock(%s)"
    with pg_store.lock("contoso", holder="pipeline-1"):
        assert admin.execute(try_lock, (key,)).fetchone() == (False,)
        admin.execute(f"SET search_path TO {pg_store.schema}")
        holder = admin.execute("SELECT holder FROM locks WHERE tenant = 'contoso'").fetchone()
        assert holder == ("pipeline-1",)
    assert admin.execute(try_lock, (key,)).fetchone() == (True,)
    admin.execute("SELECT pg_advisory_unlock(%s)", (key,))
    assert admin.execute("SELECT count(*) FROM locks").fetchone() == (0,)


def test_locks_in_different_schemas_do_not_collide(
    pg_store: PostgresStore, new_store_url: Callable[[str], str]
) -> None:
    with (
        PostgresStore(new_store_url("postgres")) as other,
        pg_store.lock("contoso", holder="a"),
        other.lock("contoso", holder="b", timeout=0.2),
    ):
        pass


def test_a_connection_terminated_mid_write_rolls_back_and_the_retry_converges(
    pg_store: PostgresStore, admin: psycopg.Connection[Any], pg_url: str
) -> None:
    pg_store.init_tenant("contoso", {"n": 0})
    victim = _backend_pid(pg_store)
    failures: list[BaseException] = []

    def write() -> None:
        try:
            pg_store.write_step("contoso", expected_version=1, state={"n": 1}, audit=[{"a": 1}])
        except BaseException as exc:
            failures.append(exc)

    with psycopg.connect(pg_url) as blocker:  # holds the tenant row so the write waits
        blocker.execute(f"SET search_path TO {pg_store.schema}")
        blocker.execute("SELECT * FROM tenants WHERE name = 'contoso' FOR UPDATE")
        writer = threading.Thread(target=write)
        writer.start()
        _wait_for(
            lambda: (
                admin.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (victim,)
                ).fetchone()
                == ("Lock",)
            )
        )
        admin.execute("SELECT pg_terminate_backend(%s)", (victim,))
        writer.join(timeout=10)
        blocker.rollback()
    assert len(failures) == 1 and isinstance(failures[0], StateError)
    assert str(failures[0]).startswith(
        "lost the connection to the PostgreSQL state store at 127.0.0.1:5432/test while writing"
    )
    assert "re-run" in str(failures[0])
    got = pg_store.read_tenants()["contoso"]  # reconnects
    assert (got.version, got.state) == (1, {"n": 0})
    assert pg_store.history("contoso") == []
    assert pg_store.integrity_check() == []
    assert pg_store.write_step("contoso", expected_version=1, state={"n": 1}, audit=[]) == 2


def test_an_idle_connection_dropped_by_the_server_is_replaced(
    pg_store: PostgresStore, admin: psycopg.Connection[Any]
) -> None:
    pg_store.init_tenant("contoso", {"n": 0})
    admin.execute("SELECT pg_terminate_backend(%s)", (_backend_pid(pg_store),))
    assert pg_store.versions() == {"contoso": 1}  # a read is repeated on a new connection
    admin.execute("SELECT pg_terminate_backend(%s)", (_backend_pid(pg_store),))
    with pytest.raises(StateError, match=r"lost the connection .* while writing"):
        pg_store.write_step("contoso", expected_version=1, state={"n": 1}, audit=[])
    assert pg_store.write_step("contoso", expected_version=1, state={"n": 1}, audit=[]) == 2


def test_a_lock_whose_session_is_dropped_is_released_without_failing_the_run(
    pg_store: PostgresStore,
    pg_store_url: str,
    admin: psycopg.Connection[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = advisory_key(pg_store.schema, "tenant", "contoso")
    with caplog.at_level(logging.WARNING), pg_store.lock("contoso", holder="pipeline-1"):
        pid = admin.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' "
            "AND (classid::bigint << 32 | objid::bigint) = %s",
            (key,),
        ).fetchone()
        assert pid is not None
        admin.execute("SELECT pg_terminate_backend(%s)", (pid[0],))
    assert "could not release the lock cleanly" in caplog.text
    with (
        open_store(pg_store_url) as other,
        other.lock("contoso", holder="pipeline-2", timeout=5) as taken,
    ):
        assert taken.reclaimed is not None and taken.reclaimed.holder == "pipeline-1"
