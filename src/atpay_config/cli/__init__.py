"""The `atpay` command line: click commands only.

Each command parses its options, calls one core function and maps the result to
an exit code. The commands live one module per area (validate, secrets, state,
plan/apply, report), loaded when first used (`COMMAND_MODULES`); one error handler turns domain
errors into a one-line message and exit 1, bugs into a short message with a
hint to rerun with `--debug`, and Ctrl-C into 130.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from atpay_config import __version__
from atpay_config.errors import AtpayError, ExitCode

F = TypeVar("F", bound=Callable[..., Any])


COMMAND_MODULES: dict[str, str] = {
    "validate": "validate",
    "policy": "validate",
    "keygen": "secrets",
    "encrypt": "secrets",
    "decrypt": "secrets",
    "rotate": "secrets",
    "set": "secrets",
    "edit": "secrets",
    "state": "state",
    "plan": "plan",
    "apply": "plan",
    "report": "report",
}
"""Every command and the module under `atpay_config.cli` that defines it.

Modules are imported only when their command runs, so `atpay validate` does not
pay for the state stores, the report templates or the crypto it does not use.
"""


class AtpayGroup(click.Group):
    """Lazily loads command modules, and maps every exception to the exit-code table."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMAND_MODULES))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            importlib.import_module(f"atpay_config.cli.{COMMAND_MODULES[cmd_name]}")
        return self.commands.get(cmd_name)

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


def main() -> None:
    """Console entry point."""
    try:
        cli.main(prog_name="atpay")
    except KeyboardInterrupt:
        click.echo("atpay: interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
