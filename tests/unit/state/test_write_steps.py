"""`write_steps`: an apply's steps written together, each still its own versioned transaction.

The contract part runs on both stores; the PostgreSQL part covers what its one-round-trip
batch adds (a statement failing part-way, the lock session reused across tenants).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from atpay_config.errors import StateError
from atpay_config.state import StateStore
from atpay_config.state.postgres import PostgresStore
from atpay_config.state.store import StepWrite


def entry(action: str) -> dict[str, Any]:
    return {"at": "2024-01-02T00:00:00Z", "user": "gitops-bot", "action": action, "detail": {}}


def _recorder() -> tuple[list[tuple[int, int]], Callable[[int, int], None]]:
    seen: list[tuple[int, int]] = []
    return seen, lambda index, version: seen.append((index, version))


def test_each_step_is_its_own_version_and_reported_as_written(store: StateStore) -> None:
    store.init_tenant("contoso", {"n": 0})
    seen, on_written = _recorder()
    version = store.write_steps(
        "contoso",
        expected_version=1,
        steps=[
            StepWrite(state={"n": 1}, audit=[entry("a")]),
            StepWrite(state={"n": 2}, audit=[entry("b"), entry("c")], record={"r": 2}),
            StepWrite(state={"n": 3}, audit=[entry("d")]),
        ],
        on_written=on_written,
    )
    assert version == 4
    assert seen == [(0, 2), (1, 3), (2, 4)]
    got = store.read_tenants()["contoso"]
    assert (got.version, got.state, got.record) == (4, {"n": 3}, {"r": 2})
    assert [e["action"] for e in store.history("contoso")] == ["a", "b", "c", "d"]
    assert store.integrity_check() == []


def test_a_stale_first_step_writes_nothing(store: StateStore) -> None:
    store.init_tenant("contoso", {"n": 0})
    store.write_step("contoso", expected_version=1, state={"n": 1}, audit=[entry("x")])
    seen, on_written = _recorder()
    with pytest.raises(StateError) as refused:
        store.write_steps(
            "contoso",
            expected_version=1,
            steps=[StepWrite(state={"n": 9}, audit=[entry("a")])] * 2,
            on_written=on_written,
        )
    assert str(refused.value) == (
        "tenant 'contoso' changed since it was read (version 1 != 2); re-run plan"
    )
    assert seen == []
    got = store.read_tenants()["contoso"]
    assert (got.version, got.state) == (2, {"n": 1})
    assert store.integrity_check() == []


def test_a_refused_step_stops_the_rest_even_when_a_later_version_matches(
    store: StateStore,
) -> None:
    # Planned at version 1, but the tenant is at 2: step 0 is refused, and step 1 (which
    # expects version 2) must not apply on top of a state it was not computed from.
    store.init_tenant("contoso", {"n": 0})
    store.write_step("contoso", expected_version=1, state={"n": 100}, audit=[entry("x")])
    seen, on_written = _recorder()
    with pytest.raises(StateError, match=r"version 1 != 2"):
        store.write_steps(
            "contoso",
            expected_version=1,
            steps=[
                StepWrite(state={"n": 1}, audit=[entry("a")]),
                StepWrite(state={"n": 2}, audit=[entry("b")], record={"r": 1}),
            ],
            on_written=on_written,
        )
    assert seen == []
    got = store.read_tenants()["contoso"]
    assert (got.version, got.state, got.record) == (2, {"n": 100}, None)
    assert [e["action"] for e in store.history("contoso")] == ["x"]


def test_no_steps_is_no_write(store: StateStore) -> None:
    store.init_tenant("contoso", {"n": 0})
    seen, on_written = _recorder()
    assert store.write_steps("contoso", expected_version=1, steps=[], on_written=on_written) == 1
    assert seen == []
    assert store.versions() == {"contoso": 1}


# --- PostgreSQL: the batch itself --------------------------------------------


@pytest.fixture
def pg_store_url(new_store_url: Callable[[str], str]) -> str:
    return new_store_url("postgres")


@pytest.fixture
def pg_store(pg_store_url: str) -> Iterator[PostgresStore]:
    with PostgresStore(pg_store_url) as store:
        yield store


@pytest.mark.postgres
def test_a_statement_failing_mid_batch_keeps_the_steps_before_it(
    pg_store: PostgresStore,
) -> None:
    pg_store.init_tenant("contoso", {"n": 0})
    seen, on_written = _recorder()
    with pytest.raises(StateError, match="refused writing"):
        pg_store.write_steps(
            "contoso",
            expected_version=1,
            steps=[
                StepWrite(state={"n": 1}, audit=[entry("a")]),
                StepWrite(state={"n": "\x00"}, audit=[entry("b")]),  # jsonb refuses NUL
                StepWrite(state={"n": 3}, audit=[entry("c")]),
            ],
            on_written=on_written,
        )
    assert seen == [(0, 2)]  # the first step committed on its own, and is reported
    got = pg_store.read_tenants()["contoso"]
    assert (got.version, got.state) == (2, {"n": 1})
    assert [e["action"] for e in pg_store.history("contoso")] == ["a"]
    assert pg_store.integrity_check() == []
    assert pg_store.write_step("contoso", expected_version=2, state={"n": 3}, audit=[]) == 3


@pytest.mark.postgres
def test_a_step_refused_mid_batch_keeps_the_steps_before_it(
    pg_store: PostgresStore, pg_store_url: str, raw_sql: Callable[..., Any]
) -> None:
    pg_store.init_tenant("contoso", {"n": 0})
    # Another writer moves the version under step 0 (once): step 1 no longer finds the
    # version it expects, so it and every step after it are refused.
    raw_sql(
        pg_store_url,
        "CREATE FUNCTION bump_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF current_setting('test.bumped', true) IS DISTINCT FROM 'yes' THEN "
        "PERFORM set_config('test.bumped', 'yes', false); NEW.version := NEW.version + 1; "
        "END IF; RETURN NEW; END $$",
    )
    raw_sql(
        pg_store_url,
        "CREATE TRIGGER bump_once BEFORE UPDATE ON tenants FOR EACH ROW "
        "EXECUTE FUNCTION bump_once()",
    )
    seen, on_written = _recorder()
    with pytest.raises(StateError, match=r"version 2 != 3"):
        pg_store.write_steps(
            "contoso",
            expected_version=1,
            steps=[
                StepWrite(state={"n": 1}, audit=[entry("a")]),
                StepWrite(state={"n": 2}, audit=[entry("b")]),
                StepWrite(state={"n": 3}, audit=[entry("c")]),
            ],
            on_written=on_written,
        )
    assert seen == [(0, 3)]
    got = pg_store.read_tenants()["contoso"]
    assert (got.version, got.state) == (3, {"n": 1})
    assert [e["action"] for e in pg_store.history("contoso")] == ["a"]
    assert pg_store.integrity_check() == []


@pytest.mark.postgres
def test_one_lock_session_serves_every_tenant_and_releases_each(pg_store: PostgresStore) -> None:
    sessions: set[int] = set()
    for name in ("alpha", "bravo", "charlie"):
        with pg_store.lock(name, holder="pipeline-1"):
            assert pg_store._lock_conn is not None
            sessions.add(pg_store._lock_conn.info.backend_pid)
    assert len(sessions) == 1
    conn = pg_store._lock_conn
    assert conn is not None
    held = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    ).fetchone()
    assert held == (0,)
    assert conn.execute("SELECT count(*) FROM locks").fetchone() == (0,)


@pytest.mark.postgres
def test_a_lock_held_elsewhere_times_out_naming_the_holder_and_is_not_kept(
    pg_store: PostgresStore, pg_store_url: str
) -> None:
    with PostgresStore(pg_store_url) as other:
        with (
            pg_store.lock("contoso", holder="pipeline-1"),
            pytest.raises(StateError, match=r"locked by pipeline-1 \(pid \d+"),
            other.lock("contoso", holder="pipeline-2", timeout=0.1),
        ):
            pass
        # The failed attempts left nothing held on the other session: it takes it at once.
        with other.lock("contoso", holder="pipeline-2", timeout=1) as taken:
            assert taken.reclaimed is None
