"""The sops tree format: values, typing, MAC, metadata, and files sops itself wrote."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from atpay_config.errors import SecretsError
from atpay_config.secrets.identities import load_identities
from atpay_config.secrets.inplace import decrypt_text, encrypt_text
from atpay_config.secrets.sops import (
    ENVELOPE_RE,
    EnvelopeError,
    Timestamp,
    decrypt_keys,
    decrypt_value,
    encrypt_value,
    go_float,
    inspect_file,
    is_envelope,
    resolve_plain,
    value_bytes,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "sops"


def identities_from(name: str) -> list:  # type: ignore[type-arg]
    return load_identities({"SOPS_AGE_KEY_FILE": str(DATA / name)})


def recipient_of(name: str) -> str:
    match = re.search(r"age1[0-9a-z]+", (DATA / name).read_text())
    assert match
    return match[0]


# --- values -------------------------------------------------------------------------


def test_values_use_a_32_byte_iv_and_the_path_as_associated_data() -> None:
    key = os.urandom(32)
    envelope = encrypt_value("sk_live_1", key, "spec:keys:privateKey:")
    match = ENVELOPE_RE.match(envelope)
    assert match and match["type"] == "str"
    import base64

    assert len(base64.b64decode(match["iv"])) == 32
    assert decrypt_value(envelope, key, "spec:keys:privateKey:").value == "sk_live_1"
    with pytest.raises(EnvelopeError, match="authentication failed"):
        decrypt_value(envelope, key, "spec:keys:publicKey:")


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("text", "str"),
        (7, "int"),
        (3.14, "float"),
        (True, "bool"),
        (Timestamp("2024-05-06T00:00:00Z"), "time"),
    ],
)
def test_values_keep_their_type(value: object, kind: str) -> None:
    key = os.urandom(32)
    envelope = encrypt_value(value, key, "a:")  # type: ignore[arg-type]
    assert envelope.endswith(f"type:{kind}]")
    assert decrypt_value(envelope, key, "a:").value == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ENC[AES256_GCM,data:AAAA,iv:" + "A" * 44 + ",tag:" + "A" * 22 + "==,type:str]", True),
        ("ENC[AES256_GCM,data:AAAA,iv:" + "A" * 44 + ",tag:AAAA,type:str]", False),  # short tag
        ("ENC[AES256_GCM,data:AAA,iv:" + "A" * 44 + ",tag:" + "A" * 22 + "==,type:str]", False),
        ("ENC[AES256_GCM,data:AAAA,iv:" + "A" * 44 + ",tag:" + "A" * 22 + "==,type:blob]", False),
        ("plaintext", False),
        (42, False),
    ],
)
def test_is_envelope_accepts_only_well_formed_values(value: object, expected: bool) -> None:
    assert is_envelope(value) is expected


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1.0, "1"),
        (3.14, "3.14"),
        (1e20, "100000000000000000000"),
        (1e-7, "0.0000001"),
        (-0.0, "-0"),
    ],
)
def test_floats_are_hashed_as_go_formats_them(number: float, text: str) -> None:
    assert go_float(number) == text
    assert value_bytes(number) == text.encode()


def test_bools_are_hashed_titlecase() -> None:
    assert value_bytes(True) == b"True" and value_bytes(False) == b"False"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", "yes"),
        ("on", "on"),
        ("true", True),
        ("0x1F", 31),
        ("0o17", 15),
        ("017", 15),
        ("1_000", 1000),
        ("1e20", 1e20),
        ("08", 8.0),
        (".5", 0.5),
        ("2024-05-06", Timestamp("2024-05-06T00:00:00Z")),
        ("2024-05-06T10:20:30+02:00", Timestamp("2024-05-06T10:20:30+02:00")),
        ("null", None),
        ("", None),
        ("1e400", "1e400"),
    ],
)
def test_scalars_are_typed_as_sops_yaml_v3_types_them(text: str, expected: object) -> None:
    resolved = resolve_plain(text)
    assert resolved == expected
    assert type(resolved) is type(expected)


# --- files sops wrote -----------------------------------------------------------------


def test_reference_file_from_sops_3_8_decrypts_to_expected_json() -> None:
    text = (DATA / "secret.enc.yaml").read_text()
    plain = decrypt_text(text, path="secret.enc.yaml", identities=identities_from("key.txt"))
    assert yaml.safe_load(plain) == json.loads((DATA / "expected.json").read_text())


@pytest.mark.parametrize("name", ["manifest", "multidoc", "types", "all-types", "mac-only"])
def test_files_sops_3_11_wrote_decrypt_with_the_mac_verified(name: str) -> None:
    text = (DATA / f"sops311-{name}.enc.yaml").read_text()
    plain = decrypt_text(text, path=name, identities=identities_from("test-identity.txt"))
    expected = (DATA / f"sops311-{name}.dec.yaml").read_text()
    assert list(yaml.safe_load_all(plain)) == list(yaml.safe_load_all(expected))


def test_mac_only_encrypted_files_are_read_and_flagged() -> None:
    text = (DATA / "sops311-mac-only.enc.yaml").read_text()
    check = inspect_file(text, path="f.yaml", identities=identities_from("test-identity.txt"))
    assert check.mac == "ok" and check.mac_only_encrypted


def test_decrypt_keys_returns_each_documents_keys() -> None:
    text = (DATA / "sops311-multidoc.enc.yaml").read_text()
    keys = decrypt_keys(text, path="m.yaml", identities=identities_from("test-identity.txt"))
    assert keys == {
        0: {"publicKey": "pk_contoso", "privateKey": "sk_contoso"},
        1: {"publicKey": "pk_fabrikam", "privateKey": "sk_fabrikam"},
    }


# --- what the MAC binds ---------------------------------------------------------------------

PLAIN = """\
apiVersion: atpay/v1
kind: PaymentProcessing
metadata:
  tenant: {tenant}
spec:
  activation: active
  keys:
    publicKey: pk_{tenant}
    privateKey: sk_{tenant}
  paymentTypes:
    autotask: [creditCard]
"""


def _encrypted(tenant: str, *, mac_only: bool = False) -> str:
    return encrypt_text(
        PLAIN.format(tenant=tenant),
        path=f"{tenant}.yaml",
        recipients=[recipient_of("test-identity.txt")],
        mac_only_encrypted=mac_only,
    )


def _keys_and_sops(text: str) -> str:
    return text[text.index("  keys:") :]


def test_moving_encrypted_keys_into_another_tenants_file_fails_the_mac() -> None:
    contoso = _encrypted("contoso")
    fabrikam_plain = PLAIN.format(tenant="fabrikam")
    forged = fabrikam_plain[: fabrikam_plain.index("  keys:")] + _keys_and_sops(contoso)
    ids = identities_from("test-identity.txt")
    with pytest.raises(SecretsError, match="MAC mismatch") as caught:
        decrypt_text(forged, path="fabrikam.yaml", identities=ids)
    assert str(caught.value).startswith("fabrikam.yaml:")
    check = inspect_file(forged, path="fabrikam.yaml", identities=ids)
    assert check.mac == "mismatch"
    pointer, line, _column, _message = check.problems[0]
    assert pointer == "/sops/mac"
    assert forged.splitlines()[line - 1].lstrip().startswith("mac: ENC[")


def test_mac_only_encrypted_drops_the_tenant_binding() -> None:
    contoso = _encrypted("contoso", mac_only=True)
    fabrikam_plain = PLAIN.format(tenant="fabrikam")
    forged = fabrikam_plain[: fabrikam_plain.index("  keys:")] + _keys_and_sops(contoso)
    check = inspect_file(forged, path="f.yaml", identities=identities_from("test-identity.txt"))
    assert check.mac == "ok" and check.mac_only_encrypted


def test_changing_the_tenant_id_of_an_encrypted_file_fails_the_mac() -> None:
    tampered = _encrypted("contoso").replace("tenant: contoso", "tenant: contosa")
    with pytest.raises(SecretsError, match="MAC mismatch"):
        decrypt_text(tampered, path="c.yaml", identities=identities_from("test-identity.txt"))


# --- tampering --------------------------------------------------------------------------


def test_every_single_byte_change_is_detected_and_never_yields_a_wrong_key() -> None:
    """Flip one bit of every byte of an encrypted manifest.

    Every byte of every value (encrypted or not), of the encrypted keys' path, of the
    whole `sops:` block (bar the `version` digits) and of the wrapped data key is
    detected: an error naming the file, on one line. sops's MAC covers values, not
    the names of unencrypted keys, comments or layout; a change there may decrypt,
    but the keys then decrypt to exactly their original plaintext.
    """
    ids = identities_from("test-identity.txt")
    original = _encrypted("contoso")
    keys = decrypt_keys(original, path="t.yaml", identities=ids)
    sops_start = original.index("sops:")
    version_at = original.index("version: ") + len("version: ")
    must_detect = {i for i in range(sops_start, len(original)) if not original[i].isspace()}
    for match in re.finditer(
        r"(?<=: )\S.*$|\b(spec|keys|publicKey|privateKey)(?=:)", original, flags=re.M
    ):
        must_detect.update(range(match.start(), match.end()))
    must_detect -= set(range(version_at, version_at + len("3.11.0")))
    data = original.encode()
    undetected = []
    for index in range(len(data)):
        changed = bytearray(data)
        changed[index] ^= 0x01
        try:
            result = decrypt_keys(changed.decode("utf-8"), path="t.yaml", identities=ids)
        except SecretsError as exc:
            message = str(exc)
            assert message.startswith("t.yaml") and "\n" not in message
            assert "sk_contoso" not in message and "pk_contoso" not in message
            continue
        assert result == keys, f"byte {index} changed a decrypted key"
        undetected.append(index)
    missed = sorted(set(undetected) & must_detect)
    assert not missed, [original[i - 10 : i + 10] for i in missed]


def test_truncated_ciphertext_is_an_error_naming_the_file() -> None:
    original = _encrypted("contoso")
    envelope = re.search(r"privateKey: (ENC\[AES256_GCM,data:)([^,]+)", original)
    assert envelope
    truncated = original.replace(envelope[2], envelope[2][:4], 1)
    with pytest.raises(SecretsError, match=r"^t.yaml:9:17: cannot decrypt /spec/keys/privateKey"):
        decrypt_text(truncated, path="t.yaml", identities=identities_from("test-identity.txt"))


# --- failure messages: one line, naming the file ------------------------------------------------


def _one_line(exc: pytest.ExceptionInfo[SecretsError], path: str) -> str:
    message = str(exc.value)
    assert "\n" not in message and message.startswith(path)
    return message


def test_no_identity_is_a_clear_error() -> None:
    with pytest.raises(SecretsError) as caught:
        decrypt_text(_encrypted("contoso"), path="c.yaml", identities=[])
    assert "no age identity found" in _one_line(caught, "c.yaml")


def test_no_matching_recipient_is_a_clear_error() -> None:
    with pytest.raises(SecretsError) as caught:
        decrypt_text(_encrypted("contoso"), path="c.yaml", identities=identities_from("key.txt"))
    assert "matches the file's recipients" in _one_line(caught, "c.yaml")


def test_malformed_envelope_is_a_clear_error() -> None:
    broken = re.sub(r"(privateKey: ENC\[AES256_GCM,data:)", r"\1!", _encrypted("contoso"))
    with pytest.raises(SecretsError) as caught:
        decrypt_text(broken, path="c.yaml", identities=identities_from("test-identity.txt"))
    assert "malformed ENC[...]" in _one_line(caught, "c.yaml")
    check = inspect_file(broken, path="c.yaml", identities=None)
    assert check.mac == "skipped" and check.skipped_reason
    assert check.problems[0][:3] == ("/spec/keys/privateKey", 9, 17)


def test_unsupported_sops_version_is_a_clear_error() -> None:
    old = _encrypted("contoso").replace("version: 3.11.0", "version: 2.0.0")
    with pytest.raises(SecretsError) as caught:
        decrypt_text(old, path="c.yaml", identities=identities_from("test-identity.txt"))
    assert "unsupported sops version" in _one_line(caught, "c.yaml")


def test_already_encrypted_file_is_refused() -> None:
    with pytest.raises(SecretsError, match="already encrypted"):
        encrypt_text(
            _encrypted("contoso"), path="c.yaml", recipients=[recipient_of("test-identity.txt")]
        )


# --- inspect_file, the validate rules' view ---


def test_inspect_file_reports_equal_and_whitespace_keys_without_holding_plaintext() -> None:
    plain = PLAIN.format(tenant="x").replace("pk_x", "' same '").replace("sk_x", "' same '")
    text = encrypt_text(plain, path="x.yaml", recipients=[recipient_of("test-identity.txt")])
    check = inspect_file(text, path="x.yaml", identities=identities_from("test-identity.txt"))
    assert check.mac == "ok"
    assert check.equal_keys(0) is True
    assert check.whitespace_keys(0) == ["/spec/keys/publicKey", "/spec/keys/privateKey"]
    assert "same" not in repr(check) and "same" not in str(check)


def test_inspect_file_without_sops_block_reports_absent() -> None:
    check = inspect_file(PLAIN.format(tenant="x"), path="x.yaml", identities=None)
    assert check.mac == "absent" and check.problems == []


def test_inspect_file_never_raises_on_garbage() -> None:
    for text in ("a: [", "- 1\n- 2\n", "sops: 3\n", "\x00", "a: !!int x\n"):
        check = inspect_file(text, path="g.yaml", identities=None)
        assert check.mac in ("absent", "skipped", "mismatch")
