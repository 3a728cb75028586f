"""Concurrent applies: no lost update, one audit entry per real change, the loser waits."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from tests.slow.apply_helpers import (
    ATPAY,
    atpay,
    init_store,
    start_apply,
    store_problems,
    tenant_names,
    write_manifests,
)
from tests.state_fixtures import NewStoreUrl

from atpay_config.autotask.tenant import TenantState
from atpay_config.state import open_store


def expected_actions(stage_of: dict[str, str]) -> dict[str, list[str]]:
    """The audit actions one apply from a fresh tenant writes, per stage."""
    return {
        "enabled": [
            "activate",
            "request_sales_contact",
            "record_gateway",
            "save_keys",
            "set_payment_types",
            "set_payment_types",
        ],
        "demo": ["activate", "request_sales_contact"],
        "inactive": [],
    }


def subset(folder: Path, target: Path, names: list[str]) -> Path:
    target.mkdir(parents=True)
    for name in names:
        shutil.copy(folder / f"{name}.yaml", target / f"{name}.yaml")
    return target


def assert_one_entry_per_change(url: str, folder: Path, names: list[str]) -> None:
    from tests.slow.apply_helpers import STAGES

    wanted = expected_actions({})
    with open_store(url) as store:
        for index, name in enumerate(names):
            actions = [e["action"] for e in store.history(name)]
            assert actions == wanted[STAGES[index % len(STAGES)]], name
        for name, stored in store.read_tenants(names).items():
            state = TenantState.from_dict(stored.state)
            stage = STAGES[names.index(name) % len(STAGES)]
            assert state.processing_enabled == (stage == "enabled"), name
    assert store_problems(url) == []


@pytest.mark.slow
def test_two_applies_on_overlapping_tenants_sqlite(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    names = tenant_names(60)
    init_store(state, names)
    folder = write_manifests(tmp_path / "all", names)
    first = subset(folder, tmp_path / "a", names[:40])
    second = subset(folder, tmp_path / "b", names[20:])
    procs = [start_apply(first, state=state), start_apply(second, state=state)]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (_out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0 or "is locked by" in err, err
    assert_one_entry_per_change(state, folder, names)
    assert atpay("plan", str(folder), "--detailed-exitcode", state=state).returncode == 0


@pytest.mark.slow
def test_the_loser_fails_with_the_lock_message_naming_the_holder(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    names = tenant_names(4)
    init_store(state, names)
    folder = write_manifests(tmp_path / "all", names)
    with open_store(state) as store, store.lock(names[0], holder="release-pipeline"):
        result = atpay("apply", str(folder), "--auto-approve", "--lock-timeout", "0.5", state=state)
    assert result.returncode == 1
    assert (
        f"tenant '{names[0]}' is locked by release-pipeline (pid" in result.stdout + result.stderr
    )
    assert "applied" in result.stdout  # the other tenants went ahead
    assert atpay("apply", str(folder), "--auto-approve", state=state).returncode == 0


@pytest.mark.slow
@pytest.mark.postgres
def test_four_applies_on_overlapping_sets_of_1000_tenants_postgres(
    tmp_path: Path, new_store_url: NewStoreUrl
) -> None:
    url = new_store_url("postgres")
    names = tenant_names(1000)
    init_store(url, names)
    folder = write_manifests(tmp_path / "all", names)
    doubled = names + names
    sets = [subset(folder, tmp_path / f"p{i}", doubled[i * 250 : i * 250 + 500]) for i in range(4)]
    started = time.monotonic()
    procs = [start_apply(s, state=url) for s in sets]
    results = [p.communicate(timeout=600) for p in procs]
    for proc, (_out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err[-2000:]
    assert time.monotonic() - started < 300, "no deadlock: every apply finished"
    assert_one_entry_per_change(url, folder, names)


def _terminate_apply_backends(url: str, since: float) -> int:
    """Drop the apply's server sessions (the store names itself atpay-config) from our side."""
    import psycopg

    server = urlunsplit(urlsplit(url)._replace(query=""))
    with psycopg.connect(server, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'atpay-config' AND pid <> pg_backend_pid() "
            "AND datname = current_database() AND backend_start >= to_timestamp(%s)",
            (since,),
        ).fetchall()
    return len(rows)


def _start_logged_apply(folder: Path, url: str, log: Path) -> subprocess.Popen[bytes]:
    """An apply whose output goes to a file, so it never blocks on a full pipe."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [ATPAY, "apply", str(folder), "--auto-approve", "--state", url],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_for_writes(url: str, proc: subprocess.Popen[bytes], *, steps: int) -> None:
    """Until the apply has written `steps` steps (or ended)."""
    with open_store(url) as watcher:
        start = sum(watcher.versions().values())
        while proc.poll() is None and sum(watcher.versions().values()) - start < steps:
            time.sleep(0.002)


@pytest.mark.slow
@pytest.mark.postgres
def test_sigkill_and_a_dropped_connection_mid_apply_postgres(
    tmp_path: Path, new_store_url: NewStoreUrl
) -> None:
    url = new_store_url("postgres")
    names = tenant_names(1000)
    init_store(url, names)
    folder = write_manifests(tmp_path / "all", names)
    proc = _start_logged_apply(folder, url, tmp_path / "kill.log")
    _wait_for_writes(url, proc, steps=200)
    assert proc.poll() is None, "the apply should still be writing when it is killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert store_problems(url) == []

    write_manifests(folder, names, flip=True)
    since = time.time() - 1
    log = tmp_path / "terminate.log"
    proc = _start_logged_apply(folder, url, log)
    _wait_for_writes(url, proc, steps=200)
    assert proc.poll() is None, "the apply should still be writing when its session drops"
    assert _terminate_apply_backends(url, since) >= 1
    proc.wait(timeout=300)
    out = log.read_text()
    assert proc.returncode in (0, 1)
    if proc.returncode == 1:
        assert "FAILED: lost the connection to the PostgreSQL state store" in out, out[-2000:]
    assert "Traceback" not in out and "error ignored" not in out  # one clean line, no noise
    assert store_problems(url) == []

    finished = atpay("apply", str(folder), "--auto-approve", state=url)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert atpay("plan", str(folder), "--detailed-exitcode", state=url).returncode == 0
    assert store_problems(url) == []
