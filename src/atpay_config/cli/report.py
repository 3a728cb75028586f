"""`atpay report`: who sees what in Autotask, now and after the apply (SPEC sections 8, 9).

The "after" is the state the plan would produce, computed without writing. The
report goes to stdout (or `-o FILE`, written atomically); findings, refusals
and diagnostics go to stderr. Exit 0, or 1 on any error (SPEC section 7).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from atpay_config.cli import cli
from atpay_config.cli.plan import make_plan, state_option
from atpay_config.errors import AtpayError
from atpay_config.files import write_atomic
from atpay_config.plan.build import Plan
from atpay_config.report.visibility import (
    REPORT_RENDERERS,
    autoescape_for,
    build_visibility,
    render_template,
)
from atpay_config.state import open_store

REFUSALS_SHOWN = 20


@dataclass(frozen=True)
class ReportOptions:
    """Everything `atpay report` was asked for, parsed."""

    paths: tuple[str, ...]
    fmt: str
    tenants: tuple[str, ...]
    audience: str | None
    changes_only: bool
    template: str | None
    policy_dirs: tuple[str, ...]
    state_url: str
    output: str | None


def use_color(*, output: str | None, template: str | None, fmt: str) -> bool:
    """Colour only for text on a terminal, and never with NO_COLOR set (no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    if output is not None or not sys.stdout.isatty():
        return False
    return autoescape_for(template) is False if template is not None else fmt == "text"


def _plan(options: ReportOptions) -> Plan:
    """The plan whose "after" states the report shows; nothing is written."""
    with open_store(options.state_url) as store:
        return make_plan(
            store,
            options.paths,
            policy_dirs=options.policy_dirs,
            user=None,
            tenants=options.tenants,
            command="report",
        )


def execute(options: ReportOptions) -> int:
    """Plan without writing, build the report, render it; the exit code."""
    template_source = None
    if options.template is not None:
        try:
            template_source = Path(options.template).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise AtpayError(f"--template {options.template}: cannot read ({exc})") from None
    plan = _plan(options)
    report = build_visibility(
        plan.tenant_plans, audience=options.audience, changes_only=options.changes_only
    )
    color = use_color(output=options.output, template=options.template, fmt=options.fmt)
    if template_source is not None and options.template is not None:
        text = render_template(report, template_source, name=options.template, color=color)
    else:
        text = REPORT_RENDERERS[options.fmt](report, color=color)
    if options.output is None:
        click.echo(text)
    else:
        try:
            write_atomic(options.output, text + "\n")
        except OSError as exc:
            raise AtpayError(f"-o {options.output}: cannot write ({exc.strerror})") from None
        click.echo(f"atpay: report written to {options.output}", err=True)
    refused = plan.refused
    for tenant_plan in refused[:REFUSALS_SHOWN]:
        click.echo(f"atpay: refused: {tenant_plan.refusal}", err=True)
    if len(refused) > REFUSALS_SHOWN:
        click.echo(f"atpay: … and {len(refused) - REFUSALS_SHOWN} more refused", err=True)
    if refused:
        click.echo(
            f"atpay: error: the plan is refused for {len(refused)} tenant(s) (above): "
            "the report shows them unchanged",
            err=True,
        )
        return 1
    return 0


@cli.command("report")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(REPORT_RENDERERS)),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option("--tenant", "tenants", multiple=True, help="Report only this tenant (repeatable).")
@click.option(
    "--audience",
    metavar="LEVEL",
    help="Only this security level: LEVEL, or staff:LEVEL / portal:LEVEL.",
)
@click.option("--changes-only", is_flag=True, help="Only audiences whose view changes.")
@click.option(
    "--template",
    metavar="FILE",
    help="Render with this Jinja2 template instead (autoescaped when it ends in .html).",
)
@click.option("--policies", "policy_dirs", multiple=True, help="Organisation policy folder.")
@state_option
@click.option("-o", "--output", "output", metavar="FILE", help="Write the report to FILE.")
def report_command(
    paths: tuple[str, ...],
    fmt: str,
    tenants: tuple[str, ...],
    audience: str | None,
    changes_only: bool,
    template: str | None,
    policy_dirs: tuple[str, ...],
    state_url: str,
    output: str | None,
) -> None:
    """Which Admin links, pages, buttons, menu options and Client Portal options each
    security level sees, now and after the apply."""
    options = ReportOptions(
        paths=paths,
        fmt=fmt,
        tenants=tenants,
        audience=audience,
        changes_only=changes_only,
        template=template,
        policy_dirs=policy_dirs,
        state_url=state_url,
        output=output,
    )
    code = execute(options)
    if code:
        sys.exit(code)
