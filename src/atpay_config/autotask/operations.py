"""The writes an admin performs on the Payment Processing setup, each checked as Autotask would.

Every operation is a pure function `(state, *, user, now, ...) -> WriteResult`:
it returns the new state and the audit entry for the change, or raises
`RefusedByAutotask` citing the fact that forbids it (SPEC section 6).

No-op detection: when the write would change nothing, the result carries the
*same* state and `entry=None` (`result.changed` is False); nothing should be
audited or planned. `save_keys` is never a no-op: Autotask cannot compare a new
key with a masked one (AT-8, AT-9), so saving always saves.

Dry runs are free: call the operation on the current state and catch
`RefusedByAutotask`; nothing is written anywhere.

Checks run in this order, so the first refusal is the most fundamental one:
the acting user's level (AT-1), activation (AT-3), no-op, then the write's own facts.

There is deliberately no way to clear saved keys or withdraw the sales contact:
Autotask's help documents neither (keys can be overwritten, never unmasked or
removed, AT-8). Deactivation keeps the setup; it only hides it (AT-3).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Final, NamedTuple

from atpay_config.autotask.tenant import (
    ACTIVATIONS_PATH,
    MASK_PATTERN,
    PAYMENT_PROCESSING_PATH,
    AuditEntry,
    KeySlot,
    TenantState,
    canonical_payment_types,
)
from atpay_config.errors import RefusedByAutotask
from atpay_config.manifest.model import ENVIRONMENTS, Environment, PaymentType, PaymentTypes

ACTIVATE: Final = "activate"
DEACTIVATE: Final = "deactivate"
REQUEST_SALES_CONTACT: Final = "request_sales_contact"
RECORD_GATEWAY: Final = "record_gateway"
SAVE_KEYS: Final = "save_keys"
SET_PAYMENT_TYPES: Final = "set_payment_types"
ACTIONS: Final[tuple[str, ...]] = (
    ACTIVATE,
    REQUEST_SALES_CONTACT,
    RECORD_GATEWAY,
    SAVE_KEYS,
    SET_PAYMENT_TYPES,
    DEACTIVATE,
)
"""Audit actions, in the documented setup order; switching off runs the last two reversed."""

ENVIRONMENT_LABELS: Final[dict[Environment, str]] = {
    "autotask": "Payment Types available in Autotask",
    "clientPortal": "Payment Types available in Client Portal",
}


class WriteResult(NamedTuple):
    """The state after a write and its audit entry; `entry` is None when nothing changed."""

    state: TenantState
    entry: AuditEntry | None

    @property
    def changed(self) -> bool:
        return self.entry is not None


def activate(state: TenantState, *, user: str, now: str) -> WriteResult:
    """Activate Autotask Electronic Payments (Admin > Activations); the link appears (AT-4)."""
    _require_permission(state, user, "activate Autotask Electronic Payments")
    if state.active:
        return WriteResult(state, None)
    return _changed(
        replace(state, activation="active"),
        user,
        now,
        ACTIVATE,
        f"activated Autotask Electronic Payments; the Payment Processing link appears at "
        f"{PAYMENT_PROCESSING_PATH}",
    )


def deactivate(state: TenantState, *, user: str, now: str) -> WriteResult:
    """Deactivate the feature; refused while payment types are enabled (AT-16, inferred).

    Saved keys, the sales contact and the gateway flag stay as they are: they are
    hidden, not erased, and reappear on re-activation.
    """
    _require_permission(state, user, "deactivate Autotask Electronic Payments")
    if not state.active:
        return WriteResult(state, None)
    if state.payment_types.any_enabled:
        raise RefusedByAutotask(
            f"tenant {state.tenant!r}: cannot deactivate Autotask Electronic Payments while "
            f"payment types are enabled ({_describe_types(state.payment_types)}); clear every "
            f"payment type check box on {PAYMENT_PROCESSING_PATH} first (AT-12), then deactivate",
            fact="AT-16",
        )
    return _changed(
        replace(state, activation="inactive"),
        user,
        now,
        DEACTIVATE,
        "deactivated Autotask Electronic Payments; the Payment Processing page is hidden",
    )


def request_sales_contact(
    state: TenantState, *, user: str, now: str, email: str | None = None
) -> WriteResult:
    """The ConnectBooster "GET ME A DEMO!" request; then the integration fields appear (AT-5)."""
    _require_active(state, user, "request the ConnectBooster sales contact")
    if state.sales_contact_requested and state.sales_contact_email == email:
        return WriteResult(state, None)
    was = "requested again" if state.sales_contact_requested else "requested"
    return _changed(
        replace(state, sales_contact_requested=True, sales_contact_email=email),
        user,
        now,
        REQUEST_SALES_CONTACT,
        f"ConnectBooster sales contact {was}"
        + (f"; confirmation email to {email}" if email else ""),
    )


def record_gateway(state: TenantState, *, user: str, now: str, account_active: bool) -> WriteResult:
    """Record whether the BNG Gateway account is active; keys need it (AT-6)."""
    _require_active(state, user, "record the BNG Gateway account")
    if state.gateway_account_active == account_active:
        return WriteResult(state, None)
    return _changed(
        replace(state, gateway_account_active=account_active),
        user,
        now,
        RECORD_GATEWAY,
        f"BNG Gateway account recorded as {'active' if account_active else 'inactive'}",
    )


def save_keys(
    state: TenantState, *, user: str, now: str, public_mask: str, private_mask: str
) -> WriteResult:
    """Save the public and private key together (AT-7); only their masks are kept (AT-8).

    Masks come from `tenant.key_mask(fingerprint)`. Autotask does not check that
    the keys work (AT-9), and there is no comparison with what was saved before:
    every save is a change with a new saved-at time.
    """
    action = "save the public and private keys"
    _require_active(state, user, action)
    for which, mask in (("public", public_mask), ("private", private_mask)):
        if not MASK_PATTERN.match(mask):
            # Never echo the value: it may be a key passed by mistake (SPEC section 5).
            raise ValueError(f"the {which} key mask is not a mask; build it with key_mask()")
    if not state.sales_contact_requested:
        raise RefusedByAutotask(
            f"tenant {state.tenant!r}: cannot {action} before the ConnectBooster sales contact "
            "is requested: the key fields only appear on the Payment Processing page after "
            '"GET ME A DEMO!"; request the sales contact first',
            fact="AT-5",
        )
    if not state.gateway_account_active:
        raise RefusedByAutotask(
            f"tenant {state.tenant!r}: cannot {action} without an active BNG Gateway account: "
            "ConnectBooster generates the keys from it; activate the account and record the "
            "gateway as active first",
            fact="AT-6",
        )
    verb = "replaced" if state.keys_saved else "saved"
    return _changed(
        replace(
            state,
            public_key=KeySlot.saved_now(mask=public_mask, now=now),
            private_key=KeySlot.saved_now(mask=private_mask, now=now),
        ),
        user,
        now,
        SAVE_KEYS,
        f"public key {public_mask} and private key {private_mask} {verb} (masked, AT-8)",
    )


def set_payment_types(
    state: TenantState,
    *,
    user: str,
    now: str,
    environment: Environment,
    types: Iterable[PaymentType],
) -> WriteResult:
    """Set one environment's payment types (AT-10); an empty set clears them (AT-12).

    Enabling needs both keys (AT-7, AT-11), a US/USD tenant (AT-20) and no other
    payment gateway (AT-21: the help says "should"; we refuse, so a payment
    cannot be processed twice). Clearing is always allowed while active.
    """
    if environment not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {environment!r}; use one of {ENVIRONMENTS}")
    label = ENVIRONMENT_LABELS[environment]
    action = f"set {label}"
    _require_active(state, user, action)
    current = state.payment_types
    wanted = canonical_payment_types(
        PaymentTypes(autotask=tuple(types))
        if environment == "autotask"
        else PaymentTypes(client_portal=tuple(types))
    ).for_environment(environment)
    if current.for_environment(environment) == wanted:
        return WriteResult(state, None)
    if wanted:
        where = f"tenant {state.tenant!r}: cannot enable {label}"
        if not state.us_usd:
            raise RefusedByAutotask(
                f"{where}: payment processing is only available to US-based customers whose "
                f"internal currency is USD, and this tenant is {state.country}/"
                f"{state.internal_currency}; leave payment types empty for it",
                fact="AT-20",
            )
        if state.other_gateways:
            raise RefusedByAutotask(
                f"{where} while another payment gateway is enabled "
                f"({', '.join(state.other_gateways)}): only one gateway should be enabled at a "
                "time and nothing stops a payment being processed twice; disable the other "
                "gateway first",
                fact="AT-21",
            )
        if not state.keys_saved:
            raise RefusedByAutotask(
                f"{where} before both the public and the private key are saved: both are "
                "required before proceeding, and Process Payment needs them (AT-11); save the "
                "keys first",
                fact="AT-7",
            )
    after = (
        replace(current, autotask=wanted)
        if environment == "autotask"
        else replace(current, client_portal=wanted)
    )
    before_text = ", ".join(current.for_environment(environment)) or "none"
    after_text = ", ".join(wanted) or "none"
    note = "" if after.any_enabled else "; payment processing is disabled (AT-12)"
    return _changed(
        replace(state, payment_types=after),
        user,
        now,
        SET_PAYMENT_TYPES,
        f"{label}: {after_text} (was: {before_text}){note}",
    )


def can_configure(state: TenantState, user: str) -> bool:
    """Whether `user` may write Payment Processing settings at all (AT-1)."""
    level = state.level_of(user)
    return level is not None and level.can_configure_payment_processing


def _require_permission(state: TenantState, user: str, action: str) -> None:
    """AT-1: every write needs the Admin permission to configure Finance, Accounting & Invoicing."""
    found = state.user(user)
    if found is None:
        known = ", ".join(u.name for u in state.users) or "none"
        raise RefusedByAutotask(
            f"tenant {state.tenant!r}: cannot {action} as {user!r}: no such user in this tenant "
            f"(users: {known}); act as a user whose security level may configure Finance, "
            "Accounting & Invoicing",
            fact="AT-1",
        )
    level = state.security_level(found.security_level)
    if level is None or not level.can_configure_payment_processing:
        raise RefusedByAutotask(
            f"tenant {state.tenant!r}: cannot {action} as {user!r}: security level "
            f"{found.security_level!r} lacks the Admin permission to configure Finance, "
            "Accounting & Invoicing; act as a user on a level that has it (System "
            "Administrator, Full Access, Manager, API User) or grant it to a custom level",
            fact="AT-1",
        )


def _require_active(state: TenantState, user: str, action: str) -> None:
    """AT-1, then AT-3: only activation is possible while the feature is inactive."""
    _require_permission(state, user, action)
    if not state.active:
        raise RefusedByAutotask(
            f"tenant {state.tenant!r}: cannot {action} while Autotask Electronic Payments is "
            "inactive: the Payment Processing page is hidden; activate the feature first "
            f"({ACTIVATIONS_PATH})",
            fact="AT-3",
        )


def _changed(state: TenantState, user: str, now: str, action: str, detail: str) -> WriteResult:
    return WriteResult(state, AuditEntry(at=now, user=user, action=action, detail=detail))


def _describe_types(types: PaymentTypes) -> str:
    parts = [
        f"{env}: {', '.join(types.for_environment(env))}"
        for env in ENVIRONMENTS
        if types.for_environment(env)
    ]
    return "; ".join(parts) or "none"
