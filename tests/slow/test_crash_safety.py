"""Crash safety: SIGKILL `atpay apply` at random moments; nothing lost, one more apply converges."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from tests.slow.apply_helpers import (
    atpay,
    init_store,
    start_apply,
    store_problems,
    tenant_names,
    write_manifests,
)

from atpay_config.state import StateStore, open_store

TENANTS = 50
RUNS = 20


def progress(store: StateStore) -> int:
    """Sum of tenant versions: grows with every step written."""
    return sum(store.versions().values())


def time_spent_writing(watcher: StateStore, proc: subprocess.Popen[str]) -> float:
    """Seconds from an apply's first write to its exit."""
    before = progress(watcher)
    while proc.poll() is None and progress(watcher) == before:
        time.sleep(0.002)
    started = time.perf_counter()
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    return time.perf_counter() - started


@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_a_sound_store_that_converges(tmp_path: Path) -> None:
    rng = random.Random(20260105)
    state = str(tmp_path / "state.db")
    names = tenant_names(TENANTS)
    init_store(state, names)
    folder = tmp_path / "tenants"
    mid_apply = 0
    with open_store(state) as watcher:
        # Calibrate on this machine, now: how long does an apply spend writing?
        write_manifests(folder, names, flip=True)
        writing = time_spent_writing(watcher, start_apply(folder, state=state))
        for run in range(RUNS):
            write_manifests(folder, names, flip=run % 2 == 1)
            before = progress(watcher)
            proc = start_apply(folder, state=state)
            # Wait until it writes, then let it write a random while longer before the kill.
            while proc.poll() is None and progress(watcher) == before:
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.7 * writing))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                mid_apply += 1
            proc.communicate(timeout=60)
            assert store_problems(state) == [], f"after run {run}"
    assert mid_apply >= RUNS // 2, "the kills should land while apply is writing"
    write_manifests(folder, names)
    finished = atpay("apply", str(folder), "--auto-approve", state=state)
    assert finished.returncode == 0, finished.stderr
    again = atpay("plan", str(folder), "--detailed-exitcode", state=state)
    assert again.returncode == 0, again.stdout + again.stderr
    assert store_problems(state) == []
