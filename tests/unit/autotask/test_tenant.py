"""The simulated tenant's state model (SPEC section 6): fixtures, built-in levels, round-trip."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from atpay_config.autotask.tenant import (
    ADMIN_PERMISSIONS,
    API_USER,
    BUILTIN_PORTAL_SECURITY_LEVELS,
    BUILTIN_SECURITY_LEVELS,
    CONTRACTS_PERMISSIONS,
    FULL_ACCESS,
    MANAGER,
    SCHEMA_VERSION,
    SYSTEM_ADMINISTRATOR,
    KeySlot,
    PortalSecurityLevel,
    SecurityLevel,
    TenantState,
    User,
    invariant_violations,
    key_mask,
)
from atpay_config.errors import AtpayError, StateError
from atpay_config.manifest.model import PaymentTypes

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "schemas" / "simulated-tenant.schema.json"

SPEC_FIXTURE: dict[str, Any] = {
    "apiVersion": "atpay/v1",
    "kind": "SimulatedTenant",
    "metadata": {"tenant": "contoso"},
    "spec": {
        "country": "US",
        "internalCurrency": "USD",
        "otherGateways": [],
        "securityLevels": [
            {
                "name": "Billing Clerk",
                "admin": ["financeAccountingInvoicing"],
                "contracts": ["invoiceHistoryAndPayments"],
            }
        ],
        "portalSecurityLevels": [{"name": "Client Accountant", "invoices": True}],
        "users": [{"name": "gitops-bot", "securityLevel": "API User"}],
    },
}


def fixture(**spec: Any) -> dict[str, Any]:
    return {**SPEC_FIXTURE, "spec": {**SPEC_FIXTURE["spec"], **spec}}


def configured() -> TenantState:
    """A fully set-up state, built by hand (operations are tested elsewhere)."""
    state = TenantState.from_fixture(SPEC_FIXTURE)
    return replace(
        state,
        activation="active",
        sales_contact_requested=True,
        sales_contact_email="billing@contoso.example",
        gateway_account_active=True,
        public_key=KeySlot.saved_now(mask=key_mask("3f2a99"), now="2025-01-02T03:04:05Z"),
        private_key=KeySlot.saved_now(mask=key_mask("9b1c00"), now="2025-01-02T03:04:05Z"),
        payment_types=PaymentTypes(autotask=("creditCard", "eCheck"), client_portal=("eCheck",)),
    )


def test_fresh_tenant_is_inactive_with_nothing_saved_AT3() -> None:
    state = TenantState.from_fixture(SPEC_FIXTURE)
    assert state.tenant == "contoso"
    assert state.activation == "inactive"
    assert not state.sales_contact_requested and state.sales_contact_email is None
    assert not state.gateway_account_active
    assert state.public_key == KeySlot() and state.private_key == KeySlot()
    assert not state.payment_types.any_enabled
    assert not state.processing_enabled
    assert invariant_violations(state) == ()


def test_fixture_levels_follow_the_builtin_levels_AT17_AT19() -> None:
    state = TenantState.from_fixture(SPEC_FIXTURE)
    assert [lvl.name for lvl in state.security_levels] == [
        "System Administrator",
        "Full Access",
        "Manager",
        "API User",
        "Billing Clerk",
    ]
    assert [lvl.name for lvl in state.portal_security_levels] == [
        "Manager",
        "User",
        "Client Accountant",
    ]
    clerk = state.security_level("Billing Clerk")
    assert clerk is not None and not clerk.system
    assert clerk.can_configure_payment_processing and clerk.can_access_payments
    assert state.users == (User("gitops-bot", "API User"),)


@pytest.mark.parametrize(
    ("level", "configure_AT1", "payments_AT18"),
    [
        (SYSTEM_ADMINISTRATOR, True, True),
        (FULL_ACCESS, True, True),
        (MANAGER, True, True),  # Admin financial features (stated); Contracts inferred
        (API_USER, True, False),  # our assumption, so GitOps can configure
    ],
)
def test_builtin_staff_levels_AT17(level: str, configure_AT1: bool, payments_AT18: bool) -> None:
    found = TenantState.fresh("t").security_level(level)
    assert found is not None and found.system
    assert found.can_configure_payment_processing is configure_AT1
    assert found.can_access_payments is payments_AT18


def test_full_admin_levels_have_every_admin_permission_and_manager_only_finance_AT17() -> None:
    state = TenantState.fresh("t")
    for name in (SYSTEM_ADMINISTRATOR, FULL_ACCESS):
        level = state.security_level(name)
        assert level is not None and level.admin == frozenset(ADMIN_PERMISSIONS)
    manager = state.security_level(MANAGER)
    assert manager is not None and manager.admin == frozenset({"financeAccountingInvoicing"})


def test_builtin_portal_manager_views_invoices_and_user_does_not_AT19() -> None:
    state = TenantState.fresh("t")
    assert state.portal_security_level("Manager") == PortalSecurityLevel("Manager", True, True)
    assert state.portal_security_level("User") == PortalSecurityLevel("User", False, True)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"securityLevels": [{"name": "Manager", "admin": []}]}, "'Manager' is declared twice"),
        ({"portalSecurityLevels": [{"name": "User", "invoices": True}]}, "'User' is declared"),
        (
            {"users": [{"name": "a", "securityLevel": "API User"}] * 2},
            "user 'a' is declared twice",
        ),
        (
            {"users": [{"name": "a", "securityLevel": "Nope"}]},
            "unknown security level 'Nope'",
        ),
    ],
)
def test_fixture_semantic_errors_are_refused(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(AtpayError, match=message):
        TenantState.from_fixture(fixture(**spec))


def test_fixture_of_another_kind_is_refused() -> None:
    with pytest.raises(AtpayError, match="SimulatedTenant"):
        TenantState.from_fixture({**SPEC_FIXTURE, "kind": "PaymentProcessing"})


def test_fixture_defaults_to_us_usd_without_other_gateways() -> None:
    state = TenantState.from_fixture(
        {
            "apiVersion": "atpay/v1",
            "kind": "SimulatedTenant",
            "metadata": {"tenant": "x"},
            "spec": {},
        }
    )
    assert (state.country, state.internal_currency, state.other_gateways) == ("US", "USD", ())
    assert state.us_usd and state.users == ()


def test_default_acting_user_is_the_first_api_user() -> None:
    state = TenantState.from_fixture(
        fixture(
            users=[
                {"name": "alice", "securityLevel": "Manager"},
                {"name": "bot-1", "securityLevel": "API User"},
                {"name": "bot-2", "securityLevel": "API User"},
            ]
        )
    )
    assert state.default_user() == "bot-1"
    assert TenantState.fresh("t").default_user() is None


@pytest.mark.parametrize(
    "state", [TenantState.fresh("t"), configured()], ids=["fresh", "configured"]
)
def test_to_dict_round_trips_exactly_through_json(state: TenantState) -> None:
    doc = state.to_dict()
    text = json.dumps(doc)
    again = TenantState.from_dict(json.loads(text))
    assert again == state
    assert json.dumps(again.to_dict()) == text


def test_to_dict_has_a_stable_key_order_led_by_schema_version() -> None:
    doc = configured().to_dict()
    assert list(doc) == [
        "schema_version",
        "tenant",
        "country",
        "internal_currency",
        "other_gateways",
        "activation",
        "sales_contact_requested",
        "sales_contact_email",
        "gateway_account_active",
        "public_key",
        "private_key",
        "payment_types",
        "security_levels",
        "portal_security_levels",
        "users",
    ]
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["public_key"] == {
        "saved": True,
        "saved_at": "2025-01-02T03:04:05Z",
        "mask": "••••••••3f2a",
    }


def test_state_from_another_schema_version_is_a_state_error() -> None:
    doc = configured().to_dict()
    doc["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(StateError, match="schema_version"):
        TenantState.from_dict(doc)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.pop("users"),
        lambda d: d.update(activation="maybe"),
        lambda d: d["payment_types"].update(autotask=["bitcoin"]),
        lambda d: d["public_key"].update(mask="sk_live_123456"),
    ],
    ids=["missing-field", "bad-activation", "bad-type", "non-mask"],
)
def test_corrupt_state_is_a_state_error(damage: Any) -> None:
    doc = configured().to_dict()
    damage(doc)
    with pytest.raises(StateError, match="corrupt"):
        TenantState.from_dict(doc)


def test_key_mask_shows_only_a_short_fingerprint_AT8() -> None:
    assert key_mask("3F2A9c0d11") == "••••••••3f2a"
    with pytest.raises(ValueError):
        key_mask("xyz1")
    with pytest.raises(ValueError):
        key_mask("3f2")


def test_key_slot_never_holds_anything_but_a_mask_AT8() -> None:
    with pytest.raises(ValueError, match="mask"):
        KeySlot(saved=True, saved_at="now", mask="pk_live_0123456789abcdef")
    with pytest.raises(ValueError):
        KeySlot(saved=True, saved_at=None, mask="••••••••3f2a")
    with pytest.raises(ValueError):
        KeySlot(saved=False, saved_at=None, mask="••••••••3f2a")


@pytest.mark.parametrize(
    ("activation", "keys", "types", "enabled"),
    [
        ("active", 2, PaymentTypes(autotask=("creditCard",)), True),
        ("active", 2, PaymentTypes(client_portal=("eCheck",)), True),
        ("inactive", 2, PaymentTypes(autotask=("creditCard",)), False),
        ("active", 1, PaymentTypes(autotask=("creditCard",)), False),
        ("active", 0, PaymentTypes(autotask=("creditCard",)), False),
        ("active", 2, PaymentTypes(), False),
    ],
)
def test_processing_enabled_needs_activation_both_keys_and_a_type_AT7_AT11(
    activation: str, keys: int, types: PaymentTypes, enabled: bool
) -> None:
    saved = KeySlot.saved_now(mask=key_mask("abcd"), now="t")
    state = replace(
        TenantState.fresh("t"),
        activation="active" if activation == "active" else "inactive",
        public_key=saved if keys >= 1 else KeySlot(),
        private_key=saved if keys >= 2 else KeySlot(),
        payment_types=types,
    )
    assert state.processing_enabled is enabled


def test_invariant_violations_name_the_broken_facts() -> None:
    bad = replace(
        TenantState.fresh("t", country="CA", internal_currency="CAD", other_gateways=["qb"]),
        public_key=KeySlot.saved_now(mask=key_mask("abcd"), now="t"),
        payment_types=PaymentTypes(autotask=("eCheck", "creditCard")),
        security_levels=(SecurityLevel("Custom"),),
    )
    found = " | ".join(invariant_violations(bad))
    for fact in ("AT-3", "AT-7", "AT-20", "AT-21", "AT-10", "AT-5", "AT-17"):
        assert fact in found
    assert invariant_violations(configured()) == ()


# -- the JSON Schema for fixtures --------------------------------------------


def schema_validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_spec_fixture_is_valid_against_the_schema() -> None:
    assert list(schema_validator().iter_errors(SPEC_FIXTURE)) == []


@pytest.mark.parametrize(
    "doc",
    [
        {**SPEC_FIXTURE, "apiVersion": "atpay/v2"},
        {**SPEC_FIXTURE, "metadata": {"tenant": "Contoso"}},
        {**SPEC_FIXTURE, "metadata": {"tenant": "contoso", "labels": {}}},
        fixture(countryCode="US"),
        fixture(country="usa"),
        fixture(internalCurrency="usd"),
        fixture(securityLevels=[{"name": "Manager"}]),
        fixture(securityLevels=[{"name": "X", "admin": ["everything"]}]),
        fixture(securityLevels=[{"name": "X", "contracts": ["invoices"]}]),
        fixture(portalSecurityLevels=[{"name": "Manager", "invoices": True}]),
        fixture(portalSecurityLevels=[{"name": "X", "invoices": "yes"}]),
        fixture(users=[{"name": "bot"}]),
        fixture(users=[{"name": "bot", "securityLevel": "API User", "email": "x"}]),
        fixture(otherGateways=["QuickBooks"]),
    ],
)
def test_invalid_fixtures_fail_the_schema(doc: dict[str, Any]) -> None:
    assert list(schema_validator().iter_errors(doc)) != []


def test_schema_enums_match_the_model() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    level = schema["$defs"]["securityLevel"]["properties"]
    assert tuple(level["admin"]["items"]["enum"]) == ADMIN_PERMISSIONS
    assert tuple(level["contracts"]["items"]["enum"]) == CONTRACTS_PERMISSIONS
    assert level["name"]["allOf"][1]["not"]["enum"] == [x.name for x in BUILTIN_SECURITY_LEVELS]
    portal = schema["$defs"]["portalSecurityLevel"]["properties"]
    assert portal["name"]["allOf"][1]["not"]["enum"] == [
        x.name for x in BUILTIN_PORTAL_SECURITY_LEVELS
    ]
