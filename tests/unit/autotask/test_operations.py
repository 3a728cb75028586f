"""The writes the simulated Autotask allows, and every refusal SPEC section 6 lists, by fact."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from atpay_config.autotask import operations as ops
from atpay_config.autotask.operations import WriteResult
from atpay_config.autotask.tenant import TenantState, invariant_violations, key_mask
from atpay_config.errors import RefusedByAutotask
from atpay_config.manifest.model import PaymentTypes

NOW = "2025-06-01T12:00:00Z"
LATER = "2025-06-02T08:30:00Z"
BOT = "gitops-bot"
PUBLIC_MASK = key_mask("3f2a0a0a")
PRIVATE_MASK = key_mask("9b1c0b0b")


def tenant(**spec: Any) -> TenantState:
    doc = {
        "apiVersion": "atpay/v1",
        "kind": "SimulatedTenant",
        "metadata": {"tenant": "contoso"},
        "spec": {
            "country": "US",
            "internalCurrency": "USD",
            "securityLevels": [
                {"name": "Dispatcher", "admin": ["featuresAndSettings"]},
                {"name": "Billing Clerk", "admin": ["financeAccountingInvoicing"]},
            ],
            "users": [
                {"name": BOT, "securityLevel": "API User"},
                {"name": "dispatch", "securityLevel": "Dispatcher"},
                {"name": "clerk", "securityLevel": "Billing Clerk"},
                {"name": "admin", "securityLevel": "System Administrator"},
            ],
            **spec,
        },
    }
    return TenantState.from_fixture(doc)


def step(result: WriteResult) -> TenantState:
    assert result.changed and result.entry is not None
    return result.state


def active(**spec: Any) -> TenantState:
    return step(ops.activate(tenant(**spec), user=BOT, now=NOW))


def with_keys(**spec: Any) -> TenantState:
    state = step(ops.request_sales_contact(active(**spec), user=BOT, now=NOW, email="b@c.example"))
    state = step(ops.record_gateway(state, user=BOT, now=NOW, account_active=True))
    return step(
        ops.save_keys(state, user=BOT, now=NOW, public_mask=PUBLIC_MASK, private_mask=PRIVATE_MASK)
    )


def enabled() -> TenantState:
    return step(
        ops.set_payment_types(
            with_keys(), user=BOT, now=NOW, environment="autotask", types=["creditCard"]
        )
    )


def refused(fact: str, call: Callable[[], object]) -> RefusedByAutotask:
    with pytest.raises(RefusedByAutotask) as caught:
        call()
    assert caught.value.fact == fact
    assert str(caught.value).endswith(f"({fact})")
    return caught.value


# -- the happy path and its audit log ----------------------------------------


def test_documented_setup_order_enables_processing_and_audits_every_change() -> None:
    state = tenant()
    entries = []
    writes: tuple[Callable[[TenantState], WriteResult], ...] = (
        lambda s: ops.activate(s, user=BOT, now=NOW),
        lambda s: ops.request_sales_contact(s, user=BOT, now=NOW, email="billing@contoso.example"),
        lambda s: ops.record_gateway(s, user=BOT, now=NOW, account_active=True),
        lambda s: ops.save_keys(
            s, user=BOT, now=NOW, public_mask=PUBLIC_MASK, private_mask=PRIVATE_MASK
        ),
        lambda s: ops.set_payment_types(
            s, user=BOT, now=NOW, environment="autotask", types=["eCheck", "creditCard"]
        ),
        lambda s: ops.set_payment_types(
            s, user=BOT, now=NOW, environment="clientPortal", types=["creditCard"]
        ),
    )
    for write in writes:
        state, entry = write(state)
        assert entry is not None
        entries.append(entry)
    assert state.processing_enabled
    assert state.payment_types == PaymentTypes(("creditCard", "eCheck"), ("creditCard",))
    assert [e.action for e in entries] == [
        "activate",
        "request_sales_contact",
        "record_gateway",
        "save_keys",
        "set_payment_types",
        "set_payment_types",
    ]
    assert {(e.at, e.user) for e in entries} == {(NOW, BOT)}
    assert "billing@contoso.example" in entries[1].detail
    assert (
        "Payment Types available in Autotask: creditCard, eCheck (was: none)" in entries[4].detail
    )
    assert invariant_violations(state) == ()


def test_operations_return_new_states_and_leave_the_input_untouched() -> None:
    before = tenant()
    after, _ = ops.activate(before, user=BOT, now=NOW)
    assert before.activation == "inactive" and after.activation == "active"


def test_saved_keys_keep_only_masks_and_the_time_AT8() -> None:
    state = with_keys()
    assert state.public_key.mask == PUBLIC_MASK and state.public_key.saved_at == NOW
    assert state.private_key.mask == PRIVATE_MASK and state.private_key.saved_at == NOW
    _, entry = ops.save_keys(
        state, user=BOT, now=LATER, public_mask=PUBLIC_MASK, private_mask=PRIVATE_MASK
    )
    assert entry is not None
    assert entry.detail == (
        f"public key {PUBLIC_MASK} and private key {PRIVATE_MASK} replaced (masked, AT-8)"
    )


def test_save_keys_is_never_a_no_op_it_always_saves_again_AT9() -> None:
    state = with_keys()
    again, entry = ops.save_keys(
        state, user=BOT, now=LATER, public_mask=PUBLIC_MASK, private_mask=PRIVATE_MASK
    )
    assert entry is not None and again.public_key.saved_at == LATER


def test_a_key_passed_instead_of_a_mask_is_rejected_without_echoing_it_AT8() -> None:
    secret = "pk_live_51HcQ2example0123456789"
    state = step(
        ops.record_gateway(
            step(ops.request_sales_contact(active(), user=BOT, now=NOW)),
            user=BOT,
            now=NOW,
            account_active=True,
        )
    )
    with pytest.raises(ValueError) as caught:
        ops.save_keys(state, user=BOT, now=NOW, public_mask=secret, private_mask=PRIVATE_MASK)
    assert secret not in str(caught.value)


def test_clearing_every_payment_type_disables_processing_AT12() -> None:
    state, entry = ops.set_payment_types(
        enabled(), user=BOT, now=LATER, environment="autotask", types=[]
    )
    assert entry is not None and "payment processing is disabled (AT-12)" in entry.detail
    assert not state.processing_enabled and state.keys_saved


def test_switching_off_clears_types_then_deactivates_and_keeps_the_setup_AT16() -> None:
    state = step(
        ops.set_payment_types(enabled(), user=BOT, now=LATER, environment="autotask", types=[])
    )
    state = step(ops.deactivate(state, user=BOT, now=LATER))
    assert state.activation == "inactive"
    assert state.keys_saved and state.sales_contact_requested and state.gateway_account_active
    assert invariant_violations(state) == ()


def test_sales_contact_email_can_be_changed_after_the_request_AT5() -> None:
    state = step(ops.request_sales_contact(active(), user=BOT, now=NOW, email="a@b.example"))
    state, entry = ops.request_sales_contact(state, user=BOT, now=NOW, email="c@d.example")
    assert entry is not None and "requested again" in entry.detail
    assert state.sales_contact_email == "c@d.example"


# -- no-ops: same state back, no audit entry ----------------------------------

NO_OPS: dict[str, Callable[[], WriteResult]] = {
    "activate-active": lambda: ops.activate(active(), user=BOT, now=LATER),
    "deactivate-inactive": lambda: ops.deactivate(tenant(), user=BOT, now=LATER),
    "same-sales-contact": lambda: ops.request_sales_contact(
        step(ops.request_sales_contact(active(), user=BOT, now=NOW, email="x@y.example")),
        user=BOT,
        now=LATER,
        email="x@y.example",
    ),
    "same-gateway": lambda: ops.record_gateway(active(), user=BOT, now=LATER, account_active=False),
    "same-types-any-order": lambda: ops.set_payment_types(
        step(
            ops.set_payment_types(
                with_keys(),
                user=BOT,
                now=NOW,
                environment="clientPortal",
                types=["creditCard", "eCheck"],
            )
        ),
        user=BOT,
        now=LATER,
        environment="clientPortal",
        types=["eCheck", "creditCard", "eCheck"],
    ),
    "clear-nothing": lambda: ops.set_payment_types(
        active(), user=BOT, now=LATER, environment="autotask", types=[]
    ),
}


@pytest.mark.parametrize("name", NO_OPS)
def test_a_write_that_changes_nothing_returns_the_same_state_and_no_entry(name: str) -> None:
    result = NO_OPS[name]()
    assert result.entry is None and not result.changed


def test_no_op_returns_the_identical_state_object() -> None:
    state = active()
    assert ops.activate(state, user=BOT, now=LATER).state is state


# -- refusals, one per fact in SPEC section 6 --------------------------------

WRITES: dict[str, Callable[[TenantState, str], WriteResult]] = {
    "activate": lambda s, u: ops.activate(s, user=u, now=NOW),
    "deactivate": lambda s, u: ops.deactivate(s, user=u, now=NOW),
    "request_sales_contact": lambda s, u: ops.request_sales_contact(s, user=u, now=NOW),
    "record_gateway": lambda s, u: ops.record_gateway(s, user=u, now=NOW, account_active=True),
    "save_keys": lambda s, u: ops.save_keys(
        s, user=u, now=NOW, public_mask=PUBLIC_MASK, private_mask=PRIVATE_MASK
    ),
    "set_payment_types": lambda s, u: ops.set_payment_types(
        s, user=u, now=NOW, environment="autotask", types=["creditCard"]
    ),
}


@pytest.mark.parametrize("write", WRITES)
def test_a_user_whose_level_lacks_the_finance_admin_permission_is_refused_AT1(write: str) -> None:
    state = active() if write == "deactivate" else tenant()
    error = refused("AT-1", lambda: WRITES[write](state, "dispatch"))
    assert "'Dispatcher' lacks the Admin permission to configure Finance" in str(error)


@pytest.mark.parametrize("write", WRITES)
def test_an_unknown_user_is_refused_AT1(write: str) -> None:
    error = refused("AT-1", lambda: WRITES[write](tenant(), "mallory"))
    assert "no such user" in str(error) and BOT in str(error)


@pytest.mark.parametrize("user", [BOT, "clerk", "admin"])
def test_levels_with_the_finance_admin_permission_may_write_AT1(user: str) -> None:
    assert ops.activate(tenant(), user=user, now=NOW).changed
    assert ops.can_configure(tenant(), user)
    assert not ops.can_configure(tenant(), "dispatch")
    assert not ops.can_configure(tenant(), "nobody")


@pytest.mark.parametrize(
    "write", ["request_sales_contact", "record_gateway", "save_keys", "set_payment_types"]
)
def test_anything_but_activation_while_inactive_is_refused_AT3(write: str) -> None:
    error = refused("AT-3", lambda: WRITES[write](tenant(), BOT))
    assert "activate the feature first (Admin > Activations)" in str(error)


def test_permission_is_checked_before_activation_AT1_before_AT3() -> None:
    refused("AT-1", lambda: WRITES["save_keys"](tenant(), "dispatch"))


def test_keys_before_the_sales_contact_are_refused_AT5() -> None:
    state = step(ops.record_gateway(active(), user=BOT, now=NOW, account_active=True))
    error = refused("AT-5", lambda: WRITES["save_keys"](state, BOT))
    assert "GET ME A DEMO!" in str(error)


def test_keys_without_active_gateway_is_refused_AT6() -> None:
    state = step(ops.request_sales_contact(active(), user=BOT, now=NOW))
    error = refused("AT-6", lambda: WRITES["save_keys"](state, BOT))
    assert "BNG Gateway" in str(error)


@pytest.mark.parametrize("environment", ["autotask", "clientPortal"])
def test_payment_types_without_both_keys_are_refused_AT7_AT11(environment: str) -> None:
    state = step(ops.request_sales_contact(active(), user=BOT, now=NOW))
    error = refused(
        "AT-7",
        lambda: ops.set_payment_types(
            state,
            user=BOT,
            now=NOW,
            environment=environment,  # type: ignore[arg-type]
            types=["eCheck"],
        ),
    )
    assert "both the public and the private key" in str(error) and "AT-11" in str(error)


@pytest.mark.parametrize(("country", "currency"), [("CA", "CAD"), ("US", "CAD"), ("GB", "USD")])
def test_payment_types_outside_us_usd_are_refused_AT20(country: str, currency: str) -> None:
    state = with_keys(country=country, internalCurrency=currency)
    error = refused("AT-20", lambda: WRITES["set_payment_types"](state, BOT))
    assert f"{country}/{currency}" in str(error)


def test_payment_types_while_another_gateway_is_enabled_are_refused_AT21() -> None:
    state = with_keys(otherGateways=["quickbooks-payments"])
    error = refused("AT-21", lambda: WRITES["set_payment_types"](state, BOT))
    assert "quickbooks-payments" in str(error) and "processed twice" in str(error)


def test_clearing_payment_types_is_allowed_even_where_enabling_is_not_AT12() -> None:
    # A state the simulation would not produce (the tenant moved country): clearing still works.
    stuck = replace(enabled(), country="CA", other_gateways=("quickbooks-payments",))
    state, entry = ops.set_payment_types(stuck, user=BOT, now=NOW, environment="autotask", types=[])
    assert entry is not None and not state.payment_types.any_enabled


def test_deactivation_while_payment_types_are_enabled_is_refused_AT16() -> None:
    error = refused("AT-16", lambda: WRITES["deactivate"](enabled(), BOT))
    assert "clear every payment type" in str(error) and "autotask: creditCard" in str(error)


def test_unknown_payment_type_or_environment_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        ops.set_payment_types(
            with_keys(),
            user=BOT,
            now=NOW,
            environment="autotask",
            types=["bitcoin"],  # type: ignore[list-item]
        )
    with pytest.raises(ValueError):
        ops.set_payment_types(
            with_keys(),
            user=BOT,
            now=NOW,
            environment="portal",  # type: ignore[arg-type]
            types=[],
        )


def test_a_refused_write_changes_nothing() -> None:
    state = with_keys(otherGateways=["quickbooks-payments"])
    snapshot = state.to_dict()
    refused("AT-21", lambda: WRITES["set_payment_types"](state, BOT))
    assert state.to_dict() == snapshot
