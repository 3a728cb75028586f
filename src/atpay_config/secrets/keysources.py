"""Key sources: who can wrap and unwrap a file's 32-byte data key (sops `keys.MasterKey`).

Only age recipients are supported. Like sops (`age/keysource.go`), the data key
is written as an *armored* age file per recipient, and any identity may open any
recipient's copy; the copy that opens must belong to the recipient named beside
it, so an edited `recipient:` line is noticed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import atpay_config.secrets.age as age
from atpay_config.errors import SecretsError

Identity = age.Identity
DATA_KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class WrappedDataKey:
    """The data key encrypted for one age recipient (an armored age file)."""

    recipient: str
    enc: str


class KeySource(Protocol):
    """Wraps a data key for a recipient and unwraps it with identities."""

    name: str

    def parse_recipients(self, text: str, *, source: str) -> list[str]:
        """Recipients from a comma-separated list, validated; raises SecretsError."""
        ...

    def wrap(self, data_key: bytes, recipient: str) -> WrappedDataKey: ...

    def unwrap(self, wrapped: WrappedDataKey, identities: Sequence[Identity]) -> bytes | None:
        """The data key, or None when no identity matches this recipient."""
        ...


class AgeKeySource:
    """X25519 age recipients (`age1…`), the data key as an armored age file."""

    name = "age"

    def parse_recipients(self, text: str, *, source: str) -> list[str]:
        recipients = []
        for part in text.split(","):
            recipient = part.strip()
            if not recipient:
                continue
            try:
                age.X25519Recipient.parse(recipient)
            except age.AgeError:
                raise SecretsError(
                    f"{source}: {recipient[:80]!r} is not an age X25519 recipient (age1…); "
                    "use the public key printed by `atpay keygen`"
                ) from None
            recipients.append(recipient)
        return recipients

    def wrap(self, data_key: bytes, recipient: str) -> WrappedDataKey:
        parsed = age.X25519Recipient.parse(recipient)
        armored = age.encrypt(data_key, [parsed], armor=True)
        return WrappedDataKey(recipient, armored.decode("ascii"))

    def unwrap(self, wrapped: WrappedDataKey, identities: Sequence[Identity]) -> bytes | None:
        for identity in identities:
            # sops never wraps for scrypt; only X25519 identities can open a copy.
            if not isinstance(identity, age.X25519Identity):
                continue
            if str(identity.recipient()) != wrapped.recipient:
                continue  # age would only fail after an X25519 per stanza; skip early
            try:
                data_key = age.decrypt(wrapped.enc.encode("ascii", "replace"), [identity])
            except age.AgeError as exc:
                raise WrappedKeyError(
                    f"the data key for {wrapped.recipient} cannot be opened ({exc})"
                ) from None
            if len(data_key) != DATA_KEY_BYTES:
                raise WrappedKeyError(
                    f"the data key for {wrapped.recipient} is {len(data_key)} bytes, not 32"
                )
            return data_key
        return None


class WrappedKeyError(ValueError):
    """The identity matches the recipient but its copy of the data key is damaged."""


KEY_SOURCES: dict[str, KeySource] = {"age": AgeKeySource()}
"""Every supported key source, by the name used in `sops:` blocks."""


def unwrap_data_key(
    wrapped: Sequence[WrappedDataKey], identities: Sequence[Identity], *, path: str, where: str
) -> bytes:
    """Open the data key with the first matching identity; one-line errors naming the file."""
    if not identities:
        raise SecretsError(
            f"{path}: no age identity found; set SOPS_AGE_KEY_FILE (or SOPS_AGE_KEY), or put "
            "your key in ~/.config/sops/age/keys.txt"
        )
    if not wrapped:
        raise SecretsError(f"{path}: the sops block has no age recipients; atpay decrypts age only")
    source = KEY_SOURCES["age"]
    for copy in wrapped:
        try:
            data_key = source.unwrap(copy, identities)
        except WrappedKeyError as exc:
            raise SecretsError(
                f"{where}: {exc}; the sops block was altered, restore it from git"
            ) from None
        if data_key is not None:
            return data_key
    names = ", ".join(w.recipient[:16] + "…" for w in wrapped)
    raise SecretsError(
        f"{path}: none of your {len(identities)} age identities matches the file's recipients "
        f"({names}); use a matching key, or ask a recipient to `atpay rotate --add-age` yours"
    )
