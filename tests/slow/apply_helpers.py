"""Helpers for the slow apply tests: a workspace of N tenants, the real CLI, store checks."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.unit.plan.builders import fixture_doc, manifest_yaml

from atpay_config.autotask.tenant import TenantState, invariant_violations
from atpay_config.state import open_store

ATPAY = str(Path(sys.executable).parent / "atpay")
STAGES = ("enabled", "enabled", "demo", "inactive")


def tenant_names(count: int) -> list[str]:
    return [f"t{index:04d}" for index in range(count)]


def write_manifests(folder: Path, names: Sequence[str], *, flip: bool = False) -> Path:
    """One manifest per tenant; `flip` swaps enabled and inactive so there is work both ways."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.yaml"):
        old.unlink()
    for index, name in enumerate(names):
        stage = STAGES[index % len(STAGES)]
        if flip:
            stage = {"enabled": "inactive", "inactive": "enabled"}.get(stage, stage)
        (folder / f"{name}.yaml").write_text(manifest_yaml(name, stage=stage))
    return folder


def init_store(url: str, names: Sequence[str]) -> None:
    with open_store(url) as store:
        for name in names:
            store.init_tenant(name, TenantState.from_fixture(fixture_doc(name)).to_dict())


def atpay(*args: str, state: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ATPAY, *args, "--state", state],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_apply(folder: Path, *, state: str, extra: Sequence[str] = ()) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [ATPAY, "apply", str(folder), "--auto-approve", "--state", state, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def store_problems(url: str) -> list[str]:
    """Integrity problems plus any tenant state the simulation would have refused."""
    with open_store(url) as store:
        problems = list(store.integrity_check())
        for name, stored in store.read_tenants().items():
            state = TenantState.from_dict(stored.state)
            problems += [f"{name}: {p}" for p in invariant_violations(state)]
    return problems
