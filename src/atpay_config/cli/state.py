"""`atpay state …`: initialise, list, show and check the simulated Autotask tenants.

Keys are never readable: `show` prints the mask Autotask shows (AT-8) and a
short keyed fingerprint from our record.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import click

from atpay_config.autotask.tenant import TenantState, invariant_violations
from atpay_config.cli import cli
from atpay_config.cli.plan import state_option
from atpay_config.cli.validate import validation_result
from atpay_config.errors import AtpayError, UsageError
from atpay_config.manifest.model import ENVIRONMENTS
from atpay_config.report.findings import render_text as render_findings
from atpay_config.state import open_store
from atpay_config.state.migrate import copy_store
from atpay_config.validation import validate_paths

SHORT_FINGERPRINT = 8


@cli.group("state")
def state_group() -> None:
    """Initialise, list and show the simulated Autotask tenants and our records."""


@state_group.command("init")
@click.argument("fixtures", nargs=-1, required=True)
@click.option("--replace", is_flag=True, help="Reset tenants that already exist.")
@state_option
def init_command(fixtures: tuple[str, ...], replace: bool, state_url: str) -> None:
    """Create simulated tenants from SimulatedTenant FIXTURE documents (files or folders)."""
    try:
        run = validate_paths(fixtures, policies=(), today=dt.date.today(), keep_fixtures=True)
    except UsageError as exc:
        raise AtpayError(exc.message, hint=exc.hint) from None  # state commands exit 0 or 1
    if run.has_errors():
        click.echo(render_findings(validation_result(run)), err=True)
        raise AtpayError(
            "the fixtures have errors (above); fix them and run `atpay state init` again"
        )
    if not run.fixtures:
        raise AtpayError(f"no SimulatedTenant documents under {', '.join(fixtures)}")
    states = [TenantState.from_fixture(doc) for doc in run.fixtures]
    with open_store(state_url) as store:
        for state in states:
            store.init_tenant(state.tenant, state.to_dict(), replace=replace)
        url = store.url
    click.echo(f"initialised {len(states)} tenant(s) in {url}")


@state_group.command("list")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@state_option
def list_command(fmt: str, state_url: str) -> None:
    """Every tenant with its version, activation and whether processing is enabled."""
    with open_store(state_url) as store:
        stored = store.read_tenants()
    rows = []
    for name, tenant in stored.items():
        state = TenantState.from_dict(tenant.state)
        rows.append(
            {
                "tenant": name,
                "version": tenant.version,
                "activation": state.activation,
                "processing_enabled": state.processing_enabled,
                "last_applied": (tenant.record or {}).get("applied_at"),
            }
        )
    if fmt == "json":
        click.echo(json.dumps({"version": 1, "tenants": rows}, indent=2))
        return
    if not rows:
        click.echo("no tenants; create them with `atpay state init FIXTURE…`")
        return
    for row in rows:
        enabled = "processing enabled" if row["processing_enabled"] else "processing off"
        click.echo(f"{row['tenant']}\tversion {row['version']}\t{row['activation']}\t{enabled}")


def _public_record(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Our record as shown: short fingerprints, no salt."""
    if record is None:
        return None
    shown = {k: v for k, v in record.items() if k != "salt"}
    for key in ("public_fingerprint", "private_fingerprint"):
        if isinstance(shown.get(key), str):
            shown[key] = shown[key][:SHORT_FINGERPRINT]
    return shown


def _types_text(state: TenantState) -> str:
    parts = [
        f"{env}: {', '.join(state.payment_types.for_environment(env)) or 'none'}"
        for env in ENVIRONMENTS
    ]
    return "; ".join(parts)


@state_group.command("show")
@click.argument("tenant")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@state_option
def show_command(tenant: str, fmt: str, state_url: str) -> None:
    """One tenant's Autotask state and our record; keys masked, never readable (AT-8)."""
    with open_store(state_url) as store:
        found = store.read_tenants([tenant]).get(tenant)
        url = store.url
    if found is None:
        raise AtpayError(f"no tenant {tenant!r} in state store {url}; see `atpay state list`")
    state = TenantState.from_dict(found.state)
    record = _public_record(found.record)
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "version": 1,
                    "tenant": tenant,
                    "state_version": found.version,
                    "state": state.to_dict(),
                    "record": record,
                },
                indent=2,
            )
        )
        return
    lines = [
        f"tenant {tenant} (version {found.version}, {url})",
        f"  country/currency: {state.country}/{state.internal_currency}",
        f"  other gateways: {', '.join(state.other_gateways) or 'none'}",
        f"  activation: {state.activation}",
        "  sales contact: "
        + (
            f"requested ({state.sales_contact_email or 'no email'})"
            if state.sales_contact_requested
            else "not requested"
        ),
        f"  BNG Gateway account: {'active' if state.gateway_account_active else 'not active'}",
    ]
    for label, slot, fp_key in (
        ("public key", state.public_key, "public_fingerprint"),
        ("private key", state.private_key, "private_fingerprint"),
    ):
        if slot.saved:
            fp = (record or {}).get(fp_key)
            extra = f", fingerprint {fp}" if fp else ""
            lines.append(f"  {label}: saved {slot.mask} at {slot.saved_at}{extra}")
        else:
            lines.append(f"  {label}: not saved")
    lines += [
        f"  payment types: {_types_text(state)}",
        f"  processing enabled: {'yes' if state.processing_enabled else 'no'}",
        "  security levels: " + ", ".join(level.name for level in state.security_levels),
        "  Client Portal levels: " + ", ".join(lvl.name for lvl in state.portal_security_levels),
        "  users: " + (", ".join(f"{u.name} ({u.security_level})" for u in state.users) or "none"),
    ]
    if record and record.get("applied_at"):
        lines.append(
            f"  last applied: {record['applied_at']} by {record.get('applied_by')} "
            f"(manifest digest {str(record.get('manifest_digest', ''))[:12]})"
        )
    else:
        lines.append("  last applied: never")
    click.echo("\n".join(lines))


@state_group.command("history")
@click.argument("tenant")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@state_option
def history_command(tenant: str, fmt: str, state_url: str) -> None:
    """The tenant's audit log: who changed what, when."""
    with open_store(state_url) as store:
        entries = store.history(tenant)
    if fmt == "json":
        click.echo(json.dumps({"version": 1, "tenant": tenant, "entries": entries}, indent=2))
        return
    if not entries:
        click.echo(f"{tenant}: no changes recorded")
    for entry in entries:
        click.echo(
            f"{entry.get('at')}  {entry.get('user')}  {entry.get('action')}: {entry.get('detail')}"
        )


@state_group.command("migrate")
@click.option(
    "--to", "target_url", required=True, metavar="PATH|URL", help="The store to copy into."
)
@click.option("--replace", is_flag=True, help="Overwrite a target that already holds tenants.")
@state_option
def migrate_command(target_url: str, replace: bool, state_url: str) -> None:
    """Copy every tenant, record and audit entry into another store, verified."""
    with open_store(state_url) as source, open_store(target_url) as target:
        report = copy_store(source, target, replace=replace)
    click.echo(report.describe())
    click.echo(f"sha256 {report.copied.digest}")


@state_group.command("check")
@state_option
def check_command(state_url: str) -> None:
    """Check the store's integrity and that every tenant is a state Autotask allows."""
    with open_store(state_url) as store:
        problems = list(store.integrity_check())
        stored = store.read_tenants()
        url = store.url
    for name, tenant in stored.items():
        problems += [
            f"tenant {name!r}: {p}"
            for p in invariant_violations(TenantState.from_dict(tenant.state))
        ]
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        raise AtpayError(f"state store {url} has {len(problems)} problem(s) (above)")
    click.echo(f"state store {url}: {len(stored)} tenant(s), no problems")
