"""Benchmark `atpay report` at 1,000 tenants (target: under 5 s, every format).

Beside it, in the same run and on the same files, the baseline: `atpay plan`
(the report plans first, then renders, so the difference is the report's own
cost). Then the pure part alone, in this process: `build_visibility` plus each
renderer over the plans' before/after states.

Every command number is one child process: wall time and peak RSS (see measure.py).

Run: .venv/bin/python benchmarks/report.py [--sizes 1000,10000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import DEMO_RECIPIENT_FILE
from measure import VENV_BIN, Measurement, best_of, print_table, run_measured
from plan_apply import can_encrypt, prepare

TARGET_SECONDS = 5.0
FORMATS = ("json", "text", "markdown", "html")
PLAN = "atpay plan (baseline)"


def measure(size: int, state: str, env: dict[str, str]) -> list[tuple[int, Measurement]]:
    encrypt = can_encrypt()
    out = prepare(size, encrypt=encrypt)
    tenants, fixtures = str(out / "tenants"), str(out / "fixtures")
    atpay = str(VENV_BIN / "atpay")
    run_measured("state init", [atpay, "state", "init", fixtures, "--state", state], env=env)
    runs = 3 if size <= 1000 else 1
    rows = [(size, best_of(runs, PLAN, [atpay, "plan", tenants, "--state", state], env=env))]
    for fmt in FORMATS:
        rows.append(
            (
                size,
                best_of(
                    runs,
                    f"atpay report --format {fmt}",
                    [atpay, "report", tenants, "--format", fmt, "--state", state],
                    env=env,
                ),
            )
        )
    return rows


def pure(size: int, state: str, env: dict[str, str]) -> None:
    """build_visibility and each renderer alone, on the same plans."""
    import datetime as dt
    import os

    from atpay_config.plan.build import build_plan
    from atpay_config.report.visibility import REPORT_RENDERERS, build_visibility
    from atpay_config.state import open_store

    os.environ.update(env)
    out = prepare(size, encrypt=can_encrypt())
    with open_store(state) as store:
        plan = build_plan(
            [str(out / "tenants")], store=store, now="2025-06-01T00:00:00Z", today=dt.date.today()
        )
    started = time.perf_counter()
    report = build_visibility(plan.tenant_plans)
    print(f"\nin process, {size} tenants: build_visibility {time.perf_counter() - started:.3f} s")
    for name, render in REPORT_RENDERERS.items():
        started = time.perf_counter()
        text = render(report)
        print(
            f"  render {name:<9} {time.perf_counter() - started:7.3f} s  "
            f"{len(text.encode()) / 1e6:7.1f} MB"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    env = {"SOPS_AGE_KEY_FILE": str(DEMO_RECIPIENT_FILE), "NO_COLOR": "1"}
    rows: list[tuple[int, Measurement]] = []
    failed = False
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="atpay-bench-report-") as tmp:
            state = str(Path(tmp) / "state.db")
            measured = measure(size, state, env)
            rows += measured
            pure(size, state, env)
        if size == 1000:
            slow = [m for _, m in measured if m.label != PLAN and m.seconds >= TARGET_SECONDS]
            failed = failed or bool(slow)
    keys = "encrypted keys" if can_encrypt() else "plaintext keys + AT005 waivers"
    print_table(
        f"atpay report ({keys}; SQLite state; best of 3 at ≤1,000)",
        rows,
        baseline=PLAN,
        unit="tenants/s",
    )
    print(f"\ntarget: every format under {TARGET_SECONDS:.0f} s at 1,000 tenants: "
          f"{'FAIL' if failed else 'ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
