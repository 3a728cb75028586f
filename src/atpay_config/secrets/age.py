"""The age v1 file format (C2SP age.md), written on `cryptography` alone.

Covers X25519 and scrypt recipients, the header MAC, the STREAM payload and the
ASCII armor. Parsing is as strict as the spec (canonical base64, 64-column
bodies, no trailing data) because every leniency is a malleability. sops wraps
each file's data key with this module (`keysources.py`).

Messages never contain key material or plaintext: identities, passphrases and
decrypted bytes are kept out of `repr`, `str` and exception text.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.hmac import HMAC
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from atpay_config.errors import SecretsError
from atpay_config.secrets import armor as pem
from atpay_config.secrets import bech32

VERSION_LINE = b"age-encryption.org/v1"
_INTRO = b"age-encryption.org/"
RECIPIENT_HRP = "age"
IDENTITY_HRP = "AGE-SECRET-KEY-"
X25519_LABEL = b"age-encryption.org/v1/X25519"
SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
FILE_KEY_SIZE = 16
NONCE_SIZE = 16
CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
_WRAPPED_KEY_SIZE = FILE_KEY_SIZE + TAG_SIZE
_BODY_COLUMNS = 64
_MAC_SIZE = 32
_ZERO_NONCE = bytes(12)
_SCRYPT_SALT_SIZE = 16
_MAX_SCRYPT_WORK_FACTOR = 30  # age's own ceiling for encryption
_BASE64_RAW = re.compile(rb"[A-Za-z0-9+/]*")
_DECIMAL = re.compile(r"[1-9][0-9]*")


# -- errors -------------------------------------------------------------------------------------


class AgeError(SecretsError):
    """An age file, key or passphrase could not be used; the message says why."""


class ArmorError(AgeError):
    """The ASCII armor around the file is not strict PEM."""


class HeaderError(AgeError):
    """The header is malformed, or a stanza addressed to our identity type is invalid."""


class HeaderMacError(AgeError):
    """A file key was unwrapped but the header MAC does not match: the header was altered."""


class NoIdentityMatchError(AgeError):
    """None of the given identities opens any recipient stanza."""


class WrongPassphraseError(NoIdentityMatchError):
    """A passphrase was given for a passphrase-encrypted file, and it does not open it."""


class PayloadError(AgeError):
    """The encrypted payload is truncated, altered or followed by extra data."""


# -- keys ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class X25519Recipient:
    """An `age1…` public key; files encrypted to it open with the matching identity."""

    public_key: bytes

    def __post_init__(self) -> None:
        if len(self.public_key) != 32:
            raise AgeError(f"malformed age recipient: {len(self.public_key)}-byte key, expected 32")

    @classmethod
    def parse(cls, s: str) -> X25519Recipient:
        """Parse `age1…`; the message never quotes the input (it may be a pasted secret)."""
        if s.upper().startswith("AGE-SECRET-KEY-"):
            raise AgeError(
                "a secret key (AGE-SECRET-KEY-1…) was given where a recipient is expected; "
                "use its public key (age1…)"
            )
        if s.startswith(("age1pq1", "age1tag1", "age1tagpq1")):
            raise AgeError(
                "post-quantum and hardware-tag age recipients are not supported; "
                "use an X25519 recipient (age1…)"
            )
        try:
            hrp, data = bech32.decode(s)
        except bech32.Bech32Error as exc:
            raise AgeError(f"malformed age recipient: {exc}; expected age1…") from None
        if hrp != RECIPIENT_HRP:
            raise AgeError("not an age X25519 recipient; expected a lowercase age1… string")
        return cls(data)

    def __str__(self) -> str:
        return bech32.encode(RECIPIENT_HRP, self.public_key)

    def __repr__(self) -> str:
        return f"X25519Recipient({str(self)!r})"


class X25519Identity:
    """An `AGE-SECRET-KEY-1…` secret key. Its repr shows only the public recipient."""

    __slots__ = ("_key", "_public")

    def __init__(self, key: X25519PrivateKey) -> None:
        self._key = key
        self._public = key.public_key().public_bytes_raw()

    @classmethod
    def generate(cls) -> X25519Identity:
        """A fresh identity from the OS CSPRNG."""
        return cls(X25519PrivateKey.generate())

    @classmethod
    def parse(cls, s: str) -> X25519Identity:
        """Parse `AGE-SECRET-KEY-1…`; errors never quote the input."""
        if s.upper().startswith("AGE-SECRET-KEY-PQ-"):
            raise AgeError(
                "post-quantum age identities (AGE-SECRET-KEY-PQ-1…) are not supported; "
                "use an X25519 identity (AGE-SECRET-KEY-1…)"
            )
        if s.upper().startswith("AGE-PLUGIN-"):
            raise AgeError("age plugin identities (AGE-PLUGIN-…) are not supported")
        try:
            hrp, data = bech32.decode(s)
        except bech32.Bech32Error as exc:
            raise AgeError(f"malformed age secret key: {exc}") from None
        if hrp != IDENTITY_HRP:
            raise AgeError("not an age secret key; expected an uppercase AGE-SECRET-KEY-1… string")
        if len(data) != 32:
            raise AgeError(f"malformed age secret key: {len(data)}-byte key, expected 32")
        return cls(X25519PrivateKey.from_private_bytes(data))

    def recipient(self) -> X25519Recipient:
        """The public `age1…` key files are encrypted to."""
        return X25519Recipient(self._public)

    def secret_bech32(self) -> str:
        """The `AGE-SECRET-KEY-1…` text; only for writing a key file."""
        return bech32.encode(IDENTITY_HRP, self._key.private_bytes_raw())

    def __repr__(self) -> str:
        return f"X25519Identity(recipient={str(self.recipient())!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, X25519Identity):
            return NotImplemented
        return hmac.compare_digest(self._key.private_bytes_raw(), other._key.private_bytes_raw())

    def __hash__(self) -> int:
        return hash(self._public)

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("X25519Identity cannot be pickled (it holds a secret key)")

    def _unwrap(self, stanza: _Stanza) -> bytes | None:
        """The file key from an X25519 stanza addressed to us, None if not ours."""
        if stanza.args[0] != "X25519":
            return None
        if len(stanza.args) != 2:
            raise HeaderError("invalid X25519 stanza: expected exactly one argument after X25519")
        share = _decode_raw_base64(stanza.args[1], what="X25519 ephemeral share")
        if len(share) != 32:
            raise HeaderError(f"invalid X25519 stanza: {len(share)}-byte share, expected 32")
        if len(stanza.body) != _WRAPPED_KEY_SIZE:
            raise HeaderError(
                f"invalid X25519 stanza: {len(stanza.body)}-byte body, expected {_WRAPPED_KEY_SIZE}"
            )
        shared = _x25519(self._key, share)
        wrap_key = _hkdf(shared, salt=share + self._public, info=X25519_LABEL)
        try:
            return ChaCha20Poly1305(wrap_key).decrypt(_ZERO_NONCE, stanza.body, None)
        except InvalidTag:
            return None


class ScryptRecipient:
    """Passphrase encryption; it must be a file's only recipient (spec: scrypt stanza alone)."""

    __slots__ = ("_passphrase", "work_factor")

    def __init__(self, passphrase: bytes | str, *, work_factor: int = 18) -> None:
        self._passphrase = _passphrase_bytes(passphrase)
        if not self._passphrase:
            raise AgeError("the passphrase is empty; choose a non-empty passphrase")
        if not 1 <= work_factor <= _MAX_SCRYPT_WORK_FACTOR:
            raise AgeError(
                f"scrypt work factor {work_factor} is out of range 1..{_MAX_SCRYPT_WORK_FACTOR}"
            )
        self.work_factor = work_factor

    def __repr__(self) -> str:
        return f"ScryptRecipient(work_factor={self.work_factor})"

    def _wrap(self, file_key: bytes) -> _Stanza:
        salt = os.urandom(_SCRYPT_SALT_SIZE)
        wrap_key = _scrypt(self._passphrase, salt, self.work_factor)
        body = ChaCha20Poly1305(wrap_key).encrypt(_ZERO_NONCE, file_key, None)
        return _Stanza(("scrypt", _encode_raw_base64(salt), str(self.work_factor)), body)


class ScryptIdentity:
    """A passphrase to open a scrypt file; refuses work factors above `max_work_factor`."""

    __slots__ = ("_passphrase", "max_work_factor")

    def __init__(self, passphrase: bytes | str, *, max_work_factor: int = 22) -> None:
        self._passphrase = _passphrase_bytes(passphrase)
        self.max_work_factor = max_work_factor

    def __repr__(self) -> str:
        return f"ScryptIdentity(max_work_factor={self.max_work_factor})"

    def _unwrap(self, stanza: _Stanza) -> bytes | None:
        if stanza.args[0] != "scrypt":
            return None
        if len(stanza.args) != 3:
            raise HeaderError("invalid scrypt stanza: expected a salt and a work factor")
        salt = _decode_raw_base64(stanza.args[1], what="scrypt salt")
        if len(salt) != _SCRYPT_SALT_SIZE:
            raise HeaderError(f"invalid scrypt stanza: {len(salt)}-byte salt, expected 16")
        text = stanza.args[2]
        if not _DECIMAL.fullmatch(text):
            raise HeaderError(
                "invalid scrypt stanza: the work factor is not a decimal number without "
                "leading zeros"
            )
        # A long digit string is a huge factor; do not let int() chew on it.
        if len(text) > 3 or int(text) > self.max_work_factor:
            shown = text if len(text) <= 3 else text[:3] + "…"
            raise HeaderError(
                f"scrypt work factor {shown} is above the limit {self.max_work_factor} "
                "(decrypting would take too long or too much memory; raise max_work_factor "
                "only for a file you trust)"
            )
        if len(stanza.body) != _WRAPPED_KEY_SIZE:
            raise HeaderError(
                f"invalid scrypt stanza: {len(stanza.body)}-byte body, expected {_WRAPPED_KEY_SIZE}"
            )
        wrap_key = _scrypt(self._passphrase, salt, int(text))
        try:
            return ChaCha20Poly1305(wrap_key).decrypt(_ZERO_NONCE, stanza.body, None)
        except InvalidTag:
            return None


Recipient = X25519Recipient | ScryptRecipient
Identity = X25519Identity | ScryptIdentity


# -- public operations --------------------------------------------------------------------------


def encrypt(plaintext: bytes, recipients: Sequence[Recipient], *, armor: bool = False) -> bytes:
    """An age v1 file that any of `recipients` can open; ASCII-armored if asked."""
    if not recipients:
        raise AgeError("no recipients given; name at least one age1… recipient")
    if any(isinstance(r, ScryptRecipient) for r in recipients) and len(recipients) != 1:
        raise AgeError("a passphrase (scrypt) recipient must be the file's only recipient")
    file_key = os.urandom(FILE_KEY_SIZE)
    stanzas = [_wrap_for(recipient, file_key) for recipient in recipients]
    header = _encode_header(stanzas, file_key)
    nonce = os.urandom(NONCE_SIZE)
    data = header + nonce + _seal_payload(_payload_key(file_key, nonce), plaintext)
    return pem.encode(data) if armor else data


def decrypt(ciphertext: bytes, identities: Sequence[Identity]) -> bytes:
    """The plaintext of an age file (binary or armored); raises AgeError on any failure."""
    data = ciphertext
    if not data.startswith(_INTRO) and pem.looks_armored(data):
        try:
            data = pem.decode(data)
        except pem.ArmorFormatError as exc:
            raise ArmorError(f"bad age armor: {exc}") from None
    header = _parse_header(data)
    if not identities:
        raise AgeError("no identities given; an age identity or passphrase is needed to decrypt")
    file_key = _unwrap_file_key(header.stanzas, identities)
    expected = _header_mac(file_key, data[: header.mac_offset])
    if not hmac.compare_digest(expected, header.mac):
        raise HeaderMacError(
            "header MAC mismatch: the file header was altered or damaged after encryption"
        )
    payload = data[header.end :]
    if len(payload) < NONCE_SIZE:
        raise HeaderError("the file ends before the payload nonce: it is truncated")
    nonce, sealed = payload[:NONCE_SIZE], payload[NONCE_SIZE:]
    return _open_payload(_payload_key(file_key, nonce), sealed)


def parse_identity_file(text: str, *, source: str = "identity file") -> list[X25519Identity]:
    """Identities from an age keys.txt; errors name the line but never echo its content."""
    identities: list[X25519Identity] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line.strip() or line.startswith("#"):
            continue
        try:
            identities.append(X25519Identity.parse(line))
        except AgeError as exc:
            raise AgeError(f"{source}, line {number}: {exc}") from None
    if not identities:
        raise AgeError(f"{source}: no AGE-SECRET-KEY-1… lines found")
    return identities


def keygen_file_text(identity: X25519Identity, *, created: datetime) -> str:
    """A key file exactly as `age-keygen` writes it (comment lines, then the secret key)."""
    offset = created.utcoffset()
    if offset is None:
        raise ValueError("created must be timezone-aware (age-keygen writes RFC 3339 times)")
    return (
        f"# created: {created.strftime('%Y-%m-%dT%H:%M:%S')}{_rfc3339_zone(offset)}\n"
        f"# public key: {identity.recipient()}\n"
        f"{identity.secret_bech32()}\n"
    )


# -- header -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Stanza:
    args: tuple[str, ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class _Header:
    stanzas: tuple[_Stanza, ...]
    mac: bytes
    mac_offset: int  # the MAC covers data[:mac_offset], i.e. up to and including "---"
    end: int  # where the payload starts


def _wrap_for(recipient: Recipient, file_key: bytes) -> _Stanza:
    if isinstance(recipient, ScryptRecipient):
        return recipient._wrap(file_key)
    if not isinstance(recipient, X25519Recipient):
        raise TypeError(f"not an age recipient: {type(recipient).__name__}")
    ephemeral = X25519PrivateKey.generate()
    share = ephemeral.public_key().public_bytes_raw()
    shared = _x25519(ephemeral, recipient.public_key, sending=True)
    wrap_key = _hkdf(shared, salt=share + recipient.public_key, info=X25519_LABEL)
    body = ChaCha20Poly1305(wrap_key).encrypt(_ZERO_NONCE, file_key, None)
    return _Stanza(("X25519", _encode_raw_base64(share)), body)


def _encode_header(stanzas: Sequence[_Stanza], file_key: bytes) -> bytes:
    lines = [VERSION_LINE]
    for stanza in stanzas:
        lines.append(b"-> " + " ".join(stanza.args).encode("ascii"))
        body = _encode_raw_base64(stanza.body).encode("ascii")
        # Full 64-column lines, then a final shorter line that may be empty.
        lines.extend(body[i : i + _BODY_COLUMNS] for i in range(0, len(body), _BODY_COLUMNS))
        if len(body) % _BODY_COLUMNS == 0:
            lines.append(b"")
    covered = b"\n".join(lines) + b"\n---"
    mac = _header_mac(file_key, covered)
    return covered + b" " + _encode_raw_base64(mac).encode("ascii") + b"\n"


def _parse_header(data: bytes) -> _Header:
    if not data:
        raise HeaderError("the file is empty, not an age file")
    if not data.startswith(_INTRO):
        raise HeaderError(
            "not an age file: it starts with neither age-encryption.org/v1 nor "
            f"{pem.BEGIN.decode()}"
        )
    lines = _HeaderLines(data)
    version = lines.next()
    if version != VERSION_LINE:
        if version.rstrip(b"\r") == VERSION_LINE:
            raise HeaderError(
                "the age header has CRLF line endings (converted as text?); use the original file"
            )
        raise HeaderError("unsupported age format version; only age-encryption.org/v1 is supported")
    stanzas: list[_Stanza] = []
    while True:
        start = lines.position
        line = lines.next()
        if line.startswith(b"---"):
            return _footer(line, stanzas, mac_offset=start + 3, end=lines.position)
        if not line.startswith(b"->"):
            raise HeaderError("malformed age header: expected a '-> ' stanza or the '---' MAC line")
        stanzas.append(_stanza(line, lines))


def _stanza(line: bytes, lines: _HeaderLines) -> _Stanza:
    parts = line.split(b" ")
    if parts[0] != b"->" or len(parts) < 2:
        raise HeaderError("malformed stanza line: expected '-> ' and at least one argument")
    if any(not part or any(not 33 <= c <= 126 for c in part) for part in parts[1:]):
        raise HeaderError("malformed stanza line: empty argument or non-printable character")
    args = tuple(part.decode("ascii") for part in parts[1:])
    body = bytearray()
    while True:
        body_line = lines.next()
        if len(body_line) > _BODY_COLUMNS:
            raise HeaderError(f"malformed stanza body: a line is longer than {_BODY_COLUMNS}")
        body += _decode_raw_base64(body_line.decode("latin-1"), what="stanza body")
        if len(body_line) < _BODY_COLUMNS:
            return _Stanza(args, bytes(body))


def _footer(line: bytes, stanzas: list[_Stanza], *, mac_offset: int, end: int) -> _Header:
    if not stanzas:
        raise HeaderError("malformed age header: no recipient stanzas")
    if not line.startswith(b"--- "):
        raise HeaderError("malformed MAC line: expected '--- ' followed by the MAC")
    mac = _decode_raw_base64(line[4:].decode("latin-1"), what="header MAC")
    if len(mac) != _MAC_SIZE:
        raise HeaderError(f"malformed MAC line: {len(mac)}-byte MAC, expected {_MAC_SIZE}")
    if len(stanzas) > 1 and any(s.args[0] == "scrypt" for s in stanzas):
        # Spec: a passphrase file must have no other stanza, or anyone could re-encrypt it.
        raise HeaderError(
            "malformed age header: a passphrase (scrypt) stanza must be the only stanza"
        )
    return _Header(tuple(stanzas), mac, mac_offset, end)


class _HeaderLines:
    """LF-terminated header lines; running out before the MAC line is a truncated header."""

    __slots__ = ("data", "position")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def next(self) -> bytes:
        end = self.data.find(b"\n", self.position)
        if end < 0:
            raise HeaderError("the age header is truncated (no '---' MAC line)")
        line = self.data[self.position : end]
        self.position = end + 1
        return line


def _unwrap_file_key(stanzas: Sequence[_Stanza], identities: Sequence[Identity]) -> bytes:
    # Like age: each identity looks at every stanza; a malformed stanza of its own type aborts.
    for identity in identities:
        for stanza in stanzas:
            file_key = identity._unwrap(stanza)
            if file_key is not None:
                return file_key
    passphrase_file = any(s.args[0] == "scrypt" for s in stanzas)
    if passphrase_file and any(isinstance(i, ScryptIdentity) for i in identities):
        raise WrongPassphraseError(
            "wrong passphrase: it does not open this file (or the file was altered)"
        )
    if passphrase_file:
        raise NoIdentityMatchError(
            "no identity matches any recipient of this file (it is passphrase-encrypted; "
            "give the passphrase)"
        )
    raise NoIdentityMatchError("no identity matches any recipient of this file")


def _header_mac(file_key: bytes, covered: bytes) -> bytes:
    mac = HMAC(_hkdf(file_key, salt=b"", info=b"header"), SHA256())
    mac.update(covered)
    return mac.finalize()


# -- payload (STREAM) ---------------------------------------------------------------------------


def _payload_key(file_key: bytes, nonce: bytes) -> bytes:
    return _hkdf(file_key, salt=nonce, info=b"payload")


def _chunk_nonce(counter: int, *, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _seal_payload(key: bytes, plaintext: bytes) -> bytes:
    aead = ChaCha20Poly1305(key)
    # Exactly-full last chunks stay full: an empty final chunk is only for empty plaintext.
    starts = range(0, len(plaintext), CHUNK_SIZE) if plaintext else range(1)
    last_index = len(starts) - 1
    return b"".join(
        aead.encrypt(
            _chunk_nonce(i, last=i == last_index), plaintext[start : start + CHUNK_SIZE], None
        )
        for i, start in enumerate(starts)
    )


def _open_payload(key: bytes, sealed: bytes) -> bytes:
    aead = ChaCha20Poly1305(key)
    sealed_chunk = CHUNK_SIZE + TAG_SIZE
    chunks: list[bytes] = []
    position = 0
    counter = 0
    while True:
        remaining = len(sealed) - position
        if remaining == 0:
            raise PayloadError("the payload is truncated: it ends without a final chunk")
        chunk = sealed[position : position + sealed_chunk]
        last = remaining <= sealed_chunk
        if last and len(chunk) < TAG_SIZE:
            raise PayloadError(f"the payload is truncated: chunk {counter} is incomplete")
        if last and len(chunk) == TAG_SIZE and counter > 0:
            raise PayloadError("malformed payload: the final chunk is empty")
        try:
            chunks.append(aead.decrypt(_chunk_nonce(counter, last=last), chunk, None))
        except InvalidTag:
            raise PayloadError(_chunk_failure(aead, chunk, counter, last=last)) from None
        if last:
            return b"".join(chunks)
        position += sealed_chunk
        counter += 1


def _chunk_failure(aead: ChaCha20Poly1305, chunk: bytes, counter: int, *, last: bool) -> str:
    """Say whether a chunk is cut short, followed by extra data, or altered."""
    try:
        aead.decrypt(_chunk_nonce(counter, last=not last), chunk, None)
    except InvalidTag:
        return f"the payload is altered or damaged: chunk {counter} does not authenticate"
    if last:
        return "the payload is truncated: it ends without a final chunk"
    return "malformed payload: there is data after the final chunk"


# -- primitives ---------------------------------------------------------------------------------


def _hkdf(ikm: bytes, *, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _x25519(private: X25519PrivateKey, public: bytes, *, sending: bool = False) -> bytes:
    """X25519, aborting on an all-zero shared secret (a low-order point) as the spec requires."""
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:
        shared = bytes(32)
    if not any(shared):
        if sending:
            raise AgeError("invalid X25519 recipient: a low-order point; check the age1… key")
        raise HeaderError("invalid X25519 stanza: the ephemeral share is a low-order point")
    return shared


def _scrypt(passphrase: bytes, salt: bytes, work_factor: int) -> bytes:
    kdf = Scrypt(salt=SCRYPT_LABEL + salt, length=32, n=1 << work_factor, r=8, p=1)
    try:
        return kdf.derive(passphrase)
    except MemoryError:
        raise AgeError(
            f"not enough memory for scrypt work factor {work_factor}; use a lower work factor"
        ) from None


def _passphrase_bytes(passphrase: bytes | str) -> bytes:
    return passphrase.encode("utf-8") if isinstance(passphrase, str) else bytes(passphrase)


def _encode_raw_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _decode_raw_base64(text: str, *, what: str) -> bytes:
    """Canonical unpadded base64 only (spec): no '=', no stray bits, no other characters."""
    raw = text.encode("latin-1")
    if not _BASE64_RAW.fullmatch(raw) or len(raw) % 4 == 1:
        raise HeaderError(f"malformed {what}: not unpadded base64")
    try:
        data = base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise HeaderError(f"malformed {what}: not unpadded base64") from None
    if _encode_raw_base64(data).encode("ascii") != raw:
        raise HeaderError(f"malformed {what}: non-canonical base64")
    return data


def _rfc3339_zone(offset: timedelta) -> str:
    """Go's time.RFC3339 zone: `Z` for UTC, else ±hh:mm."""
    if not offset:
        return "Z"
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
