"""The lazy command table names every command exactly once, in the module that defines it."""

from __future__ import annotations

import importlib

from atpay_config.cli import COMMAND_MODULES, cli


def test_every_command_module_defines_exactly_the_commands_listed_for_it() -> None:
    for module in set(COMMAND_MODULES.values()):
        importlib.import_module(f"atpay_config.cli.{module}")
    assert set(cli.commands) == set(COMMAND_MODULES)
    for name, module in COMMAND_MODULES.items():
        callback = cli.commands[name].callback
        assert callback is not None
        assert callback.__module__ == f"atpay_config.cli.{module}", name
