"""Where age identities come from: the sops conventions, read without shelling out.

Like sops (`age/keysource.go` `loadIdentities`), every configured location is
read and the identities are combined: `SOPS_AGE_KEY` (identities inline),
`SOPS_AGE_KEY_FILE`, then `$XDG_CONFIG_HOME/sops/age/keys.txt` (or
`~/.config/sops/age/keys.txt`). `SOPS_AGE_KEY_CMD` is not run: we do not execute
commands from the environment. A passphrase-protected identity file (an age file
encrypted with `age -p`) is opened with the passphrase in `ATPAY_AGE_PASSPHRASE`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import atpay_config.secrets.age as age
from atpay_config.errors import SecretsError

Identity = age.Identity

KEY_ENV = "SOPS_AGE_KEY"
KEY_FILE_ENV = "SOPS_AGE_KEY_FILE"
PASSPHRASE_ENV = "ATPAY_AGE_PASSPHRASE"
USER_KEY_PATH = Path("sops") / "age" / "keys.txt"
MAX_IDENTITY_FILE_BYTES = 1 << 20


def default_key_file(environ: Mapping[str, str]) -> Path | None:
    """sops's per-user key file: `$XDG_CONFIG_HOME` first, else `$HOME/.config`."""
    config_home = environ.get("XDG_CONFIG_HOME")
    if config_home:
        return Path(config_home) / USER_KEY_PATH
    home = environ.get("HOME")
    return Path(home) / ".config" / USER_KEY_PATH if home else None


def identity_locations(environ: Mapping[str, str] | None = None) -> list[str]:
    """The places `load_identities` looks, for messages."""
    env = os.environ if environ is None else environ
    places = [KEY_ENV, KEY_FILE_ENV]
    default = default_key_file(env)
    if default is not None:
        places.append(str(default))
    return places


def load_identities(environ: Mapping[str, str] | None = None) -> list[Identity]:
    """Every identity configured the sops way; [] when none is configured.

    Raises SecretsError (one line naming the location) when a configured source is
    unreadable, not an identity file, or passphrase-protected with a wrong passphrase.
    """
    env = os.environ if environ is None else environ
    identities: list[Identity] = []
    inline = env.get(KEY_ENV)
    if inline:
        text = "\n".join(inline.replace(",", "\n").split())
        identities += _parse(text, source=KEY_ENV)
    key_file = env.get(KEY_FILE_ENV)
    if key_file:
        identities += _read_file(Path(key_file), source=f"{KEY_FILE_ENV}={key_file}", environ=env)
    default = default_key_file(env)
    if default is not None and default.is_file():
        identities += _read_file(default, source=str(default), environ=env)
    return identities


def _read_file(path: Path, *, source: str, environ: Mapping[str, str]) -> list[Identity]:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_IDENTITY_FILE_BYTES + 1)
    except OSError as exc:
        raise SecretsError(
            f"{source}: cannot read the identity file ({exc.strerror}); fix the path"
        ) from None
    if len(data) > MAX_IDENTITY_FILE_BYTES:
        raise SecretsError(f"{source}: identity file larger than 1 MiB; not an age key file")
    if data.startswith((b"age-encryption.org/", b"-----BEGIN AGE")):
        data = _open_protected(data, source=source, environ=environ)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretsError(
            f"{source}: identity file is not UTF-8 text; use an age-keygen key file"
        ) from None
    return _parse(text, source=source)


def _open_protected(data: bytes, *, source: str, environ: Mapping[str, str]) -> bytes:
    """An identity file encrypted with a passphrase (`age -p`), as sops accepts."""
    passphrase = environ.get(PASSPHRASE_ENV)
    if not passphrase:
        raise SecretsError(
            f"{source}: the identity file is passphrase-protected; "
            f"set {PASSPHRASE_ENV} to its passphrase"
        )
    try:
        return age.decrypt(data, [age.ScryptIdentity(passphrase)])
    except age.AgeError:
        raise SecretsError(
            f"{source}: wrong passphrase for the protected identity file (or the file is damaged); "
            f"check {PASSPHRASE_ENV}"
        ) from None


def _parse(text: str, *, source: str) -> list[Identity]:
    try:
        return list(age.parse_identity_file(text, source=source))
    except age.AgeError as exc:
        # The age layer's messages name the line, never the key material.
        raise SecretsError(
            f"{source}: not a valid age identity file ({exc}); use an age-keygen key file"
        ) from None
