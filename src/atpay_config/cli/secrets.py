"""`atpay keygen|encrypt|decrypt|rotate|set|edit`: sops-compatible secrets commands.

Each command reads files, calls one core function in `secrets.inplace`, and
writes atomically. Only `decrypt` (to stdout) ever prints a plaintext key.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import FrameType

import click

import atpay_config.secrets.age as age
from atpay_config.cli import cli
from atpay_config.errors import SecretsError, UsageError
from atpay_config.files import write_atomic
from atpay_config.secrets.creation_rules import rule_for_file
from atpay_config.secrets.identities import load_identities
from atpay_config.secrets.inplace import (
    encrypt_text,
    plaintext_text,
    reencrypt_text,
    rotate_text,
    set_text,
)
from atpay_config.secrets.keysources import KEY_SOURCES
from atpay_config.secrets.sops import DEFAULT_SELECTION, open_tree


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise SecretsError(f"{path}: not UTF-8 text; sops files are UTF-8 YAML") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None


@cli.command()
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write the identity here (mode 0600)."
)
def keygen(output: str | None) -> None:
    """Generate an age identity in age-keygen's format; the public key goes to stderr."""
    identity = age.X25519Identity.generate()
    text = age.keygen_file_text(
        identity, created=datetime.now().astimezone().replace(microsecond=0)
    )
    if output is None:
        click.echo(text, nl=False)
    else:
        try:
            fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise UsageError(
                f"{output}: already exists; refusing to overwrite an identity file"
            ) from None
        except OSError as exc:
            raise UsageError(f"{output}: cannot create ({exc.strerror})") from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    click.echo(f"Public key: {identity.recipient()}", err=True)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--age",
    "age_recipients",
    metavar="R1,R2",
    help="age recipients (else a .sops.yaml creation rule).",
)
def encrypt(files: tuple[str, ...], age_recipients: str | None) -> None:
    """Encrypt the gateway keys of FILES in place (sops format, age recipients)."""
    for path in files:
        text = _read(path)
        if age_recipients is not None:
            recipients = KEY_SOURCES["age"].parse_recipients(age_recipients, source="--age")
            if not recipients:
                raise UsageError("--age: no recipients given")
            selection, mac_only = DEFAULT_SELECTION, False
        else:
            rule = rule_for_file(Path(path))
            if rule is None:
                raise UsageError(
                    f"{path}: no recipients; pass --age age1… or add a .sops.yaml creation rule"
                )
            recipients = KEY_SOURCES["age"].parse_recipients(
                ",".join(rule.age), source=str(rule.config)
            )
            selection, mac_only = rule.selection, rule.mac_only_encrypted
        encrypted = encrypt_text(
            text, path=path, recipients=recipients, selection=selection, mac_only_encrypted=mac_only
        )
        write_atomic(path, encrypted)
        click.echo(f"encrypted {path}", err=True)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--in-place", "-i", is_flag=True, help="Replace the file with its plaintext.")
def decrypt(file: str, in_place: bool) -> None:
    """Decrypt FILE (MAC verified) to stdout, or in place."""
    text = _read(file)
    tree = open_tree(text, path=file, identities=load_identities())
    plain = plaintext_text(text, tree)
    if in_place:
        write_atomic(file, plain)
        click.echo(f"decrypted {file}", err=True)
    else:
        click.echo(plain, nl=False)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--add-age",
    "add",
    multiple=True,
    metavar="R",
    help="Add an age recipient (repeatable, or R1,R2).",
)
@click.option("--rm-age", "remove", multiple=True, metavar="R", help="Remove an age recipient.")
def rotate(files: tuple[str, ...], add: tuple[str, ...], remove: tuple[str, ...]) -> None:
    """Re-encrypt FILES with a new data key; optionally change recipients."""
    source = KEY_SOURCES["age"]
    adding = [r for item in add for r in source.parse_recipients(item, source="--add-age")]
    removing = [r for item in remove for r in source.parse_recipients(item, source="--rm-age")]
    identities = load_identities()
    for path in files:
        rotated = rotate_text(
            _read(path), path=path, identities=identities, add=adding, remove=removing
        )
        write_atomic(path, rotated)
        click.echo(f"rotated {path}", err=True)


@cli.command(name="set")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("index_path", metavar="PATH")
@click.argument("value", metavar="VALUE")
def set_command(file: str, index_path: str, value: str) -> None:
    """Set one value: PATH like '["spec"]["keys"]["privateKey"]', VALUE as JSON ('"sk_…"').

    The file is re-encrypted with the same data key, so the MAC stays valid.
    """
    updated = set_text(
        _read(file),
        path=file,
        identities=load_identities(),
        index_path=index_path,
        value_json=value,
    )
    write_atomic(file, updated)
    click.echo(f"updated {file}", err=True)


@contextmanager
def _private_workspace(name: str) -> Iterator[Path]:
    """A 0700 folder removed on every exit path, SIGTERM and SIGHUP included."""
    folder = Path(tempfile.mkdtemp(prefix="atpay-edit-"))

    def interrupted(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    for sig in previous:
        try:
            signal.signal(sig, interrupted)
        except ValueError:  # not the main thread: leave handlers alone
            previous = {}
            break
    try:
        yield folder / name
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
def edit(file: str) -> None:
    """Decrypt FILE into a private temporary file, run $EDITOR, re-encrypt (same data key)."""
    text = _read(file)
    tree = open_tree(text, path=file, identities=load_identities())
    plain = plaintext_text(text, tree)
    editor = shlex.split(os.environ.get("EDITOR") or "vi")
    with _private_workspace(Path(file).name) as scratch:
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(plain)
        try:
            result = subprocess.run([*editor, str(scratch)], check=False)
        except OSError as exc:
            raise UsageError(
                f"{file}: cannot run the editor {editor[0]!r} ({exc.strerror}); set $EDITOR"
            ) from None
        if result.returncode != 0:
            raise SecretsError(
                f"{file}: the editor exited with status {result.returncode}; file unchanged"
            )
        try:
            edited = scratch.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise SecretsError(
                f"{file}: the edited text cannot be read back as UTF-8; file unchanged"
            ) from None
    if edited == plain:
        click.echo(f"{file}: no changes", err=True)
        return
    write_atomic(file, reencrypt_text(edited, tree, path=file))
    click.echo(f"updated {file}", err=True)
