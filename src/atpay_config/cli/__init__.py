"""The `atpay` command line: click commands only.

Each command parses its options, calls one core function and maps the result to
an exit code. The commands live one module per area (validate, secrets, state,
plan/apply, report) and are registered here; one error handler turns domain
errors into a one-line message and exit 1, bugs into a short message with a
hint to rerun with `--debug`, and Ctrl-C into 130.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from atpay_config import __version__
from atpay_config.errors import AtpayError, ExitCode

F = TypeVar("F", bound=Callable[..., Any])


class AtpayGroup(click.Group):
    """A group whose `main` maps every exception to the exit-code table."""

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug"))
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except AtpayError as exc:
            click.echo(f"atpay: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("atpay: interrupted", err=True)
            ctx.exit(ExitCode.INTERRUPTED)
        except Exception as exc:
            if debug:
                raise
            click.echo(
                f"atpay: internal error: {type(exc).__name__} (a bug; rerun with --debug "
                "for the traceback and report it)",
                err=True,
            )
            ctx.exit(ExitCode.ERROR)


@click.group(cls=AtpayGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="atpay")
@click.option("--debug", is_flag=True, help="Show tracebacks for internal errors.")
def cli(debug: bool) -> None:
    """Configuration-as-code and policy checks for Autotask PSA Payment Processing."""


def _register() -> None:
    """Import the command modules; each adds its commands to `cli`."""
    import importlib

    for name in ("validate", "secrets", "state", "plan", "report"):
        try:
            importlib.import_module(f"atpay_config.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"atpay_config.cli.{name}":
                raise


_register()


def main() -> None:
    """Console entry point."""
    try:
        cli.main(prog_name="atpay")
    except KeyboardInterrupt:
        click.echo("atpay: interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
