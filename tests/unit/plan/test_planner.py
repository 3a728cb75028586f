"""The planner: documented step order, refusals up front, keys by fingerprint, idempotence."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.plan.builders import (
    BOT,
    LATER,
    NOW,
    PRIVATE,
    PUBLIC,
    fps,
    fresh,
    manifest,
)

from atpay_config.autotask import operations as ops
from atpay_config.autotask.tenant import TenantState, invariant_violations, key_mask
from atpay_config.errors import RefusedByAutotask
from atpay_config.manifest.model import Manifest
from atpay_config.plan.planner import (
    KeyFingerprints,
    TenantPlan,
    plan_tenant,
    record_after,
    run_step,
)


def plan(
    m: Manifest,
    state: TenantState,
    record: dict[str, Any] | None = None,
    *,
    keys: KeyFingerprints | None = None,
    user: str | None = None,
) -> TenantPlan:
    if keys is None and m.has_both_keys:
        keys = fps()
    return plan_tenant(m, state, record, key_fingerprints=keys, user=user, now=NOW, state_version=1)


def apply_pure(
    tp: TenantPlan, record: dict[str, Any] | None, *, user: str = BOT, now: str = LATER
) -> tuple[TenantState, dict[str, Any] | None]:
    """What apply does, without a store: each step through the simulation, record beside it."""
    state = tp.before
    for index, step in enumerate(tp.steps):
        result = run_step(state, step, user=user, now=now)
        assert result.entry is not None
        new = record_after(
            record,
            step,
            result.state,
            last=index == len(tp.steps) - 1,
            manifest_digest="d",
            user=user,
            now=now,
        )
        record = new if new is not None else record
        state = result.state
    return state, record


def actions(tp: TenantPlan) -> list[str]:
    return [
        s.action if s.action != "set_payment_types" else f"set:{s.args['environment']}"
        for s in tp.steps
    ]


def enabled_state() -> TenantState:
    state = fresh()
    state = ops.activate(state, user=BOT, now=NOW).state
    state = ops.request_sales_contact(
        state, user=BOT, now=NOW, email="billing@contoso.example"
    ).state
    state = ops.record_gateway(state, user=BOT, now=NOW, account_active=True).state
    keys = fps()
    state = ops.save_keys(
        state, user=BOT, now=NOW, public_mask=keys.public_mask, private_mask=keys.private_mask
    ).state
    state = ops.set_payment_types(
        state, user=BOT, now=NOW, environment="autotask", types=["creditCard", "eCheck"]
    ).state
    return ops.set_payment_types(
        state, user=BOT, now=NOW, environment="clientPortal", types=["creditCard"]
    ).state


def applied_record(state: TenantState) -> dict[str, Any]:
    keys = fps()
    return {
        "format": 1,
        "salt": keys.salt,
        "public_fingerprint": keys.public,
        "private_fingerprint": keys.private,
        "keys_saved_at": state.public_key.saved_at,
    }


# --- step order (SPEC section 6) --------------------------------------------------


def test_switching_on_follows_the_documented_order() -> None:
    tp = plan(manifest(), fresh())
    assert tp.refusal is None
    assert actions(tp) == [
        "activate",
        "request_sales_contact",
        "record_gateway",
        "save_keys",
        "set:autotask",
        "set:clientPortal",
    ]
    assert [s.fact for s in tp.steps] == ["AT-3", "AT-5", "AT-6", "AT-7", "AT-10", "AT-10"]
    assert tp.after.processing_enabled and tp.key_change == "new"
    assert invariant_violations(tp.after) == ()


def test_switching_off_clears_payment_types_before_deactivating() -> None:
    off = manifest(
        activation="inactive", sales=False, gateway=False, keys=False, autotask=(), portal=()
    )
    tp = plan(off, enabled_state())
    assert actions(tp) == ["set:autotask", "set:clientPortal", "deactivate"]
    assert [s.fact for s in tp.steps] == ["AT-16", "AT-16", "AT-3"]
    assert not tp.after.active and not tp.after.payment_types.any_enabled
    assert any("cannot remove saved keys" in n for n in tp.notes)


def test_clearing_one_environment_is_a_single_step() -> None:
    tp = plan(manifest(portal=()), enabled_state(), applied_record(enabled_state()))
    assert actions(tp) == ["set:clientPortal"]
    assert tp.steps[0].label == "clear payment types" and tp.steps[0].fact == "AT-12"


def test_partial_setup_resumes_where_it_stopped() -> None:
    state = ops.activate(fresh(), user=BOT, now=NOW).state
    tp = plan(manifest(), state)
    assert actions(tp)[0] == "request_sales_contact"


def test_a_matching_tenant_has_no_steps() -> None:
    state = enabled_state()
    tp = plan(manifest(), state, applied_record(state))
    assert tp.steps == () and not tp.changed and tp.after == tp.before and tp.key_change == "none"


# --- refusals up front --------------------------------------------------------------


REFUSALS = {
    "user without the Finance Admin permission": (
        "AT-1",
        lambda: (manifest(), fresh(), "dispatch"),
    ),
    "unknown user": ("AT-1", lambda: (manifest(), fresh(), "nobody")),
    "keys before the sales contact": ("AT-5", lambda: (manifest(sales=False), fresh(), None)),
    "keys without an active gateway": ("AT-6", lambda: (manifest(gateway=False), fresh(), None)),
    "payment types without keys": ("AT-7", lambda: (manifest(keys=False), fresh(), None)),
    "a tenant outside the US": ("AT-20", lambda: (manifest(), fresh(country="GB"), None)),
    "a tenant not on USD": ("AT-20", lambda: (manifest(), fresh(internalCurrency="CAD"), None)),
    "another payment gateway": (
        "AT-21",
        lambda: (manifest(), fresh(otherGateways=["quickbooks-payments"]), None),
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_every_simulation_refusal_is_a_plan_refusal(case: str) -> None:
    fact, build = REFUSALS[case]
    m, state, user = build()
    tp = plan(m, state, user=user)
    assert tp.refusal is not None and f"({fact})" in tp.refusal
    assert tp.steps == () and tp.after == tp.before and not tp.changed


def test_no_api_user_is_refused_with_the_as_hint() -> None:
    state = replace(fresh(), users=())
    tp = plan(manifest(), state)
    assert tp.refusal is not None and "--as" in tp.refusal and "AT-1" in tp.refusal


def test_a_user_without_permission_is_not_refused_when_nothing_changes() -> None:
    state = enabled_state()
    tp = plan(manifest(), state, applied_record(state), user="dispatch")
    assert tp.refusal is None and tp.steps == ()


def test_inactive_tenant_never_hits_AT3_or_AT16_because_of_the_order() -> None:
    assert plan(manifest(), fresh()).refusal is None  # activation first (AT-3)
    off = manifest(
        activation="inactive", sales=False, gateway=False, keys=False, autotask=(), portal=()
    )
    assert plan(off, enabled_state()).refusal is None  # types cleared first (AT-16)


def test_keys_that_cannot_be_fingerprinted_are_refused() -> None:
    tp = plan_tenant(
        manifest(), fresh(), None, key_fingerprints=None, user=None, now=NOW, state_version=1
    )
    assert tp.refusal is not None and "age identity" in tp.refusal


# --- keys: new, rotated in git, changed in Autotask (drift) ------------------------


def test_keys_rotated_in_git_are_replaced() -> None:
    state = enabled_state()
    rotated = fps("pk_new_public", "sk_new_private")
    tp = plan(manifest(), state, applied_record(state), keys=rotated)
    assert tp.key_change == "rotated-in-git"
    assert actions(tp) == ["save_keys"]
    assert tp.after.public_key.mask == rotated.public_mask
    assert any("rotated in git" in n for n in tp.notes)


def test_keys_changed_by_hand_in_autotask_are_drift() -> None:
    state = enabled_state()
    record = applied_record(state)
    by_hand = ops.save_keys(
        state, user="clerk", now=LATER, public_mask=key_mask("aaaa"), private_mask=key_mask("bbbb")
    ).state
    tp = plan(manifest(), by_hand, record)
    assert tp.key_change == "changed-in-autotask"
    assert actions(tp) == ["save_keys"]
    assert any(n.startswith("drift:") for n in tp.notes)
    assert tp.after.public_key.mask == fps().public_mask


def test_keys_saved_without_our_record_are_resaved_from_git() -> None:
    tp = plan(manifest(), enabled_state(), None)
    assert tp.key_change == "changed-in-autotask" and actions(tp) == ["save_keys"]


def test_keys_removed_from_the_manifest_stay_saved_with_a_note() -> None:
    state = enabled_state()
    tp = plan(manifest(keys=False, autotask=(), portal=()), state, applied_record(state))
    assert tp.key_change == "none" and "save_keys" not in actions(tp)
    assert any("AT-8" in n for n in tp.notes)


def test_withdrawn_sales_contact_is_a_note_not_a_step() -> None:
    state = ops.request_sales_contact(
        ops.activate(fresh(), user=BOT, now=NOW).state, user=BOT, now=NOW, email=None
    ).state
    tp = plan(manifest(sales=False, gateway=False, keys=False, autotask=(), portal=()), state)
    assert tp.steps == () and any("withdraw" in n for n in tp.notes)


def test_steps_are_json_and_never_carry_a_key() -> None:
    tp = plan(manifest(), fresh())
    text = json.dumps([s.to_dict() for s in tp.steps], ensure_ascii=False)
    assert PUBLIC not in text and PRIVATE not in text
    assert fps().public_mask in text


# --- idempotence -----------------------------------------------------------------


def test_applying_the_plan_leaves_nothing_to_plan() -> None:
    tp = plan(manifest(), fresh())
    state, record = apply_pure(tp, None)
    assert state == replace(tp.after, public_key=state.public_key, private_key=state.private_key)
    again = plan(manifest(), state, record)
    assert again.steps == () and again.refusal is None


types_st = st.lists(st.sampled_from(["creditCard", "eCheck"]), unique=True, max_size=2).map(tuple)
manifests_st = st.builds(
    manifest,
    activation=st.sampled_from(["active", "inactive"]),
    sales=st.booleans(),
    email=st.sampled_from([None, "a@x.example", "b@x.example"]),
    gateway=st.booleans(),
    keys=st.booleans(),
    autotask=types_st,
    portal=types_st,
)
key_sets_st = st.sampled_from([(PUBLIC, PRIVATE), ("pk_other", "sk_other")])


@st.composite
def starting_states(draw: st.DrawFn) -> tuple[TenantState, dict[str, Any] | None]:
    """A tenant reached through random allowed writes, with or without our record."""
    state = fresh(
        country=draw(st.sampled_from(["US", "US", "US", "GB"])),
        otherGateways=draw(st.sampled_from([[], [], [], ["quickbooks-payments"]])),
    )
    for _ in range(draw(st.integers(0, 8))):
        op = draw(st.sampled_from(["activate", "deactivate", "sales", "gateway", "keys", "types"]))
        try:
            if op == "activate":
                state = ops.activate(state, user=BOT, now=NOW).state
            elif op == "deactivate":
                state = ops.deactivate(state, user=BOT, now=NOW).state
            elif op == "sales":
                email = draw(st.sampled_from([None, "a@x.example"]))
                state = ops.request_sales_contact(state, user=BOT, now=NOW, email=email).state
            elif op == "gateway":
                state = ops.record_gateway(
                    state, user=BOT, now=NOW, account_active=draw(st.booleans())
                ).state
            elif op == "keys":
                keys = fps(*draw(key_sets_st))
                state = ops.save_keys(
                    state,
                    user=BOT,
                    now=draw(st.sampled_from([NOW, LATER])),
                    public_mask=keys.public_mask,
                    private_mask=keys.private_mask,
                ).state
            else:
                state = ops.set_payment_types(
                    state,
                    user=BOT,
                    now=NOW,
                    environment=draw(st.sampled_from(["autotask", "clientPortal"])),
                    types=draw(types_st),
                ).state
        except RefusedByAutotask:  # a refused write leaves the state as it was
            pass
    record = None
    if state.keys_saved and draw(st.booleans()):
        keys = fps(*draw(key_sets_st))
        record = {
            "format": 1,
            "salt": keys.salt,
            "public_fingerprint": keys.public,
            "private_fingerprint": keys.private,
            "keys_saved_at": draw(st.sampled_from([NOW, LATER])),
        }
    return state, record


@settings(max_examples=300, deadline=None)
@given(m=manifests_st, start=starting_states())
def test_property_apply_then_plan_again_is_empty(
    m: Manifest, start: tuple[TenantState, dict[str, Any] | None]
) -> None:
    state, record = start
    tp = plan(m, state, record)
    if tp.refusal is not None:
        assert tp.steps == () and tp.after == state
        return
    after, new_record = apply_pure(tp, record)
    assert invariant_violations(after) == ()
    assert after.activation == tp.after.activation
    assert after.payment_types == tp.after.payment_types
    again = plan(m, after, new_record)
    assert again.refusal is None
    assert again.steps == (), [s.action for s in again.steps]
