"""Builders shared by the planner and apply tests: tenants, manifests, fingerprints."""

from __future__ import annotations

from typing import Any

from atpay_config.autotask.tenant import TenantState
from atpay_config.manifest.model import Manifest, PaymentTypes
from atpay_config.plan.planner import KeyFingerprints, key_fingerprints

NOW = "2026-01-05T10:00:00.000000+00:00"
LATER = "2026-01-06T11:00:00.000000+00:00"
BOT = "gitops-bot"
SALT = "00112233445566778899aabbccddeeff"
PUBLIC = "pk_canary_PUBLIC_7Qm2xV9aLr4T"
PRIVATE = "sk_canary_PRIVATE_Hc81ZpWq5NeY"


def fixture_doc(tenant: str = "contoso", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "atpay/v1",
        "kind": "SimulatedTenant",
        "metadata": {"tenant": tenant},
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
            ],
            **spec,
        },
    }


def fresh(tenant: str = "contoso", **spec: Any) -> TenantState:
    return TenantState.from_fixture(fixture_doc(tenant, **spec))


def manifest(
    tenant: str = "contoso",
    *,
    activation: str = "active",
    sales: bool = True,
    email: str | None = "billing@contoso.example",
    gateway: bool = True,
    keys: bool = True,
    autotask: tuple[str, ...] = ("creditCard", "eCheck"),
    portal: tuple[str, ...] = ("creditCard",),
) -> Manifest:
    return Manifest(
        tenant=tenant,
        file=f"tenants/{tenant}.yaml",
        activation=activation,  # type: ignore[arg-type]
        sales_contact_requested=sales,
        sales_contact_email=email if sales else None,
        gateway_account_active=gateway,
        public_key=PUBLIC if keys else None,
        private_key=PRIVATE if keys else None,
        payment_types=PaymentTypes(autotask=autotask, client_portal=portal),  # type: ignore[arg-type]
    )


def fps(public: str = PUBLIC, private: str = PRIVATE, *, salt: str = SALT) -> KeyFingerprints:
    return key_fingerprints(public, private, salt=salt)


# --- files on disk: manifests with plaintext keys (AT005 waived) and fixtures ------------

WAIVER = """---
apiVersion: atpay/v1
kind: Waiver
metadata: {{name: {tenant}-plaintext-keys}}
spec:
  tenant: {tenant}
  rule: AT005
  reason: plaintext canary keys for the apply tests
  owner: tests@msp.example
  expires: "2099-12-31"
"""


def manifest_yaml(
    tenant: str,
    *,
    stage: str = "enabled",
    public: str = PUBLIC,
    private: str = PRIVATE,
) -> str:
    """A manifest at one setup stage; keyed stages carry an AT005 waiver for plaintext keys."""
    lines = [
        "apiVersion: atpay/v1",
        "kind: PaymentProcessing",
        f"metadata: {{tenant: {tenant}}}",
        "spec:",
        f"  activation: {'inactive' if stage == 'inactive' else 'active'}",
    ]
    if stage in ("demo", "enabled"):
        lines += ["  salesContact:", "    requested: true", f"    email: billing@{tenant}.example"]
    if stage == "enabled":
        lines += [
            "  gateway: {provider: bng, accountActive: true}",
            "  keys:",
            f"    publicKey: {public}",
            f"    privateKey: {private}",
            "  paymentTypes:",
            "    autotask: [creditCard, eCheck]",
            "    clientPortal: [creditCard]",
        ]
    text = "\n".join(lines) + "\n"
    if stage == "enabled":
        text += WAIVER.format(tenant=tenant)
    return text


def fixture_yaml(tenant: str, *, extra_users: str = "") -> str:
    return (
        "apiVersion: atpay/v1\nkind: SimulatedTenant\n"
        f"metadata: {{tenant: {tenant}}}\n"
        "spec:\n"
        "  securityLevels:\n"
        "    - {name: Dispatcher, admin: [featuresAndSettings]}\n"
        "  users:\n"
        "    - {name: gitops-bot, securityLevel: API User}\n"
        "    - {name: dispatch, securityLevel: Dispatcher}\n" + extra_users
    )


def write_workspace(root: Any, tenants: dict[str, str]) -> tuple[Any, Any]:
    """tenants/ and fixtures/ under `root` for {tenant: stage}; returns both folders."""
    from pathlib import Path

    base = Path(root)
    manifests, fixtures = base / "tenants", base / "fixtures"
    manifests.mkdir(parents=True, exist_ok=True)
    fixtures.mkdir(parents=True, exist_ok=True)
    for tenant, stage in tenants.items():
        (manifests / f"{tenant}.yaml").write_text(manifest_yaml(tenant, stage=stage))
        (fixtures / f"{tenant}.yaml").write_text(fixture_yaml(tenant))
    return manifests, fixtures
