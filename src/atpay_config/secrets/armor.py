"""age ASCII armor: strict PEM (RFC 7468 section 3) with the label "AGE ENCRYPTED FILE".

The spec asks readers to reject anything but canonical armor, apart from
whitespace around the block and LF or CRLF line endings, because a lax parser
would make armored files malleable.
"""

from __future__ import annotations

import base64
import binascii

BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
END = b"-----END AGE ENCRYPTED FILE-----"
COLUMNS = 64
_BYTES_PER_LINE = COLUMNS // 4 * 3
_MAX_WHITESPACE = 1024  # around the block; more is a sign of a damaged or foreign file
_WHITESPACE = b" \t\r\n\v\f"


class ArmorFormatError(ValueError):
    """The armor is not strict PEM; the message says which rule was broken."""


def encode(data: bytes) -> bytes:
    """Armored form of a binary age file, wrapped at 64 columns."""
    text = base64.b64encode(data)
    lines = [text[i : i + COLUMNS] for i in range(0, len(text), COLUMNS)]
    return b"\n".join([BEGIN, *lines, END]) + b"\n"


def looks_armored(data: bytes) -> bool:
    """True when `data` is meant as armor (even broken armor), so errors speak of armor."""
    stripped = data.lstrip(_WHITESPACE)
    return stripped.startswith(b"-----") or BEGIN in data[: _MAX_WHITESPACE + 4096]


def decode(data: bytes) -> bytes:
    """The binary age file inside strict armor; raises ArmorFormatError."""
    lines = data.split(b"\n")
    index = 0
    skipped = 0
    while index < len(lines) and not lines[index].strip(_WHITESPACE):
        skipped += len(lines[index]) + 1
        index += 1
    if skipped > _MAX_WHITESPACE:
        raise ArmorFormatError("too much whitespace before the armor")
    if index == len(lines):
        raise ArmorFormatError("the file is empty or only whitespace")
    if _line(lines[index]) != BEGIN:
        raise ArmorFormatError(f"the first line is not {BEGIN.decode()}")
    index += 1
    decoded: list[bytes] = []
    while True:
        if index >= len(lines) or (index == len(lines) - 1 and not lines[index]):
            raise ArmorFormatError(f"the armor ends without {END.decode()}")
        line = _line(lines[index])
        index += 1
        if line == END:
            break
        if len(line) > COLUMNS:
            raise ArmorFormatError(f"a line is longer than {COLUMNS} columns")
        chunk = _decode_line(line)
        decoded.append(chunk)
        if len(chunk) < _BYTES_PER_LINE:
            # Only the last line may be short; the end line must follow it.
            if index >= len(lines) or _line(lines[index]) != END:
                raise ArmorFormatError(
                    f"a line shorter than {COLUMNS} columns is not followed by {END.decode()}"
                )
            index += 1
            break
    trailing = b"\n".join(lines[index:])
    if trailing.strip(_WHITESPACE):
        raise ArmorFormatError(f"unexpected data after {END.decode()}")
    if len(trailing) > _MAX_WHITESPACE:
        raise ArmorFormatError("too much whitespace after the armor")
    return b"".join(decoded)


def _line(raw: bytes) -> bytes:
    """A line without its CRLF carriage return (the spec allows LF and CRLF)."""
    return raw[:-1] if raw.endswith(b"\r") else raw


def _decode_line(line: bytes) -> bytes:
    if not line:
        raise ArmorFormatError("empty line inside the armor")
    try:
        chunk = base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        raise ArmorFormatError(
            "invalid base64 inside the armor (bad character, padding or checksum line)"
        ) from None
    if base64.b64encode(chunk) != line:
        raise ArmorFormatError("non-canonical base64 inside the armor")
    return chunk
