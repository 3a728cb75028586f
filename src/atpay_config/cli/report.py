"""`atpay report`: who sees what in Autotask, now and after the apply (SPEC sections 8, 9).

The "after" is the state the plan would produce, computed without writing. The
plan is streamed: each tenant is planned, turned into its part of the report and
written before the next is read, so memory stays flat as tenants grow. The
report goes to stdout (or `-o FILE`, written atomically); findings, refusals
and diagnostics go to stderr. Exit 0, or 1 on any error (SPEC section 7).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import click

from atpay_config.cli import cli
from atpay_config.cli.plan import start_planning, state_option
from atpay_config.errors import AtpayError
from atpay_config.files import atomic_writer
from atpay_config.plan.planner import TenantPlan
from atpay_config.report.visibility import (
    REPORT_RENDERERS,
    autoescape_for,
    build_visibility,
    stream_template,
)
from atpay_config.state import StateStore, open_store

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


@dataclass
class Refusals:
    """Refused tenants seen in the stream: how many, and the first few reasons."""

    count: int = 0
    shown: list[str] = field(default_factory=list)

    def watch(self, plans: Iterable[TenantPlan]) -> Iterator[TenantPlan]:
        for tenant_plan in plans:
            if tenant_plan.refusal is not None:
                self.count += 1
                if len(self.shown) < REFUSALS_SHOWN:
                    self.shown.append(tenant_plan.refusal)
            yield tenant_plan


def _tenant_plans(store: StateStore, options: ReportOptions) -> Iterator[TenantPlan]:
    """Validate as `atpay validate` does (findings stop it), then plan tenant by tenant.

    Streamed: nothing is written and no tenant plan is kept.
    """
    started = start_planning(
        store,
        options.paths,
        policy_dirs=options.policy_dirs,
        user=None,
        tenants=options.tenants,
        command="report",
    )
    return started.tenant_plans(store, keep=False)


def execute(options: ReportOptions) -> int:
    """Plan without writing, build the report lazily, stream it out; the exit code."""
    template_source = None
    if options.template is not None:
        try:
            template_source = Path(options.template).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise AtpayError(f"--template {options.template}: cannot read ({exc})") from None
    refusals = Refusals()
    with open_store(options.state_url) as store:
        report = build_visibility(
            refusals.watch(_tenant_plans(store, options)),
            audience=options.audience,
            changes_only=options.changes_only,
        )
        color = use_color(output=options.output, template=options.template, fmt=options.fmt)
        if template_source is not None and options.template is not None:
            chunks = stream_template(report, template_source, name=options.template, color=color)
        else:
            chunks = REPORT_RENDERERS[options.fmt](report, color=color)
        if options.output is None:
            for chunk in chunks:
                click.echo(chunk, nl=False)
        else:
            try:
                with atomic_writer(options.output) as handle:
                    for chunk in chunks:
                        handle.write(chunk)
            except OSError as exc:
                raise AtpayError(f"-o {options.output}: cannot write ({exc.strerror})") from None
            click.echo(f"atpay: report written to {options.output}", err=True)
    for reason in refusals.shown:
        click.echo(f"atpay: refused: {reason}", err=True)
    if refusals.count > REFUSALS_SHOWN:
        click.echo(f"atpay: … and {refusals.count - REFUSALS_SHOWN} more refused", err=True)
    if refusals.count:
        click.echo(
            f"atpay: error: the plan is refused for {refusals.count} tenant(s) (above): "
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
