"""`atpay plan` and `atpay apply` end to end: exit codes, approval, saved plans, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import EXAMPLES, RunCli
from tests.unit.plan.builders import PRIVATE, PUBLIC, manifest_yaml, write_workspace

from atpay_config.cli import plan as plan_cli

TENANTS = {"contoso": "enabled", "adatum": "demo", "tailspin": "inactive"}


@pytest.fixture
def workspace(tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tenants/ and fixtures/ in the current folder, the fixtures initialised."""
    monkeypatch.chdir(tmp_path)
    write_workspace(tmp_path, TENANTS)
    run_cli("state", "init", "fixtures")
    return tmp_path


def test_plan_exits_0_or_2_with_detailed_exitcode(workspace: Path, run_cli: RunCli) -> None:
    out = run_cli("plan", "tenants").stdout
    assert "contoso (state version 1, acting as gitops-bot)" in out
    assert "Plan: 2 tenant(s) to change (8 step(s)), 1 unchanged." in out
    run_cli("plan", "tenants", "--detailed-exitcode", exit=2)
    run_cli("apply", "tenants", "--auto-approve")
    out = run_cli("plan", "tenants", "--detailed-exitcode", exit=0).stdout
    assert "No changes." in out


def test_a_second_apply_is_a_no_op(workspace: Path, run_cli: RunCli) -> None:
    first = run_cli("apply", "tenants", "--auto-approve").stdout
    assert "Apply complete: 2 tenant(s) changed (8 step(s))" in first
    second = run_cli("apply", "tenants", "--auto-approve").stdout
    assert "No changes." in second and "Apply complete" not in second
    history = run_cli("state", "history", "contoso").stdout.splitlines()
    assert len(history) == 6


def test_plan_refuses_up_front_with_the_validation_findings(
    workspace: Path, run_cli: RunCli
) -> None:
    (workspace / "tenants" / "adatum.yaml").write_text(
        manifest_yaml("adatum", stage="demo") + "  paymentTypes: {autotask: [creditCard]}\n"
    )
    result = run_cli("plan", "tenants", exit=1)
    assert result.stdout == ""
    assert "tenants/adatum.yaml:" in result.stderr and "(AT002)" in result.stderr
    assert "validation errors" in result.stderr.splitlines()[-1]
    run_cli("apply", "tenants", "--auto-approve", exit=1)


def test_apply_refuses_to_ask_when_stdin_is_not_a_terminal(
    workspace: Path, run_cli: RunCli
) -> None:
    result = run_cli("apply", "tenants", exit=1)
    assert "pass --auto-approve" in result.stderr
    assert "contoso\tversion 1\t" in run_cli("state", "list").stdout


def test_apply_asks_and_only_yes_applies(
    workspace: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plan_cli, "_stdin_is_terminal", lambda: True)
    result = run_cli("apply", "tenants", input="n\n", exit=1)
    assert "Apply these changes? [y/N]" in result.stderr and "cancelled" in result.stderr
    assert "contoso\tversion 1\t" in run_cli("state", "list").stdout
    run_cli("apply", "tenants", input="y\n")
    assert "contoso\tversion 7\tactive\tprocessing enabled" in run_cli("state", "list").stdout


def test_acting_as_a_user_without_finance_admin_is_refused_AT1(
    workspace: Path, run_cli: RunCli
) -> None:
    result = run_cli("plan", "tenants", "--as", "dispatch", exit=1)
    assert "lacks the Admin permission to configure Finance" in result.stderr
    assert "(AT-1)" in result.stderr
    assert "! refused:" in result.stdout
    run_cli("apply", "tenants", "--as", "dispatch", "--auto-approve", exit=1)
    assert "contoso\tversion 1\t" in run_cli("state", "list").stdout


def test_a_tenant_without_simulated_state_is_refused(workspace: Path, run_cli: RunCli) -> None:
    (workspace / "tenants" / "northwind.yaml").write_text(manifest_yaml("northwind", stage="demo"))
    result = run_cli("plan", "tenants", exit=1)
    assert "atpay state init" in result.stderr


def test_tenant_selection(workspace: Path, run_cli: RunCli) -> None:
    out = run_cli("plan", "tenants", "--tenant", "adatum", "--format", "json").stdout
    assert [t["tenant"] for t in json.loads(out)["tenants"]] == ["adatum"]
    result = run_cli("plan", "tenants", "--tenant", "nobody", exit=1)
    assert "no manifest declares it" in result.stderr


def test_markdown_plan_is_fit_for_a_pr_comment(workspace: Path, run_cli: RunCli) -> None:
    md = run_cli("plan", "tenants", "--format", "markdown").stdout
    assert md.startswith("### atpay plan: 2 tenant(s) to change, 1 unchanged")
    assert "- adatum: 2 to change (activate, request sales contact)" in md


def test_a_saved_plan_applies_once_then_is_stale(workspace: Path, run_cli: RunCli) -> None:
    result = run_cli("plan", "tenants", "--out", "plan.json", "--detailed-exitcode", exit=2)
    assert "plan saved to plan.json" in result.stderr
    applied = run_cli("apply", "plan.json", "--auto-approve").stdout
    assert "Saved plan plan.json" in applied and "Apply complete" in applied
    stale = run_cli("apply", "plan.json", "--auto-approve", exit=1)
    assert "is stale: the state of adatum (planned at version 1, now 3), contoso" in stale.stderr


def test_a_saved_plan_is_stale_after_a_manifest_edit(workspace: Path, run_cli: RunCli) -> None:
    run_cli("plan", "tenants", "--out", "plan.json")
    with (workspace / "tenants" / "adatum.yaml").open("a") as handle:
        handle.write("# reviewed\n")
    result = run_cli("apply", "plan.json", "--auto-approve", exit=1)
    assert "tenants/adatum.yaml changed since it was made" in result.stderr
    assert "adatum\tversion 1\t" in run_cli("state", "list").stdout


def test_keys_never_appear_in_any_output_plan_file_or_state(
    workspace: Path, run_cli: RunCli
) -> None:
    seen = []
    for fmt in ("text", "json", "markdown"):
        result = run_cli("plan", "tenants", "--format", fmt, "--out", f"plan-{fmt}.json")
        seen += [result.stdout, result.stderr]
    result = run_cli("apply", "plan-text.json", "--auto-approve")
    seen += [result.stdout, result.stderr]
    for args in (
        ("show", "contoso"),
        ("show", "contoso", "--format", "json"),
        ("history", "contoso"),
        ("list",),
    ):
        result = run_cli("state", *args)
        seen += [result.stdout, result.stderr]
    assert "••••••••" in run_cli("state", "show", "contoso").stdout
    blob = "\n".join(seen) + "".join(p.read_text() for p in workspace.glob("plan-*.json"))
    blob_bytes = blob.encode() + b"".join(p.read_bytes() for p in workspace.glob("state.db*"))
    for secret in (PUBLIC, PRIVATE):
        assert secret.encode() not in blob_bytes


DEMO_KEY = EXAMPLES / "demo-identity" / "age-demo.key"


def _example_keys() -> list[str]:
    from atpay_config.secrets.identities import load_identities
    from atpay_config.secrets.sops import decrypt_keys

    identities = load_identities({"SOPS_AGE_KEY_FILE": str(DEMO_KEY)})
    keys: list[str] = []
    for path in sorted((EXAMPLES / "tenants").glob("*.yaml")):
        text = path.read_text()
        if "ENC[" in text:
            for found in decrypt_keys(text, path=str(path), identities=identities).values():
                keys += found.values()
    return keys


def test_the_examples_plan_and_apply_with_encrypted_keys_never_shown(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(DEMO_KEY))
    tenants = str(EXAMPLES / "tenants")
    run_cli("state", "init", str(EXAMPLES / "fixtures"))
    seen = [run_cli("plan", tenants, "--out", "plan.json", "--format", "json").stdout]
    seen.append(run_cli("apply", "plan.json", "--auto-approve").stdout)
    seen.append(run_cli("plan", tenants, "--detailed-exitcode").stdout)
    seen.append(run_cli("state", "show", "contoso").stdout)
    keys = _example_keys()
    assert len(keys) == 4
    blob = "\n".join(seen).encode() + (tmp_path / "plan.json").read_bytes()
    blob += b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    for key in keys:
        assert key.encode() not in blob


def test_encrypted_keys_without_an_identity_fail_with_a_hint(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))
    run_cli("state", "init", str(EXAMPLES / "fixtures"))
    result = run_cli("plan", str(EXAMPLES / "tenants"), exit=1)
    assert "SOPS_AGE_KEY" in result.stderr
    assert "Traceback" not in result.stderr
