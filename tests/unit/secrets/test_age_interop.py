"""Interoperability with an age we did not write: Debian's `age` / `age-keygen` (Go, 1.1.x).

Both directions, binary and armored, X25519 and passphrase files, plus the key
file format. age reads passphrases only from a terminal, so those tests drive it
through a pseudo-terminal.
"""

from __future__ import annotations

import fcntl
import os
import select
import subprocess
import termios
import time
from datetime import datetime
from pathlib import Path

import pytest
from tests.conftest import require_peer

from atpay_config.secrets import age

pytestmark = pytest.mark.peer
WHY = "interop of our age format with the reference Go implementation"
CHUNK = 64 * 1024


@pytest.fixture
def age_bin() -> str:
    return require_peer("age", why=WHY)


@pytest.fixture
def keygen_bin() -> str:
    return require_peer("age-keygen", why=WHY)


def _run(*argv: str, stdin: bytes = b"") -> bytes:
    done = subprocess.run(argv, input=stdin, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, f"{argv[0]} failed: {done.stderr.decode(errors='replace')}"
    return done.stdout


def _our_key_file(tmp_path: Path) -> tuple[age.X25519Identity, Path]:
    identity = age.X25519Identity.generate()
    path = tmp_path / "keys.txt"
    path.write_text(age.keygen_file_text(identity, created=datetime.now().astimezone()))
    path.chmod(0o600)
    return identity, path


def _plaintexts() -> dict[str, bytes]:
    pattern = bytes(range(256))
    return {
        "empty": b"",
        "short": b"gateway private key \x00\xff",
        "64KiB": pattern * (CHUNK // 256),
        "64KiB+1": pattern * (CHUNK // 256) + b"!",
        "3 chunks": os.urandom(2 * CHUNK + 5),
    }


PLAINTEXTS = _plaintexts()


# -- ours -> age --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PLAINTEXTS)
@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armored"])
def test_age_decrypts_what_we_encrypt(age_bin: str, tmp_path: Path, name: str, armor: bool) -> None:
    identity, key_file = _our_key_file(tmp_path)
    data = age.encrypt(PLAINTEXTS[name], [identity.recipient()], armor=armor)
    assert _run(age_bin, "-d", "-i", str(key_file), stdin=data) == PLAINTEXTS[name]


def test_age_decrypts_our_file_with_any_of_several_recipients(age_bin: str, tmp_path: Path) -> None:
    ours, key_file = _our_key_file(tmp_path)
    others = [age.X25519Identity.generate() for _ in range(3)]
    data = age.encrypt(b"several", [o.recipient() for o in others] + [ours.recipient()])
    assert _run(age_bin, "-d", "-i", str(key_file), stdin=data) == b"several"


def test_age_keygen_y_agrees_with_our_public_key(keygen_bin: str, tmp_path: Path) -> None:
    identity, key_file = _our_key_file(tmp_path)
    assert _run(keygen_bin, "-y", str(key_file)).decode().strip() == str(identity.recipient())


# -- age -> ours --------------------------------------------------------------------------------


def test_we_parse_age_keygen_output_and_decrypt_what_age_encrypts(
    age_bin: str, keygen_bin: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "keys.txt"
    _run(keygen_bin, "-o", str(key_file))
    text = key_file.read_text()
    [identity] = age.parse_identity_file(text, source=str(key_file))
    assert f"# public key: {identity.recipient()}\n" in text
    # Our writer reproduces age-keygen's file byte for byte (created time aside).
    created = datetime.fromisoformat(text.split("\n")[0].removeprefix("# created: "))
    assert age.keygen_file_text(identity, created=created) == text
    for name, plaintext in PLAINTEXTS.items():
        for extra in ([], ["-a"]):
            data = _run(age_bin, *extra, "-r", str(identity.recipient()), stdin=plaintext)
            assert data.startswith(b"-----BEGIN" if extra else b"age-encryption.org/v1\n")
            assert age.decrypt(data, [identity]) == plaintext, (name, extra)


def test_we_decrypt_age_files_with_several_recipients_and_identity_files(
    age_bin: str, tmp_path: Path
) -> None:
    ours, key_file = _our_key_file(tmp_path)
    other = age.X25519Identity.generate()
    # `-e -i FILE` also encrypts to the recipient of each identity in FILE (our key file).
    data = _run(age_bin, "-e", "-r", str(other.recipient()), "-i", str(key_file), stdin=b"to both")
    assert age.decrypt(data, [ours]) == b"to both"
    assert age.decrypt(data, [other]) == b"to both"
    with pytest.raises(age.NoIdentityMatchError):
        age.decrypt(data, [age.X25519Identity.generate()])


# -- passphrases (scrypt), through a terminal ---------------------------------------------------


def _age_with_passphrase(argv: list[str], passphrase: str) -> None:
    """Run age with a pseudo-terminal as its controlling tty, answering passphrase prompts."""
    master, slave = os.openpty()

    def controlling_tty() -> None:
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    with subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        preexec_fn=controlling_tty,  # age reads passphrases from /dev/tty only
    ) as process:
        os.close(slave)
        seen, answered, deadline = b"", 0, time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break
                if seen.lower().count(b"passphrase") > answered:
                    os.write(master, passphrase.encode() + b"\n")
                    answered += 1
            elif process.poll() is not None:
                break
        os.close(master)
        assert process.wait(timeout=60) == 0, f"age failed: {seen.decode(errors='replace')}"


@pytest.mark.slow
def test_we_decrypt_what_age_p_encrypts(age_bin: str, tmp_path: Path) -> None:
    plain, encrypted = tmp_path / "plain", tmp_path / "plain.age"
    plain.write_bytes(b"by passphrase")
    _age_with_passphrase([age_bin, "-p", "-o", str(encrypted), str(plain)], "correct horse")
    data = encrypted.read_bytes()
    assert data.startswith(b"age-encryption.org/v1\n-> scrypt ")
    assert age.decrypt(data, [age.ScryptIdentity("correct horse")]) == b"by passphrase"
    with pytest.raises(age.WrongPassphraseError):
        age.decrypt(data, [age.ScryptIdentity("battery staple")])


@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armored"])
def test_age_decrypts_what_we_encrypt_with_a_passphrase(
    age_bin: str, tmp_path: Path, armor: bool
) -> None:
    encrypted, out = tmp_path / "file.age", tmp_path / "out"
    recipient = age.ScryptRecipient("correct horse", work_factor=12)
    encrypted.write_bytes(age.encrypt(b"by passphrase", [recipient], armor=armor))
    _age_with_passphrase([age_bin, "-d", "-o", str(out), str(encrypted)], "correct horse")
    assert out.read_bytes() == b"by passphrase"


def test_age_rejects_what_we_reject(age_bin: str, tmp_path: Path) -> None:
    """A tampered file of ours is refused by age too: we agree on what is valid."""
    identity, key_file = _our_key_file(tmp_path)
    data = bytearray(age.encrypt(b"x" * 100, [identity.recipient()]))
    data[-5] ^= 1
    done = subprocess.run(
        [age_bin, "-d", "-i", str(key_file)], input=bytes(data), capture_output=True, timeout=60
    )
    assert done.returncode != 0
    with pytest.raises(age.PayloadError):
        age.decrypt(bytes(data), [identity])
