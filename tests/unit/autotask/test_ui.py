"""The UI-visibility model, row by row of SPEC section 8, for every audience kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.spec_ids import (
    BUTTON,
    CP_CC,
    CP_EC,
    FIELDS,
    FORM,
    LINK,
    OPTION,
    PAY,
    PP_CC,
    PP_EC,
    SEARCH,
    SPEC_SECTION_8_IDS,
)

from atpay_config.autotask import operations as ops
from atpay_config.autotask.operations import WriteResult
from atpay_config.autotask.tenant import TenantState, invariant_violations, key_mask
from atpay_config.autotask.ui import (
    ELEMENTS,
    ELEMENTS_BY_ID,
    Audience,
    audiences,
    visible_elements,
    visible_ids,
)
from atpay_config.errors import AtpayError, RefusedByAutotask
from atpay_config.manifest.model import Environment, PaymentType

NOW = "2025-06-01T12:00:00Z"
BOT = "gitops-bot"


FIXTURE: dict[str, Any] = {
    "apiVersion": "atpay/v1",
    "kind": "SimulatedTenant",
    "metadata": {"tenant": "contoso"},
    "spec": {
        "country": "US",
        "internalCurrency": "USD",
        "securityLevels": [
            # staff levels with and without AT-1 (Admin: Finance) and AT-18 (Contracts: payments)
            {
                "name": "Billing Clerk",
                "admin": ["financeAccountingInvoicing"],
                "contracts": ["invoiceHistoryAndPayments"],
            },
            {"name": "Finance Clerk", "admin": ["financeAccountingInvoicing"]},
            {"name": "Accountant", "contracts": ["invoiceHistoryAndPayments"]},
            {"name": "Dispatcher", "admin": ["featuresAndSettings"]},
        ],
        "portalSecurityLevels": [
            {"name": "Client Accountant", "invoices": True},
            {"name": "Client Viewer", "invoices": False},
        ],
        "users": [{"name": BOT, "securityLevel": "API User"}],
    },
}


def fresh(**spec: Any) -> TenantState:
    return TenantState.from_fixture({**FIXTURE, "spec": {**FIXTURE["spec"], **spec}})


def run(state: TenantState, *writes: Callable[[TenantState], WriteResult]) -> TenantState:
    for write in writes:
        state, entry = write(state)
        assert entry is not None
    return state


def activate(s: TenantState) -> WriteResult:
    return ops.activate(s, user=BOT, now=NOW)


def contact(s: TenantState) -> WriteResult:
    return ops.request_sales_contact(s, user=BOT, now=NOW, email="b@contoso.example")


def gateway(s: TenantState) -> WriteResult:
    return ops.record_gateway(s, user=BOT, now=NOW, account_active=True)


def keys(s: TenantState) -> WriteResult:
    return ops.save_keys(
        s, user=BOT, now=NOW, public_mask=key_mask("aaaa"), private_mask=key_mask("bbbb")
    )


def types(environment: Environment, *chosen: PaymentType) -> Callable[[TenantState], WriteResult]:
    return lambda s: ops.set_payment_types(
        s, user=BOT, now=NOW, environment=environment, types=chosen
    )


def deactivate(s: TenantState) -> WriteResult:
    return ops.deactivate(s, user=BOT, now=NOW)


SETUP = (activate, contact, gateway, keys)
STATES: dict[str, Callable[[], TenantState]] = {
    "inactive": lambda: fresh(),
    "active": lambda: run(fresh(), activate),
    "contact-requested": lambda: run(fresh(), activate, contact),
    "keys-saved": lambda: run(fresh(), *SETUP),
    "autotask-cc": lambda: run(fresh(), *SETUP, types("autotask", "creditCard")),
    "everything": lambda: run(
        fresh(),
        *SETUP,
        types("autotask", "creditCard", "eCheck"),
        types("clientPortal", "creditCard", "eCheck"),
    ),
    "portal-only-echeck": lambda: run(fresh(), *SETUP, types("clientPortal", "eCheck")),
    "autotask-echeck-portal-cc": lambda: run(
        fresh(), *SETUP, types("autotask", "eCheck"), types("clientPortal", "creditCard")
    ),
    "deactivated": lambda: run(
        fresh(),
        *SETUP,
        types("autotask", "creditCard"),
        types("clientPortal", "eCheck"),
        types("autotask"),
        types("clientPortal"),
        deactivate,
    ),
    "non-us-keys-saved": lambda: run(fresh(country="CA", internalCurrency="CAD"), *SETUP),
    "other-gateway-keys-saved": lambda: run(fresh(otherGateways=["quickbooks-payments"]), *SETUP),
}


def staff(level: str) -> Audience:
    return Audience("staff", level)


def portal(level: str) -> Audience:
    return Audience("portal", level)


# Staff: AT-1 and AT-18 (Billing Clerk, System Administrator, Full Access, Manager); AT-1 only
# (Finance Clerk, API User); AT-18 only (Accountant); neither (Dispatcher).
# Portal: invoices (Manager, Client Accountant); no invoices (User, Client Viewer).
ADMIN_AND_PAYMENTS = ["System Administrator", "Full Access", "Manager", "Billing Clerk"]
ADMIN_ONLY = ["API User", "Finance Clerk"]
INVOICES = ["Manager", "Client Accountant"]
NO_INVOICES = ["User", "Client Viewer"]

ROWS: list[tuple[str, list[Audience], list[str]]] = [
    # Inactive: nothing at all (AT-3).
    ("inactive", [staff(x) for x in ADMIN_AND_PAYMENTS + ADMIN_ONLY], []),
    ("inactive", [portal(x) for x in INVOICES], []),
    # admin.payment_processing_link + sales_contact_form: active and AT-1 (AT-4, AT-5, AT-17).
    ("active", [staff(x) for x in ADMIN_AND_PAYMENTS + ADMIN_ONLY], [LINK, FORM]),
    ("active", [staff("Accountant"), staff("Dispatcher")], []),
    ("active", [portal(x) for x in INVOICES + NO_INVOICES], []),
    # integration_fields once the sales contact is requested (AT-5).
    ("contact-requested", [staff(x) for x in ADMIN_AND_PAYMENTS + ADMIN_ONLY], [LINK, FIELDS]),
    ("contact-requested", [staff("Dispatcher"), staff("Accountant")], []),
    ("keys-saved", [staff("Billing Clerk"), staff("API User")], [LINK, FIELDS]),
    ("keys-saved", [portal(x) for x in INVOICES], []),
    # Processing enabled (AT-11, AT-13); Payment Search needs AT-18; staff types are Autotask's.
    (
        "autotask-cc",
        [staff(x) for x in ADMIN_AND_PAYMENTS],
        [LINK, FIELDS, SEARCH, BUTTON, OPTION, PP_CC],
    ),
    ("autotask-cc", [staff(x) for x in ADMIN_ONLY], [LINK, FIELDS, BUTTON, OPTION, PP_CC]),
    ("autotask-cc", [staff("Accountant")], [SEARCH, BUTTON, OPTION, PP_CC]),
    ("autotask-cc", [staff("Dispatcher")], [BUTTON, OPTION, PP_CC]),
    # No Client Portal type: no Make a Payment, whatever the portal level (AT-14).
    ("autotask-cc", [portal(x) for x in INVOICES + NO_INVOICES], []),
    (
        "everything",
        [staff("Billing Clerk")],
        [LINK, FIELDS, SEARCH, BUTTON, OPTION, PP_CC, PP_EC],
    ),
    ("everything", [staff("Dispatcher")], [BUTTON, OPTION, PP_CC, PP_EC]),
    ("everything", [portal(x) for x in INVOICES], [PAY, CP_CC, CP_EC]),
    ("everything", [portal(x) for x in NO_INVOICES], []),  # AT-19
    # AT-15 (inferred): only Client Portal types: staff still see Process Payment, no type.
    ("portal-only-echeck", [staff("Billing Clerk")], [LINK, FIELDS, SEARCH, BUTTON, OPTION]),
    ("portal-only-echeck", [staff("Dispatcher")], [BUTTON, OPTION]),
    ("portal-only-echeck", [portal(x) for x in INVOICES], [PAY, CP_EC]),
    ("portal-only-echeck", [portal(x) for x in NO_INVOICES], []),
    ("autotask-echeck-portal-cc", [staff("API User")], [LINK, FIELDS, BUTTON, OPTION, PP_EC]),
    ("autotask-echeck-portal-cc", [portal("Client Accountant")], [PAY, CP_CC]),
    # Deactivation (after clearing every type, AT-16) hides everything again.
    ("deactivated", [staff(x) for x in ADMIN_AND_PAYMENTS + ADMIN_ONLY], []),
    ("deactivated", [staff("Accountant"), staff("Dispatcher")], []),
    ("deactivated", [portal(x) for x in INVOICES + NO_INVOICES], []),
    # The page is still reachable where enabling would be refused (AT-20, AT-21).
    ("non-us-keys-saved", [staff("Billing Clerk")], [LINK, FIELDS]),
    ("other-gateway-keys-saved", [staff("Billing Clerk")], [LINK, FIELDS]),
]

CASES = [
    pytest.param(state, audience, expected, id=f"{state}-{audience.kind}-{audience.level}")
    for state, group, expected in ROWS
    for audience in group
]


@pytest.mark.parametrize(("state_name", "audience", "expected"), CASES)
def test_visible_elements_follow_spec_section_8(
    state_name: str, audience: Audience, expected: list[str]
) -> None:
    assert visible_ids(STATES[state_name](), audience) == expected


def test_the_table_covers_every_element_shown_and_hidden_for_both_audience_kinds() -> None:
    for kind in ("staff", "portal"):
        ids = [e.id for e in ELEMENTS if e.kind == kind]
        rows = [(expected, a) for _, group, expected in ROWS for a in group if a.kind == kind]
        for element in ids:
            assert any(element in expected for expected, _ in rows), f"{element} never shown"
        assert any(expected == [] for expected, _ in rows)
    all_shown = {e for _, _, expected in ROWS for e in expected}
    assert all_shown == set(SPEC_SECTION_8_IDS)
    assert {name for name, _, _ in ROWS} == set(STATES)


def spec_section_8(state: TenantState, audience: Audience) -> list[str]:
    """SPEC section 8 transcribed column by column, as an oracle for every state and audience."""
    shown: list[str] = []
    if audience.kind == "staff":
        level = state.security_level(audience.level)
        assert level is not None
        link = state.activation == "active" and "financeAccountingInvoicing" in level.admin
        enabled = state.processing_enabled
        conditions = {
            LINK: link,
            FORM: link and not state.sales_contact_requested,
            FIELDS: link and state.sales_contact_requested,
            SEARCH: enabled and "invoiceHistoryAndPayments" in level.contracts,
            BUTTON: enabled,
            OPTION: enabled,
            PP_CC: enabled and "creditCard" in state.payment_types.autotask,
            PP_EC: enabled and "eCheck" in state.payment_types.autotask,
        }
    else:
        portal_level = state.portal_security_level(audience.level)
        assert portal_level is not None
        cp = state.payment_types.client_portal
        pay = state.processing_enabled and bool(cp) and portal_level.invoices
        conditions = {PAY: pay, CP_CC: pay and "creditCard" in cp, CP_EC: pay and "eCheck" in cp}
    for element in SPEC_SECTION_8_IDS:
        if conditions.get(element, False):
            shown.append(element)
    return shown


@pytest.mark.parametrize("state_name", STATES)
def test_every_audience_matches_the_spec_table(state_name: str) -> None:
    state = STATES[state_name]()
    for audience in audiences(state):
        assert visible_ids(state, audience) == spec_section_8(state, audience), audience


def test_element_ids_and_order_are_exactly_spec_section_8() -> None:
    assert [e.id for e in ELEMENTS] == SPEC_SECTION_8_IDS
    assert list(ELEMENTS_BY_ID) == SPEC_SECTION_8_IDS


@pytest.mark.parametrize(
    ("element", "facts", "location"),
    [
        (LINK, ("AT-2", "AT-4", "AT-17"), "Finance, Accounting & Invoicing"),
        (FORM, ("AT-5",), "Payment Processing"),
        (FIELDS, ("AT-5", "AT-7", "AT-10"), "Payment Processing"),
        (SEARCH, ("AT-13", "AT-18"), "Payment Search"),
        (BUTTON, ("AT-11", "AT-13"), "Invoice page"),
        (OPTION, ("AT-11", "AT-13"), "Invoice History context menu"),
        (PP_CC, ("AT-10",), "Process Payment"),
        (PP_EC, ("AT-10",), "Process Payment"),
        (PAY, ("AT-14", "AT-19"), "Client Portal > Invoice"),
        (CP_CC, ("AT-10", "AT-14"), "Client Portal > Invoice"),
        (CP_EC, ("AT-10", "AT-14"), "Client Portal > Invoice"),
    ],
)
def test_each_element_carries_its_facts_and_place(
    element: str, facts: tuple[str, ...], location: str
) -> None:
    found = ELEMENTS_BY_ID[element]
    assert found.facts == facts
    assert location in found.location and found.label


def test_audiences_are_every_staff_level_then_every_portal_level() -> None:
    assert audiences(fresh()) == [
        staff("System Administrator"),
        staff("Full Access"),
        staff("Manager"),
        staff("API User"),
        staff("Billing Clerk"),
        staff("Finance Clerk"),
        staff("Accountant"),
        staff("Dispatcher"),
        portal("Manager"),
        portal("User"),
        portal("Client Accountant"),
        portal("Client Viewer"),
    ]


def test_staff_never_see_portal_elements_and_portal_never_staff_elements() -> None:
    state = STATES["everything"]()
    for audience in audiences(state):
        assert {v.element.kind for v in visible_elements(state, audience)} <= {audience.kind}


@pytest.mark.parametrize("audience", [staff("Nobody"), portal("System Administrator")])
def test_an_unknown_level_is_an_error_naming_the_known_ones(audience: Audience) -> None:
    with pytest.raises(AtpayError, match="choose one of"):
        visible_elements(fresh(), audience)


# -- warnings beside the element they concern -----------------------------------------


def warnings_by_id(state: TenantState, audience: Audience) -> dict[str, list[str]]:
    return {v.id: [w.fact for w in v.warnings] for v in visible_elements(state, audience)}


def test_portal_only_types_warn_on_the_staff_process_payment_elements_AT15() -> None:
    state = STATES["portal-only-echeck"]()
    assert warnings_by_id(state, staff("Billing Clerk")) == {
        LINK: [],
        FIELDS: [],
        SEARCH: [],
        BUTTON: ["AT-15"],
        OPTION: ["AT-15"],
    }
    assert warnings_by_id(state, portal("Manager")) == {PAY: [], CP_EC: []}
    button = visible_elements(state, staff("Dispatcher"))[0]
    assert "no payment type is enabled for Autotask" in button.warnings[0].message


def test_no_AT15_warning_when_an_autotask_type_is_enabled() -> None:
    state = STATES["autotask-echeck-portal-cc"]()
    for audience in audiences(state):
        for visible in visible_elements(state, audience):
            assert visible.warnings == ()


def test_outside_us_usd_the_payment_processing_link_warns_AT20() -> None:
    state = STATES["non-us-keys-saved"]()
    found = visible_elements(state, staff("Billing Clerk"))
    assert [w.fact for w in found[0].warnings] == ["AT-20"]
    assert "CA/CAD" in found[0].warnings[0].message
    assert found[1].warnings == ()


def test_another_gateway_warns_on_the_link_AT21() -> None:
    state = STATES["other-gateway-keys-saved"]()
    found = warnings_by_id(state, staff("API User"))
    assert found == {LINK: ["AT-21"], FIELDS: []}


def test_warnings_reach_the_payment_elements_of_a_hand_changed_tenant_AT20_AT21() -> None:
    # The simulation refuses to enable types here; a tenant changed by hand can still get there.
    state = replace(STATES["everything"](), country="CA", other_gateways=("quickbooks-payments",))
    assert warnings_by_id(state, staff("Dispatcher"))[BUTTON] == ["AT-20", "AT-21"]
    assert warnings_by_id(state, staff("Dispatcher"))[OPTION] == ["AT-20", "AT-21"]
    assert warnings_by_id(state, portal("Manager")) == {
        PAY: ["AT-20", "AT-21"],
        CP_CC: [],
        CP_EC: [],
    }


def test_reactivation_shows_the_kept_setup_again() -> None:
    state = run(STATES["deactivated"](), activate)
    assert visible_ids(state, staff("Billing Clerk")) == [LINK, FIELDS]


# -- property: whatever an admin does, the simulation stays consistent -------------------

USERS = [BOT, BOT, "clerk", "viewer", "stranger"]
PROPERTY_FIXTURE_USERS = [
    {"name": BOT, "securityLevel": "API User"},
    {"name": "clerk", "securityLevel": "Billing Clerk"},
    {"name": "viewer", "securityLevel": "Accountant"},
]
FACTS_SECTION_6 = {"AT-1", "AT-3", "AT-5", "AT-6", "AT-7", "AT-16", "AT-20", "AT-21"}

type_sets = st.lists(st.sampled_from(["creditCard", "eCheck"]), max_size=3)
writes = st.one_of(
    st.tuples(st.just("activate")),
    st.tuples(st.just("deactivate")),
    st.tuples(st.just("request_sales_contact"), st.sampled_from([None, "a@b.example"])),
    st.tuples(st.just("record_gateway"), st.booleans()),
    st.tuples(st.just("save_keys"), st.from_regex(r"[0-9a-f]{8}", fullmatch=True)),
    st.tuples(
        st.just("set_payment_types"), st.sampled_from(["autotask", "clientPortal"]), type_sets
    ),
)

HAPPY_PATH: list[tuple[Any, ...]] = [
    ("activate",),
    ("request_sales_contact", "a@b.example"),
    ("record_gateway", True),
    ("save_keys", "0123abcd"),
    ("set_payment_types", "autotask", ["creditCard"]),
    ("set_payment_types", "clientPortal", ["eCheck"]),
]


def perform(state: TenantState, write: tuple[Any, ...], user: str, now: str) -> WriteResult:
    name = write[0]
    if name == "activate":
        return ops.activate(state, user=user, now=now)
    if name == "deactivate":
        return ops.deactivate(state, user=user, now=now)
    if name == "request_sales_contact":
        return ops.request_sales_contact(state, user=user, now=now, email=write[1])
    if name == "record_gateway":
        return ops.record_gateway(state, user=user, now=now, account_active=write[1])
    if name == "save_keys":
        fingerprint = write[1]
        return ops.save_keys(
            state,
            user=user,
            now=now,
            public_mask=key_mask(fingerprint),
            private_mask=key_mask(fingerprint[::-1]),
        )
    return ops.set_payment_types(state, user=user, now=now, environment=write[1], types=write[2])


@settings(max_examples=300, deadline=None)
@given(
    country=st.sampled_from([("US", "USD"), ("US", "USD"), ("CA", "CAD"), ("US", "CAD")]),
    other_gateways=st.sampled_from([[], [], ["quickbooks-payments"]]),
    head=st.integers(min_value=0, max_value=len(HAPPY_PATH)),
    steps=st.lists(st.tuples(writes, st.sampled_from(USERS)), max_size=20),
)
def test_every_reachable_state_satisfies_the_simulation_invariants(
    country: tuple[str, str],
    other_gateways: list[str],
    head: int,
    steps: list[tuple[Any, str]],
) -> None:
    state = fresh(
        country=country[0],
        internalCurrency=country[1],
        otherGateways=other_gateways,
        users=PROPERTY_FIXTURE_USERS,
    )
    # Random writes alone rarely get far along the setup order; start some runs part-way.
    steps = [(write, BOT) for write in HAPPY_PATH[:head]] + steps
    for n, (write, user) in enumerate(steps):
        now = f"2025-01-01T00:00:{n:02d}Z"
        try:
            after, entry = perform(state, write, user, now)
        except RefusedByAutotask as refusal:
            assert refusal.fact in FACTS_SECTION_6
            continue
        if entry is None:
            assert after is state  # a no-op returns the state untouched
        else:
            assert (entry.at, entry.user, entry.action) == (now, user, write[0])
            assert ops.can_configure(state, user)  # AT-1 on every change
        state = after
        assert invariant_violations(state) == ()
        assert TenantState.from_dict(state.to_dict()) == state
        for audience in audiences(state):
            shown = visible_ids(state, audience)
            assert shown == spec_section_8(state, audience)
            if not state.active:
                assert shown == []  # AT-3: inactive hides everything
            if not state.us_usd or state.other_gateways:
                # AT-20/AT-21: enabling is refused, so nothing that takes a payment shows.
                assert not {BUTTON, OPTION, PAY} & set(shown)
