"""Shared benchmark plumbing: run a command in a child process, report wall time and peak RSS.

Peak memory comes from the kernel's accounting of that one child (`wait4`), so
each number belongs to exactly the command measured.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Measurement:
    label: str
    seconds: float
    peak_mb: float
    exit_code: int


def run_measured(
    label: str,
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    ok_codes: Sequence[int] = (0,),
) -> Measurement:
    """Run argv once; wall-clock seconds and the child's peak RSS in MiB."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in ok_codes:
        sys.stderr.write(stderr.decode(errors="replace")[-2000:])
        raise SystemExit(f"{label}: exit {proc.returncode}")
    return Measurement(label, elapsed, usage.ru_maxrss / 1024, proc.returncode)


def best_of(count: int, label: str, argv: Sequence[str], **kwargs: object) -> Measurement:
    """The fastest of `count` runs (the least disturbed), with the largest peak seen."""
    runs = [run_measured(label, argv, **kwargs) for _ in range(count)]  # type: ignore[arg-type]
    fastest = min(runs, key=lambda m: m.seconds)
    return Measurement(label, fastest.seconds, max(m.peak_mb for m in runs), fastest.exit_code)


def print_table(
    title: str, rows: Sequence[tuple[int, Measurement]], *, baseline: str, unit: str = "files/s"
) -> None:
    """One line per (size, measurement): time, throughput, peak MiB and ratio to the baseline row."""
    print(f"\n{title}")
    print(
        f"{'tenants':>8}  {'command':<34} {'seconds':>8} {unit:>10} {'peak MiB':>9} {'× baseline':>10}"
    )
    base = {size: m.seconds for size, m in rows if m.label == baseline}
    for size, m in rows:
        ratio = m.seconds / base[size] if base.get(size) else float("nan")
        rate = size / m.seconds if m.seconds else float("inf")
        print(
            f"{size:>8}  {m.label:<34} {m.seconds:>8.3f} {rate:>10.0f} {m.peak_mb:>9.1f} {ratio:>10.2f}"
        )
