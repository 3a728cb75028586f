"""`atpay validate` end to end: exit codes, every format, strict mode, policies."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from tests.conftest import EXAMPLES, RunCli

REPO = Path(__file__).resolve().parents[2]
SARIF_SCHEMA = REPO / "tests" / "data" / "report" / "sarif-schema-2.1.0.json"
DEMO_KEY = EXAMPLES / "demo-identity" / "age-demo.key"
TENANTS = str(EXAMPLES / "tenants")
ORG_POLICIES = str(EXAMPLES / "policies")
INVALID = str(EXAMPLES / "invalid")


@pytest.fixture(autouse=True)
def demo_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(DEMO_KEY))


def test_examples_validate_clean(run_cli: RunCli) -> None:
    result = run_cli("validate", TENANTS, "--policies", ORG_POLICIES, exit=0)
    assert "0 errors" in result.stdout


def test_invalid_examples_exit_1_with_located_findings(run_cli: RunCli) -> None:
    result = run_cli("validate", INVALID, exit=1)
    assert "AT002-payment-types-without-keys.yaml:13:3: [error]" in result.stdout


def test_missing_path_is_a_usage_error(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("validate", str(tmp_path / "nope.yaml"), exit=2)
    assert "no such file or directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_folder_without_manifests_is_a_usage_error(run_cli: RunCli, tmp_path: Path) -> None:
    assert "no *.yaml" in run_cli("validate", str(tmp_path), exit=2).stderr


def test_unknown_format_is_a_usage_error(run_cli: RunCli) -> None:
    run_cli("validate", TENANTS, "--format", "xml", exit=2)


def test_json_output_has_the_documented_shape(run_cli: RunCli) -> None:
    out = json.loads(run_cli("validate", INVALID, "--format", "json", exit=1).stdout)
    assert out["version"] == 1
    assert set(out["summary"]) == {"files", "documents", "errors", "warnings", "infos", "waived"}
    first = out["findings"][0]
    assert {
        "rule",
        "level",
        "message",
        "fact",
        "file",
        "line",
        "column",
        "pointer",
        "document",
    } <= set(first)


def test_sarif_output_is_valid_sarif_2_1_0(run_cli: RunCli) -> None:
    out = json.loads(run_cli("validate", INVALID, "--format", "sarif", exit=1).stdout)
    jsonschema.Draft7Validator(json.loads(SARIF_SCHEMA.read_text())).validate(out)
    rules = {r["id"] for r in out["runs"][0]["tool"]["driver"]["rules"]}
    assert {"AT001", "AT002", "schema", "yaml"} <= rules


def test_junit_has_one_case_per_document(run_cli: RunCli) -> None:
    out = run_cli("validate", TENANTS, "--format", "junit", exit=0).stdout
    cases = ET.fromstring(out).iter("testcase")
    assert len(list(cases)) == 6  # contoso, fabrikam, northwind, tailspin, adatum, the waiver


def test_github_annotations_carry_file_line_and_column(run_cli: RunCli) -> None:
    out = run_cli("validate", INVALID, "--format", "github", exit=1).stdout
    assert "::error file=" in out and ",line=13,col=3," in out


def test_strict_fails_on_warnings(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        "apiVersion: atpay/v1\nkind: PaymentProcessing\nmetadata: {tenant: t}\n"
        "spec:\n  activation: active\n  salesContact: {requested: true, email: jane@t.example}\n"
    )
    policies = ORG_POLICIES
    run_cli("validate", str(tmp_path), "--policies", policies, exit=0)
    run_cli("validate", str(tmp_path), "--policies", policies, "--strict", exit=1)


def test_expired_waiver_fails_the_run(run_cli: RunCli) -> None:
    result = run_cli("validate", TENANTS, "--today", "2027-07-01", exit=1)
    assert "expired on 2027-06-30" in result.stdout


def test_broken_org_policy_is_reported_with_its_location(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "apiVersion: atpay/v1\nkind: Policy\nmetadata: {id: X1, title: t}\n"
        "spec: {level: error, message: m, when: {type: nonsense}}\n"
    )
    result = run_cli("validate", TENANTS, "--policies", str(tmp_path), exit=1)
    assert "bad.yaml:4:" in result.stdout


def test_policy_test_runs_builtin_examples(run_cli: RunCli) -> None:
    result = run_cli("policy", "test", exit=0)
    assert "AT001" in result.stdout and " 0 failed" in result.stdout


def test_policy_test_runs_org_examples_and_fails_a_wrong_one(
    run_cli: RunCli, tmp_path: Path
) -> None:
    run_cli("policy", "test", ORG_POLICIES, exit=0)
    (tmp_path / "wrong.yaml").write_text(
        "apiVersion: atpay/v1\nkind: Policy\nmetadata: {id: X2, title: t}\n"
        "spec:\n  level: error\n  message: m\n  when: {required: [spec]}\n"
        "  examples: {pass: [{spec: {}}], fail: [{}]}\n"
    )
    result = run_cli("policy", "test", str(tmp_path), exit=1)
    assert "FAIL  X2" in result.stdout


def test_rules_reference_is_current(run_cli: RunCli) -> None:
    generated = run_cli("policy", "docs", exit=0).stdout
    assert (REPO / "docs" / "rules.md").read_text() == generated, (
        "run: atpay policy docs > docs/rules.md"
    )


def test_an_unreadable_identity_file_is_an_io_error(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(tmp_path / "missing.txt"))
    result = run_cli("validate", TENANTS, exit=2)
    assert "missing.txt" in result.stderr and "Traceback" not in result.stderr
