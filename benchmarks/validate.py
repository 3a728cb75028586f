"""Benchmark `atpay validate` at 10, 1,000 and 10,000 tenants.

Beside it, in the same run and on the same files:
- the parse floor: bare `yaml.load(..., CSafeLoader)` of every file;
- check-jsonschema with our schema (schema only, no rules);
- `atpay validate` with the demo identity, so AT006 decrypts every key.
And the cold start of `atpay validate` on one file against `python -c "import yaml, jsonschema"`.

Run: .venv/bin/python benchmarks/validate.py [--sizes 10,1000,10000]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import generate
from measure import REPO, VENV_BIN, Measurement, best_of, print_table

DATA = REPO / "benchmarks" / ".data"
SCHEMA = REPO / "schemas" / "payment-processing.schema.json"
IDENTITY = REPO / "examples" / "demo-identity" / "age-demo.key"

FLOOR = """
import sys, os, yaml
root = sys.argv[1]
for name in sorted(os.listdir(root)):
    with open(os.path.join(root, name), "rb") as handle:
        yaml.load(handle, Loader=yaml.CSafeLoader)
"""


def measure_size(size: int) -> list[tuple[int, Measurement]]:
    out = generate(size, DATA / f"tenants-{size}")
    tenants = out / "tenants"
    python = str(VENV_BIN / "python")
    atpay = str(VENV_BIN / "atpay")
    runs = 3
    rows = [
        (
            size,
            best_of(runs, "yaml.CSafeLoader parse (floor)", [python, "-c", FLOOR, str(tenants)]),
        ),
        (
            size,
            best_of(
                runs,
                "atpay validate (schema+rules)",
                [atpay, "validate", str(tenants), "--format", "json"],
                env={"SOPS_AGE_KEY_FILE": "", "SOPS_AGE_KEY": "", "XDG_CONFIG_HOME": str(DATA / "no-identity")},
            ),
        ),
        (
            size,
            best_of(
                runs,
                "atpay validate (+ decrypt, AT006)",
                [atpay, "validate", str(tenants), "--format", "json"],
                env={"SOPS_AGE_KEY_FILE": str(IDENTITY)},
            ),
        ),
    ]
    checker = shutil.which("check-jsonschema", path=str(VENV_BIN))
    if checker:
        files = sorted(str(p) for p in tenants.iterdir())
        rows.append(
            (
                size,
                best_of(
                    runs,
                    "check-jsonschema (schema only)",
                    [checker, "--schemafile", str(SCHEMA), *files],
                ),
            )
        )
    else:
        print(
            "check-jsonschema not installed: pip install check-jsonschema to compare",
            file=sys.stderr,
        )
    return rows


def cold_start() -> None:
    out = generate(10, DATA / "tenants-10")
    one = sorted((out / "tenants").iterdir())[4]
    python = str(VENV_BIN / "python")
    imports = best_of(
        7, 'python -c "import yaml, jsonschema"', [python, "-c", "import yaml, jsonschema"]
    )
    atpay = best_of(7, "atpay validate ONE_FILE", [str(VENV_BIN / "atpay"), "validate", str(one)])
    print("\ncold start (best of 7)")
    for m in (imports, atpay):
        print(f"  {m.label:<36} {m.seconds * 1000:>7.1f} ms  {m.peak_mb:>6.1f} MiB")
    print(f"  ratio: {atpay.seconds / imports.seconds:.2f}× (target < 2×)")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10,1000,10000")
    args = parser.parse_args()
    rows: list[tuple[int, Measurement]] = []
    for size in (int(s) for s in args.sizes.split(",")):
        rows.extend(measure_size(size))
    print_table(
        "atpay validate vs the parse floor and check-jsonschema",
        rows,
        baseline="yaml.CSafeLoader parse (floor)",
    )
    cold_start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
