"""What each audience sees, derived from a tenant state (SPEC section 8).

`visible_elements(state, audience)` is pure and deterministic: elements come in
the order of `ELEMENTS` (the SPEC table), each with the warnings that concern it
(AT-15, AT-20, AT-21). Staff audiences only ever see staff elements, Client
Portal audiences only portal ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from atpay_config.autotask.tenant import (
    PAYMENT_PROCESSING_PATH,
    PortalSecurityLevel,
    SecurityLevel,
    TenantState,
)
from atpay_config.errors import AtpayError

AudienceKind = Literal["staff", "portal"]
AUDIENCE_KINDS: Final[tuple[AudienceKind, ...]] = ("staff", "portal")

_FINANCE_ADMIN = "Admin > Features & Settings > Finance, Accounting & Invoicing"


@dataclass(frozen=True, slots=True)
class UiElement:
    """A link, page, button, menu option or portal option that Payment Processing adds."""

    id: str
    label: str
    location: str  # where it lives in Autotask's menus and pages
    facts: tuple[str, ...]
    kind: AudienceKind  # who can ever see it: staff or Client Portal users


PAYMENT_PROCESSING_LINK: Final = UiElement(
    "admin.payment_processing_link",
    "Payment Processing link",
    _FINANCE_ADMIN,
    ("AT-2", "AT-4", "AT-17"),
    "staff",
)
SALES_CONTACT_FORM: Final = UiElement(
    "admin.payment_processing.sales_contact_form",
    'ConnectBooster sales contact request ("GET ME A DEMO!")',
    PAYMENT_PROCESSING_PATH,
    ("AT-5",),
    "staff",
)
INTEGRATION_FIELDS: Final = UiElement(
    "admin.payment_processing.integration_fields",
    "Integration fields: Public Key, Private Key, Payment Types available in Autotask "
    "and in Client Portal",
    PAYMENT_PROCESSING_PATH,
    ("AT-5", "AT-7", "AT-10"),
    "staff",
)
PAYMENT_SEARCH_PAGE: Final = UiElement(
    "payments.search_page",
    "Payment Search page",
    "Payment Search",
    ("AT-13", "AT-18"),
    "staff",
)
PROCESS_PAYMENT_BUTTON: Final = UiElement(
    "invoice.process_payment_button",
    "Process Payment button",
    "Invoice page",
    ("AT-11", "AT-13"),
    "staff",
)
PROCESS_PAYMENT_OPTION: Final = UiElement(
    "invoice_history.process_payment_option",
    "Process Payment option",
    "Invoice History context menu",
    ("AT-11", "AT-13"),
    "staff",
)
PROCESS_PAYMENT_CREDIT_CARD: Final = UiElement(
    "process_payment.credit_card",
    "Credit card payment type",
    "Invoice page > Process Payment",
    ("AT-10",),
    "staff",
)
PROCESS_PAYMENT_ECHECK: Final = UiElement(
    "process_payment.echeck",
    "eCheck payment type",
    "Invoice page > Process Payment",
    ("AT-10",),
    "staff",
)
MAKE_A_PAYMENT: Final = UiElement(
    "client_portal.make_a_payment",
    'Process Payment / Pay Now ("Make a Payment" window, invoices not fully paid)',
    "Client Portal > Invoice",
    ("AT-14", "AT-19"),
    "portal",
)
CLIENT_PORTAL_CREDIT_CARD: Final = UiElement(
    "client_portal.credit_card",
    "Credit card payment type",
    "Client Portal > Invoice > Make a Payment",
    ("AT-10", "AT-14"),
    "portal",
)
CLIENT_PORTAL_ECHECK: Final = UiElement(
    "client_portal.echeck",
    "eCheck payment type",
    "Client Portal > Invoice > Make a Payment",
    ("AT-10", "AT-14"),
    "portal",
)

ELEMENTS: Final[tuple[UiElement, ...]] = (
    PAYMENT_PROCESSING_LINK,
    SALES_CONTACT_FORM,
    INTEGRATION_FIELDS,
    PAYMENT_SEARCH_PAGE,
    PROCESS_PAYMENT_BUTTON,
    PROCESS_PAYMENT_OPTION,
    PROCESS_PAYMENT_CREDIT_CARD,
    PROCESS_PAYMENT_ECHECK,
    MAKE_A_PAYMENT,
    CLIENT_PORTAL_CREDIT_CARD,
    CLIENT_PORTAL_ECHECK,
)
"""Every element, in SPEC section 8 order: the order reports list them in."""
ELEMENTS_BY_ID: Final[dict[str, UiElement]] = {e.id: e for e in ELEMENTS}

# Where each warning is attached: the entry point of the setup and the places a
# payment is taken (a warning repeated on every sub-element would be noise).
_TAKES_PAYMENT = frozenset(
    {PROCESS_PAYMENT_BUTTON.id, PROCESS_PAYMENT_OPTION.id, MAKE_A_PAYMENT.id}
)
_AT15_ON = frozenset({PROCESS_PAYMENT_BUTTON.id, PROCESS_PAYMENT_OPTION.id})
_AT20_AT21_ON = _TAKES_PAYMENT | {PAYMENT_PROCESSING_LINK.id}


@dataclass(frozen=True, slots=True)
class UiWarning:
    """Something an admin should know about a visible element, citing its fact."""

    fact: str
    message: str


@dataclass(frozen=True, slots=True)
class VisibleElement:
    """An element the audience sees, with the warnings that concern it."""

    element: UiElement
    warnings: tuple[UiWarning, ...] = ()

    @property
    def id(self) -> str:
        return self.element.id


@dataclass(frozen=True, slots=True)
class Audience:
    """Who looks: a staff security level or a Client Portal security level, by name."""

    kind: AudienceKind
    level: str


def audiences(state: TenantState) -> list[Audience]:
    """Every staff security level, then every Client Portal level, in the tenant's order."""
    return [Audience("staff", lvl.name) for lvl in state.security_levels] + [
        Audience("portal", lvl.name) for lvl in state.portal_security_levels
    ]


def visible_elements(state: TenantState, audience: Audience) -> list[VisibleElement]:
    """The elements `audience` sees in `state`, in `ELEMENTS` order, with their warnings."""
    if audience.kind == "staff":
        staff = state.security_level(audience.level)
        if staff is None:
            raise _unknown_level(state, audience)
        shown = _staff_elements(state, staff)
    else:
        portal = state.portal_security_level(audience.level)
        if portal is None:
            raise _unknown_level(state, audience)
        shown = _portal_elements(state, portal)
    warnings = _warnings(state)
    return [
        VisibleElement(element, tuple(w for on, w in warnings if element.id in on))
        for element in ELEMENTS
        if element.id in shown
    ]


def visible_ids(state: TenantState, audience: Audience) -> list[str]:
    """Just the ids, as the JSON report lists them (SPEC section 9)."""
    return [v.id for v in visible_elements(state, audience)]


def _staff_elements(state: TenantState, level: SecurityLevel) -> set[str]:
    shown: set[str] = set()
    # AT-3/AT-4: the link appears once active; AT-1/AT-17: only for levels that may configure it.
    if state.active and level.can_configure_payment_processing:
        shown.add(PAYMENT_PROCESSING_LINK.id)
        # AT-5: the page shows the demo request first, then the integration fields.
        shown.add(INTEGRATION_FIELDS.id if state.sales_contact_requested else SALES_CONTACT_FORM.id)
    if state.processing_enabled:
        # AT-13: what enabling adds; AT-18: Payment Search also needs the Contracts permission.
        if level.can_access_payments:
            shown.add(PAYMENT_SEARCH_PAGE.id)
        shown.update({PROCESS_PAYMENT_BUTTON.id, PROCESS_PAYMENT_OPTION.id})
        # AT-10: the types staff can use are the Autotask environment's.
        if "creditCard" in state.payment_types.autotask:
            shown.add(PROCESS_PAYMENT_CREDIT_CARD.id)
        if "eCheck" in state.payment_types.autotask:
            shown.add(PROCESS_PAYMENT_ECHECK.id)
    return shown


def _portal_elements(state: TenantState, level: PortalSecurityLevel) -> set[str]:
    shown: set[str] = set()
    portal_types = state.payment_types.client_portal
    # AT-14: clients pay with the Client Portal types; AT-19: only levels that may view invoices.
    if state.processing_enabled and portal_types and level.invoices:
        shown.add(MAKE_A_PAYMENT.id)
        if "creditCard" in portal_types:
            shown.add(CLIENT_PORTAL_CREDIT_CARD.id)
        if "eCheck" in portal_types:
            shown.add(CLIENT_PORTAL_ECHECK.id)
    return shown


def _warnings(state: TenantState) -> list[tuple[frozenset[str], UiWarning]]:
    """The tenant's warnings, each with the element ids it is attached to."""
    found: list[tuple[frozenset[str], UiWarning]] = []
    if state.processing_enabled and not state.payment_types.autotask:
        found.append(
            (
                _AT15_ON,
                UiWarning(
                    "AT-15",
                    "Process Payment is shown to staff but no payment type is enabled for "
                    "Autotask (only Client Portal types): staff will find no type to use; "
                    "enable credit card or eCheck under Payment Types available in Autotask "
                    "(inferred)",
                ),
            )
        )
    if not state.us_usd:
        found.append(
            (
                _AT20_AT21_ON,
                UiWarning(
                    "AT-20",
                    "payment processing is only available to US-based customers whose "
                    f"internal currency is USD; this tenant is {state.country}/"
                    f"{state.internal_currency}",
                ),
            )
        )
    if state.other_gateways:
        found.append(
            (
                _AT20_AT21_ON,
                UiWarning(
                    "AT-21",
                    "another payment gateway is enabled "
                    f"({', '.join(state.other_gateways)}): only one should be enabled at a "
                    "time; nothing stops a payment being processed twice",
                ),
            )
        )
    return found


def _unknown_level(state: TenantState, audience: Audience) -> AtpayError:
    names = (
        [lvl.name for lvl in state.security_levels]
        if audience.kind == "staff"
        else [lvl.name for lvl in state.portal_security_levels]
    )
    what = "security level" if audience.kind == "staff" else "Client Portal security level"
    return AtpayError(
        f"tenant {state.tenant!r} has no {what} {audience.level!r}; "
        f"choose one of: {', '.join(names)}"
    )
