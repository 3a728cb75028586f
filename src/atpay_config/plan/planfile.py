"""Saved plans (`atpay plan --out FILE`): JSON bound to the manifests and state it came from.

A plan file holds the input paths with a sha256 of every input file's bytes,
and per tenant the state version it was planned from and its steps. Steps carry
key masks, keyed fingerprints and the salt, never a key: apply decrypts the
keys from the manifests again and checks they still fingerprint the same.
Applying refuses a stale plan: any input file changed, or any tenant's state
version moved (Terraform's "saved plan is stale").
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from atpay_config.errors import AtpayError, StateError, UsageError
from atpay_config.files import write_atomic
from atpay_config.manifest.loader import load_file
from atpay_config.manifest.model import Manifest
from atpay_config.plan.build import Plan, file_digests
from atpay_config.plan.planner import SAVE_KEYS, PlanStep
from atpay_config.state.store import StateStore

PLAN_KIND: Final = "atpay-plan"
PLAN_VERSION: Final = 1
STALE_SHOWN: Final = 5
"""How many stale tenants or files a message names before it says "and N more"."""


@dataclass(frozen=True)
class SavedTenant:
    """One tenant of a saved plan: where its manifest is, the version planned from, the steps."""

    tenant: str
    file: str
    document: int
    state_version: int
    user: str | None
    key_change: str
    notes: tuple[str, ...]
    refusal: str | None
    desired_digest: str
    steps: tuple[PlanStep, ...]

    @property
    def saves_keys(self) -> PlanStep | None:
        return next((s for s in self.steps if s.action == SAVE_KEYS), None)


@dataclass(frozen=True)
class SavedPlan:
    """A plan read back from its file."""

    path: str
    created_at: str
    paths: tuple[str, ...]
    store: str
    user: str | None
    files: Mapping[str, str]
    manifest_digest: str
    tenants: tuple[SavedTenant, ...]


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The saved form of `plan` (JSON-safe; masks and fingerprints only)."""
    tenants = []
    for tp in plan.tenant_plans:
        acting = plan.user if plan.user is not None else tp.before.default_user()
        tenants.append(
            {
                "tenant": tp.tenant,
                "file": tp.manifest.file,
                "document": tp.manifest.document,
                "state_version": tp.state_version,
                "user": acting,
                "key_change": tp.key_change,
                "notes": list(tp.notes),
                "refusal": tp.refusal,
                "desired_digest": plan.desired_digests.get(tp.tenant, ""),
                "steps": [step.to_dict() for step in tp.steps],
            }
        )
    return {
        "kind": PLAN_KIND,
        "version": PLAN_VERSION,
        "created_at": plan.created_at,
        "paths": list(plan.paths),
        "state": plan.store,
        "user": plan.user,
        "files": dict(plan.files),
        "manifest_digest": plan.manifest_digest,
        "tenants": tenants,
    }


def write_plan(plan: Plan, path: str) -> None:
    """Write the plan file atomically, readable by its owner only (it names tenants)."""
    text = json.dumps(plan_to_dict(plan), indent=1, ensure_ascii=False) + "\n"
    write_atomic(path, text, mode=0o600)


def is_plan_file(path: str) -> bool:
    """Whether `path` looks like a saved plan (JSON starting with our kind), cheaply."""
    if not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as handle:
            head = handle.read(200)
    except OSError:
        return False
    return head.lstrip().startswith(b"{") and PLAN_KIND.encode() in head


def read_plan(path: str) -> SavedPlan:
    """Read a plan file; AtpayError when it is not one, or from another format version."""
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except OSError as exc:
        raise AtpayError(f"{path}: cannot read the plan file ({exc.strerror})") from None
    except (ValueError, UnicodeDecodeError):
        raise AtpayError(
            f"{path}: not a plan file (not JSON); write one with `atpay plan --out`"
        ) from None
    if not isinstance(doc, dict) or doc.get("kind") != PLAN_KIND:
        raise AtpayError(f"{path}: not an atpay plan file; write one with `atpay plan --out`")
    if doc.get("version") != PLAN_VERSION:
        raise AtpayError(
            f"{path}: plan format version {doc.get('version')!r}, this atpay reads "
            f"{PLAN_VERSION}; re-run `atpay plan --out` with this version"
        )
    try:
        tenants = tuple(
            SavedTenant(
                tenant=str(t["tenant"]),
                file=str(t["file"]),
                document=int(t["document"]),
                state_version=int(t["state_version"]),
                user=t.get("user"),
                key_change=str(t["key_change"]),
                notes=tuple(t.get("notes") or ()),
                refusal=t.get("refusal"),
                desired_digest=str(t.get("desired_digest") or ""),
                steps=tuple(PlanStep.from_dict(str(t["tenant"]), s) for s in t["steps"]),
            )
            for t in doc["tenants"]
        )
        return SavedPlan(
            path=path,
            created_at=str(doc["created_at"]),
            paths=tuple(doc["paths"]),
            store=str(doc.get("state", "")),
            user=doc.get("user"),
            files=dict(doc["files"]),
            manifest_digest=str(doc["manifest_digest"]),
            tenants=tenants,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise AtpayError(f"{path}: damaged plan file ({exc}); re-run `atpay plan --out`") from None


def _named(items: Sequence[str]) -> str:
    shown = ", ".join(items[:STALE_SHOWN])
    more = len(items) - STALE_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def check_fresh(saved: SavedPlan, *, store: StateStore) -> None:
    """Refuse a stale plan: an input file changed, or a tenant's state version moved."""
    try:
        now_files = file_digests(saved.paths)
    except UsageError:
        now_files = {}
    changed = sorted(
        {f for f, d in saved.files.items() if now_files.get(f) != d}
        | (set(now_files) - set(saved.files))
    )
    if changed:
        raise StateError(
            f"saved plan {saved.path} is stale: {_named(changed)} changed since it was made; "
            "re-run `atpay plan --out` and review the new plan"
        )
    names = [t.tenant for t in saved.tenants]
    versions = store.versions(names)
    moved = [
        f"{t.tenant} (planned at version {t.state_version}, "
        f"now {versions.get(t.tenant, 'missing')})"
        for t in saved.tenants
        if versions.get(t.tenant) != t.state_version
    ]
    if moved:
        raise StateError(
            f"saved plan {saved.path} is stale: the state of {_named(moved)} changed since it "
            "was made; re-run `atpay plan --out` and review the new plan"
        )


def saved_manifests(saved: SavedPlan, tenants: Sequence[SavedTenant]) -> dict[str, Manifest]:
    """The manifests of `tenants` read back from their files (digests already checked)."""
    by_file: dict[str, list[SavedTenant]] = {}
    for t in tenants:
        by_file.setdefault(t.file, []).append(t)
    out: dict[str, Manifest] = {}
    for file, members in by_file.items():
        source = load_file(file)
        docs = {doc.index: doc for doc in source.documents}
        for t in members:
            doc = docs.get(t.document)
            if doc is None or not isinstance(doc.data, dict):
                raise StateError(
                    f"saved plan {saved.path}: {file} no longer holds tenant {t.tenant!r}"
                )
            out[t.tenant] = Manifest.from_document(doc.data, file=file, document=t.document)
    return out
