"""`atpay validate` and `atpay policy test`."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from atpay_config.cli import cli
from atpay_config.errors import ExitCode
from atpay_config.report.findings import REPORTERS, ValidationResult
from atpay_config.rules.engine import PolicyLoadError, load_policy_dirs, test_policy
from atpay_config.rules.finding import Summary
from atpay_config.rules.key_secrets import KeySecretsRule
from atpay_config.validation import ValidationRun, load_policies, validate_paths

if TYPE_CHECKING:
    from atpay_config.secrets.age import Identity

PROGRESS_MIN_FILES = 200


def progress_bar() -> Callable[[int, int], None] | None:
    """A bar on stderr for large trees, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        if total < PROGRESS_MIN_FILES or (done % 50 and done != total):
            return
        filled = 30 * done // total
        bar = "#" * filled + "." * (30 - filled)
        end = "\r\033[K" if done == total else ""
        click.echo(f"\ratpay: validating [{bar}] {done}/{total} files{end}", err=True, nl=False)

    return show


@dataclass(frozen=True)
class ValidateOptions:
    paths: tuple[str, ...]
    output_format: str
    strict: bool
    policy_dirs: tuple[str, ...]
    today: dt.date


def run_validation(
    options: ValidateOptions, *, keep_manifests: bool = False, keep_fixtures: bool = False
) -> ValidationRun:
    """Load policies and identities, validate the paths (shared by validate, plan, report)."""
    try:
        policies = load_policies(options.policy_dirs)
    except PolicyLoadError as exc:
        run = ValidationRun(findings=exc.findings)
        run.files = sorted({f.file for f in exc.findings})
        return run
    rule = KeySecretsRule(identity_source=_load_identities)
    return validate_paths(
        options.paths,
        policies=policies,
        file_rules=(rule,),
        today=options.today,
        keep_manifests=keep_manifests,
        keep_fixtures=keep_fixtures,
        on_file=progress_bar(),
    )


def _load_identities() -> list[Identity]:
    """The sops identities; an unreadable or malformed identity file is an I/O problem (exit 2)."""
    from atpay_config.errors import SecretsError, UsageError
    from atpay_config.secrets.identities import load_identities

    try:
        return load_identities()
    except SecretsError as exc:
        raise UsageError(exc.message, hint=exc.hint) from None


def validation_result(run: ValidationRun) -> ValidationResult:
    return ValidationResult(
        findings=run.findings,
        summary=run.summary,
        rules=run.rules,
        files=run.files,
        documents=run.documents,
    )


def execute(options: ValidateOptions) -> tuple[str, int]:
    run = run_validation(options)
    output = REPORTERS[options.output_format](validation_result(run))
    return output, ExitCode.FINDINGS if run.has_errors(strict=options.strict) else ExitCode.OK


def _today(value: str | None) -> dt.date:
    if value is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD") from None


policies_option = click.option(
    "--policies",
    "policy_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Folder of organisation policy files (repeatable).",
)
today_option = click.option(
    "--today",
    metavar="YYYY-MM-DD",
    help="Judge waiver expiry as of this date (default: today).",
)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--format",
    "output_format",
    type=click.Choice(sorted(REPORTERS)),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@policies_option
@today_option
def validate(
    paths: tuple[str, ...],
    output_format: str,
    strict: bool,
    policy_dirs: tuple[str, ...],
    today: str | None,
) -> None:
    """Validate manifests: schema, the documented rules, then your policies.

    Exit 0 when clean, 1 with error findings (or warnings with --strict),
    2 on a usage or I/O problem.
    """
    options = ValidateOptions(paths, output_format, strict, policy_dirs, _today(today))
    output, code = execute(options)
    click.echo(output, nl=not output.endswith("\n"))
    sys.exit(code)


@cli.group()
def policy() -> None:
    """Work with policy files."""


@policy.command("test")
@click.argument("dirs", nargs=-1, type=click.Path(exists=True, file_okay=False))
def policy_test(dirs: tuple[str, ...]) -> None:
    """Run every policy's own pass/fail examples (built-in rules when no DIR is given)."""
    from atpay_config.rules.engine import builtin_policies

    try:
        policies = list(load_policy_dirs(dirs)) if dirs else list(builtin_policies())
    except PolicyLoadError as exc:
        result = ValidationResult(
            findings=exc.findings,
            summary=Summary.of(
                exc.findings, files=len({f.file for f in exc.findings}), documents=0
            ),
            rules={},
            files=sorted({f.file for f in exc.findings}),
            documents=[],
        )
        click.echo(REPORTERS["text"](result), nl=False)
        sys.exit(ExitCode.FINDINGS)
    failed = 0
    for item in policies:
        outcome = test_policy(item)
        counts = f"{len(item.examples_pass)} pass, {len(item.examples_fail)} fail examples"
        if outcome.passed:
            click.echo(f"ok    {item.id:<10} {counts}  ({item.source})")
        else:
            failed += 1
            for failure in outcome.failures:
                click.echo(f"FAIL  {item.id:<10} {failure}  ({item.source})")
    click.echo(f"{len(policies) - failed} passed, {failed} failed")
    sys.exit(ExitCode.FINDINGS if failed else ExitCode.OK)


@policy.command("docs")
def policy_docs() -> None:
    """Print the rules reference (docs/rules.md) generated from the built-in rules."""
    from atpay_config.report.rule_docs import render_rule_docs
    from atpay_config.rules.engine import builtin_policies
    from atpay_config.validation import CODE_RULES

    click.echo(render_rule_docs(builtin_policies(), CODE_RULES), nl=False)
