"""Where simulated tenants and our apply records persist (SPEC section 6).

`open_store(url_or_path)` picks the backend from the URL's scheme in `STORES`:
`postgresql://…` / `postgres://…` is the shared PostgreSQL store; a path or
`sqlite:///PATH` is the embedded SQLite file. The caller resolves the default
(`--state`, then `ATPAY_STATE`, then `.atpay/state.db`).
"""

from __future__ import annotations

from collections.abc import Callable

from atpay_config.errors import StateError, UsageError
from atpay_config.state.store import (
    LockHolder,
    StateStore,
    StoredTenant,
    StoreSummary,
    TenantLock,
    TenantSnapshot,
    canonical_json,
    digest,
)

DEFAULT_STATE = ".atpay/state.db"

StoreOpener = Callable[[str], StateStore]


def _open_sqlite(url: str) -> StateStore:
    from atpay_config.state.sqlite import SQLiteStore

    return SQLiteStore.open(url)


def _open_postgres(url: str) -> StateStore:
    try:
        from atpay_config.state.postgres import PostgresStore
    except ImportError as exc:
        raise StateError(
            f"a PostgreSQL state store needs psycopg 3 ({exc})",
            hint="pip install 'atpay-config[postgres]'",
        ) from None
    return PostgresStore.open(url)


# The one list of backends, by URL scheme (STYLE practice 6).
STORES: dict[str, StoreOpener] = {
    "sqlite": _open_sqlite,
    "postgresql": _open_postgres,
    "postgres": _open_postgres,
}


def store_scheme(url_or_path: str) -> str:
    """The STORES key for a `--state` value: its URL scheme, or sqlite for a plain path."""
    scheme, sep, _rest = url_or_path.partition("://")
    if not sep:
        return "sqlite"
    if scheme.lower() not in STORES:
        raise UsageError(
            f"unsupported state store {scheme!r} in {url_or_path!r}; "
            f"use a path or one of: {', '.join(f'{s}://' for s in STORES)}"
        )
    return scheme.lower()


def open_store(url_or_path: str) -> StateStore:
    """Open (creating and migrating as needed) the store `url_or_path` names."""
    if not url_or_path:
        raise UsageError("no state store given (--state PATH|URL or ATPAY_STATE)")
    return STORES[store_scheme(url_or_path)](url_or_path)


__all__ = [
    "DEFAULT_STATE",
    "STORES",
    "LockHolder",
    "StateStore",
    "StoreSummary",
    "StoredTenant",
    "TenantLock",
    "TenantSnapshot",
    "canonical_json",
    "digest",
    "open_store",
    "store_scheme",
]
