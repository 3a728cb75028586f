"""The typed manifest: what a tenant's payment processing should look like (SPEC section 3).

Built only from a document that passed the schema, so fields are trusted here.
Key values stay as written in the file (normally `ENC[...]` envelopes); nothing
in this model is ever a decrypted key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Activation = Literal["active", "inactive"]
PaymentType = Literal["creditCard", "eCheck"]
Environment = Literal["autotask", "clientPortal"]
PAYMENT_TYPES: tuple[PaymentType, ...] = ("creditCard", "eCheck")
ENVIRONMENTS: tuple[Environment, ...] = ("autotask", "clientPortal")
KEY_FIELDS = ("publicKey", "privateKey")


@dataclass(frozen=True, slots=True)
class PaymentTypes:
    """Enabled payment types per environment (AT-10); empty tuples mean none."""

    autotask: tuple[PaymentType, ...] = ()
    client_portal: tuple[PaymentType, ...] = ()

    @property
    def any_enabled(self) -> bool:
        return bool(self.autotask or self.client_portal)

    def for_environment(self, environment: Environment) -> tuple[PaymentType, ...]:
        return self.autotask if environment == "autotask" else self.client_portal


@dataclass(frozen=True, slots=True)
class Manifest:
    """One `PaymentProcessing` document, located in its source file."""

    tenant: str
    file: str
    document: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    activation: Activation = "inactive"
    sales_contact_requested: bool = False
    sales_contact_email: str | None = None
    gateway_account_active: bool = False
    public_key: str | None = None  # as written in the file: an ENC[...] envelope or plaintext
    private_key: str | None = None
    payment_types: PaymentTypes = PaymentTypes()

    @property
    def has_both_keys(self) -> bool:
        return bool(self.public_key) and bool(self.private_key)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], *, file: str, document: int = 0) -> Manifest:
        """Build from a schema-valid `PaymentProcessing` mapping."""
        metadata = doc.get("metadata") or {}
        spec = doc.get("spec") or {}
        sales = spec.get("salesContact") or {}
        gateway = spec.get("gateway") or {}
        keys = spec.get("keys") or {}
        types = spec.get("paymentTypes") or {}
        return cls(
            tenant=str(metadata.get("tenant", "")),
            file=file,
            document=document,
            labels={str(k): str(v) for k, v in (metadata.get("labels") or {}).items()},
            activation=spec.get("activation", "inactive"),
            sales_contact_requested=sales.get("requested") is True,
            sales_contact_email=sales.get("email"),
            gateway_account_active=gateway.get("accountActive") is True,
            public_key=keys.get("publicKey") or None,
            private_key=keys.get("privateKey") or None,
            payment_types=PaymentTypes(
                autotask=tuple(dict.fromkeys(types.get("autotask") or ())),
                client_portal=tuple(dict.fromkeys(types.get("clientPortal") or ())),
            ),
        )
