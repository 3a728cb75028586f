"""Bech32 (BIP173), as age uses it for `age1…` recipients and `AGE-SECRET-KEY-1…` identities.

age uses the original Bech32 checksum (not Bech32m) and lifts BIP173's 90-character
limit. Error messages never quote the input: it may be a secret key.
"""

from __future__ import annotations

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHARSET_INDEX = {c: i for i, c in enumerate(CHARSET)}
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_CHECKSUM_LEN = 6


class Bech32Error(ValueError):
    """The string is not valid Bech32; the message never contains the input."""


def _polymod(values: list[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i, generator in enumerate(_GENERATOR):
            if (top >> i) & 1:
                checksum ^= generator
    return checksum


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: bytes | list[int], from_bits: int, to_bits: int, *, pad: bool) -> list[int]:
    acc = 0
    bits = 0
    out: list[int] = []
    max_value = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & max_value)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & max_value)
    elif bits >= from_bits:
        raise Bech32Error("too many padding bits")
    elif (acc << (to_bits - bits)) & max_value:
        raise Bech32Error("non-zero padding bits")
    return out


def encode(hrp: str, data: bytes) -> str:
    """Bech32 string for `data`; the case of `hrp` decides the case of the result."""
    lower_hrp = hrp.lower()
    values = _convert_bits(data, 8, 5, pad=True)
    polymod = _polymod([*_hrp_expand(lower_hrp), *values, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(_CHECKSUM_LEN)]
    text = lower_hrp + "1" + "".join(CHARSET[v] for v in values + checksum)
    return text.upper() if hrp.isupper() else text


def decode(text: str) -> tuple[str, bytes]:
    """(human-readable part as written, data bytes); raises Bech32Error."""
    if text.lower() != text and text.upper() != text:
        raise Bech32Error("mixed upper and lower case")
    separator = text.rfind("1")
    if separator < 1 or separator + _CHECKSUM_LEN + 1 > len(text):
        raise Bech32Error("the '1' separator is missing or misplaced")
    hrp = text[:separator]
    if any(not 33 <= ord(c) <= 126 for c in hrp):
        raise Bech32Error("invalid character in the prefix")
    try:
        values = [_CHARSET_INDEX[c] for c in text[separator + 1 :].lower()]
    except KeyError:
        raise Bech32Error("invalid character in the data part") from None
    if _polymod([*_hrp_expand(hrp.lower()), *values]) != 1:
        raise Bech32Error("invalid checksum (mistyped or truncated?)")
    return hrp, bytes(_convert_bits(values[:-_CHECKSUM_LEN], 5, 8, pad=False))
