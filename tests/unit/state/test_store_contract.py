"""The StateStore contract: every behaviour, proven on SQLite and on PostgreSQL."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from atpay_config.errors import StateError
from atpay_config.state import StateStore, TenantSnapshot, open_store
from atpay_config.state.store import summarize

INIT = {"at": "2024-01-01T00:00:00Z", "user": "fixture", "action": "init", "detail": {}}


def entry(action: str, **detail: Any) -> dict[str, Any]:
    return {"at": "2024-01-02T00:00:00Z", "user": "gitops-bot", "action": action, "detail": detail}


def test_new_store_is_empty_and_sound(store: StateStore) -> None:
    assert store.list_tenants() == []
    assert store.read_tenants() == {}
    assert store.versions() == {}
    assert store.integrity_check() == []


def test_init_tenant_starts_at_version_1_without_record(store: StateStore) -> None:
    created = store.init_tenant("contoso", {"active": False}, audit=[INIT])
    assert (created.name, created.version, created.state, created.record) == (
        "contoso",
        1,
        {"active": False},
        None,
    )
    assert store.list_tenants() == ["contoso"]
    assert store.read_tenants()["contoso"] == created
    assert store.history("contoso") == [INIT]


def test_init_existing_tenant_is_refused_unless_replace(store: StateStore) -> None:
    store.init_tenant("contoso", {"active": False}, audit=[INIT])
    store.write_step(
        "contoso", expected_version=1, state={"active": True}, audit=[], record={"d": 1}
    )
    with pytest.raises(StateError, match="'contoso' already exists"):
        store.init_tenant("contoso", {"active": False})
    reset = store.init_tenant("contoso", {"active": False}, replace=True, audit=[INIT])
    # The version keeps counting so plans made before the reset go stale; the record
    # described the old tenant and is cleared; the audit log is append-only.
    assert reset.version == 3
    assert store.read_tenants()["contoso"].record is None
    assert store.history("contoso") == [INIT, INIT]
    assert store.integrity_check() == []


def test_documents_round_trip_exactly(store: StateStore) -> None:
    state = {
        "country": "US",
        "flags": [True, False, None],
        "nested": {"z": 1, "a": [1.5, -2, 10**15]},
        "name": "Zoë – ünïcode ✓",
        "empty": {},
    }
    record = {"manifestDigest": "sha256:" + "0" * 64, "keys": {"sandbox": "fp:abc"}}
    store.init_tenant("contoso", state)
    store.write_step("contoso", expected_version=1, state=state, audit=[entry("x")], record=record)
    got = store.read_tenants(["contoso"])["contoso"]
    assert got.state == state
    assert got.record == record


def test_read_tenants_reads_the_named_tenants_and_skips_unknown(store: StateStore) -> None:
    for i in range(5):
        store.init_tenant(f"t{i}", {"i": i})
    got = store.read_tenants(["t3", "t1", "missing"])
    assert sorted(got) == ["t1", "t3"]
    assert got["t3"].state == {"i": 3}
    assert store.read_tenants([]) == {}
    assert store.versions(["t0", "missing"]) == {"t0": 1}


def test_read_tenants_handles_thousands_of_names(store: StateStore) -> None:
    names = [f"tenant-{i:05d}" for i in range(2500)]
    store.restore([_snapshot(name) for name in names])
    got = store.read_tenants([*names[::2], "missing"])
    assert len(got) == 1250
    assert store.versions(names) == dict.fromkeys(names, 1)
    assert store.list_tenants() == names


def _snapshot(name: str) -> TenantSnapshot:
    return TenantSnapshot(name=name, version=1, state={"name": name}, record=None)


def test_write_step_bumps_version_writes_state_and_appends_audit(store: StateStore) -> None:
    store.init_tenant("contoso", {"active": False}, audit=[INIT])
    version = store.write_step(
        "contoso",
        expected_version=1,
        state={"active": True},
        audit=[entry("activate"), entry("requestSalesContact")],
    )
    assert version == 2
    got = store.read_tenants()["contoso"]
    assert (got.version, got.state, got.record) == (2, {"active": True}, None)
    assert [e["action"] for e in store.history("contoso")] == [
        "init",
        "activate",
        "requestSalesContact",
    ]
    assert store.integrity_check() == []


def test_write_step_with_a_stale_version_is_refused_and_changes_nothing(store: StateStore) -> None:
    store.init_tenant("contoso", {"n": 0})
    store.write_step("contoso", expected_version=1, state={"n": 1}, audit=[entry("a")])
    with pytest.raises(StateError) as refused:
        store.write_step("contoso", expected_version=1, state={"n": 99}, audit=[entry("b")])
    assert str(refused.value) == (
        "tenant 'contoso' changed since it was read (version 1 != 2); re-run plan"
    )
    got = store.read_tenants()["contoso"]
    assert (got.version, got.state) == (2, {"n": 1})
    assert [e["action"] for e in store.history("contoso")] == ["a"]


def test_write_to_an_unknown_tenant_is_refused(store: StateStore) -> None:
    with pytest.raises(StateError, match="no tenant 'ghost'"):
        store.write_step("ghost", expected_version=1, state={}, audit=[])
    with pytest.raises(StateError, match="no tenant 'ghost'"):
        store.write_record("ghost", record={})
    with pytest.raises(StateError, match="no tenant 'ghost'"):
        store.history("ghost")


def test_write_step_writes_the_record_only_when_given(store: StateStore) -> None:
    store.init_tenant("contoso", {"n": 0})
    store.write_step("contoso", expected_version=1, state={"n": 1}, audit=[], record={"r": 1})
    store.write_step("contoso", expected_version=2, state={"n": 2}, audit=[])
    assert store.read_tenants()["contoso"].record == {"r": 1}


def test_a_bad_document_writes_nothing(store: StateStore) -> None:
    store.init_tenant("contoso", {"n": 0})
    with pytest.raises(StateError, match="audit entry of tenant 'contoso' is not JSON"):
        store.write_step("contoso", expected_version=1, state={"n": 1}, audit=[{"x": object()}])
    with pytest.raises(StateError, match="state of tenant 'contoso' must be a JSON object"):
        store.write_step("contoso", expected_version=1, state=[1], audit=[])  # type: ignore[arg-type]
    with pytest.raises(StateError, match="record of tenant 'contoso' is not JSON"):
        store.write_step(
            "contoso", expected_version=1, state={}, audit=[], record={"nan": float("nan")}
        )
    got = store.read_tenants()["contoso"]
    assert (got.version, got.state) == (1, {"n": 0})
    assert store.history("contoso") == []


def test_write_record_bumps_the_version_and_honours_expected_version(store: StateStore) -> None:
    store.init_tenant("contoso", {"n": 0})
    assert store.write_record("contoso", record={"fp": "a"}) == 2
    assert store.write_record("contoso", record={"fp": "b"}, expected_version=2) == 3
    with pytest.raises(StateError, match=r"version 2 != 3"):
        store.write_record("contoso", record={"fp": "c"}, expected_version=2)
    assert store.read_tenants()["contoso"].record == {"fp": "b"}
    assert store.integrity_check() == []


def test_lock_is_exclusive_and_the_loser_is_told_who_holds_it(store_url: str) -> None:
    with open_store(store_url) as first, open_store(store_url) as second:
        with first.lock("contoso", holder="alice via atpay apply") as held:
            assert held.reclaimed is None
            started = time.monotonic()
            with (
                pytest.raises(StateError) as refused,
                second.lock("contoso", holder="bob", timeout=0.3),
            ):
                pass
            assert time.monotonic() - started >= 0.25
            message = str(refused.value)
            assert "tenant 'contoso' is locked by alice via atpay apply" in message
            assert f"pid {held.holder.pid} on {held.holder.host}" in message
            assert "gave up after 0.3s" in message
        with second.lock("contoso", holder="bob", timeout=0.3) as taken:
            assert taken.holder.holder == "bob"


def test_locks_are_per_tenant(store_url: str) -> None:
    with (
        open_store(store_url) as first,
        open_store(store_url) as second,
        first.lock("a", holder="alice"),
        second.lock("b", holder="bob", timeout=0.5),
    ):
        pass


def test_one_run_holds_several_tenant_locks_at_once(store: StateStore, store_url: str) -> None:
    with (
        store.lock("a", holder="alice"),
        store.lock("b", holder="alice"),
        open_store(store_url) as other,
    ):
        for name in ("a", "b"):
            with (
                pytest.raises(StateError, match="locked by alice"),
                other.lock(name, holder="bob", timeout=0.1),
            ):
                pass
    with (
        open_store(store_url) as other,
        other.lock("a", holder="bob", timeout=1),
        other.lock("b", holder="bob", timeout=1),
    ):
        pass


def test_lock_is_released_when_the_body_fails(store: StateStore, store_url: str) -> None:
    with pytest.raises(RuntimeError), store.lock("contoso", holder="alice"):
        raise RuntimeError("apply failed")
    with open_store(store_url) as other, other.lock("contoso", holder="bob", timeout=0.5):
        pass


def test_taking_a_held_lock_again_in_the_same_store_is_refused(store: StateStore) -> None:
    with (
        store.lock("contoso", holder="alice"),
        pytest.raises(StateError, match="already holds the lock"),
        store.lock("contoso", holder="alice"),
    ):
        pass


def test_snapshot_and_restore_round_trip(store: StateStore, new_store_url: Any) -> None:
    store.init_tenant("a", {"n": 0}, audit=[INIT])
    store.write_step("a", expected_version=1, state={"n": 1}, audit=[entry("x")], record={"r": 1})
    store.init_tenant("b", {"n": 5})
    taken = store.snapshot()
    assert [(t.name, t.version, len(t.audit)) for t in taken] == [("a", 2, 2), ("b", 1, 0)]
    assert taken[0].audit == ((1, INIT), (2, entry("x")))
    with open_store(new_store_url("sqlite")) as copy:
        assert copy.restore(taken) == summarize(taken)
        assert copy.snapshot() == taken
    with pytest.raises(StateError, match="already holds 2 tenant"):
        store.restore(taken)
    assert store.restore(taken[:1], replace=True).tenants == 1
    assert store.list_tenants() == ["a"]
    assert store.integrity_check() == []


def test_integrity_check_finds_changes_behind_the_stores_back(
    store: StateStore, store_url: str, raw_sql: Any
) -> None:
    store.init_tenant("a", {"n": 0}, audit=[INIT])
    store.write_step("a", expected_version=1, state={"n": 1}, audit=[entry("x"), entry("y")])
    store.init_tenant("b", {"n": 0}, audit=[INIT])
    raw_sql(store_url, "UPDATE tenants SET state_digest = 'bogus' WHERE name = 'a'")
    raw_sql(store_url, "DELETE FROM audit WHERE tenant = 'a' AND seq = 2")
    raw_sql(store_url, "DELETE FROM audit WHERE tenant = 'b'")
    problems = store.integrity_check()
    assert "tenant 'a': state does not match its digest" in problems
    assert "tenant 'a': audit sequence has gaps" in problems
    assert "tenant 'a': 2 audit entries stored, the tenant counts 3" in problems
    assert "tenant 'b': counts 1 audit entries, none stored" in problems


def test_the_audit_log_is_append_only(store: StateStore, store_url: str, raw_sql: Any) -> None:
    store.init_tenant("a", {}, audit=[INIT])
    with pytest.raises(Exception, match="append-only"):
        raw_sql(store_url, "UPDATE audit SET entry = '{}'")


# --- several processes --------------------------------------------------------

WORKER = """
import sys
from atpay_config.errors import StateError
from atpay_config.state import open_store

url, tenant, who, count, mode = sys.argv[1:6]
with open_store(url) as store:
    done = 0
    while done < int(count):
        if mode == "lock":
            with store.lock(tenant, holder=who, timeout=60):
                current = store.read_tenants([tenant])[tenant]
                store.write_step(tenant, expected_version=current.version,
                                 state={"n": current.state["n"] + 1},
                                 audit=[{"user": who, "action": "increment"}])
        else:
            current = store.read_tenants([tenant])[tenant]
            try:
                store.write_step(tenant, expected_version=current.version,
                                 state={"n": current.state["n"] + 1},
                                 audit=[{"user": who, "action": "increment"}])
            except StateError as exc:
                if "changed since" not in str(exc):
                    raise
                continue
        done += 1
"""

HOLDER = """
import sys
from atpay_config.state import open_store

url, tenant, who = sys.argv[1:4]
with open_store(url) as store, store.lock(tenant, holder=who, timeout=30):
    print("locked", flush=True)
    sys.stdin.read()
"""


def _python(script: str, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", script, *args], text=True, **kwargs)


@pytest.mark.parametrize("mode", ["lock", "optimistic"])
def test_concurrent_processes_lose_no_update(store: StateStore, store_url: str, mode: str) -> None:
    store.init_tenant("contoso", {"n": 0})
    workers = [_python(WORKER, store_url, "contoso", f"worker-{i}", "15", mode) for i in range(4)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0, 0]
    got = store.read_tenants()["contoso"]
    assert got.state == {"n": 60}
    assert got.version == 61
    assert len(store.history("contoso")) == 60
    assert store.integrity_check() == []


def test_a_process_holding_the_lock_makes_others_wait_or_fail_naming_it(
    store: StateStore, store_url: str
) -> None:
    holder = _python(
        HOLDER, store_url, "contoso", "pipeline-42", stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with (
            pytest.raises(StateError, match=rf"locked by pipeline-42 \(pid {holder.pid} on "),
            store.lock("contoso", holder="me", timeout=0.3),
        ):
            pass
        assert holder.stdin is not None
        holder.stdin.close()  # the holder finishes while we wait
        with store.lock("contoso", holder="me", timeout=30) as taken:
            assert taken.reclaimed is None
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout:
            holder.stdout.close()


def test_the_lock_of_a_killed_holder_is_taken_over(store: StateStore, store_url: str) -> None:
    holder = _python(
        HOLDER, store_url, "contoso", "pipeline-7", stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        with store.lock("contoso", holder="me", timeout=30) as taken:
            assert taken.reclaimed is not None
            assert (taken.reclaimed.holder, taken.reclaimed.pid) == ("pipeline-7", holder.pid)
    finally:
        for pipe in (holder.stdin, holder.stdout):
            if pipe:
                pipe.close()


@pytest.mark.slow
def test_a_writer_killed_at_random_points_leaves_the_store_consistent(
    store: StateStore, store_url: str
) -> None:
    store.init_tenant("contoso", {"n": 0})
    chance = random.Random(6)
    for _ in range(4):
        writer = _python(WORKER, store_url, "contoso", "victim", "100000", "optimistic")
        time.sleep(chance.uniform(0.3, 0.8))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        assert store.integrity_check() == []
        got = store.read_tenants()["contoso"]
        assert got.version == got.state["n"] + 1 == len(store.history("contoso")) + 1
    assert store.read_tenants()["contoso"].state["n"] > 0
