"""The simulated Autotask tenant's state (SPEC section 6): what Autotask holds, never a key.

Everything here is a frozen value; the write operations (`autotask.operations`)
return new states, so a planner can compute the "after" state without writing.

Keys are write-only (AT-8): a `KeySlot` records only that a key is saved, when,
and a mask built from a keyed fingerprint the caller computed. The plaintext
never reaches this module.

Security levels (AT-17, AT-18, AT-19) always include the built-ins below; the
ones marked *inferred* or *assumed* are our reading where Autotask's help is
silent, and are documented as such in the reports:

| staff level          | Admin                       | Contracts "Invoice History, ... Payments" |
|----------------------|-----------------------------|-------------------------------------------|
| System Administrator | all (stated, AT-17)         | yes (inferred: full access)               |
| Full Access          | all (stated, AT-17)         | yes (inferred: full access)               |
| Manager              | financial features (AT-17)  | yes (inferred: it manages billing)        |
| API User             | financial features (assumed)| no (assumed: API users do not use the UI) |

The API User assumption exists so the default GitOps acting user (SPEC section
6: the tenant's first user at the API User level) can configure Payment
Processing (AT-1). Client Portal: `Manager` may view invoices (stated, AT-19);
`User` may not (inferred).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, cast

from atpay_config.errors import AtpayError, StateError
from atpay_config.manifest.model import PAYMENT_TYPES, Activation, PaymentType, PaymentTypes

SCHEMA_VERSION: Final = 1
"""Version of the `TenantState.to_dict()` shape; bump with a migration in `state/`."""

# Admin permissions: the sections of Admin > Features & Settings and beyond that a
# security level may configure. Only `financeAccountingInvoicing` matters here (AT-1);
# the others exist so "full Admin access" (AT-17) is more than one flag.
FINANCE_ACCOUNTING_INVOICING: Final = "financeAccountingInvoicing"
ADMIN_PERMISSIONS: Final[tuple[str, ...]] = (
    "accountSettingsAndUsers",
    "featuresAndSettings",
    FINANCE_ACCOUNTING_INVOICING,
    "extensionsAndIntegrations",
)
# Contracts: "Can access Invoice History, (Invoice) Export Wizard and Payments" (AT-18).
INVOICE_HISTORY_AND_PAYMENTS: Final = "invoiceHistoryAndPayments"
CONTRACTS_PERMISSIONS: Final[tuple[str, ...]] = (INVOICE_HISTORY_AND_PAYMENTS,)

SYSTEM_ADMINISTRATOR: Final = "System Administrator"
FULL_ACCESS: Final = "Full Access"
MANAGER: Final = "Manager"
API_USER: Final = "API User"
PORTAL_MANAGER: Final = "Manager"
PORTAL_USER: Final = "User"

# AT-2: where the page lives; AT-23: not Admin's "Payment Types" page (expense reports).
PAYMENT_PROCESSING_PATH: Final = (
    "Admin > Features & Settings > Finance, Accounting & Invoicing > Payment Processing"
)
ACTIVATIONS_PATH: Final = "Admin > Activations"

US: Final = "US"
USD: Final = "USD"

# What a saved key shows: eight bullets and four hex digits of a keyed fingerprint (AT-8).
# Nothing else may enter a KeySlot, so no key material can reach state or audit.
MASK_BULLETS: Final = "••••••••"
MASK_PATTERN: Final = re.compile(r"\A•{8}[0-9a-f]{4}\Z")


def key_mask(fingerprint: str) -> str:
    """The masked display of a saved key, from the caller's keyed fingerprint (hex).

    Uses the fingerprint's first four hex digits: they identify the key to a
    reviewer without revealing anything about the key itself.
    """
    short = fingerprint[:4].lower()
    if len(short) != 4 or any(c not in "0123456789abcdef" for c in short):
        raise ValueError("a key fingerprint must be a hex string of at least 4 digits")
    return MASK_BULLETS + short


@dataclass(frozen=True, slots=True)
class KeySlot:
    """One key field on the Payment Processing page: saved or not, never readable (AT-8)."""

    saved: bool = False
    saved_at: str | None = None
    mask: str | None = None

    def __post_init__(self) -> None:
        if self.saved != (self.saved_at is not None) or self.saved != (self.mask is not None):
            raise ValueError("a saved key has both saved_at and mask; an empty slot has neither")
        if self.mask is not None and not MASK_PATTERN.match(self.mask):
            # Refuse anything that is not a mask: it could be a key (AT-8, SPEC section 5).
            raise ValueError("a key mask must be eight bullets and four hex digits")

    @classmethod
    def saved_now(cls, *, mask: str, now: str) -> KeySlot:
        return cls(saved=True, saved_at=now, mask=mask)

    def to_dict(self) -> dict[str, Any]:
        return {"saved": self.saved, "saved_at": self.saved_at, "mask": self.mask}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> KeySlot:
        return cls(saved=bool(doc["saved"]), saved_at=doc["saved_at"], mask=doc["mask"])


@dataclass(frozen=True, slots=True)
class SecurityLevel:
    """A staff security level: Admin sections it may configure, Contracts permissions (AT-17)."""

    name: str
    admin: frozenset[str] = frozenset()
    contracts: frozenset[str] = frozenset()
    system: bool = False

    @property
    def can_configure_payment_processing(self) -> bool:
        """AT-1: the Admin permission to configure Finance, Accounting & Invoicing."""
        return FINANCE_ACCOUNTING_INVOICING in self.admin

    @property
    def can_access_payments(self) -> bool:
        """AT-18: Contracts "Can access Invoice History, Export Wizard and Payments"."""
        return INVOICE_HISTORY_AND_PAYMENTS in self.contracts

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "admin": sorted(self.admin),
            "contracts": sorted(self.contracts),
            "system": self.system,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> SecurityLevel:
        return cls(
            name=str(doc["name"]),
            admin=frozenset(doc["admin"]),
            contracts=frozenset(doc["contracts"]),
            system=bool(doc["system"]),
        )


@dataclass(frozen=True, slots=True)
class PortalSecurityLevel:
    """A Client Portal security level: may it view invoices and financial data (AT-19)."""

    name: str
    invoices: bool = False
    system: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "invoices": self.invoices, "system": self.system}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> PortalSecurityLevel:
        return cls(
            name=str(doc["name"]), invoices=bool(doc["invoices"]), system=bool(doc["system"])
        )


@dataclass(frozen=True, slots=True)
class User:
    """A staff user (resource) and the security level they act with."""

    name: str
    security_level: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "security_level": self.security_level}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> User:
        return cls(name=str(doc["name"]), security_level=str(doc["security_level"]))


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change to a tenant: who, when, what. `detail` shows key masks only, never keys."""

    at: str
    user: str
    action: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "user": self.user, "action": self.action, "detail": self.detail}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> AuditEntry:
        return cls(at=doc["at"], user=doc["user"], action=doc["action"], detail=doc["detail"])


NO_PAYMENT_TYPES: Final = PaymentTypes()

_ALL_ADMIN = frozenset(ADMIN_PERMISSIONS)
_PAYMENTS = frozenset({INVOICE_HISTORY_AND_PAYMENTS})

BUILTIN_SECURITY_LEVELS: Final[tuple[SecurityLevel, ...]] = (
    SecurityLevel(SYSTEM_ADMINISTRATOR, _ALL_ADMIN, _PAYMENTS, system=True),  # AT-17
    SecurityLevel(FULL_ACCESS, _ALL_ADMIN, _PAYMENTS, system=True),  # AT-17
    # AT-17: Admin access to financial features only; Contracts payments access inferred.
    SecurityLevel(MANAGER, frozenset({FINANCE_ACCOUNTING_INVOICING}), _PAYMENTS, system=True),
    # Assumed: enough Admin for the GitOps acting user (AT-1); no UI payments access.
    SecurityLevel(API_USER, frozenset({FINANCE_ACCOUNTING_INVOICING}), frozenset(), system=True),
)
BUILTIN_PORTAL_SECURITY_LEVELS: Final[tuple[PortalSecurityLevel, ...]] = (
    PortalSecurityLevel(PORTAL_MANAGER, invoices=True, system=True),  # AT-19
    PortalSecurityLevel(PORTAL_USER, invoices=False, system=True),  # inferred
)


def _canonical_types(types: Iterable[str]) -> tuple[PaymentType, ...]:
    """Types in the one order (creditCard, eCheck), deduplicated: equal sets compare equal."""
    wanted = set(types)
    unknown = wanted.difference(PAYMENT_TYPES)
    if unknown:
        raise ValueError(f"unknown payment type(s): {', '.join(sorted(unknown))}")
    return tuple(t for t in PAYMENT_TYPES if t in wanted)


def canonical_payment_types(types: PaymentTypes) -> PaymentTypes:
    """`types` in canonical order; compare states and manifests through this."""
    return PaymentTypes(
        autotask=_canonical_types(types.autotask),
        client_portal=_canonical_types(types.client_portal),
    )


@dataclass(frozen=True, slots=True)
class TenantState:
    """Everything the simulated Autotask holds for one tenant (SPEC section 6).

    The audit log is not part of the state: every operation returns its
    `AuditEntry` and the state store appends it, so states stay small and equal
    states compare equal regardless of how they were reached.
    """

    tenant: str
    country: str = US
    internal_currency: str = USD
    other_gateways: tuple[str, ...] = ()
    activation: Activation = "inactive"  # AT-3: inactive by default
    sales_contact_requested: bool = False
    sales_contact_email: str | None = None
    gateway_account_active: bool = False
    public_key: KeySlot = KeySlot()
    private_key: KeySlot = KeySlot()
    payment_types: PaymentTypes = NO_PAYMENT_TYPES
    security_levels: tuple[SecurityLevel, ...] = BUILTIN_SECURITY_LEVELS
    portal_security_levels: tuple[PortalSecurityLevel, ...] = BUILTIN_PORTAL_SECURITY_LEVELS
    users: tuple[User, ...] = ()

    # -- derived facts -------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.activation == "active"

    @property
    def keys_saved(self) -> bool:
        """AT-7: both keys are saved."""
        return self.public_key.saved and self.private_key.saved

    @property
    def processing_enabled(self) -> bool:
        """SPEC: active AND both keys saved AND at least one payment type (AT-7, AT-11)."""
        return self.active and self.keys_saved and self.payment_types.any_enabled

    @property
    def us_usd(self) -> bool:
        """AT-20: payment processing is only for US tenants with internal currency USD."""
        return self.country == US and self.internal_currency == USD

    def security_level(self, name: str) -> SecurityLevel | None:
        return next((lvl for lvl in self.security_levels if lvl.name == name), None)

    def portal_security_level(self, name: str) -> PortalSecurityLevel | None:
        return next((lvl for lvl in self.portal_security_levels if lvl.name == name), None)

    def user(self, name: str) -> User | None:
        return next((u for u in self.users if u.name == name), None)

    def level_of(self, user: str) -> SecurityLevel | None:
        """The security level `user` acts with, or None for an unknown user or level."""
        found = self.user(user)
        return self.security_level(found.security_level) if found else None

    def default_user(self) -> str | None:
        """SPEC section 6: the acting user unless `--as`: the first user at the API User level."""
        return next((u.name for u in self.users if u.security_level == API_USER), None)

    # -- construction --------------------------------------------------------

    @classmethod
    def fresh(
        cls,
        tenant: str,
        *,
        country: str = US,
        internal_currency: str = USD,
        other_gateways: Iterable[str] = (),
        security_levels: Iterable[SecurityLevel] = (),
        portal_security_levels: Iterable[PortalSecurityLevel] = (),
        users: Iterable[User] = (),
    ) -> TenantState:
        """A new tenant: inactive, nothing saved (AT-3), built-in levels first (AT-17, AT-19)."""
        staff = BUILTIN_SECURITY_LEVELS + tuple(security_levels)
        portal = BUILTIN_PORTAL_SECURITY_LEVELS + tuple(portal_security_levels)
        _require_unique(tenant, "security level", [lvl.name for lvl in staff])
        _require_unique(tenant, "Client Portal security level", [lvl.name for lvl in portal])
        people = tuple(users)
        _require_unique(tenant, "user", [u.name for u in people])
        names = {lvl.name for lvl in staff}
        for person in people:
            if person.security_level not in names:
                raise AtpayError(
                    f"tenant {tenant!r}: user {person.name!r} has unknown security level "
                    f"{person.security_level!r}; use one of: {', '.join(sorted(names))}"
                )
        return cls(
            tenant=tenant,
            country=country,
            internal_currency=internal_currency,
            other_gateways=tuple(other_gateways),
            security_levels=staff,
            portal_security_levels=portal,
            users=people,
        )

    @classmethod
    def from_fixture(cls, doc: Mapping[str, Any]) -> TenantState:
        """A fresh tenant from a schema-valid `SimulatedTenant` document (SPEC section 6).

        Semantic errors the schema cannot express (a custom level named like a
        built-in, duplicate names, a user on an unknown level) raise AtpayError.
        """
        if doc.get("kind") != "SimulatedTenant":
            raise AtpayError(f"expected kind SimulatedTenant, got {doc.get('kind')!r}")
        tenant = str((doc.get("metadata") or {}).get("tenant", ""))
        spec = doc.get("spec") or {}
        return cls.fresh(
            tenant,
            country=str(spec.get("country", US)),
            internal_currency=str(spec.get("internalCurrency", USD)),
            other_gateways=[str(g) for g in spec.get("otherGateways") or ()],
            security_levels=[
                SecurityLevel(
                    name=str(lvl["name"]),
                    admin=frozenset(lvl.get("admin") or ()),
                    contracts=frozenset(lvl.get("contracts") or ()),
                )
                for lvl in spec.get("securityLevels") or ()
            ],
            portal_security_levels=[
                PortalSecurityLevel(name=str(lvl["name"]), invoices=lvl.get("invoices") is True)
                for lvl in spec.get("portalSecurityLevels") or ()
            ],
            users=[
                User(name=str(u["name"]), security_level=str(u["securityLevel"]))
                for u in spec.get("users") or ()
            ],
        )

    # -- serialisation -------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A plain JSON-able dict in a stable key order; `from_dict` round-trips it exactly."""
        return {
            "schema_version": SCHEMA_VERSION,
            "tenant": self.tenant,
            "country": self.country,
            "internal_currency": self.internal_currency,
            "other_gateways": list(self.other_gateways),
            "activation": self.activation,
            "sales_contact_requested": self.sales_contact_requested,
            "sales_contact_email": self.sales_contact_email,
            "gateway_account_active": self.gateway_account_active,
            "public_key": self.public_key.to_dict(),
            "private_key": self.private_key.to_dict(),
            "payment_types": {
                "autotask": list(self.payment_types.autotask),
                "client_portal": list(self.payment_types.client_portal),
            },
            "security_levels": [lvl.to_dict() for lvl in self.security_levels],
            "portal_security_levels": [lvl.to_dict() for lvl in self.portal_security_levels],
            "users": [u.to_dict() for u in self.users],
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> TenantState:
        """Rebuild a state written by `to_dict`; StateError for another version or corruption."""
        version = doc.get("schema_version")
        if version != SCHEMA_VERSION:
            raise StateError(
                f"tenant state has schema_version {version!r}; this atpay reads {SCHEMA_VERSION}",
                hint="migrate the state store or use a matching atpay version",
            )
        try:
            types = doc["payment_types"]
            activation = doc["activation"]
            if activation not in ("active", "inactive"):
                raise ValueError(f"activation {activation!r}")
            return cls(
                tenant=str(doc["tenant"]),
                country=str(doc["country"]),
                internal_currency=str(doc["internal_currency"]),
                other_gateways=tuple(str(g) for g in doc["other_gateways"]),
                activation=cast(Activation, activation),
                sales_contact_requested=bool(doc["sales_contact_requested"]),
                sales_contact_email=doc["sales_contact_email"],
                gateway_account_active=bool(doc["gateway_account_active"]),
                public_key=KeySlot.from_dict(doc["public_key"]),
                private_key=KeySlot.from_dict(doc["private_key"]),
                payment_types=PaymentTypes(
                    autotask=_canonical_types(types["autotask"]),
                    client_portal=_canonical_types(types["client_portal"]),
                ),
                security_levels=tuple(SecurityLevel.from_dict(x) for x in doc["security_levels"]),
                portal_security_levels=tuple(
                    PortalSecurityLevel.from_dict(x) for x in doc["portal_security_levels"]
                ),
                users=tuple(User.from_dict(x) for x in doc["users"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"tenant state is corrupt: {exc}") from exc


def invariant_violations(state: TenantState) -> tuple[str, ...]:
    """What in `state` the simulation would never have let happen; empty when consistent.

    Every write refuses what would break these, so any state reached through
    `autotask.operations` from `TenantState.fresh` has none. Crash and property
    tests check stored states with it.
    """
    problems: list[str] = []
    types = state.payment_types
    if types.any_enabled:
        if not state.active:
            problems.append("AT-3/AT-16: payment types enabled while inactive")
        if not state.keys_saved:
            problems.append("AT-7/AT-11: payment types enabled without both keys saved")
        if not state.us_usd:
            problems.append("AT-20: payment types enabled outside US/USD")
        if state.other_gateways:
            problems.append("AT-21: payment types enabled while another gateway is enabled")
    if canonical_payment_types(types) != types:
        problems.append("AT-10: payment types not in canonical order or duplicated")
    if state.public_key.saved != state.private_key.saved:
        problems.append("AT-7: only one of the two keys is saved")
    if (state.public_key.saved or state.private_key.saved) and not state.sales_contact_requested:
        problems.append("AT-5: keys saved before the sales contact was requested")
    for builtin in BUILTIN_SECURITY_LEVELS:
        if state.security_level(builtin.name) != builtin:
            problems.append(f"AT-17: built-in security level {builtin.name!r} missing or edited")
    for portal in BUILTIN_PORTAL_SECURITY_LEVELS:
        if state.portal_security_level(portal.name) != portal:
            problems.append(f"AT-19: built-in portal level {portal.name!r} missing or edited")
    for person in state.users:
        if state.security_level(person.security_level) is None:
            problems.append(f"user {person.name!r} has unknown level {person.security_level!r}")
    return tuple(problems)


def _require_unique(tenant: str, what: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise AtpayError(
                f"tenant {tenant!r}: {what} {name!r} is declared twice "
                "(built-in levels always exist and cannot be redefined, AT-17/AT-19)"
            )
        seen.add(name)
