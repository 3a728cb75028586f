"""No secret ever leaks: recognisable canary keys run through every command of the CLI.

The plaintext may appear in exactly one place: the stdout of `atpay decrypt`,
whose purpose it is. Everything else — every stdout and stderr, every file
written (plans, reports, the state database and its journal), every exception
message — is scanned for the canaries.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.conftest import EXAMPLES, CliResult, RunCli

from atpay_config.secrets.age import X25519Identity, keygen_file_text

CANARY = "CANARY_9d41e7"
PUBLIC = f"pk_{CANARY}_public"
PRIVATE = f"sk_{CANARY}_private"
ROTATED_PRIVATE = f"sk_{CANARY}_rotated"

MANIFEST = f"""\
apiVersion: atpay/v1
kind: PaymentProcessing
metadata:
  tenant: contoso
  labels: {{region: us-east, tier: enterprise}}
spec:
  activation: active
  salesContact: {{requested: true, email: billing@contoso.example}}
  gateway: {{provider: bng, accountActive: true}}
  keys:
    publicKey: {PUBLIC}
    privateKey: {PRIVATE}
  paymentTypes:
    autotask: [creditCard, eCheck]
    clientPortal: [creditCard]
"""


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    identity = X25519Identity.generate()
    key_file = tmp_path / "keys.txt"
    import datetime as dt

    key_file.write_text(keygen_file_text(identity, created=dt.datetime.now(dt.UTC)))
    (tmp_path / ".sops.yaml").write_text(
        f"creation_rules:\n  - path_regex: tenants/.*\\.yaml$\n    age: {identity.recipient()}\n"
    )
    (tmp_path / "tenants").mkdir()
    (tmp_path / "tenants" / "contoso.yaml").write_text(MANIFEST)
    (tmp_path / "fixtures").mkdir()
    shutil.copy(EXAMPLES / "fixtures" / "contoso.yaml", tmp_path / "fixtures" / "contoso.yaml")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key_file))
    monkeypatch.setenv("EDITOR", "true")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def assert_no_canary(result: CliResult, what: str, *, stdout_may_hold_it: bool = False) -> None:
    if not stdout_may_hold_it:
        assert CANARY not in result.stdout, f"key in stdout of {what}"
    assert CANARY not in result.stderr, f"key in stderr of {what}"


def assert_no_canary_in_files(root: Path, *, except_files: tuple[Path, ...] = ()) -> None:
    for path in root.rglob("*"):
        if path.is_file() and path not in except_files:
            assert CANARY.encode() not in path.read_bytes(), f"key written to {path}"


def test_plaintext_keys_never_leak_from_validate(run_cli: RunCli, workspace: Path) -> None:
    for fmt in ("text", "json", "sarif", "junit", "github"):
        result = run_cli("validate", "tenants", "--format", fmt, exit=1)  # AT005: plaintext
        assert "AT005" in result.stdout
        assert_no_canary(result, f"validate --format {fmt} on plaintext keys")


def test_no_command_leaks_a_decrypted_key(run_cli: RunCli, workspace: Path) -> None:
    state = workspace / "state.db"
    assert_no_canary(run_cli("encrypt", "tenants/contoso.yaml"), "encrypt")
    assert_no_canary_in_files(workspace, except_files=(workspace / "fixtures" / "contoso.yaml",))

    runs: list[tuple[str, CliResult]] = []

    def run(*args: str, exit: int = 0) -> CliResult:
        result = run_cli(*args, exit=exit)
        runs.append((" ".join(args), result))
        return result

    for fmt in ("text", "json", "sarif", "junit", "github"):
        run("validate", "tenants", "--format", fmt)
    run("state", "init", "fixtures", "--state", str(state))
    for fmt in ("text", "json", "markdown"):
        run("plan", "tenants", "--format", fmt, "--state", str(state))
    run("plan", "tenants", "--out", "plan.json", "--state", str(state))
    for fmt in ("text", "markdown", "html", "json"):
        run("report", "tenants", "--format", fmt, "--state", str(state))
    run("report", "tenants", "--format", "html", "-o", "report.html", "--state", str(state))
    run("apply", "plan.json", "--auto-approve", "--state", str(state))
    run("plan", "tenants", "--state", str(state), "--detailed-exitcode")
    run("state", "show", "contoso", "--state", str(state))
    run("state", "show", "contoso", "--format", "json", "--state", str(state))
    run("state", "history", "contoso", "--state", str(state))
    run("state", "list", "--state", str(state))
    # A key rotated in git: plan, apply, and a now-stale saved plan refused.
    run("set", "tenants/contoso.yaml", '["spec"]["keys"]["privateKey"]', f'"{ROTATED_PRIVATE}"')
    run("plan", "tenants", "--state", str(state), "--format", "json")
    run("apply", "plan.json", "--auto-approve", "--state", str(state), exit=1)
    run("apply", "tenants", "--auto-approve", "--state", str(state))
    run("rotate", "tenants/contoso.yaml")
    run("edit", "tenants/contoso.yaml")
    # Failure paths carry no key either: a tampered file, a wrong identity.
    tampered = workspace / "tenants" / "contoso.yaml"
    tampered.write_text(tampered.read_text().replace("tenant: contoso", "tenant: contoso2"))
    run("validate", "tenants", exit=1)
    run("plan", "tenants", "--state", str(state), exit=1)
    decrypted = run_cli("decrypt", "tenants/contoso.yaml", exit=1)
    assert_no_canary(decrypted, "decrypt of a tampered file")

    for what, result in runs:
        assert_no_canary(result, what)
    assert_no_canary_in_files(workspace, except_files=(workspace / "fixtures" / "contoso.yaml",))


def test_decrypt_prints_the_key_only_on_stdout(run_cli: RunCli, workspace: Path) -> None:
    run_cli("encrypt", "tenants/contoso.yaml")
    result = run_cli("decrypt", "tenants/contoso.yaml")
    assert PRIVATE in result.stdout
    assert_no_canary(result, "decrypt", stdout_may_hold_it=True)
