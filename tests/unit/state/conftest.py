"""Fixtures for the state store tests; the shared ones live in tests/state_fixtures.py."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from urllib.parse import parse_qsl, urlsplit

import pytest
from tests.state_fixtures import _pg_admin_url

RawSql = Callable[..., list[tuple[object, ...]]]


@pytest.fixture
def raw_sql() -> RawSql:
    """`raw_sql(url, statement, params=())`: SQL straight against a store's tables."""
    return run_raw_sql


def run_raw_sql(
    url: str, statement: str, params: tuple[object, ...] = ()
) -> list[tuple[object, ...]]:
    """Run one statement against the store's tables directly (to tamper, or to look)."""
    if url.startswith(("postgresql://", "postgres://")):
        import psycopg
        from psycopg import sql

        schema = dict(parse_qsl(urlsplit(url).query)).get("schema", "atpay")
        with psycopg.connect(_pg_admin_url(url), autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            with conn.cursor() as cur:
                cur.execute(statement.replace("?", "%s"), params)
                return list(cur.fetchall()) if cur.description else []
    with (
        closing(sqlite3.connect(url, isolation_level=None)) as conn,
        closing(conn.execute(statement, params)) as cur,
    ):
        return list(cur.fetchall())
