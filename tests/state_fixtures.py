"""State-store fixtures shared by every suite (registered in tests/conftest.py).


- `pg_url` (session): URL of a reachable PostgreSQL server: `ATPAY_TEST_PG_URL`,
  else `postgresql://postgres@127.0.0.1:5432/test`. Skips with a one-line reason
  when the server is unreachable; under `CI=true` it fails instead.
- `new_store_url(kind)`: a fresh, empty store URL of kind "sqlite" (a file under
  tmp_path) or "postgres" (a unique schema, dropped after the test).
- `store_url` / `store`: one fresh store per backend (params sqlite, postgres).
- `raw_sql(url, statement)`: run SQL straight against a store, behind its back.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from atpay_config.state import StateStore, open_store
from atpay_config.state.store import redact_url

PG_DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
IN_CI = os.environ.get("CI") == "true"
BACKENDS = ("sqlite", "postgres")

NewStoreUrl = Callable[[str], str]


def pg_test_url() -> str:
    return os.environ.get("ATPAY_TEST_PG_URL") or PG_DEFAULT_URL


def with_schema(url: str, schema: str) -> str:
    """`url` with the store's `?schema=` parameter set."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "schema"] + [("schema", schema)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _pg_admin_url(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "schema"]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _pg_unreachable(url: str) -> str | None:
    try:
        import psycopg
    except ImportError as exc:
        return f"psycopg is not installed ({exc})"
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A reachable PostgreSQL server's URL, or skip (fail under CI=true)."""
    url = pg_test_url()
    reason = _pg_unreachable(url)
    if reason is not None:
        message = f"PostgreSQL at {redact_url(url)} unreachable ({reason}); set ATPAY_TEST_PG_URL"
        if IN_CI:
            pytest.fail(f"{message} — CI=true requires it")
        pytest.skip(message)
    return url


def drop_schema(url: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(_pg_admin_url(url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def new_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NewStoreUrl]:
    """Factory: a fresh store URL per call, of kind "sqlite" or "postgres"; cleaned up after."""
    schemas: list[tuple[str, str]] = []

    def make(kind: str) -> str:
        if kind == "sqlite":
            return str(tmp_path / f"state-{uuid.uuid4().hex[:8]}" / "state.db")
        if kind == "postgres":
            base = request.getfixturevalue("pg_url")
            schema = f"atpay_test_{uuid.uuid4().hex[:12]}"
            schemas.append((base, schema))
            return with_schema(base, schema)
        raise ValueError(kind)

    yield make
    for base, schema in schemas:
        drop_schema(base, schema)


BACKEND_PARAMS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKEND_PARAMS)
def store_url(request: pytest.FixtureRequest, new_store_url: NewStoreUrl) -> str:
    """A fresh store URL, once per backend."""
    return str(new_store_url(request.param))


@pytest.fixture
def store(store_url: str) -> Iterator[StateStore]:
    with open_store(store_url) as opened:
        yield opened
