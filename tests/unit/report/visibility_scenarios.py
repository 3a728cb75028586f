"""Before/after tenant states for the visibility report's tests, built with the real writes.

Each scenario is one `(tenant, labels, before, after)` item, reached through
`autotask.operations` from a fresh tenant, so no test relies on a state the
simulation would refuse.
"""

from __future__ import annotations

from typing import Any

from atpay_config.autotask import operations as ops
from atpay_config.autotask.tenant import TenantState, key_mask
from atpay_config.manifest.model import PaymentType
from atpay_config.report.visibility import ReportItem

NOW = "2025-06-01T12:00:00Z"
BOT = "gitops-bot"
HOSTILE = "<script>alert(1)</script>"


def fixture(tenant: str, **spec: Any) -> TenantState:
    """A fresh tenant with the contoso example's custom levels (AT-1, AT-18, AT-19)."""
    doc = {
        "apiVersion": "atpay/v1",
        "kind": "SimulatedTenant",
        "metadata": {"tenant": tenant},
        "spec": {
            "country": "US",
            "internalCurrency": "USD",
            "securityLevels": [
                {
                    "name": "Billing Clerk",
                    "admin": ["financeAccountingInvoicing"],
                    "contracts": ["invoiceHistoryAndPayments"],
                },
                {"name": "Dispatcher", "admin": ["featuresAndSettings"]},
            ],
            "portalSecurityLevels": [{"name": "Client Accountant", "invoices": True}],
            "users": [{"name": BOT, "securityLevel": "API User"}],
            **spec,
        },
    }
    return TenantState.from_fixture(doc)


def activated(state: TenantState) -> TenantState:
    return ops.activate(state, user=BOT, now=NOW).state


def demo_requested(state: TenantState) -> TenantState:
    state = activated(state)
    return ops.request_sales_contact(state, user=BOT, now=NOW, email="billing@example.com").state


def keys_saved(state: TenantState) -> TenantState:
    state = demo_requested(state)
    state = ops.record_gateway(state, user=BOT, now=NOW, account_active=True).state
    return ops.save_keys(
        state, user=BOT, now=NOW, public_mask=key_mask("a1b2"), private_mask=key_mask("c3d4")
    ).state


def with_types(
    state: TenantState,
    autotask: tuple[PaymentType, ...] = (),
    client_portal: tuple[PaymentType, ...] = (),
) -> TenantState:
    state = ops.set_payment_types(
        state, user=BOT, now=NOW, environment="autotask", types=autotask
    ).state
    return ops.set_payment_types(
        state, user=BOT, now=NOW, environment="clientPortal", types=client_portal
    ).state


def fully_enabled(state: TenantState) -> TenantState:
    """Staff take cards and eChecks; clients pay by card (the contoso example)."""
    return with_types(keys_saved(state), ("creditCard", "eCheck"), ("creditCard",))


def switched_off(state: TenantState) -> TenantState:
    """The documented reverse order: clear the payment types, then deactivate (AT-12, AT-16)."""
    state = with_types(state)
    return ops.deactivate(state, user=BOT, now=NOW).state


def inactive_to_enabled() -> ReportItem:
    """The walkthrough: a new tenant, fully enabled in one apply."""
    fresh = fixture("contoso")
    return ("contoso", {"region": "us-east", "tier": "enterprise"}, fresh, fully_enabled(fresh))


def portal_only() -> ReportItem:
    """AT-15: Client Portal types only, so staff see Process Payment with no type to use."""
    before = demo_requested(fixture("fabrikam"))
    after = with_types(keys_saved(before), (), ("creditCard", "eCheck"))
    return ("fabrikam", {"region": "us-west"}, before, after)


def deactivation() -> ReportItem:
    """Everything disappears: switched off in the reverse order."""
    before = fully_enabled(fixture("northwind"))
    return ("northwind", {"region": "us-east"}, before, switched_off(before))


def outside_us() -> ReportItem:
    """AT-20 and AT-21 warnings beside the link; nothing changes."""
    other = ["quickbooks-payments"]
    state = demo_requested(
        fixture("maple", country="CA", internalCurrency="CAD", otherGateways=other)
    )
    return ("maple", {"region": "ca"}, state, state)


def hostile() -> ReportItem:
    """Markup and table syntax in a tenant id, a label and level names: must stay inert."""
    tenant = f"evil{HOSTILE}"
    base = fixture(
        tenant,
        securityLevels=[
            {"name": f"Clerk {HOSTILE} | *bold*", "admin": ["financeAccountingInvoicing"]}
        ],
        portalSecurityLevels=[{"name": f"Portal {HOSTILE}", "invoices": True}],
    )
    return (tenant, {"note": HOSTILE}, base, fully_enabled(base))


def multi_tenant() -> list[ReportItem]:
    """The multi-tenant example of the golden files and the browser test."""
    return [inactive_to_enabled(), portal_only(), deactivation(), outside_us(), hostile()]
