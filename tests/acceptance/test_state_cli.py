"""`atpay state …`: initialise from fixtures, list, show (masked), history, migrate, check."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import yaml
from tests.conftest import EXAMPLES, RunCli


def test_every_example_tenant_has_a_fixture() -> None:
    tenants = set()
    for path in (EXAMPLES / "tenants").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "PaymentProcessing":
                tenants.add(doc["metadata"]["tenant"])
    fixtures = {p.stem for p in (EXAMPLES / "fixtures").glob("*.yaml")}
    assert tenants == fixtures == {"contoso", "fabrikam", "northwind", "tailspin", "adatum"}


def test_init_list_show_and_history_of_the_example_fixtures(run_cli: RunCli) -> None:
    out = run_cli("state", "init", str(EXAMPLES / "fixtures")).stdout
    assert out.startswith("initialised 5 tenant(s)")
    listed = run_cli("state", "list").stdout.splitlines()
    assert [line.split("\t")[0] for line in listed] == [
        "adatum",
        "contoso",
        "fabrikam",
        "northwind",
        "tailspin",
    ]
    shown = run_cli("state", "show", "contoso").stdout
    assert "Billing Clerk" in shown and "gitops-bot (API User)" in shown
    assert "public key: not saved" in shown
    doc = json.loads(run_cli("state", "show", "contoso", "--format", "json").stdout)
    assert doc["state"]["activation"] == "inactive" and doc["record"] is None
    assert run_cli("state", "history", "contoso").stdout.strip() == "contoso: no changes recorded"


def test_init_twice_needs_replace(run_cli: RunCli) -> None:
    run_cli("state", "init", str(EXAMPLES / "fixtures"))
    result = run_cli("state", "init", str(EXAMPLES / "fixtures" / "contoso.yaml"), exit=1)
    assert "already exists" in result.stderr and "--replace" in result.stderr
    run_cli("state", "init", str(EXAMPLES / "fixtures" / "contoso.yaml"), "--replace")


def test_init_refuses_a_fixture_that_breaks_the_schema(run_cli: RunCli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: atpay/v1\nkind: SimulatedTenant\nmetadata: {tenant: bad}\n"
        "spec:\n  country: US\n  curency: USD\n"
    )
    result = run_cli("state", "init", str(bad), exit=1)
    assert "bad.yaml:6:3" in result.stderr and "(schema)" in result.stderr
    assert run_cli("state", "list").stdout.startswith("no tenants")


def test_show_of_an_unknown_tenant_is_one_line(run_cli: RunCli) -> None:
    result = run_cli("state", "show", "nobody", exit=1)
    assert result.stderr.count("\n") == 1 and "atpay state list" in result.stderr


def test_migrate_copies_everything_verified(run_cli: RunCli, tmp_path: Path) -> None:
    run_cli("state", "init", str(EXAMPLES / "fixtures"))
    target = tmp_path / "copy" / "state.db"
    out = run_cli("state", "migrate", "--to", str(target)).stdout
    assert "5 tenants, 0 records, 0 audit entries" in out and "sha256 " in out
    listed = run_cli("state", "list", "--state", str(target)).stdout
    assert len(listed.splitlines()) == 5


def test_check_reports_a_state_autotask_would_never_allow(run_cli: RunCli, tmp_path: Path) -> None:
    run_cli("state", "init", str(EXAMPLES / "fixtures"))
    assert "no problems" in run_cli("state", "check").stdout
    with closing(sqlite3.connect(tmp_path / "state.db", isolation_level=None)) as conn:
        conn.execute("UPDATE tenants SET state_digest = 'x' WHERE name = 'contoso'")
    result = run_cli("state", "check", exit=1)
    assert "contoso" in result.stderr and "digest" in result.stderr
