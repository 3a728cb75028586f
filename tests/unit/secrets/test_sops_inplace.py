"""Encrypting in place: only the key scalars and the appended `sops:` block change."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from atpay_config.errors import SecretsError
from atpay_config.secrets.creation_rules import rule_for_file
from atpay_config.secrets.identities import load_identities
from atpay_config.secrets.inplace import (
    decrypt_text,
    encrypt_text,
    parse_index_path,
    plaintext_text,
    reencrypt_text,
    rotate_text,
    set_text,
)
from atpay_config.secrets.sops import KEY_FIELDS_REGEX, decrypt_keys, open_tree

DATA = Path(__file__).resolve().parents[2] / "data" / "sops"
IDENTITY = DATA / "test-identity.txt"
RECIPIENT = re.search(r"age1[0-9a-z]+", IDENTITY.read_text())[0]  # type: ignore[index]
IDS = load_identities({"SOPS_AGE_KEY_FILE": str(IDENTITY)})

MANIFEST = """\
# Contoso's payment processing — reviewed by finance
apiVersion: atpay/v1
kind: PaymentProcessing
metadata:
  tenant: contoso      # Autotask tenant id
  labels: {region: eu, tier: "1"}
spec:
  activation: active

  gateway:
    provider: 'bng'
    accountActive: true
  keys:
    # from ConnectBooster, 2024-05
    publicKey: "pk_live_äöü 123"   # quoted on purpose
    privateKey: sk_live_456
  paymentTypes:
    autotask: [creditCard, eCheck]
    clientPortal:
      - creditCard
"""


def test_encrypting_changes_only_the_key_scalars_and_appends_the_sops_block() -> None:
    encrypted = encrypt_text(MANIFEST, path="m.yaml", recipients=[RECIPIENT])
    body, block = encrypted[: encrypted.index("sops:\n")], encrypted[encrypted.index("sops:\n") :]
    originals = iter(['"pk_live_äöü 123"', "sk_live_456"])
    restored = re.sub(r"ENC\[AES256_GCM,[^\]]+\]", lambda _: next(originals), body)
    assert restored == MANIFEST
    assert block.startswith("sops:\n    age:\n        - recipient: " + RECIPIENT)
    assert f"    encrypted_regex: {KEY_FIELDS_REGEX}\n    version: 3.11.0\n" in block


def test_decrypting_what_we_encrypted_restores_the_file() -> None:
    encrypted = encrypt_text(MANIFEST, path="m.yaml", recipients=[RECIPIENT])
    plain = decrypt_text(encrypted, path="m.yaml", identities=IDS)
    assert plain == MANIFEST.replace('"pk_live_äöü 123"', '"pk_live_äöü 123"')


def test_every_document_of_a_multi_document_file_gets_the_same_sops_block() -> None:
    two = MANIFEST + "---\n" + MANIFEST.replace("contoso", "fabrikam")
    encrypted = encrypt_text(two, path="m.yaml", recipients=[RECIPIENT])
    blocks = re.findall(r"^sops:\n(?:    .*\n)+", encrypted, flags=re.M)
    assert len(blocks) == 2 and blocks[0] == blocks[1]
    keys = decrypt_keys(encrypted, path="m.yaml", identities=IDS)
    assert keys[1]["privateKey"] == "sk_live_456"


def test_flow_mappings_get_quoted_envelopes() -> None:
    text = "metadata: {tenant: x}\nspec:\n  keys: {publicKey: a, privateKey: b}\n"
    encrypted = encrypt_text(text, path="f.yaml", recipients=[RECIPIENT])
    assert 'publicKey: "ENC[AES256_GCM,' in encrypted
    assert decrypt_text(encrypted, path="f.yaml", identities=IDS) == text


def test_a_file_without_trailing_newline_still_gets_a_valid_block() -> None:
    encrypted = encrypt_text(
        "spec:\n  keys:\n    privateKey: x", path="n.yaml", recipients=[RECIPIENT]
    )
    assert "privateKey: ENC[" in encrypted and "\nsops:\n" in encrypted
    assert decrypt_keys(encrypted, path="n.yaml", identities=IDS) == {0: {"privateKey": "x"}}


def test_aliases_repeating_an_encrypted_value_are_refused() -> None:
    text = "a: &k secret\nspec:\n  keys:\n    privateKey: *k\n"
    with pytest.raises(SecretsError, match="alias"):
        encrypt_text(text, path="a.yaml", recipients=[RECIPIENT])


def test_rotate_uses_a_new_data_key_and_keeps_the_plaintext() -> None:
    encrypted = encrypt_text(MANIFEST, path="m.yaml", recipients=[RECIPIENT])
    other = re.search(r"age1[0-9a-z]+", (DATA / "key.txt").read_text())[0]  # type: ignore[index]
    rotated = rotate_text(encrypted, path="m.yaml", identities=IDS, add=[other])
    before = open_tree(encrypted, path="m.yaml", identities=IDS)
    after = open_tree(rotated, path="m.yaml", identities=IDS)
    assert before.data_key != after.data_key
    assert after.metadata.recipients == (RECIPIENT, other)
    assert decrypt_text(rotated, path="m.yaml", identities=IDS) == decrypt_text(
        encrypted, path="m.yaml", identities=IDS
    )
    removed = rotate_text(rotated, path="m.yaml", identities=IDS, remove=[RECIPIENT])
    assert open_tree(
        removed,
        path="m.yaml",
        identities=load_identities({"SOPS_AGE_KEY_FILE": str(DATA / "key.txt")}),
    )
    with pytest.raises(SecretsError, match="none of your"):
        open_tree(removed, path="m.yaml", identities=IDS)


def test_reencrypting_unchanged_plaintext_gives_identical_values() -> None:
    encrypted = encrypt_text(MANIFEST, path="m.yaml", recipients=[RECIPIENT])
    tree = open_tree(encrypted, path="m.yaml", identities=IDS)
    again = reencrypt_text(plaintext_text(encrypted, tree), tree, path="m.yaml")
    strip = re.compile(r"    (lastmodified|mac): .*\n")
    assert strip.sub("", again) == strip.sub("", encrypted)


def test_set_changes_one_value_and_keeps_the_mac_valid() -> None:
    encrypted = encrypt_text(MANIFEST, path="m.yaml", recipients=[RECIPIENT])
    updated = set_text(
        encrypted,
        path="m.yaml",
        identities=IDS,
        index_path='["spec"]["keys"]["privateKey"]',
        value_json='"sk_new"',
    )
    assert decrypt_keys(updated, path="m.yaml", identities=IDS)[0]["privateKey"] == "sk_new"
    public_before = re.search(r"publicKey: (ENC\[[^\]]+\])", encrypted)[1]  # type: ignore[index]
    assert public_before in updated  # same data key and IV for the unchanged value


def test_set_adds_a_missing_last_key() -> None:
    encrypted = encrypt_text(
        "spec:\n  keys:\n    publicKey: p\nother: 1\n", path="s.yaml", recipients=[RECIPIENT]
    )
    updated = set_text(
        encrypted,
        path="s.yaml",
        identities=IDS,
        index_path='["spec"]["keys"]["privateKey"]',
        value_json='"k"',
    )
    assert decrypt_keys(updated, path="s.yaml", identities=IDS) == {
        0: {"publicKey": "p", "privateKey": "k"}
    }


@pytest.mark.parametrize(
    ("expression", "parts"),
    [
        ('["spec"]["keys"]["privateKey"]', ["spec", "keys", "privateKey"]),
        ('["a"][0]["b"]', ["a", 0, "b"]),
    ],
)
def test_index_paths_use_sops_syntax(expression: str, parts: list[object]) -> None:
    assert parse_index_path(expression) == parts


def test_bad_index_path_is_a_clear_error() -> None:
    with pytest.raises(SecretsError, match="not like"):
        parse_index_path("spec.keys")


def test_creation_rules_are_found_upward_and_matched_on_the_relative_path(tmp_path: Path) -> None:
    (tmp_path / ".sops.yaml").write_text(
        "creation_rules:\n"
        f"  - path_regex: prod/.*\\.yaml$\n    age: {RECIPIENT}\n    mac_only_encrypted: true\n"
        f"  - age: '{RECIPIENT},{RECIPIENT}'\n    encrypted_regex: '^privateKey$'\n"
    )
    (tmp_path / "prod").mkdir()
    prod = rule_for_file(tmp_path / "prod" / "a.yaml")
    assert prod and prod.mac_only_encrypted and prod.age == (RECIPIENT,)
    other = rule_for_file(tmp_path / "b.yaml")
    assert other and other.selection.pattern == "^privateKey$" and not other.mac_only_encrypted


def test_no_matching_creation_rule_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / ".sops.yaml").write_text(
        f"creation_rules:\n  - path_regex: ^prod/\n    age: {RECIPIENT}\n"
    )
    with pytest.raises(SecretsError, match=r"no creation rule matches b\.yaml"):
        rule_for_file(tmp_path / "b.yaml")
