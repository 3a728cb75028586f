"""The planner: the ordered steps that take a tenant's Autotask state to its manifest.

Pure: no files, no clock, no store. The edges (`plan.build`, `plan.apply`) read
the state, decrypt keys only to fingerprint them, and pass everything in.

Steps follow SPEC section 6: activate → request the sales contact → record the
gateway → save keys → set payment types (Autotask, then Client Portal);
switching off runs the reverse (clear payment types → deactivate). The `after`
state is computed by chaining the simulation's own operations, so a step the
simulation would refuse (AT-1, AT-5, AT-6, AT-7, AT-20, AT-21, ...) makes the
tenant's plan a refusal up front instead of a failure half-way through apply.

Keys never enter this module: the edge passes keyed fingerprints (HMAC-SHA256
with a random per-tenant salt kept in our record), which tell a rotation in git
from a key re-saved in Autotask by hand (drift) without storing anything a key
could be recovered from.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from atpay_config.autotask import operations as ops
from atpay_config.autotask.operations import WriteResult
from atpay_config.autotask.tenant import TenantState, canonical_payment_types, key_mask
from atpay_config.errors import RefusedByAutotask
from atpay_config.manifest.model import ENVIRONMENTS, Environment, Manifest, PaymentType
from atpay_config.state.store import digest

KeyChange = Literal["none", "new", "rotated-in-git", "changed-in-autotask"]

FINGERPRINT_HEX: Final = 16
"""Hex digits kept of the HMAC: enough to tell keys apart, too few to be a key oracle."""

RECORD_FORMAT: Final = 1
"""Version of our record's shape (the JSON beside each tenant in the store)."""

# The step actions, in the documented order (SPEC section 6). Deactivation runs last.
ACTIVATE: Final = ops.ACTIVATE
REQUEST_SALES_CONTACT: Final = ops.REQUEST_SALES_CONTACT
RECORD_GATEWAY: Final = ops.RECORD_GATEWAY
SAVE_KEYS: Final = ops.SAVE_KEYS
SET_PAYMENT_TYPES: Final = ops.SET_PAYMENT_TYPES
DEACTIVATE: Final = ops.DEACTIVATE


@dataclass(frozen=True)
class KeyFingerprints:
    """Keyed fingerprints of one tenant's two keys, and the salt they were keyed with."""

    salt: str
    public: str
    private: str

    @property
    def public_mask(self) -> str:
        return key_mask(self.public)

    @property
    def private_mask(self) -> str:
        return key_mask(self.private)

    def matches(self, record: Mapping[str, Any] | None) -> bool:
        """Whether our record holds exactly these fingerprints (same salt, same keys)."""
        if not record:
            return False
        return (
            record.get("salt") == self.salt
            and record.get("public_fingerprint") == self.public
            and record.get("private_fingerprint") == self.private
        )


def fingerprint(value: str, *, salt: str) -> str:
    """HMAC-SHA256 of a key keyed with the tenant's salt, truncated (SPEC section 5)."""
    mac = hmac.new(bytes.fromhex(salt), value.encode("utf-8"), hashlib.sha256)
    return mac.hexdigest()[:FINGERPRINT_HEX]


def key_fingerprints(public_key: str, private_key: str, *, salt: str) -> KeyFingerprints:
    """Fingerprint both keys; the caller drops the plaintext right after."""
    return KeyFingerprints(
        salt=salt,
        public=fingerprint(public_key, salt=salt),
        private=fingerprint(private_key, salt=salt),
    )


Change = Literal["+", "~", "-"]
"""How a step reads in a plan: `+` switches something on, `~` changes it, `-` switches it off."""


def change_of(step: PlanStep, before: TenantState, key_change: str) -> Change:
    """The marker of `step` run on `before` (computed once, saved with the plan)."""
    if step.action == ACTIVATE:
        return "+"
    if step.action == DEACTIVATE:
        return "-"
    if step.action == REQUEST_SALES_CONTACT:
        return "~" if before.sales_contact_requested else "+"
    if step.action == RECORD_GATEWAY:
        return "+" if step.args.get("account_active") else "-"
    if step.action == SAVE_KEYS:
        return "+" if key_change == "new" else "~"
    if step.action == SET_PAYMENT_TYPES:
        if not step.args.get("types"):
            return "-"
        return "~" if before.payment_types.for_environment(step.args["environment"]) else "+"
    return "~"


@dataclass(frozen=True)
class PlanStep:
    """One write, as the simulation's operation and its JSON-safe arguments (never a key)."""

    tenant: str
    action: str
    fact: str
    description: str
    args: Mapping[str, Any] = field(default_factory=dict)
    change: Change = "~"

    @property
    def label(self) -> str:
        """Short name for summaries: "activate", "save keys", "clear payment types"..."""
        if self.action == SET_PAYMENT_TYPES and not self.args.get("types"):
            return "clear payment types"
        return self.action.replace("_", " ")

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "fact": self.fact,
            "description": self.description,
            "args": dict(self.args),
            "change": self.change,
        }

    @classmethod
    def from_dict(cls, tenant: str, doc: Mapping[str, Any]) -> PlanStep:
        return cls(
            tenant=tenant,
            action=str(doc["action"]),
            fact=str(doc["fact"]),
            description=str(doc["description"]),
            args=dict(doc.get("args") or {}),
            change=doc.get("change", "~"),
        )


@dataclass(frozen=True)
class TenantPlan:
    """What apply would do to one tenant, from which state version, and why not if refused."""

    tenant: str
    manifest: Manifest
    steps: tuple[PlanStep, ...]
    before: TenantState
    after: TenantState
    state_version: int
    notes: tuple[str, ...] = ()
    key_change: KeyChange = "none"
    refusal: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.steps) and self.refusal is None


def desired_digest(manifest: Manifest, keys: KeyFingerprints | None) -> str:
    """Digest of what the manifest asks for, with key fingerprints in place of keys.

    Our record keeps it as "what was last applied"; comments, labels and key
    ciphertext (re-encrypting changes it) do not move it.
    """
    types = canonical_payment_types(manifest.payment_types)
    return digest(
        {
            "tenant": manifest.tenant,
            "activation": manifest.activation,
            "sales_contact": [manifest.sales_contact_requested, manifest.sales_contact_email],
            "gateway_account_active": manifest.gateway_account_active,
            "keys": None if keys is None else [keys.public, keys.private],
            "payment_types": [list(types.autotask), list(types.client_portal)],
        }
    )


def run_step(state: TenantState, step: PlanStep, *, user: str, now: str) -> WriteResult:
    """Perform one step on `state` through the simulation (pure); raises RefusedByAutotask."""
    args = step.args
    if step.action == ACTIVATE:
        return ops.activate(state, user=user, now=now)
    if step.action == DEACTIVATE:
        return ops.deactivate(state, user=user, now=now)
    if step.action == REQUEST_SALES_CONTACT:
        return ops.request_sales_contact(state, user=user, now=now, email=args.get("email"))
    if step.action == RECORD_GATEWAY:
        return ops.record_gateway(
            state, user=user, now=now, account_active=bool(args["account_active"])
        )
    if step.action == SAVE_KEYS:
        return ops.save_keys(
            state,
            user=user,
            now=now,
            public_mask=str(args["public_mask"]),
            private_mask=str(args["private_mask"]),
        )
    if step.action == SET_PAYMENT_TYPES:
        environment: Environment = args["environment"]
        types: list[PaymentType] = list(args["types"])
        return ops.set_payment_types(
            state, user=user, now=now, environment=environment, types=types
        )
    raise ValueError(f"unknown plan step action {step.action!r}")


def record_after(
    record: Mapping[str, Any] | None,
    step: PlanStep,
    state: TenantState,
    *,
    last: bool,
    manifest_digest: str,
    user: str,
    now: str,
) -> dict[str, Any] | None:
    """Our record after `step` produced `state`, or None when the step leaves it alone.

    The key-saving step records the salt, the fingerprints and Autotask's saved-at
    in the same write as the keys, so a crash never leaves them apart (SPEC
    section 6); the last step records the manifest digest as "last applied".
    """
    if step.action != SAVE_KEYS and not last:
        return None
    updated: dict[str, Any] = {"format": RECORD_FORMAT, **(record or {})}
    if step.action == SAVE_KEYS:
        updated.update(
            salt=step.args["salt"],
            public_fingerprint=step.args["public_fingerprint"],
            private_fingerprint=step.args["private_fingerprint"],
            keys_saved_at=state.public_key.saved_at,
        )
    if last:
        updated.update(manifest_digest=manifest_digest, applied_at=now, applied_by=user)
    return updated


def plan_tenant(
    manifest: Manifest,
    stored_state: TenantState,
    record: Mapping[str, Any] | None,
    *,
    key_fingerprints: KeyFingerprints | None,
    user: str | None,
    now: str,
    state_version: int,
) -> TenantPlan:
    """The ordered steps taking `stored_state` to `manifest`, checked by the simulation."""
    tenant = manifest.tenant
    notes: list[str] = []
    key_change: KeyChange = "none"
    wanted: list[PlanStep] = []
    state = stored_state

    def step(action: str, fact: str, description: str, **args: Any) -> None:
        wanted.append(PlanStep(tenant, action, fact, description, args))

    if manifest.has_both_keys and key_fingerprints is None:
        return _refused(
            manifest,
            stored_state,
            state_version,
            notes,
            key_change,
            f"tenant {tenant!r}: the keys in {manifest.file} could not be fingerprinted; "
            "make an age identity available (SOPS_AGE_KEY_FILE or SOPS_AGE_KEY)",
        )

    if manifest.activation == "active":
        if not state.active:
            step(ACTIVATE, "AT-3", "activate Autotask Electronic Payments (Admin > Activations)")
        if manifest.sales_contact_requested:
            if (
                not state.sales_contact_requested
                or state.sales_contact_email != manifest.sales_contact_email
            ):
                email = manifest.sales_contact_email
                step(
                    REQUEST_SALES_CONTACT,
                    "AT-5",
                    'request the ConnectBooster sales contact ("GET ME A DEMO!")'
                    + (f"; confirmation email to {email}" if email else ""),
                    email=email,
                )
        elif state.sales_contact_requested:
            notes.append(
                "the ConnectBooster sales contact was already requested; Autotask cannot "
                "withdraw the request (AT-5), so the manifest's omission changes nothing"
            )
        if state.gateway_account_active != manifest.gateway_account_active:
            flag = "active" if manifest.gateway_account_active else "inactive"
            step(
                RECORD_GATEWAY,
                "AT-6",
                f"record the BNG Gateway account as {flag}",
                account_active=manifest.gateway_account_active,
            )
        key_change = _key_change(manifest, stored_state, record, key_fingerprints, notes)
        if key_change != "none":
            assert key_fingerprints is not None
            fps = key_fingerprints
            verb = {"new": "save", "rotated-in-git": "replace", "changed-in-autotask": "re-save"}[
                key_change
            ]
            step(
                SAVE_KEYS,
                "AT-7",
                f"{verb} the public key {fps.public_mask} and the private key "
                f"{fps.private_mask} (masked on save, AT-8)",
                public_mask=fps.public_mask,
                private_mask=fps.private_mask,
                public_fingerprint=fps.public,
                private_fingerprint=fps.private,
                salt=fps.salt,
            )
        desired = canonical_payment_types(manifest.payment_types)
        for environment in ENVIRONMENTS:
            types = desired.for_environment(environment)
            if state.payment_types.for_environment(environment) != types:
                label = ops.ENVIRONMENT_LABELS[environment]
                if types:
                    text, fact = f"set {label}: {', '.join(types)}", "AT-10"
                else:
                    text, fact = f"clear {label} (AT-12)", "AT-12"
                step(SET_PAYMENT_TYPES, fact, text, environment=environment, types=list(types))
    else:
        if state.active:
            for environment in ENVIRONMENTS:
                if state.payment_types.for_environment(environment):
                    label = ops.ENVIRONMENT_LABELS[environment]
                    step(
                        SET_PAYMENT_TYPES,
                        "AT-16",
                        f"clear {label} before deactivating (AT-12)",
                        environment=environment,
                        types=[],
                    )
            step(
                DEACTIVATE, "AT-3", "deactivate Autotask Electronic Payments (Admin > Activations)"
            )
        if state.gateway_account_active != manifest.gateway_account_active:
            notes.append(
                "the BNG Gateway flag can only be recorded while the feature is active (AT-3); "
                "left as it is"
            )
    if state.keys_saved and not manifest.has_both_keys:
        notes.append(
            "keys are saved in Autotask but absent from the manifest: Autotask cannot remove "
            "saved keys (AT-8); they stay saved, masked"
        )

    if not wanted:
        return TenantPlan(
            tenant,
            manifest,
            (),
            stored_state,
            stored_state,
            state_version,
            tuple(notes),
            key_change,
            None,
        )
    acting = user if user is not None else stored_state.default_user()
    if acting is None:
        return _refused(
            manifest,
            stored_state,
            state_version,
            notes,
            key_change,
            f"tenant {tenant!r}: no user at the API User level to act as; pass --as USER "
            "naming a user whose level may configure Finance, Accounting & Invoicing (AT-1)",
        )
    steps: list[PlanStep] = []
    for planned in wanted:
        try:
            result = run_step(state, planned, user=acting, now=now)
        except RefusedByAutotask as exc:
            return _refused(manifest, stored_state, state_version, notes, key_change, exc.message)
        if result.changed:
            steps.append(replace(planned, change=change_of(planned, state, key_change)))
            state = result.state
    return TenantPlan(
        tenant,
        manifest,
        tuple(steps),
        stored_state,
        state,
        state_version,
        tuple(notes),
        key_change,
        None,
    )


def _key_change(
    manifest: Manifest,
    state: TenantState,
    record: Mapping[str, Any] | None,
    fps: KeyFingerprints | None,
    notes: list[str],
) -> KeyChange:
    """New keys, a rotation in git, or keys changed in Autotask by hand (drift)."""
    if not manifest.has_both_keys or fps is None:
        return "none"
    if not state.keys_saved:
        return "new"
    if not fps.matches(record):
        if record and record.get("public_fingerprint"):
            notes.append("keys rotated in git: the manifest's keys differ from the last applied")
            return "rotated-in-git"
        notes.append(
            "keys are saved in Autotask but were never applied by atpay; re-saving them from git"
        )
        return "changed-in-autotask"
    assert record is not None
    recorded = record.get("keys_saved_at")
    if state.public_key.saved_at != recorded or state.private_key.saved_at != recorded:
        notes.append(
            f"drift: the keys were changed in Autotask by hand (saved at "
            f"{state.public_key.saved_at}, our last apply saved them at {recorded}); "
            "re-saving them from git"
        )
        return "changed-in-autotask"
    return "none"


def _refused(
    manifest: Manifest,
    state: TenantState,
    state_version: int,
    notes: list[str],
    key_change: KeyChange,
    reason: str,
) -> TenantPlan:
    """A refused plan changes nothing: no steps, `after` is `before`."""
    return TenantPlan(
        manifest.tenant,
        manifest,
        (),
        state,
        state,
        state_version,
        tuple(notes),
        key_change,
        reason,
    )


def missing_tenant(manifest: Manifest, *, store: str) -> TenantPlan:
    """The plan for a tenant the state store does not know: refused, with the fix."""
    return _refused(
        manifest,
        TenantState(manifest.tenant),
        0,
        [],
        "none",
        f"tenant {manifest.tenant!r} has no simulated Autotask state in {store}; initialise it "
        "with `atpay state init FIXTURE`",
    )
