"""Apply against a real store: a transaction per step, convergence, stale plans, drift, failures."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from tests.unit.plan.builders import (
    PRIVATE,
    PUBLIC,
    fixture_doc,
    manifest_yaml,
    write_workspace,
)

from atpay_config.autotask import operations as ops
from atpay_config.autotask.tenant import TenantState, invariant_violations, key_mask
from atpay_config.errors import StateError
from atpay_config.plan.apply import (
    ApplySummary,
    apply_targets,
    targets_from_plan,
    targets_from_saved,
)
from atpay_config.plan.build import Plan, build_plan
from atpay_config.plan.planfile import check_fresh, read_plan, write_plan
from atpay_config.state import StateStore, open_store

TODAY = dt.date(2026, 1, 5)
TENANTS = {"alpha": "enabled", "bravo": "demo", "charlie": "inactive", "delta": "enabled"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with open_store(str(tmp_path / "state.db")) as opened:
        for tenant in TENANTS:
            opened.init_tenant(tenant, TenantState.from_fixture(fixture_doc(tenant)).to_dict())
        yield opened


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    folder, _fixtures = write_workspace(tmp_path, TENANTS)
    return folder


def make_plan(manifests: Path, store: StateStore, **kwargs: object) -> Plan:
    plan = build_plan(
        [str(manifests)],
        store=store,
        now="2026-01-05T10:00:00+00:00",
        today=TODAY,
        **kwargs,  # type: ignore[arg-type]
    )
    assert not plan.has_errors, [f.message for f in plan.findings]
    return plan


def apply(plan: Plan, store: StateStore, **kwargs: object) -> ApplySummary:
    return apply_targets(targets_from_plan(plan), store=store, **kwargs)  # type: ignore[arg-type]


def test_apply_twice_the_second_plan_is_empty(manifests: Path, store: StateStore) -> None:
    first = make_plan(manifests, store)
    assert {tp.tenant for tp in first.changed} == {"alpha", "bravo", "delta"}
    summary = apply(first, store)
    assert summary.ok and summary.count("applied") == 3
    second = make_plan(manifests, store)
    assert second.changed == [] and second.refused == []
    assert apply(second, store).outcomes == []


def test_each_step_is_one_versioned_write_with_one_audit_entry(
    manifests: Path, store: StateStore
) -> None:
    plan = make_plan(manifests, store, tenants=["alpha"])
    steps = plan.tenant_plans[0].steps
    summary = apply(plan, store)
    assert summary.outcomes[0].applied == steps
    assert store.versions(["alpha"]) == {"alpha": 1 + len(steps)}
    history = store.history("alpha")
    assert [e["action"] for e in history] == [s.action for s in steps]
    assert all(e["user"] == "gitops-bot" for e in history)


def test_the_key_step_writes_our_record_with_the_keys(manifests: Path, store: StateStore) -> None:
    apply(make_plan(manifests, store, tenants=["alpha"]), store)
    stored = store.read_tenants(["alpha"])["alpha"]
    state, record = TenantState.from_dict(stored.state), stored.record
    assert record is not None
    assert record["keys_saved_at"] == state.public_key.saved_at
    assert state.public_key.mask == key_mask(record["public_fingerprint"])
    assert record["manifest_digest"] and record["applied_by"] == "gitops-bot"
    assert invariant_violations(state) == ()


def test_keys_never_reach_state_records_audit_or_plan_files(
    manifests: Path, store: StateStore, tmp_path: Path
) -> None:
    plan = make_plan(manifests, store)
    out = tmp_path / "plan.json"
    write_plan(plan, str(out))
    apply(plan, store)
    dumped = (
        json.dumps([[t.state, t.record, t.audit] for t in store.snapshot()], ensure_ascii=False)
        + out.read_text()
    )
    for secret in (PUBLIC, PRIVATE, PUBLIC[5:], PRIVATE[5:]):
        assert secret not in dumped
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    assert PUBLIC.encode() not in raw and PRIVATE.encode() not in raw


def test_a_saved_plan_is_stale_when_a_manifest_changes(
    manifests: Path, store: StateStore, tmp_path: Path
) -> None:
    write_plan(make_plan(manifests, store), str(tmp_path / "plan.json"))
    (manifests / "bravo.yaml").write_text(manifest_yaml("bravo", stage="inactive"))
    saved = read_plan(str(tmp_path / "plan.json"))
    with pytest.raises(StateError, match=r"stale: .*bravo\.yaml changed"):
        check_fresh(saved, store=store)


def test_a_saved_plan_is_stale_when_a_tenant_state_moves(
    manifests: Path, store: StateStore, tmp_path: Path
) -> None:
    write_plan(make_plan(manifests, store), str(tmp_path / "plan.json"))
    apply(make_plan(manifests, store, tenants=["bravo"]), store)
    saved = read_plan(str(tmp_path / "plan.json"))
    with pytest.raises(StateError, match=r"state of bravo \(planned at version 1, now 3\)"):
        check_fresh(saved, store=store)
    # And a tenant that moved between the check and its lock is refused on its own.
    summary = apply_targets(targets_from_saved(saved), store=store)
    bravo = next(o for o in summary.outcomes if o.tenant == "bravo")
    assert bravo.status == "failed" and "stale" in (bravo.message or "")
    assert summary.count("applied") == 2


def test_a_saved_plan_applies_and_rechecks_key_fingerprints(
    manifests: Path, store: StateStore, tmp_path: Path
) -> None:
    write_plan(make_plan(manifests, store), str(tmp_path / "plan.json"))
    saved = read_plan(str(tmp_path / "plan.json"))
    check_fresh(saved, store=store)
    targets = targets_from_saved(saved)
    alpha = next(t for t in targets if t.tenant == "alpha")
    forged = tuple(
        replace(s, args={**s.args, "public_fingerprint": "0" * 16})
        if s.action == "save_keys"
        else s
        for s in alpha.steps
    )
    targets = [replace(t, steps=forged) if t.tenant == "alpha" else t for t in targets]
    summary = apply_targets(targets, store=store)
    outcome = {o.tenant: o for o in summary.outcomes}
    assert outcome["alpha"].status == "failed" and "fingerprints" in (
        outcome["alpha"].message or ""
    )
    assert outcome["alpha"].applied == ()
    assert outcome["delta"].status == "applied"
    assert make_plan(manifests, store, tenants=["delta"]).changed == []


def test_drift_in_autotask_is_detected_and_resaved(manifests: Path, store: StateStore) -> None:
    apply(make_plan(manifests, store, tenants=["alpha"]), store)
    found = store.read_tenants(["alpha"])["alpha"]
    by_hand = ops.save_keys(
        TenantState.from_dict(found.state),
        user="gitops-bot",
        now="2026-02-01T00:00:00+00:00",
        public_mask=key_mask("abcd"),
        private_mask=key_mask("ef01"),
    )
    assert by_hand.entry is not None
    store.write_step(
        "alpha",
        expected_version=found.version,
        state=by_hand.state.to_dict(),
        audit=[by_hand.entry.to_dict()],
    )
    drifted = make_plan(manifests, store, tenants=["alpha"])
    tp = drifted.tenant_plans[0]
    assert tp.key_change == "changed-in-autotask" and [s.action for s in tp.steps] == ["save_keys"]
    apply(drifted, store)
    assert make_plan(manifests, store, tenants=["alpha"]).changed == []


def test_rotation_in_git_is_not_drift(manifests: Path, store: StateStore) -> None:
    apply(make_plan(manifests, store, tenants=["alpha"]), store)
    (manifests / "alpha.yaml").write_text(
        manifest_yaml("alpha", public="pk_rotated_public_1", private="sk_rotated_private_1")
    )
    tp = make_plan(manifests, store, tenants=["alpha"]).tenant_plans[0]
    assert tp.key_change == "rotated-in-git" and [s.action for s in tp.steps] == ["save_keys"]


def _break_bravo(store: StateStore) -> None:
    """bravo becomes a UK tenant behind the plan's back: its re-plan is refused (AT-20)."""
    store.init_tenant(
        "bravo",
        TenantState.from_fixture(fixture_doc("bravo", country="GB")).to_dict(),
        replace=True,
    )


def test_one_tenant_failing_does_not_stop_the_others(manifests: Path, store: StateStore) -> None:
    (manifests / "bravo.yaml").write_text(manifest_yaml("bravo", stage="enabled"))
    plan = make_plan(manifests, store)
    _break_bravo(store)
    summary = apply(plan, store)
    outcome = {o.tenant: o for o in summary.outcomes}
    assert outcome["bravo"].status == "failed" and "AT-20" in (outcome["bravo"].message or "")
    assert outcome["bravo"].applied == () and outcome["bravo"].not_applied
    assert outcome["alpha"].status == outcome["delta"].status == "applied"
    assert not summary.ok
    assert any("bravo: FAILED" in line for line in summary.describe())


def test_fail_fast_stops_after_the_first_failure(manifests: Path, store: StateStore) -> None:
    (manifests / "bravo.yaml").write_text(manifest_yaml("bravo", stage="enabled"))
    plan = make_plan(manifests, store)
    _break_bravo(store)
    summary = apply(plan, store, fail_fast=True)
    statuses = {o.tenant: o.status for o in summary.outcomes}
    assert statuses == {"alpha": "applied", "bravo": "failed", "delta": "skipped"}
    assert make_plan(manifests, store, tenants=["delta"]).changed  # really not applied


def test_a_held_lock_fails_the_tenant_naming_the_holder(
    manifests: Path, store: StateStore, tmp_path: Path
) -> None:
    plan = make_plan(manifests, store, tenants=["alpha"])
    with open_store(str(tmp_path / "state.db")) as other, other.lock("alpha", holder="pipeline-7"):
        summary = apply(plan, store, lock_timeout=0.2)
    outcome = summary.outcomes[0]
    assert outcome.status == "failed" and "locked by pipeline-7" in (outcome.message or "")
    assert apply(plan, store).ok


def test_a_run_that_finds_its_work_done_writes_nothing(manifests: Path, store: StateStore) -> None:
    stale = make_plan(manifests, store)
    apply(make_plan(manifests, store), store)
    audit_before = sum(len(t.audit) for t in store.snapshot())
    summary = apply(stale, store)
    assert summary.ok and summary.count("unchanged") == 3 and summary.steps_applied == 0
    assert sum(len(t.audit) for t in store.snapshot()) == audit_before
