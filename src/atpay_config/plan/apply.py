"""The apply edge: carry out approved plans, tenant by tenant, step by step, crash-safe.

Per tenant: take its lock (the holder names user, pid and host), then write
each step as its own transaction (`write_step`: state, audit entry and, for the
key-saving and the last step, our record, all at once, with an optimistic
version check). The first write's version check proves the state is the one
planned from, so no extra read is needed; if it moved, it is read again. A
SIGKILL between steps leaves a tenant part-way along the documented order,
which the simulation allows, and the next plan picks up from there. One
tenant's failure does not stop the others unless `fail_fast`.

Two kinds of target:
- from manifests (`atpay apply PATH…`): if the state moved, the tenant is
  re-planned under its lock against the state read then. Nothing left to do
  means another run applied it (no duplicate writes); steps that are not among
  the ones shown are refused, since that is not what was approved.
- from a saved plan (`atpay apply PLANFILE`): the state version under the lock
  must still be the planned one, and the keys must still fingerprint the same.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from atpay_config.autotask.tenant import TenantState
from atpay_config.errors import AtpayError, StateError
from atpay_config.manifest.model import Manifest
from atpay_config.plan.build import KeyReader, Plan, new_salt
from atpay_config.plan.planfile import SavedPlan, saved_manifests
from atpay_config.plan.planner import (
    SAVE_KEYS,
    KeyFingerprints,
    PlanStep,
    desired_digest,
    plan_tenant,
    record_after,
    run_step,
)
from atpay_config.state.store import StateStore, StepWrite, this_host

DEFAULT_LOCK_TIMEOUT: Final = 30.0

Status = Literal["applied", "unchanged", "failed", "skipped"]


@dataclass(frozen=True)
class ApplyTarget:
    """One tenant's approved work."""

    tenant: str
    steps: tuple[PlanStep, ...]
    state_version: int
    user: str | None
    manifest: Manifest | None = None  # set when re-planning under the lock
    before: TenantState | None = None  # the state the plan read (applied optimistically)
    record: Mapping[str, Any] | None = None
    fingerprints: KeyFingerprints | None = None
    desired_digest: str = ""
    saved: bool = False  # from a plan file: the version must not have moved


@dataclass(frozen=True)
class TenantOutcome:
    """What happened to one tenant: exactly which steps were and were not applied."""

    tenant: str
    status: Status
    applied: tuple[PlanStep, ...] = ()
    not_applied: tuple[PlanStep, ...] = ()
    message: str | None = None
    version: int | None = None


@dataclass
class ApplySummary:
    """Every tenant's outcome, in order."""

    outcomes: list[TenantOutcome] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def ok(self) -> bool:
        return not any(o.status in ("failed", "skipped") for o in self.outcomes)

    @property
    def steps_applied(self) -> int:
        return sum(len(o.applied) for o in self.outcomes)

    def describe(self) -> list[str]:
        """Lines for the end of an apply: failures in full, then one total line."""
        lines: list[str] = []
        for o in self.outcomes:
            if o.status == "failed":
                done = ", ".join(s.label for s in o.applied) or "nothing"
                left = ", ".join(s.label for s in o.not_applied) or "nothing"
                lines.append(f"{o.tenant}: FAILED: {o.message}")
                lines.append(f"  applied: {done}; not applied: {left}")
            elif o.status == "skipped":
                left = ", ".join(s.label for s in o.not_applied) or "nothing"
                lines.append(f"{o.tenant}: skipped ({o.message}); not applied: {left}")
            elif o.status == "applied":
                lines.append(
                    f"{o.tenant}: applied {len(o.applied)} step(s): "
                    + ", ".join(s.label for s in o.applied)
                )
            elif o.message:
                lines.append(f"{o.tenant}: {o.message}")
        lines.append(
            f"Apply {'complete' if self.ok else 'incomplete'}: {self.count('applied')} tenant(s) "
            f"changed ({self.steps_applied} step(s)), {self.count('unchanged')} unchanged, "
            f"{self.count('failed')} failed, {self.count('skipped')} skipped."
        )
        return lines


def clock() -> str:
    """Now, in UTC, to the microsecond: a hand re-save within the same second is still drift."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def holder_name() -> str:
    """Who holds a tenant lock: the OS user and this tool (pid and host are added by the store)."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = f"uid {os.getuid()}"
    return f"atpay apply by {who}@{this_host()}"


def targets_from_plan(plan: Plan) -> list[ApplyTarget]:
    """The changed tenants of a fresh plan, to be re-planned under their locks."""
    return [
        ApplyTarget(
            tenant=tp.tenant,
            steps=tp.steps,
            state_version=tp.state_version,
            user=plan.user,
            manifest=tp.manifest,
            before=tp.before,
            record=plan.records.get(tp.tenant),
            fingerprints=plan.key_fingerprints.get(tp.tenant),
            desired_digest=plan.desired_digests.get(tp.tenant, ""),
        )
        for tp in plan.tenant_plans
        if tp.changed
    ]


def targets_from_saved(saved: SavedPlan) -> list[ApplyTarget]:
    """The tenants of a saved plan with steps; their manifests only where keys are saved."""
    with_steps = [t for t in saved.tenants if t.steps and t.refusal is None]
    manifests = saved_manifests(saved, [t for t in with_steps if t.saves_keys])
    return [
        ApplyTarget(
            tenant=t.tenant,
            steps=t.steps,
            state_version=t.state_version,
            user=t.user,
            manifest=manifests.get(t.tenant),
            desired_digest=t.desired_digest,
            saved=True,
        )
        for t in with_steps
    ]


def _same_work(step: PlanStep) -> tuple[str, str]:
    """What a step does, for comparing a re-plan with the approved plan (masks aside)."""
    args = {
        k: v
        for k, v in step.args.items()
        if k in ("email", "account_active", "environment", "types")
    }
    return step.action, repr(sorted(args.items()))


def apply_targets(
    targets: Sequence[ApplyTarget],
    *,
    store: StateStore,
    identities: Sequence[Any] | None = None,
    holder: str | None = None,
    fail_fast: bool = False,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    now: Callable[[], str] = clock,
    on_done: Callable[[TenantOutcome], None] | None = None,
) -> ApplySummary:
    """Apply every target; the summary says exactly what was and was not applied."""
    summary = ApplySummary()
    reader = KeyReader(identities)
    who = holder or holder_name()
    stop: str | None = None
    try:
        for target in targets:
            if stop is not None:
                outcome = TenantOutcome(
                    target.tenant, "skipped", (), target.steps, f"--fail-fast after {stop} failed"
                )
            else:
                outcome = _apply_tenant(
                    target,
                    store=store,
                    reader=reader,
                    holder=who,
                    lock_timeout=lock_timeout,
                    now=now,
                )
                if outcome.status == "failed" and fail_fast:
                    stop = target.tenant
            summary.outcomes.append(outcome)
            if on_done is not None:
                on_done(outcome)
    finally:
        reader.forget()
    return summary


def _apply_tenant(
    target: ApplyTarget,
    *,
    store: StateStore,
    reader: KeyReader,
    holder: str,
    lock_timeout: float,
    now: Callable[[], str],
) -> TenantOutcome:
    applied: list[PlanStep] = []
    steps: tuple[PlanStep, ...] = target.steps
    try:
        with store.lock(target.tenant, holder=holder, timeout=lock_timeout):
            if target.before is not None:
                # Optimistic: the state the plan read is usually still current, and the
                # version check of the first write proves it; no extra read per tenant.
                try:
                    version = _write_steps(
                        target,
                        target.before,
                        target.state_version,
                        target.record,
                        steps,
                        target.desired_digest,
                        store=store,
                        now=now,
                        applied=applied,
                    )
                    return TenantOutcome(
                        target.tenant, "applied", tuple(applied), (), None, version
                    )
                except _Moved:
                    pass
            found = store.read_tenants([target.tenant]).get(target.tenant)
            if found is None:
                raise StateError(
                    f"tenant {target.tenant!r} is no longer in state store {store.url}"
                )
            state = TenantState.from_dict(found.state)
            version, record = found.version, found.record
            digest = target.desired_digest
            if target.saved:
                _check_saved(target, version=version, reader=reader)
            else:
                replanned = _replan(target, state, record, version, reader=reader, now=now())
                if replanned is None:
                    return TenantOutcome(
                        target.tenant,
                        "unchanged",
                        (),
                        (),
                        "already up to date (applied by another run meanwhile)",
                        version,
                    )
                steps, digest = replanned
            version = _write_steps(
                target,
                state,
                version,
                record,
                steps,
                digest,
                store=store,
                now=now,
                applied=applied,
            )
    except (AtpayError, _Moved) as exc:
        left = tuple(s for s in steps if s not in applied)
        message = exc.message if isinstance(exc, AtpayError) else str(exc)
        return TenantOutcome(target.tenant, "failed", tuple(applied), left, message, None)
    return TenantOutcome(target.tenant, "applied", tuple(applied), (), None, version)


class _Moved(Exception):
    """The tenant's version moved before our first write: read it again and re-plan."""


def _write_steps(
    target: ApplyTarget,
    state: TenantState,
    version: int,
    record: Mapping[str, Any] | None,
    steps: Sequence[PlanStep],
    digest: str,
    *,
    store: StateStore,
    now: Callable[[], str],
    applied: list[PlanStep],
) -> int:
    """Each step as its own versioned write (state, audit entry, record); the new version."""
    user = target.user if target.user is not None else state.default_user()
    if user is None:
        raise StateError(
            f"tenant {target.tenant!r}: no user at the API User level to act as; pass --as USER"
        )
    current = dict(record) if record is not None else None
    # Every step is computed first (pure, in memory), then written in one call: each step
    # is still its own versioned transaction, and `applied` grows as each is confirmed.
    writes: list[StepWrite] = []
    written: list[PlanStep] = []
    failure: AtpayError | None = None  # a step that cannot run: the ones before it still apply
    for index, step in enumerate(steps):
        stamp = now()
        try:
            result = run_step(state, step, user=user, now=stamp)
        except AtpayError as exc:
            failure = exc
            break
        if result.entry is None:
            continue
        new_record = record_after(
            current,
            step,
            result.state,
            last=index == len(steps) - 1,
            manifest_digest=digest,
            user=user,
            now=stamp,
        )
        writes.append(
            StepWrite(
                state=result.state.to_dict(), audit=[result.entry.to_dict()], record=new_record
            )
        )
        written.append(step)
        state = result.state
        current = new_record if new_record is not None else current
    if writes:
        try:
            version = store.write_steps(
                target.tenant,
                expected_version=version,
                steps=writes,
                on_written=lambda index, _version: applied.append(written[index]),
            )
        except StateError:
            if not applied and store.versions([target.tenant]).get(target.tenant) != version:
                raise _Moved(f"tenant {target.tenant!r} changed since it was read") from None
            raise
    if failure is not None:
        raise failure
    return version


def _check_saved(target: ApplyTarget, *, version: int, reader: KeyReader) -> None:
    """A saved plan applies only to the version it was made from, with the same keys."""
    if version != target.state_version:
        raise StateError(
            f"saved plan is stale for tenant {target.tenant!r}: planned at version "
            f"{target.state_version}, the state is now at {version}; re-run `atpay plan --out`"
        )
    save = next((s for s in target.steps if s.action == SAVE_KEYS), None)
    if save is None:
        return
    if target.manifest is None or not target.manifest.has_both_keys:
        raise StateError(
            f"saved plan saves keys for tenant {target.tenant!r} but its manifest has none now; "
            "re-run `atpay plan --out`"
        )
    fps = reader.fingerprints(target.manifest, salt=str(save.args["salt"]))
    if (fps.public, fps.private) != (
        save.args["public_fingerprint"],
        save.args["private_fingerprint"],
    ):
        raise StateError(
            f"the keys of tenant {target.tenant!r} in {target.manifest.file} no longer match the "
            "saved plan's fingerprints; re-run `atpay plan --out`"
        )


def _replan(
    target: ApplyTarget,
    state: TenantState,
    record: Mapping[str, Any] | None,
    version: int,
    *,
    reader: KeyReader,
    now: str,
) -> tuple[tuple[PlanStep, ...], str] | None:
    """The steps (and desired digest) against the state read under the lock; None: nothing left."""
    manifest = target.manifest
    assert manifest is not None
    fps = target.fingerprints
    if manifest.has_both_keys:
        salt = (record or {}).get("salt")
        if fps is None or (salt is not None and salt != fps.salt):
            # Another run saved keys (with its own salt) since we planned: compare like with like.
            fps = reader.fingerprints(manifest, salt=str(salt or new_salt()))
    plan = plan_tenant(
        manifest,
        state,
        record,
        key_fingerprints=fps,
        user=target.user,
        now=now,
        state_version=version,
    )
    if plan.refusal is not None:
        raise StateError(plan.refusal)
    if not plan.steps:
        return None
    approved = {_same_work(s) for s in target.steps}
    if any(_same_work(s) not in approved for s in plan.steps):
        raise StateError(
            f"tenant {target.tenant!r} changed since the plan was shown (now at version "
            f"{version}, planned at {target.state_version}); re-run `atpay apply` to review"
        )
    return plan.steps, desired_digest(manifest, fps)
