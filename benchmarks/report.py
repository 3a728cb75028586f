"""Benchmark `atpay report` at 10, 1,000 and 10,000 tenants, every format.

Targets: every format under 150 MB peak RSS at 10,000 tenants, with memory
flat as tenants grow (the report streams: plan a batch, render each tenant,
forget it); under 5 s at 1,000 tenants.

Beside each size, in the same run and on the same files, the baseline: `atpay
plan` (the report plans first, then renders, so the difference is the report's
own cost); the "× baseline" columns are time and peak memory over the plan's.
`atpay state init` at the same size is measured too (it sets up the state).
Then the pure part alone, in this process (sizes up to 1,000): the report model
and each renderer, streamed, over the plans' before/after states.

Every command number is one child process: wall time and peak RSS (see measure.py).

Run: .venv/bin/python benchmarks/report.py [--sizes 10,1000,10000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import DEMO_RECIPIENT_FILE
from measure import VENV_BIN, Measurement, best_of, run_measured
from plan_apply import can_encrypt, prepare

TARGET_SECONDS = 5.0
TARGET_PEAK_MB = 150.0
FORMATS = ("json", "text", "markdown", "html")
PLAN = "atpay plan (baseline)"
STATE_INIT = "atpay state init"


def measure(size: int, state: str, env: dict[str, str]) -> list[tuple[int, Measurement, int]]:
    """(size, measurement, output bytes) for state init, plan and the report in each format."""
    out = prepare(size, encrypt=can_encrypt())
    tenants, fixtures = str(out / "tenants"), str(out / "fixtures")
    atpay = str(VENV_BIN / "atpay")
    rows = [
        (
            size,
            run_measured(STATE_INIT, [atpay, "state", "init", fixtures, "--state", state], env=env),
            0,
        )
    ]
    runs = 3 if size <= 1000 else 1
    rows.append((size, best_of(runs, PLAN, [atpay, "plan", tenants, "--state", state], env=env), 0))
    with tempfile.TemporaryDirectory(prefix="atpay-bench-report-out-") as tmp:
        for fmt in FORMATS:
            target = Path(tmp) / f"report.{fmt}"
            argv = [atpay, "report", tenants, "--format", fmt, "--state", state, "-o", str(target)]
            measured = best_of(runs, f"atpay report --format {fmt}", argv, env=env)
            rows.append((size, measured, target.stat().st_size))
    return rows


def pure(size: int, state: str, env: dict[str, str]) -> None:
    """The report model and each renderer alone, streamed, on the same plans."""
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
    print(f"\nin process, {size} tenants (model built as each renderer streams):")
    for name, render in REPORT_RENDERERS.items():
        started = time.perf_counter()
        written = sum(len(chunk.encode()) for chunk in render(build_visibility(plan.tenant_plans)))
        print(f"  {name:<9} {time.perf_counter() - started:7.3f} s  {written / 1e6:7.1f} MB")


def print_rows(rows: list[tuple[int, Measurement, int]]) -> None:
    print(
        f"\n{'tenants':>8}  {'command':<30} {'seconds':>8} {'tenants/s':>10} {'peak MiB':>9}"
        f" {'output MB':>9} {'× plan s':>9} {'× plan MiB':>10}"
    )
    base = {size: m for size, m, _ in rows if m.label == PLAN}
    for size, m, written in rows:
        plan = base.get(size)
        rate = size / m.seconds if m.seconds else float("inf")
        ratio_s = m.seconds / plan.seconds if plan else float("nan")
        ratio_mb = m.peak_mb / plan.peak_mb if plan else float("nan")
        out = f"{written / 1e6:9.1f}" if written else f"{'':>9}"
        print(
            f"{size:>8}  {m.label:<30} {m.seconds:>8.3f} {rate:>10.0f} {m.peak_mb:>9.1f}"
            f" {out} {ratio_s:>9.2f} {ratio_mb:>10.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--no-pure", action="store_true", help="Skip the in-process part.")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    env = {"SOPS_AGE_KEY_FILE": str(DEMO_RECIPIENT_FILE), "NO_COLOR": "1"}
    rows: list[tuple[int, Measurement, int]] = []
    problems: list[str] = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="atpay-bench-report-") as tmp:
            state = str(Path(tmp) / "state.db")
            measured = measure(size, state, env)
            rows += measured
            if size <= 1000 and not args.no_pure:
                pure(size, state, env)
        for _, m, _ in measured:
            if not m.label.startswith("atpay report"):
                continue
            if size <= 1000 and m.seconds >= TARGET_SECONDS:
                problems.append(f"{m.label} at {size}: {m.seconds:.1f} s")
            if m.peak_mb >= TARGET_PEAK_MB:
                problems.append(f"{m.label} at {size}: {m.peak_mb:.0f} MiB")
    keys = "encrypted keys" if can_encrypt() else "plaintext keys + AT005 waivers"
    print(f"\natpay report ({keys}; SQLite state; -o FILE; best of 3 at ≤1,000, else one run)")
    print_rows(rows)
    print(
        f"\ntargets: every format under {TARGET_SECONDS:.0f} s at 1,000 tenants and under "
        f"{TARGET_PEAK_MB:.0f} MiB peak at any size: {'FAIL: ' + '; '.join(problems) if problems else 'ok'}"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
