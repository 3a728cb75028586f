"""Our age v1 implementation: round trips, keys, key files, and every way a file can be bad."""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from atpay_config.secrets import age
from atpay_config.secrets.age import (
    ArmorError,
    HeaderError,
    HeaderMacError,
    NoIdentityMatchError,
    PayloadError,
    ScryptIdentity,
    ScryptRecipient,
    WrongPassphraseError,
    X25519Identity,
    X25519Recipient,
)
from atpay_config.secrets.armor import BEGIN, END

# The X25519 example from the C2SP age spec ("The X25519 recipient type").
SPEC_IDENTITY = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
SPEC_RECIPIENT = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"
CHUNK = 64 * 1024
FAST = 10  # scrypt work factor for tests: 1 MiB, milliseconds


@pytest.fixture(scope="module")
def alice() -> X25519Identity:
    return X25519Identity.generate()


@pytest.fixture(scope="module")
def bob() -> X25519Identity:
    return X25519Identity.generate()


def _header_and_payload(data: bytes) -> tuple[bytes, bytes]:
    end = re.search(rb"\n--- [A-Za-z0-9+/]{43}\n", data)
    assert end is not None
    return data[: end.end()], data[end.end() :]


# -- keys ---------------------------------------------------------------------------------------


def test_the_spec_example_identity_has_the_spec_example_recipient() -> None:
    identity = X25519Identity.parse(SPEC_IDENTITY)
    assert str(identity.recipient()) == SPEC_RECIPIENT
    assert identity.secret_bech32() == SPEC_IDENTITY
    assert X25519Recipient.parse(SPEC_RECIPIENT) == identity.recipient()


def test_generated_keys_round_trip_through_bech32() -> None:
    identity = X25519Identity.generate()
    assert X25519Identity.parse(identity.secret_bech32()) == identity
    recipient = identity.recipient()
    assert str(recipient).startswith("age1") and X25519Recipient.parse(str(recipient)) == recipient
    assert identity.secret_bech32().startswith("AGE-SECRET-KEY-1")
    assert identity != X25519Identity.generate()


def test_repr_and_str_of_secrets_show_nothing_secret() -> None:
    identity = X25519Identity.parse(SPEC_IDENTITY)
    secret_data = SPEC_IDENTITY[len("AGE-SECRET-KEY-1") :]
    for text in (repr(identity), str(identity), f"{identity}", repr([identity])):
        assert secret_data not in text.upper() and "GFPYYSJZ" not in text.upper()
        assert SPEC_RECIPIENT in text
    assert repr(identity) == f"X25519Identity(recipient={SPEC_RECIPIENT!r})"
    for holder in (ScryptIdentity("hunter2-secret"), ScryptRecipient("hunter2-secret")):
        assert "hunter2" not in repr(holder) and "hunter2" not in str(holder)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(identity)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (SPEC_RECIPIENT[:-1] + "q", "invalid checksum"),
        (SPEC_RECIPIENT[:10] + SPEC_RECIPIENT[10:].upper(), "mixed upper and lower case"),
        (SPEC_RECIPIENT.upper(), "lowercase age1"),
        (SPEC_RECIPIENT.replace("age1", "agf1", 1), "invalid checksum"),
        ("age1", "separator"),
        (SPEC_RECIPIENT[:-7] + "b" + SPEC_RECIPIENT[-6:], "invalid character"),
        ("", "separator"),
    ],
)
def test_a_bad_recipient_is_a_clear_error(text: str, reason: str) -> None:
    with pytest.raises(age.AgeError, match=reason):
        X25519Recipient.parse(text)


def test_a_secret_key_given_as_recipient_is_refused_without_echoing_it() -> None:
    with pytest.raises(
        age.AgeError, match=r"secret key .* where a recipient is expected"
    ) as caught:
        X25519Recipient.parse(SPEC_IDENTITY)
    assert "GFPYYSJZ" not in str(caught.value)


def test_post_quantum_recipients_are_named_as_unsupported() -> None:
    with pytest.raises(age.AgeError, match="post-quantum"):
        X25519Recipient.parse("age1pq1" + "q" * 100)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (SPEC_IDENTITY.lower(), "uppercase AGE-SECRET-KEY-1"),
        (SPEC_IDENTITY[:-1] + "Y", "invalid checksum"),
        (" " + SPEC_IDENTITY, "invalid character in the prefix"),
        (SPEC_IDENTITY + " ", "invalid character in the data part"),
        ("AGE-SECRET-KEY-PQ-1QQQQQQQQ", "post-quantum"),
        ("AGE-PLUGIN-YUBIKEY-1QQQQQQQ", "plugin"),
    ],
)
def test_a_bad_identity_is_a_clear_error_without_its_text(text: str, reason: str) -> None:
    with pytest.raises(age.AgeError, match=reason) as caught:
        X25519Identity.parse(text)
    assert "GFPYYSJZ" not in str(caught.value).upper()


def test_a_short_key_is_rejected() -> None:
    from atpay_config.secrets import bech32

    with pytest.raises(age.AgeError, match="31-byte key"):
        X25519Recipient.parse(bech32.encode("age", bytes(31)))


# -- key files ----------------------------------------------------------------------------------


def test_keygen_file_text_is_age_keygens_format() -> None:
    identity = X25519Identity.parse(SPEC_IDENTITY)
    created = datetime(2006, 1, 2, 15, 4, 5, 999, tzinfo=UTC)
    assert age.keygen_file_text(identity, created=created) == (
        f"# created: 2006-01-02T15:04:05Z\n# public key: {SPEC_RECIPIENT}\n{SPEC_IDENTITY}\n"
    )


def test_keygen_file_text_writes_a_local_offset_like_go() -> None:
    identity = X25519Identity.generate()
    east = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    west = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(-timedelta(hours=7)))
    assert age.keygen_file_text(identity, created=east).startswith(
        "# created: 2024-05-06T07:08:09+05:30\n"
    )
    assert age.keygen_file_text(identity, created=west).startswith(
        "# created: 2024-05-06T07:08:09-07:00\n"
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        age.keygen_file_text(identity, created=datetime(2024, 5, 6))


def test_keygen_file_text_parses_back() -> None:
    identity = X25519Identity.generate()
    text = age.keygen_file_text(identity, created=datetime.now(UTC))
    assert age.parse_identity_file(text) == [identity]


def test_identity_files_skip_comments_and_blank_lines_and_accept_crlf() -> None:
    first, second = X25519Identity.generate(), X25519Identity.generate()
    text = (
        f"# created: x\r\n\r\n{first.secret_bech32()}\r\n   \n"
        f"#{second.secret_bech32()}\n{second.secret_bech32()}"
    )
    assert age.parse_identity_file(text) == [first, second]


def test_a_bad_identity_line_names_the_source_and_line_but_not_the_content() -> None:
    identity = X25519Identity.generate()
    broken = identity.secret_bech32()[:-1] + ("Q" if identity.secret_bech32()[-1] != "Q" else "P")
    text = f"# my keys\n{identity.secret_bech32()}\n{broken}\n"
    with pytest.raises(age.AgeError, match=r"^keys\.txt, line 3: .*checksum") as caught:
        age.parse_identity_file(text, source="keys.txt")
    assert broken[20:] not in str(caught.value) and "\n" not in str(caught.value)


def test_an_identity_file_without_identities_is_an_error() -> None:
    with pytest.raises(age.AgeError, match=r"^SOPS_AGE_KEY: no AGE-SECRET-KEY-1"):
        age.parse_identity_file("# only a comment\n\n", source="SOPS_AGE_KEY")


# -- round trips --------------------------------------------------------------------------------


def test_x25519_round_trip(alice: X25519Identity) -> None:
    data = age.encrypt(b"gateway private key", [alice.recipient()])
    assert data.startswith(b"age-encryption.org/v1\n-> X25519 ")
    assert age.decrypt(data, [alice]) == b"gateway private key"


def test_each_of_several_recipients_can_decrypt(alice: X25519Identity, bob: X25519Identity) -> None:
    carol = X25519Identity.generate()
    data = age.encrypt(b"shared", [alice.recipient(), bob.recipient(), carol.recipient()])
    assert data.count(b"\n-> X25519 ") == 3
    for identity in (alice, bob, carol):
        assert age.decrypt(data, [identity]) == b"shared"
    assert age.decrypt(data, [X25519Identity.generate(), carol]) == b"shared"


def test_scrypt_round_trip() -> None:
    data = age.encrypt(b"by passphrase", [ScryptRecipient("correct horse", work_factor=FAST)])
    assert re.match(rb"age-encryption.org/v1\n-> scrypt [A-Za-z0-9+/]{22} 10\n", data)
    assert age.decrypt(data, [ScryptIdentity("correct horse")]) == b"by passphrase"
    assert age.decrypt(data, [ScryptIdentity(b"correct horse")]) == b"by passphrase"


def test_armored_round_trip_is_strict_pem(alice: X25519Identity) -> None:
    data = age.encrypt(b"armored" * 100, [alice.recipient()], armor=True)
    lines = data.split(b"\n")
    assert lines[0] == BEGIN and lines[-2] == END and lines[-1] == b""
    assert all(len(line) == 64 for line in lines[1:-3]) and 0 < len(lines[-3]) <= 64
    assert age.decrypt(data, [alice]) == b"armored" * 100
    assert age.decrypt(b"\n  \n" + data.replace(b"\n", b"\r\n") + b"\n\t\n", [alice]) == (
        b"armored" * 100
    )


def test_armor_of_a_whole_number_of_lines_has_no_empty_line(alice: X25519Identity) -> None:
    for size in range(0, 48):
        data = age.encrypt(bytes(size), [alice.recipient()], armor=True)
        assert b"\n\n" not in data
        assert age.decrypt(data, [alice]) == bytes(size)


@pytest.mark.parametrize(
    ("size", "sealed_chunks"),
    [
        (0, [16]),
        (1, [17]),
        (CHUNK - 1, [CHUNK + 15]),
        (CHUNK, [CHUNK + 16]),
        (CHUNK + 1, [CHUNK + 16, 17]),
        (2 * CHUNK, [CHUNK + 16, CHUNK + 16]),
    ],
    ids=["empty", "one-byte", "64KiB-1", "64KiB", "64KiB+1", "128KiB"],
)
def test_payload_chunking_follows_stream(
    alice: X25519Identity, size: int, sealed_chunks: list[int]
) -> None:
    plaintext = bytes(range(256)) * (size // 256) + bytes(size % 256)
    data = age.encrypt(plaintext, [alice.recipient()])
    _, payload = _header_and_payload(data)
    assert len(payload) == 16 + sum(sealed_chunks)  # nonce, then chunks; a full last chunk stays
    assert age.decrypt(data, [alice]) == plaintext


def test_stanza_bodies_end_with_a_short_line(alice: X25519Identity) -> None:
    header, _ = _header_and_payload(age.encrypt(b"x", [alice.recipient()]))
    body_line = header.split(b"\n")[2]
    assert len(body_line) == 43  # 32 bytes, unpadded


# -- encryption refusals ------------------------------------------------------------------------


def test_encrypting_needs_a_recipient() -> None:
    with pytest.raises(age.AgeError, match="no recipients"):
        age.encrypt(b"x", [])


def test_a_passphrase_recipient_cannot_be_mixed(alice: X25519Identity) -> None:
    with pytest.raises(age.AgeError, match="only recipient"):
        age.encrypt(b"x", [ScryptRecipient("pw", work_factor=FAST), alice.recipient()])


def test_scrypt_recipient_checks_passphrase_and_work_factor() -> None:
    with pytest.raises(age.AgeError, match="passphrase is empty"):
        ScryptRecipient("")
    with pytest.raises(age.AgeError, match="out of range"):
        ScryptRecipient("pw", work_factor=31)


def test_a_low_order_recipient_is_refused() -> None:
    with pytest.raises(age.AgeError, match="low-order"):
        age.encrypt(b"x", [X25519Recipient(bytes(32))])


# -- decryption failures ------------------------------------------------------------------------


def test_no_matching_identity_says_so(alice: X25519Identity, bob: X25519Identity) -> None:
    data = age.encrypt(b"x", [alice.recipient()])
    with pytest.raises(
        NoIdentityMatchError, match=r"^no identity matches any recipient of this file"
    ):
        age.decrypt(data, [bob])


def test_decrypting_needs_an_identity(alice: X25519Identity) -> None:
    with pytest.raises(age.AgeError, match="no identities given"):
        age.decrypt(age.encrypt(b"x", [alice.recipient()]), [])


def test_a_wrong_passphrase_says_so(alice: X25519Identity) -> None:
    data = age.encrypt(b"x", [ScryptRecipient("right", work_factor=FAST)])
    with pytest.raises(WrongPassphraseError, match=r"^wrong passphrase"):
        age.decrypt(data, [ScryptIdentity("wrong")])
    with pytest.raises(NoIdentityMatchError, match="passphrase-encrypted; give the passphrase"):
        age.decrypt(data, [alice])


def test_a_scrypt_work_factor_above_the_limit_is_refused_before_any_work() -> None:
    data = age.encrypt(b"x", [ScryptRecipient("pw", work_factor=FAST + 1)])
    with pytest.raises(HeaderError, match="scrypt work factor 11 is above the limit 10"):
        age.decrypt(data, [ScryptIdentity("pw", max_work_factor=FAST)])


def test_a_scrypt_stanza_must_be_alone(alice: X25519Identity) -> None:
    header, payload = _header_and_payload(age.encrypt(b"x", [alice.recipient()]))
    lines = header.split(b"\n")
    extra = b"-> scrypt " + b"A" * 22 + b" 10\n" + b"A" * 43
    mixed = b"\n".join([lines[0], extra, *lines[1:]]) + payload
    with pytest.raises(HeaderError, match=r"scrypt.*must be the only stanza"):
        age.decrypt(mixed, [alice])


def test_a_swapped_stanza_fails_the_header_mac(alice: X25519Identity, bob: X25519Identity) -> None:
    """A file key still unwraps for alice, but the header no longer matches its MAC."""
    original = age.encrypt(b"x", [alice.recipient(), bob.recipient()])
    other = age.encrypt(b"y", [alice.recipient(), bob.recipient()])
    lines, other_lines = original.split(b"\n"), other.split(b"\n")
    lines[3:5] = other_lines[3:5]  # bob's stanza from another file
    with pytest.raises(HeaderMacError, match=r"^header MAC mismatch"):
        age.decrypt(b"\n".join(lines), [alice])


def test_trailing_data_after_the_final_chunk_is_an_error(alice: X25519Identity) -> None:
    data = age.encrypt(bytes(CHUNK), [alice.recipient()])
    with pytest.raises(PayloadError, match="data after the final chunk"):
        age.decrypt(data + bytes(17), [alice])


def test_every_truncation_is_an_error(alice: X25519Identity) -> None:
    data = age.encrypt(b"short secret", [alice.recipient()])
    header, _ = _header_and_payload(data)
    for length in range(len(data)):
        expected = HeaderError if length < len(header) + 16 else PayloadError
        with pytest.raises(expected):
            age.decrypt(data[:length], [alice])


def test_every_single_byte_change_is_detected(alice: X25519Identity) -> None:
    data = age.encrypt(b"short secret", [alice.recipient()])
    for index in range(len(data)):
        for flip in (0x01, 0x80):
            altered = bytearray(data)
            altered[index] ^= flip
            with pytest.raises(age.AgeError):
                age.decrypt(bytes(altered), [alice])


def test_every_single_byte_change_inside_the_armor_is_detected(alice: X25519Identity) -> None:
    data = age.encrypt(b"short secret", [alice.recipient()], armor=True)
    for index in range(len(data) - 1):  # the final LF may become other whitespace
        altered = bytearray(data)
        altered[index] ^= 0x01
        with pytest.raises(age.AgeError):
            age.decrypt(bytes(altered), [alice])


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda d: b"garbage\n" + d, "the first line is not -----BEGIN"),
        (lambda d: d + b"garbage\n", "unexpected data after -----END"),
        (lambda d: d.replace(b"-----\n", b"-----\n\n", 1), "empty line"),
        (
            lambda d: d.replace(END, b""),
            "a line shorter than 64 columns is not followed by -----END",
        ),
        (lambda d: b" \n" * 1000 + d, "too much whitespace before"),
    ],
    ids=["leading-garbage", "trailing-garbage", "empty-line", "no-end", "whitespace-flood"],
)
def test_bad_armor_is_an_armor_error(
    alice: X25519Identity, mangle: Callable[[bytes], bytes], message: str
) -> None:
    data = age.encrypt(b"x", [alice.recipient()], armor=True)
    with pytest.raises(ArmorError, match=f"^bad age armor: {message}"):
        age.decrypt(mangle(data), [alice])


def test_text_that_is_no_age_file_says_so(alice: X25519Identity) -> None:
    with pytest.raises(HeaderError, match="not an age file"):
        age.decrypt(b"hello: world\n", [alice])
    with pytest.raises(HeaderError, match="empty"):
        age.decrypt(b"", [alice])


def test_a_crlf_converted_file_is_named_as_such(alice: X25519Identity) -> None:
    data = age.encrypt(b"x", [alice.recipient()])
    with pytest.raises(HeaderError, match="CRLF"):
        age.decrypt(data.replace(b"\n", b"\r\n"), [alice])


def test_error_messages_never_contain_the_plaintext_or_keys(alice: X25519Identity) -> None:
    plaintext = b"CANARY-PRIVATE-KEY-0123456789"
    data = bytearray(age.encrypt(plaintext, [alice.recipient()]))
    data[-1] ^= 1
    with pytest.raises(PayloadError) as caught:
        age.decrypt(bytes(data), [alice])
    text = str(caught.value) + repr(caught.value)
    assert "CANARY" not in text and alice.secret_bech32() not in text
