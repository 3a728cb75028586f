"""The plan edge: validate the manifests, read tenant states in bulk, fingerprint keys, plan.

Keys are decrypted one file at a time, fingerprinted with the tenant's salt and
dropped; nothing here keeps a plaintext key past the file it came from. States
are read in batches (`BATCH` tenants per query) and turned into plans batch by
batch, so memory grows with the plans, not with the raw rows; `iter_tenant_plans`
yields them as they are made, for a caller (the report) that keeps none.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from atpay_config.autotask.tenant import TenantState
from atpay_config.errors import AtpayError, SecretsError, UsageError
from atpay_config.manifest.loader import iter_manifest_paths
from atpay_config.manifest.model import Manifest
from atpay_config.plan.planner import (
    KeyFingerprints,
    TenantPlan,
    desired_digest,
    key_fingerprints,
    missing_tenant,
    plan_tenant,
)
from atpay_config.rules.finding import Finding
from atpay_config.state.store import StateStore, canonical_json
from atpay_config.validation import FileRule, ValidationRun, load_policies, validate_paths

BATCH: Final = 500
"""Tenants per bulk read: few queries, and a bounded number of raw rows in memory."""

SALT_BYTES: Final = 16


@dataclass
class Plan:
    """A whole plan: per-tenant plans plus what it is bound to (files, state versions)."""

    paths: tuple[str, ...]
    created_at: str
    store: str
    user: str | None
    validation: ValidationRun
    tenant_plans: list[TenantPlan] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # display path -> sha256 of its bytes
    state_versions: dict[str, int] = field(default_factory=dict)
    key_fingerprints: dict[str, KeyFingerprints] = field(default_factory=dict)
    desired_digests: dict[str, str] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # ours, for changed tenants

    @property
    def findings(self) -> list[Finding]:
        return self.validation.findings

    @property
    def has_errors(self) -> bool:
        return self.validation.has_errors()

    @property
    def manifest_digest(self) -> str:
        """One digest over every input file's bytes: any edit makes a saved plan stale."""
        return hashlib.sha256(canonical_json(self.files).encode("utf-8")).hexdigest()

    @property
    def refused(self) -> list[TenantPlan]:
        return [tp for tp in self.tenant_plans if tp.refusal is not None]

    @property
    def changed(self) -> list[TenantPlan]:
        return [tp for tp in self.tenant_plans if tp.changed]


def new_salt() -> str:
    """A random per-tenant salt for keyed fingerprints (kept in our record)."""
    return os.urandom(SALT_BYTES).hex()


def file_digests(paths: Sequence[str]) -> dict[str, str]:
    """sha256 of every input file's bytes, by display path."""
    out: dict[str, str] = {}
    try:
        found = iter_manifest_paths(list(paths))
    except FileNotFoundError as exc:
        raise UsageError(f"{exc.args[0]}: no such file or directory") from None
    for path, shown in found:
        out[shown] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


class KeyReader:
    """Plaintext keys of one manifest, decrypted per file and forgotten with the next file.

    Values that are not `ENC[...]` envelopes are taken as written: validation
    already reported them (AT005), and only a waiver lets such a file get here.
    """

    def __init__(self, identities: Sequence[Any] | None) -> None:
        self._identities = identities
        self._file: str | None = None
        self._keys: dict[int, dict[str, str]] = {}

    def _identities_or_load(self) -> Sequence[Any]:
        if self._identities is None:
            from atpay_config.secrets.identities import load_identities

            self._identities = load_identities()
        return self._identities

    def keys(self, manifest: Manifest) -> tuple[str, str]:
        public, private = manifest.public_key, manifest.private_key
        if public is None or private is None:
            raise ValueError("manifest has no keys")
        if not _encrypted(public) and not _encrypted(private):
            return public, private
        if self._file != manifest.file:
            self._file, self._keys = None, {}
            identities = self._identities_or_load()
            if not identities:
                raise SecretsError(
                    f"{manifest.file}: keys are encrypted and no age identity is configured; "
                    "set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY"
                )
            from atpay_config.secrets.sops import decrypt_keys

            try:
                with open(manifest.file, encoding="utf-8") as handle:
                    text = handle.read()
            except OSError as exc:
                raise UsageError(f"{manifest.file}: cannot read ({exc.strerror})") from None
            self._keys = decrypt_keys(text, path=manifest.file, identities=identities)
            self._file = manifest.file
        found = self._keys.get(manifest.document, {})
        plain_public = found.get("publicKey", public)
        plain_private = found.get("privateKey", private)
        return plain_public, plain_private

    def fingerprints(self, manifest: Manifest, *, salt: str) -> KeyFingerprints:
        public, private = self.keys(manifest)
        return key_fingerprints(public, private, salt=salt)

    def forget(self) -> None:
        self._file, self._keys = None, {}


def _encrypted(value: str) -> bool:
    """An `ENC[...]` value (well-formed or not: decryption reports a broken one)."""
    return value.startswith("ENC[")


def _file_rules(identities: Sequence[Any] | None) -> list[FileRule]:
    """The decrypting checks (AT005 MAC, AT006), when the secrets package is installed."""
    try:
        from atpay_config.rules.key_secrets import KeySecretsRule
    except ImportError:
        return []
    return [KeySecretsRule(identity_source=lambda: list(identities or []))]


class _Interner:
    """One shared copy of equal security levels and user lists across tenants.

    Most tenants share the built-in levels and the same GitOps user; keeping one
    copy keeps a 10,000-tenant plan well under the memory budget.
    """

    def __init__(self) -> None:
        self._seen: dict[Any, Any] = {}

    def state(self, state: TenantState) -> TenantState:
        return replace(
            state,
            security_levels=self._one(state.security_levels),
            portal_security_levels=self._one(state.portal_security_levels),
            users=self._one(state.users),
        )

    def _one(self, value: Any) -> Any:
        return self._seen.setdefault(value, value)


def select(manifests: Iterable[Manifest], tenants: Sequence[str] | None) -> list[Manifest]:
    """The manifests of `tenants` (all when None); AtpayError for a name no manifest declares."""
    chosen = list(manifests)
    if tenants is None:
        return chosen
    wanted = set(tenants)
    unknown = wanted - {m.tenant for m in chosen}
    if unknown:
        raise AtpayError(
            f"--tenant {', '.join(sorted(unknown))}: no manifest declares "
            f"{'it' if len(unknown) == 1 else 'them'}; check the name and the paths"
        )
    return [m for m in chosen if m.tenant in wanted]


def start_plan(
    paths: Sequence[str],
    *,
    store: StateStore,
    policy_dirs: Sequence[str] = (),
    identities: Sequence[Any] | None = None,
    user: str | None = None,
    now: str,
    today: dt.date,
    tenants: Sequence[str] | None = None,
    validation: ValidationRun | None = None,
) -> tuple[Plan, list[Manifest]]:
    """Validate `paths`: the plan's header (no tenant plans yet) and the manifests to plan.

    `validation` is a run the caller already made over `paths` (with
    `keep_manifests=True`), so the CLI validates exactly as `atpay validate` does.
    With validation errors there is nothing to plan: the caller refuses up front
    and shows the findings.
    """
    run = validation
    if run is None:
        run = validate_paths(
            paths,
            policies=load_policies(policy_dirs),
            file_rules=_file_rules(identities),
            today=today,
            keep_manifests=True,
        )
    plan = Plan(paths=tuple(paths), created_at=now, store=store.url, user=user, validation=run)
    if run.has_errors():
        return plan, []
    plan.files = file_digests(paths)
    manifests = select(run.manifests, tenants)
    run.manifests = []  # the plans carry them from here
    return plan, manifests


def iter_tenant_plans(
    manifests: Sequence[Manifest],
    *,
    store: StateStore,
    identities: Sequence[Any] | None = None,
    user: str | None = None,
    now: str,
    plan: Plan | None = None,
) -> Iterator[TenantPlan]:
    """Plan each manifest against `store`, yielding tenant plans one batch of states at a time.

    Only `BATCH` raw states are in memory at once, so a caller that handles each
    tenant plan and drops it (the report) stays flat as tenants grow. With `plan`,
    what apply and saved plans need (state versions, key fingerprints, desired
    digests, our records of changed tenants) is recorded into it as well.
    """
    reader = KeyReader(identities)
    interner = _Interner()
    try:
        for start in range(0, len(manifests), BATCH):
            batch = manifests[start : start + BATCH]
            stored = store.read_tenants([m.tenant for m in batch])
            for manifest in batch:
                found = stored.get(manifest.tenant)
                fps = None
                if found is None:
                    tenant_plan = missing_tenant(manifest, store=store.url)
                else:
                    if manifest.has_both_keys:
                        salt = (found.record or {}).get("salt") or new_salt()
                        fps = reader.fingerprints(manifest, salt=str(salt))
                    tenant_plan = plan_tenant(
                        manifest,
                        interner.state(TenantState.from_dict(found.state)),
                        found.record,
                        key_fingerprints=fps,
                        user=user,
                        now=now,
                        state_version=found.version,
                    )
                if plan is not None:
                    if fps is not None:
                        plan.key_fingerprints[manifest.tenant] = fps
                    if found is not None:
                        plan.state_versions[manifest.tenant] = found.version
                    plan.desired_digests[manifest.tenant] = desired_digest(
                        manifest, plan.key_fingerprints.get(manifest.tenant)
                    )
                    if tenant_plan.changed and found is not None and found.record is not None:
                        plan.records[manifest.tenant] = found.record
                yield tenant_plan
    finally:
        reader.forget()


def build_plan(
    paths: Sequence[str],
    *,
    store: StateStore,
    policy_dirs: Sequence[str] = (),
    identities: Sequence[Any] | None = None,
    user: str | None = None,
    now: str,
    today: dt.date,
    tenants: Sequence[str] | None = None,
    validation: ValidationRun | None = None,
    on_tenant: Callable[[TenantPlan], None] | None = None,
) -> Plan:
    """Validate `paths` and plan every (selected) tenant against `store`, all in one `Plan`.

    `start_plan` then `iter_tenant_plans`, kept: what `atpay plan` and `apply` need.
    With validation errors the plan has no tenant plans.
    """
    plan, manifests = start_plan(
        paths,
        store=store,
        policy_dirs=policy_dirs,
        identities=identities,
        user=user,
        now=now,
        today=today,
        tenants=tenants,
        validation=validation,
    )
    for tenant_plan in iter_tenant_plans(
        manifests, store=store, identities=identities, user=user, now=now, plan=plan
    ):
        plan.tenant_plans.append(tenant_plan)
        if on_tenant is not None:
            on_tenant(tenant_plan)
    return plan
