"""Generate N realistic tenant manifests (and SimulatedTenant fixtures) for benchmarks.

Tenants cycle through the setup stages; those with keys are encrypted to the
demo identity exactly as `atpay encrypt` would, so benchmarks measure real files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO_RECIPIENT_FILE = REPO / "examples" / "demo-identity" / "age-demo.key"

STAGES = ("inactive", "activated", "demo-requested", "gateway-ready", "enabled", "portal-only")


def manifest_text(index: int) -> str:
    tenant = f"tenant-{index:05d}"
    stage = STAGES[index % len(STAGES)]
    region = ("us-east", "us-west", "us-central")[index % 3]
    tier = "enterprise" if index % 7 == 0 else "standard"
    lines = [
        "# yaml-language-server: $schema=../../schemas/payment-processing.schema.json",
        "apiVersion: atpay/v1",
        "kind: PaymentProcessing",
        "metadata:",
        f"  tenant: {tenant}",
        "  labels:",
        f"    region: {region}",
        f"    tier: {tier}",
        "spec:",
        f"  activation: {'inactive' if stage == 'inactive' else 'active'}",
    ]
    if stage in ("demo-requested", "gateway-ready", "enabled", "portal-only"):
        lines += ["  salesContact:", "    requested: true", f"    email: billing@{tenant}.example"]
    if stage in ("gateway-ready", "enabled", "portal-only"):
        lines += [
            "  gateway:",
            "    provider: bng",
            f"    accountActive: {str(stage != 'gateway-ready').lower()}",
        ]
    if stage in ("enabled", "portal-only"):
        lines += [
            "  keys:",
            f"    publicKey: pk_bench_{tenant}_public",
            f"    privateKey: sk_bench_{tenant}_private",
            "  paymentTypes:",
        ]
        if stage == "enabled":
            lines += ["    autotask: [creditCard, eCheck]", "    clientPortal: [creditCard]"]
        else:
            lines += ["    autotask: [creditCard]", "    clientPortal: [eCheck]"]
    return "\n".join(lines) + "\n"


def fixture_text(index: int) -> str:
    tenant = f"tenant-{index:05d}"
    return (
        "apiVersion: atpay/v1\nkind: SimulatedTenant\n"
        f"metadata: {{tenant: {tenant}}}\n"
        "spec:\n  country: US\n  internalCurrency: USD\n  otherGateways: []\n"
        "  users:\n    - {name: gitops-bot, securityLevel: API User}\n"
    )


def generate(count: int, out: Path, *, encrypt: bool = True) -> Path:
    """Write `count` manifests under out/tenants and fixtures under out/fixtures (cached)."""
    marker = out / f".complete-{count}-{int(encrypt)}"
    if marker.exists():
        return out
    tenants, fixtures = out / "tenants", out / "fixtures"
    tenants.mkdir(parents=True, exist_ok=True)
    fixtures.mkdir(parents=True, exist_ok=True)
    encryptor = _encryptor() if encrypt else None
    for index in range(count):
        text = manifest_text(index)
        if encryptor is not None and "keys:" in text:
            text = encryptor(text, f"tenants/tenant-{index:05d}.yaml")
        (tenants / f"tenant-{index:05d}.yaml").write_text(text)
        (fixtures / f"tenant-{index:05d}.yaml").write_text(fixture_text(index))
    marker.write_text("ok\n")
    return out


def _encryptor():  # type: ignore[no-untyped-def]
    """A function encrypting the keys of a manifest to the demo recipient."""
    from atpay_config.secrets.age import parse_identity_file
    from atpay_config.secrets.inplace import encrypt_text

    identity = parse_identity_file(DEMO_RECIPIENT_FILE.read_text())[0]
    recipients = [str(identity.recipient())]

    def encrypt(text: str, path: str) -> str:
        return encrypt_text(text, path=path, recipients=recipients)

    return encrypt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("count", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--plaintext", action="store_true", help="Do not encrypt keys.")
    args = parser.parse_args(argv)
    generate(args.count, args.out, encrypt=not args.plaintext)
    return 0


if __name__ == "__main__":
    sys.exit(main())
