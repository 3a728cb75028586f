"""Benchmark `atpay state init`, `plan`, `apply` and a no-op `plan` at 10, 1,000 and 10,000 tenants.

Beside them, in the same run and on the same files, the baseline: `atpay validate`.
SQLite at every size; PostgreSQL beside it at 1,000 and 10,000 (when reachable).
Every number is one child process: wall time and peak RSS (see measure.py).

Targets: no-op plan of 10,000 tenants under 10 s and within 3× validate; apply
linear in tenants; PostgreSQL apply within 2× SQLite; peak RSS under 150 MB.

Manifests are encrypted to the demo identity when it and the secrets package are
available; otherwise keys stay plaintext and a generated waiver per keyed tenant
accepts AT005, so the plan still runs (the table says which).

Run: .venv/bin/python benchmarks/plan_apply.py [--sizes 10,1000,10000] [--pg URL|--no-pg]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import DEMO_RECIPIENT_FILE, generate
from measure import REPO, VENV_BIN, Measurement, best_of, print_table, run_measured

DATA = REPO / "benchmarks" / ".data"
PG_DEFAULT = os.environ.get("ATPAY_TEST_PG_URL") or "postgresql://postgres@127.0.0.1:5432/test"
WAIVERS_PER_FILE = 1000
VALIDATE = "atpay validate (baseline)"


def can_encrypt() -> bool:
    if not DEMO_RECIPIENT_FILE.is_file():
        return False
    try:
        import atpay_config.secrets.age
        import atpay_config.secrets.inplace  # noqa: F401
    except ImportError:
        return False
    return True


def prepare(size: int, *, encrypt: bool) -> Path:
    """Generated tenants/ and fixtures/; plaintext keys get AT005 waivers in waivers/."""
    out = generate(size, DATA / f"plan-{size}-{'enc' if encrypt else 'plain'}", encrypt=encrypt)
    if not encrypt:
        waivers = out / "tenants" / "waivers"
        if not waivers.is_dir():
            waivers.mkdir()
            keyed = [
                p.stem for p in sorted((out / "tenants").glob("*.yaml")) if "keys:" in p.read_text()
            ]
            for start in range(0, len(keyed), WAIVERS_PER_FILE):
                docs = [
                    "apiVersion: atpay/v1\nkind: Waiver\n"
                    f"metadata: {{name: {name}-plaintext-bench}}\n"
                    f"spec: {{tenant: {name}, rule: AT005, reason: plaintext benchmark keys only,"
                    ' owner: bench@msp.example, expires: "2099-12-31"}\n'
                    for name in keyed[start : start + WAIVERS_PER_FILE]
                ]
                (waivers / f"waivers-{start:05d}.yaml").write_text("---\n".join(docs))
    return out


def pg_schema_url(base: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}schema=atpay_bench_{uuid.uuid4().hex[:10]}"


def drop_pg_schema(url: str) -> None:
    import psycopg
    from psycopg import sql

    base, _, query = url.partition("?")
    schema = dict(p.split("=", 1) for p in query.split("&"))["schema"]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def pg_reachable(url: str) -> bool:
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception:  # any failure means "skip PostgreSQL"
        return False
    return True


def measure(
    size: int, atpay: str, out: Path, *, backend: str, state: str, env: dict[str, str]
) -> list[tuple[int, Measurement]]:
    tenants, fixtures = str(out / "tenants"), str(out / "fixtures")
    tag = f"[{backend}]"
    rows = [
        (size, run_measured(f"atpay state init {tag}", [atpay, "state", "init", fixtures, "--state", state], env=env)),
        (
            size,
            run_measured(
                f"atpay plan (changes) {tag}",
                [atpay, "plan", tenants, "--state", state, "--detailed-exitcode"],
                env=env,
                ok_codes=(2,),
            ),
        ),
        (size, run_measured(f"atpay apply {tag}", [atpay, "apply", tenants, "--auto-approve", "--state", state], env=env)),
    ]
    runs = 3 if size <= 1000 else 1
    rows.append(
        (
            size,
            best_of(
                runs,
                f"atpay plan (no-op) {tag}",
                [atpay, "plan", tenants, "--state", state, "--detailed-exitcode"],
                env=env,
            ),
        )
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--pg", default=PG_DEFAULT, help="PostgreSQL server URL for the comparison.")
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--atpay", default=str(VENV_BIN / "atpay"), help="The atpay executable.")
    args = parser.parse_args()
    encrypt = can_encrypt()
    if encrypt:
        try:
            prepare(10, encrypt=True)
        except Exception as exc:  # generate.py's encryptor may lag the secrets API
            print(f"cannot encrypt benchmark manifests ({exc!r}); using plaintext", file=sys.stderr)
            encrypt = False
    env = {"SOPS_AGE_KEY_FILE": str(DEMO_RECIPIENT_FILE)} if encrypt else {}
    use_pg = not args.no_pg and pg_reachable(args.pg)
    rows: list[tuple[int, Measurement]] = []
    for size in (int(s) for s in args.sizes.split(",")):
        out = prepare(size, encrypt=encrypt)
        runs = 3 if size <= 1000 else 1
        rows.append(
            (size, best_of(runs, VALIDATE, [args.atpay, "validate", str(out / "tenants"), "--format", "json"], env=env))
        )
        work = DATA / f"state-{size}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        rows += measure(size, args.atpay, out, backend="sqlite", state=str(work / "state.db"), env=env)
        if use_pg and size >= 1000:
            url = pg_schema_url(args.pg)
            try:
                rows += measure(size, args.atpay, out, backend="postgres", state=url, env=env)
            finally:
                drop_pg_schema(url)
        shutil.rmtree(work, ignore_errors=True)
    keys = "keys encrypted to the demo identity" if encrypt else "plaintext keys + AT005 waivers"
    print_table(f"atpay plan/apply ({keys})", rows, baseline=VALIDATE, unit="tenants/s")
    if not use_pg:
        print("\nPostgreSQL not reachable (or --no-pg): SQLite only", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
