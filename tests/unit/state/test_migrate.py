"""`copy_store`: every tenant, record and audit entry, both ways, verified."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from atpay_config.errors import StateError
from atpay_config.state import StateStore, open_store
from atpay_config.state.migrate import copy_store
from atpay_config.state.store import SqlStateStore, TenantSnapshot, summarize

NewStoreUrl = Callable[[str], str]
PAIRS = [
    ("sqlite", "sqlite"),
    pytest.param("sqlite", "postgres", marks=pytest.mark.postgres),
    pytest.param("postgres", "sqlite", marks=pytest.mark.postgres),
    pytest.param("postgres", "postgres", marks=pytest.mark.postgres),
]


def _fill(store: StateStore, tenants: int = 30) -> None:
    for i in range(tenants):
        name = f"tenant-{i:03d}"
        store.init_tenant(name, {"i": i, "active": False}, audit=[{"action": "init", "i": i}])
        for step in range(i % 4):
            store.write_step(
                name,
                expected_version=step + 1,
                state={"i": i, "active": True, "step": step},
                audit=[{"action": f"step-{step}", "user": "gitops-bot", "detail": {"n": step}}],
                record={"manifestDigest": f"sha256:{i}", "keys": {"sandbox": f"fp{step}"}}
                if step == 2
                else None,
            )


@pytest.mark.parametrize(("source_kind", "target_kind"), PAIRS)
def test_copy_carries_everything_and_verifies(
    new_store_url: NewStoreUrl, source_kind: str, target_kind: str
) -> None:
    with (
        open_store(new_store_url(source_kind)) as source,
        open_store(new_store_url(target_kind)) as target,
    ):
        _fill(source)
        report = copy_store(source, target)
        assert (report.copied.tenants, report.copied.records, report.copied.audit_entries) == (
            30,
            7,
            30 + sum(i % 4 for i in range(30)),
        )
        assert report.copied == summarize(source.snapshot()) == summarize(target.snapshot())
        assert target.snapshot() == source.snapshot()
        assert target.versions() == source.versions()  # saved plans still bind
        assert target.integrity_check() == []
        assert "verified" in report.describe()


@pytest.mark.postgres
def test_sqlite_to_postgres_and_back_is_lossless(new_store_url: NewStoreUrl) -> None:
    with (
        open_store(new_store_url("sqlite")) as first,
        open_store(new_store_url("postgres")) as middle,
        open_store(new_store_url("sqlite")) as last,
    ):
        _fill(first, tenants=12)
        copy_store(first, middle)
        copy_store(middle, last)
        assert last.snapshot() == first.snapshot()
        assert last.history("tenant-003") == first.history("tenant-003")


def test_a_non_empty_target_is_refused_unless_replace(new_store_url: NewStoreUrl) -> None:
    with (
        open_store(new_store_url("sqlite")) as source,
        open_store(new_store_url("sqlite")) as target,
    ):
        _fill(source, tenants=3)
        target.init_tenant("existing", {"keep": True})
        with pytest.raises(StateError, match="already holds 1 tenant"):
            copy_store(source, target)
        assert target.list_tenants() == ["existing"]
        report = copy_store(source, target, replace=True)
        assert report.replaced and "replaced the content of" in report.describe()
        assert target.list_tenants() == source.list_tenants()


def test_copying_a_store_onto_itself_is_refused(new_store_url: NewStoreUrl) -> None:
    url = new_store_url("sqlite")
    with (
        open_store(url) as source,
        open_store(url) as target,
        pytest.raises(StateError, match="the same state store"),
    ):
        copy_store(source, target, replace=True)


def test_an_empty_store_copies_to_an_empty_store(new_store_url: NewStoreUrl) -> None:
    with (
        open_store(new_store_url("sqlite")) as source,
        open_store(new_store_url("sqlite")) as target,
    ):
        assert copy_store(source, target).copied.tenants == 0


def test_a_copy_that_does_not_read_back_the_same_is_rolled_back(
    new_store_url: NewStoreUrl, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        open_store(new_store_url("sqlite")) as source,
        open_store(new_store_url("sqlite")) as target,
    ):
        _fill(source, tenants=5)
        assert isinstance(target, SqlStateStore)
        real = target._snapshot_in

        def lossy(tx: Any) -> list[TenantSnapshot]:
            return real(tx)[1:]  # as if a tenant went missing on the way

        monkeypatch.setattr(target, "_snapshot_in", lossy)
        with pytest.raises(StateError, match="does not verify: read back 4 tenants"):
            copy_store(source, target)
        monkeypatch.undo()
        assert target.list_tenants() == []
