"""`atpay plan` and `atpay apply`: reconcile manifests with the simulated Autotask state.

Machine-readable output (the plan, the apply summary) goes to stdout; findings,
prompts, progress and diagnostics to stderr (SPEC section 7).
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from atpay_config.cli import cli
from atpay_config.cli.validate import ValidateOptions, run_validation, validation_result
from atpay_config.errors import AtpayError, ExitCode, UsageError
from atpay_config.plan.apply import (
    DEFAULT_LOCK_TIMEOUT,
    ApplySummary,
    ApplyTarget,
    TenantOutcome,
    apply_targets,
    clock,
    targets_from_plan,
    targets_from_saved,
)
from atpay_config.plan.build import Plan, iter_tenant_plans, start_plan
from atpay_config.plan.planfile import check_fresh, is_plan_file, read_plan, write_plan
from atpay_config.plan.planner import TenantPlan
from atpay_config.plan.render import PLAN_RENDERERS, render_saved, render_text
from atpay_config.report.findings import render_text as render_findings
from atpay_config.secrets.identities import load_identities
from atpay_config.state import DEFAULT_STATE, StateStore, open_store

if TYPE_CHECKING:
    from atpay_config.manifest.model import Manifest
    from atpay_config.secrets.age import Identity

REFUSALS_SHOWN = 20


def state_option(func: Any) -> Any:
    """`--state PATH|URL`, else `ATPAY_STATE`, else `.atpay/state.db` (SPEC section 6)."""
    return click.option(
        "--state",
        "state_url",
        envvar="ATPAY_STATE",
        default=DEFAULT_STATE,
        show_default=True,
        metavar="PATH|URL",
        help="State store: an SQLite path or postgresql://… (env ATPAY_STATE).",
    )(func)


def refuse_on_findings(plan: Plan, *, command: str) -> None:
    """Validation errors stop plan, apply and report before anything is planned."""
    run = plan.validation
    if run.has_errors():
        click.echo(render_findings(validation_result(run)), err=True)
        raise AtpayError(
            f"the manifests have validation errors (above); fix them, then {command} again"
        )
    warnings = run.summary.warnings
    if warnings:
        click.echo(
            f"atpay: {warnings} validation warning(s); `atpay validate` lists them", err=True
        )


def _refuse_if_refused(plan: Plan, *, fix: str) -> None:
    """Refused tenants: list why on stderr, then one error line (nothing is applied)."""
    refused = plan.refused
    if not refused:
        return
    for tp in refused[:REFUSALS_SHOWN]:
        click.echo(f"atpay: refused: {tp.refusal}", err=True)
    if len(refused) > REFUSALS_SHOWN:
        click.echo(f"atpay: … and {len(refused) - REFUSALS_SHOWN} more refused", err=True)
    raise AtpayError(f"the plan is refused for {len(refused)} tenant(s) (above); {fix}")


@dataclass(frozen=True)
class PlanStart:
    """Validated manifests ready to be planned tenant by tenant (`iter_tenant_plans`)."""

    plan: Plan
    manifests: list[Manifest]
    identities: list[Identity]
    now: str

    def tenant_plans(self, store: StateStore, *, keep: bool) -> Iterator[TenantPlan]:
        """The tenant plans; with `keep`, what apply and saved plans need is recorded too."""
        return iter_tenant_plans(
            self.manifests,
            store=store,
            identities=self.identities,
            user=self.plan.user,
            now=self.now,
            plan=self.plan if keep else None,
        )


def start_planning(
    store: StateStore,
    paths: Sequence[str],
    *,
    policy_dirs: Sequence[str],
    user: str | None,
    tenants: Sequence[str],
    command: str,
) -> PlanStart:
    """Validate exactly as `atpay validate` does; findings on stderr stop plan, apply, report."""
    today = dt.date.today()
    now = clock()
    try:
        identities = load_identities()
        options = ValidateOptions(
            paths=tuple(paths),
            output_format="text",
            strict=False,
            policy_dirs=tuple(policy_dirs),
            today=today,
        )
        plan, manifests = start_plan(
            paths,
            store=store,
            identities=identities,
            user=user,
            now=now,
            today=today,
            tenants=list(tenants) or None,
            validation=run_validation(options, keep_manifests=True),
        )
    except UsageError as exc:
        # plan/apply/report exit 1 on any error: 2 means "changes" under --detailed-exitcode.
        raise AtpayError(exc.message, hint=exc.hint) from None
    refuse_on_findings(plan, command=command)
    return PlanStart(plan, manifests, identities, now)


def make_plan(
    store: StateStore,
    paths: Sequence[str],
    *,
    policy_dirs: Sequence[str],
    user: str | None,
    tenants: Sequence[str],
) -> Plan:
    """The whole plan, kept for rendering, saving and applying."""
    started = start_planning(
        store, paths, policy_dirs=policy_dirs, user=user, tenants=tenants, command="plan"
    )
    started.plan.tenant_plans.extend(started.tenant_plans(store, keep=True))
    return started.plan


@cli.command("plan")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--format", "fmt", type=click.Choice(list(PLAN_RENDERERS)), default="text", show_default=True
)
@click.option("--out", "out", metavar="PLANFILE", help="Save the plan for `atpay apply PLANFILE`.")
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes (0: none, 1: error)."
)
@click.option("--tenant", "tenants", multiple=True, help="Plan only this tenant (repeatable).")
@click.option("--policies", "policy_dirs", multiple=True, help="Organisation policy folder.")
@state_option
@click.option("--as", "user", metavar="USER", help="Act as this Autotask user (default: API User).")
def plan_command(
    paths: tuple[str, ...],
    fmt: str,
    out: str | None,
    detailed_exitcode: bool,
    tenants: tuple[str, ...],
    policy_dirs: tuple[str, ...],
    state_url: str,
    user: str | None,
) -> None:
    """Show the ordered steps that take each tenant's Autotask state to its manifest."""
    with open_store(state_url) as store:
        plan = make_plan(store, paths, policy_dirs=policy_dirs, user=user, tenants=tenants)
    click.echo(PLAN_RENDERERS[fmt](plan))
    _refuse_if_refused(plan, fix="fix the manifests, the fixtures or --as, then plan again")
    if out is not None:
        write_plan(plan, out)
        click.echo(f"atpay: plan saved to {out}; apply it with `atpay apply {out}`", err=True)
    if detailed_exitcode and plan.changed:
        sys.exit(ExitCode.CHANGES)


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _approve(auto_approve: bool) -> None:
    if auto_approve:
        return
    if not _stdin_is_terminal():
        raise AtpayError(
            "refusing to ask for approval: stdin is not a terminal; "
            "pass --auto-approve to apply without asking"
        )
    if not click.confirm("Apply these changes?", default=False, err=True):
        raise AtpayError("apply cancelled; nothing was changed")


@contextmanager
def _progress(count: int) -> Iterator[Any]:
    """A progress bar across tenants on stderr, only when stderr is a terminal."""
    if count > 1 and sys.stderr.isatty():
        with click.progressbar(length=count, label="Applying", file=sys.stderr) as bar:
            yield lambda _outcome: bar.update(1)
    else:
        yield None


def _run_apply(
    targets: list[ApplyTarget],
    *,
    store: StateStore,
    fail_fast: bool,
    lock_timeout: float,
) -> ApplySummary:
    with _progress(len(targets)) as on_done:
        callback: Any = on_done
        return apply_targets(
            targets, store=store, fail_fast=fail_fast, lock_timeout=lock_timeout, on_done=callback
        )


def _report(summary: ApplySummary) -> None:
    for line in summary.describe():
        click.echo(line)
    if not summary.ok:
        failed = [o.tenant for o in summary.outcomes if o.status == "failed"]
        raise AtpayError(
            f"apply failed for {len(failed)} tenant(s) ({', '.join(failed[:REFUSALS_SHOWN])}); "
            "the rest is applied as listed; fix the cause and apply again"
        )


@cli.command("apply")
@click.argument("paths", nargs=-1, required=True)
@click.option("--auto-approve", is_flag=True, help="Apply without asking (CI).")
@click.option("--fail-fast", is_flag=True, help="Stop at the first tenant that fails.")
@click.option("--tenant", "tenants", multiple=True, help="Apply only this tenant (repeatable).")
@click.option("--policies", "policy_dirs", multiple=True, help="Organisation policy folder.")
@state_option
@click.option("--as", "user", metavar="USER", help="Act as this Autotask user (default: API User).")
@click.option(
    "--lock-timeout",
    type=float,
    default=DEFAULT_LOCK_TIMEOUT,
    show_default=True,
    help="Seconds to wait for another run's tenant lock.",
)
def apply_command(
    paths: tuple[str, ...],
    auto_approve: bool,
    fail_fast: bool,
    tenants: tuple[str, ...],
    policy_dirs: tuple[str, ...],
    state_url: str,
    user: str | None,
    lock_timeout: float,
) -> None:
    """Apply the plan for PATH… (manifests) or a saved PLANFILE; asks unless --auto-approve."""
    if len(paths) == 1 and is_plan_file(paths[0]):
        _apply_saved(
            paths[0],
            auto_approve=auto_approve,
            fail_fast=fail_fast,
            tenants=tenants,
            state_url=state_url,
            user=user,
            policy_dirs=policy_dirs,
            lock_timeout=lock_timeout,
        )
        return
    with open_store(state_url) as store:
        plan = make_plan(store, paths, policy_dirs=policy_dirs, user=user, tenants=tenants)
        click.echo(render_text(plan))
        _refuse_if_refused(plan, fix="nothing applied; fix them, or leave them out with --tenant")
        targets = targets_from_plan(plan)
        if not targets:
            return
        _approve(auto_approve)
        summary = _run_apply(targets, store=store, fail_fast=fail_fast, lock_timeout=lock_timeout)
    _report(summary)


def _apply_saved(
    path: str,
    *,
    auto_approve: bool,
    fail_fast: bool,
    tenants: Sequence[str],
    state_url: str,
    user: str | None,
    policy_dirs: Sequence[str],
    lock_timeout: float,
) -> None:
    if user is not None or policy_dirs:
        raise AtpayError(
            "a saved plan fixes the acting user and was validated when made; "
            "drop --as/--policies or plan again"
        )
    saved = read_plan(path)
    refused = [t for t in saved.tenants if t.refusal is not None]
    if refused:
        raise AtpayError(
            f"saved plan {path} is refused for {len(refused)} tenant(s) "
            f"({', '.join(t.tenant for t in refused[:REFUSALS_SHOWN])}); plan again"
        )
    with open_store(state_url) as store:
        check_fresh(saved, store=store)
        click.echo(render_saved(saved))
        targets = targets_from_saved(saved)
        if tenants:
            unknown = set(tenants) - {t.tenant for t in saved.tenants}
            if unknown:
                raise AtpayError(f"--tenant {', '.join(sorted(unknown))}: not in the saved plan")
            targets = [t for t in targets if t.tenant in set(tenants)]
        if not targets:
            return
        _approve(auto_approve)
        summary = _run_apply(targets, store=store, fail_fast=fail_fast, lock_timeout=lock_timeout)
    _report(summary)


__all__ = ["TenantOutcome", "apply_command", "plan_command", "state_option"]
