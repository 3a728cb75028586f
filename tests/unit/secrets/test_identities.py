"""Identities come from the sops locations, combined, and bad sources are one-line errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from atpay_config.errors import SecretsError
from atpay_config.secrets import age
from atpay_config.secrets.identities import load_identities

DATA = Path(__file__).resolve().parents[2] / "data" / "sops"
REFERENCE_KEY = (DATA / "key.txt").read_text()
TEST_KEY = (DATA / "test-identity.txt").read_text()


def _secret(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("AGE-SECRET-KEY-1"))


def _recipients(identities: list[age.X25519Identity]) -> list[str]:
    return [str(identity.recipient()) for identity in identities]


def test_nothing_configured_gives_no_identities(tmp_path: Path) -> None:
    assert load_identities({"HOME": str(tmp_path)}) == []


def test_sops_age_key_holds_identities_inline() -> None:
    found = load_identities({"SOPS_AGE_KEY": _secret(REFERENCE_KEY) + "\n" + _secret(TEST_KEY)})
    assert len(found) == 2


def test_all_locations_are_combined(tmp_path: Path) -> None:
    config = tmp_path / "xdg" / "sops" / "age"
    config.mkdir(parents=True)
    shutil.copy(DATA / "test-identity.txt", config / "keys.txt")
    found = load_identities(
        {"SOPS_AGE_KEY_FILE": str(DATA / "key.txt"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    )
    assert len(_recipients(found)) == 2


def test_the_default_key_file_falls_back_to_home_config(tmp_path: Path) -> None:
    config = tmp_path / ".config" / "sops" / "age"
    config.mkdir(parents=True)
    shutil.copy(DATA / "key.txt", config / "keys.txt")
    assert len(load_identities({"HOME": str(tmp_path)})) == 1


def test_a_missing_key_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(
        SecretsError, match=r"SOPS_AGE_KEY_FILE=.*cannot read the identity file"
    ) as caught:
        load_identities({"SOPS_AGE_KEY_FILE": str(tmp_path / "nope.txt")})
    assert "\n" not in str(caught.value)


def test_a_passphrase_protected_key_file_needs_the_right_passphrase(tmp_path: Path) -> None:
    protected = tmp_path / "keys.age"
    protected.write_bytes(
        age.encrypt(TEST_KEY.encode(), [age.ScryptRecipient("correct horse", work_factor=10)])
    )
    env = {"SOPS_AGE_KEY_FILE": str(protected)}
    with pytest.raises(SecretsError, match="passphrase-protected; set ATPAY_AGE_PASSPHRASE"):
        load_identities(env)
    with pytest.raises(SecretsError, match="wrong passphrase") as caught:
        load_identities({**env, "ATPAY_AGE_PASSPHRASE": "battery staple"})
    assert str(caught.value).startswith(f"SOPS_AGE_KEY_FILE={protected}") and "\n" not in str(
        caught.value
    )
    assert len(load_identities({**env, "ATPAY_AGE_PASSPHRASE": "correct horse"})) == 1
