"""sops-compatible tree encryption: `ENC[...]` values, the MAC, the `sops:` metadata.

The format is getsops/sops's (`sops.go`, `aes/cipher.go`, `stores/stores.go`),
re-implemented here from its documented behaviour:

- each selected leaf becomes `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`, AES-256-GCM
  with a 32-byte IV and the mapping keys of its path joined by `:` plus a trailing
  `:` as associated data (list indexes are not part of the path);
- the MAC is SHA-512 over the plaintext bytes of every leaf in document order
  across all documents (or only the encrypted ones with `mac_only_encrypted`),
  stored as uppercase hex, encrypted as a `str` with `lastmodified` as AAD; so the
  tenant id and payment types are bound to the keys;
- leaves are typed as sops's YAML parser (yaml.v3, YAML 1.2) types them, because
  the MAC hashes the typed value (`yes` is a string, `0x1F` is 31, `1e20` a float).

This module is pure: it works on text and returns text or results. The data key
comes from `keysources`; splicing into files lives in `inplace`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

import yaml
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from atpay_config.errors import SecretsError
from atpay_config.secrets.identities import Identity, load_identities
from atpay_config.secrets.keysources import WrappedDataKey, unwrap_data_key

try:  # libyaml when present; both report marks as character indexes
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

SOPS_VERSION = "3.11.0"
"""The sops version we write: files look like sops 3.11 wrote them."""
SUPPORTED_VERSION_RE = re.compile(r"\A3\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?\Z")
"""sops 3.x files share this format; other majors are refused, not guessed at."""
KEY_FIELDS_REGEX = "^(publicKey|privateKey)$"
"""Our default selection: only the gateway keys are encrypted (SPEC section 5)."""
IV_BYTES = 32  # sops's non-standard GCM nonce size
TAG_BYTES = 16
MAX_FILE_CHARS = 1024 * 1024
MAC_ONLY_ENCRYPTED_INIT = hashlib.sha256(b"sops").digest()
"""sops feeds this first with `mac_only_encrypted`, so the two MAC kinds never collide."""

_B64 = r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"
ENVELOPE_RE = re.compile(
    rf"\AENC\[AES256_GCM,data:(?P<data>{_B64}),iv:(?P<iv>{_B64}),tag:(?P<tag>{_B64}),"
    r"type:(?P<type>str|int|float|bool|time|bytes|comment)\]\Z"
)
"""A well-formed sops value (stricter than sops's own parser, which accepts `.+`)."""
_LOOSE_ENVELOPE_RE = re.compile(r"\AENC\[")

ValueType = Literal["str", "int", "float", "bool", "time", "bytes", "comment"]


def is_envelope(value: object) -> bool:
    """True for a well-formed `ENC[AES256_GCM,...]` value (decodable base64, sane sizes)."""
    if not isinstance(value, str):
        return False
    match = ENVELOPE_RE.match(value)
    if match is None or not match["data"] or not match["iv"]:
        return False
    try:
        return all(_canonical_b64decode(match[g]) for g in ("data", "iv")) and (
            len(_canonical_b64decode(match["tag"])) == TAG_BYTES
        )
    except binascii.Error:
        return False


# --- typed leaves -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timestamp:
    """A YAML timestamp, kept as the RFC 3339 text Go's `time.MarshalText` writes."""

    text: str

    def __repr__(self) -> str:
        return f"Timestamp({self.text!r})"


Value = str | int | float | bool | Timestamp
"""A leaf as sops types it (`type:` in the envelope)."""


def value_type(value: Value) -> ValueType:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, Timestamp):
        return "time"
    return "str"


def go_float(value: float) -> str:
    """Go's `strconv.FormatFloat(f, 'f', -1, 64)`: shortest round-trip, no exponent."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def value_bytes(value: Value) -> bytes:
    """The bytes sops hashes and encrypts for a leaf (`sops.ToBytes`)."""
    if isinstance(value, bool):
        return b"True" if value else b"False"
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, float):
        return go_float(value).encode()
    if isinstance(value, Timestamp):
        return value.text.encode()
    return value.encode("utf-8")


_TS_RE = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
    r"(?:(?P<sep>[Tt ])(?P<h>[0-9]{1,2}):(?P<mi>[0-9]{1,2}):(?P<s>[0-9]{1,2})"
    r"(?:\.(?P<frac>[0-9]+))?(?P<tz>Z|[+-][0-9]{2}:[0-9]{2})?)?\Z"
)


def parse_timestamp(text: str) -> Timestamp | None:
    """yaml.v3's timestamp forms, normalised as Go's RFC 3339 (nano) output."""
    match = _TS_RE.match(text)
    if match is None:
        return None
    sep, tz = match["sep"], match["tz"]
    if sep is not None and (sep in "Tt") != (tz is not None):
        return None  # `T` needs a zone, a space forbids one (yaml.v3's layouts)
    try:
        moment = datetime(
            int(match["y"]),
            int(match["mo"]),
            int(match["d"]),
            int(match["h"] or 0),
            int(match["mi"] or 0),
            int(match["s"] or 0),
        )
    except ValueError:
        return None
    offset = _offset_text(tz)
    if offset is None:
        return None
    frac = (match["frac"] or "")[:9].rstrip("0")
    return Timestamp(moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + offset)


def _offset_text(tz: str | None) -> str | None:
    if tz is None or tz == "Z":
        return "Z"
    hours, minutes = int(tz[1:3]), int(tz[4:6])
    if hours > 23 or minutes > 59:
        return None
    return "Z" if hours == minutes == 0 else tz


def format_rfc3339(moment: datetime) -> str:
    """Go's `Format(time.RFC3339)`: seconds precision, `Z` for UTC."""
    offset = moment.utcoffset() or timedelta(0)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if offset == timedelta(0):
        return base + "Z"
    total = int(offset.total_seconds()) // 60
    sign = "+" if total >= 0 else "-"
    return f"{base}{sign}{abs(total) // 60:02d}:{abs(total) % 60:02d}"


def parse_rfc3339(text: str) -> datetime | None:
    """Go's `time.Parse(time.RFC3339, s)` for the values sops writes."""
    if not re.fullmatch(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})",
        text,
    ):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_SPECIAL_FLOATS = {
    ".nan": math.nan,
    ".NaN": math.nan,
    ".NAN": math.nan,
    **{
        f"{s}{v}": (-math.inf if s == "-" else math.inf)
        for s in ("", "+", "-")
        for v in (".inf", ".Inf", ".INF")
    },
}
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_GO_INT_RE = re.compile(
    r"(?P<sign>[+-]?)(?:0[xX](?P<hex>[0-9a-fA-F]+)|0[oO](?P<oct>[0-7]+)|0[bB](?P<bin>[01]+)"
    r"|(?P<oct0>0[0-7]*)|(?P<dec>[1-9][0-9]*))\Z"
)
_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1


class UnsupportedValue(ValueError):
    """A scalar sops cannot walk (uint64 beyond int64); never carries the value."""


def _go_int(text: str) -> int | None:
    match = _GO_INT_RE.match(text)
    if match is None:
        return None
    if match["hex"]:
        number = int(match["hex"], 16)
    elif match["oct"]:
        number = int(match["oct"], 8)
    elif match["bin"]:
        number = int(match["bin"], 2)
    elif match["oct0"]:
        number = int(match["oct0"], 8)
    else:
        number = int(match["dec"])
    return -number if match["sign"] == "-" else number


def resolve_plain(text: str) -> Value | None:
    """Type an untagged plain scalar as yaml.v3 does (`resolve.go`); None is null."""
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    first = text[0]
    if first == ".":
        return _float_or(text, text)
    if first not in "0123456789+-":
        return text
    stamp = parse_timestamp(text)
    if stamp is not None:
        return stamp
    plain = text.replace("_", "")
    number = _go_int(plain)
    if number is not None:
        if _INT64_MIN <= number <= _INT64_MAX:
            return number
        if 0 <= number <= _UINT64_MAX and not plain.startswith(("+", "-")):
            raise UnsupportedValue("an integer beyond int64")
    if _YAML_STYLE_FLOAT.match(plain):
        return _float_or(plain, text)
    return text


def _float_or(candidate: str, fallback: str) -> Value:
    if not _YAML_STYLE_FLOAT.match(candidate.lstrip("+-") if candidate[:1] in "+-" else candidate):
        return fallback
    number = float(candidate)
    return fallback if math.isinf(number) else number  # Go: out of range is an error


# --- YAML documents with source positions --------------------------------------

PLAIN_TAG = "!atpay/plain"
"""Our marker for untagged plain scalars, so typing follows yaml.v3 and not PyYAML."""
_STR_TAG = "tag:yaml.org,2002:str"


class _Loader(_BaseLoader):
    """Composes nodes with marks; untagged plain scalars keep their text for `resolve_plain`."""

    def resolve(self, kind: type[yaml.Node], value: str, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            return PLAIN_TAG if implicit[0] else _STR_TAG
        resolved: str = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        return resolved


def typed_value(node: yaml.ScalarNode) -> Value | None:
    """The value sops sees for a scalar node (quoted = str; explicit tags honoured)."""
    tag = node.tag
    text: str = node.value
    if tag == PLAIN_TAG:
        return resolve_plain(text)
    if tag in (_STR_TAG, "tag:yaml.org,2002:binary") or not tag.startswith("tag:yaml.org,2002:"):
        return text
    resolved = resolve_plain(text) if text else None
    kind = tag.rsplit(":", 1)[1]
    if kind == "float" and isinstance(resolved, int) and not isinstance(resolved, bool):
        return float(resolved)
    expected = {"int": int, "float": float, "bool": bool, "timestamp": Timestamp}.get(kind)
    if kind == "null" and resolved is None:
        return None
    if (
        expected is not None
        and isinstance(resolved, expected)
        and (kind == "bool") == isinstance(resolved, bool)
    ):
        return resolved
    raise UnsupportedValue(f"a value that is not a valid !!{kind}")


@dataclass(frozen=True, slots=True)
class Position:
    """1-based line and column of a node."""

    line: int
    column: int

    @classmethod
    def of(cls, node: yaml.Node) -> Position:
        return cls(node.start_mark.line + 1, node.start_mark.column + 1)


@dataclass(frozen=True, slots=True)
class Leaf:
    """One scalar in document order: its sops path (mapping keys), pointer and node."""

    document: int
    path: tuple[str, ...]
    pointer: str
    node: yaml.ScalarNode
    in_flow: bool

    @property
    def aad(self) -> str:
        return ":".join(self.path) + ":"

    @property
    def position(self) -> Position:
        return Position.of(self.node)


@dataclass(slots=True)
class Document:
    """A top-level mapping and, when present, its `sops` key and value nodes."""

    index: int
    root: yaml.MappingNode
    sops_key: yaml.ScalarNode | None = None
    sops_value: yaml.Node | None = None


def _pointer_token(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def located_error(path: str, node: yaml.Node | None, message: str) -> SecretsError:
    """`file:line:col: message` when the place is known."""
    if node is None:
        return SecretsError(f"{path}: {message}")
    where = Position.of(node)
    return SecretsError(f"{path}:{where.line}:{where.column}: {message}")


def parse_documents(text: str, *, path: str) -> list[Document]:
    """Compose every document; refuse what sops refuses (non-mapping roots, bad keys)."""
    if len(text) > MAX_FILE_CHARS:
        raise SecretsError(f"{path}: larger than {MAX_FILE_CHARS} characters; not a manifest")
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        # The problem text only: PyYAML's snippet of the line could show a plaintext key.
        raise SecretsError(
            f"{path}{where}: not valid YAML ({exc.problem or exc.context}); fix the syntax"
        ) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise SecretsError(
            f"{path}: not valid YAML ({type(exc).__name__}); fix the syntax"
        ) from None
    documents: list[Document] = []
    for index, node in enumerate(nodes):
        if (
            isinstance(node, yaml.ScalarNode)
            and node.tag == PLAIN_TAG
            and resolve_plain(node.value) is None
        ):
            continue  # an empty document: sops keeps no branch for it
        if not isinstance(node, yaml.MappingNode):
            raise located_error(
                path, node, f"document {index + 1} is not a mapping; sops supports mappings only"
            )
        document = Document(index=len(documents), root=node)
        seen: set[str] = set()
        for key, value in node.value:
            name = _key_name(key, path=path)
            if name in seen:
                raise located_error(path, key, f"duplicate key {name!r}; remove one")
            seen.add(name)
            if name == "sops":
                document.sops_key, document.sops_value = key, value
        documents.append(document)
    if not documents:
        raise SecretsError(f"{path}: no YAML documents; nothing to encrypt")
    return documents


def _key_name(key: yaml.Node, *, path: str) -> str:
    if not isinstance(key, yaml.ScalarNode):
        raise located_error(path, key, "complex mapping key; sops supports string keys only")
    try:
        name = typed_value(key)
    except UnsupportedValue:
        name = None
    if not isinstance(name, str):
        raise located_error(
            path, key, f"non-string key {key.value!r}; quote it (sops supports string keys only)"
        )
    return name


def leaves(document: Document, *, path: str) -> Iterator[Leaf]:
    """Every scalar outside `sops:`, depth-first in document order, as sops walks them."""
    stack: list[tuple[yaml.Node, tuple[str, ...], str, bool]] = []
    for key, value in reversed(document.root.value):
        name = _key_name(key, path=path)
        if name != "sops":
            stack.append(
                (value, (name,), "/" + _pointer_token(name), bool(document.root.flow_style))
            )
    depth_guard = 0
    while stack:
        node, keys, pointer, in_flow = stack.pop()
        depth_guard += 1
        if depth_guard > 1_000_000:
            raise SecretsError(f"{path}: too many values (aliases?); refusing")
        if isinstance(node, yaml.ScalarNode):
            yield Leaf(document.index, keys, pointer, node, in_flow)
        elif isinstance(node, yaml.MappingNode):
            flow = in_flow or bool(node.flow_style)
            seen: set[str] = set()
            children = []
            for key, value in node.value:
                name = _key_name(key, path=path)
                if name in seen:
                    raise located_error(path, key, f"duplicate key {name!r}; remove one")
                seen.add(name)
                children.append((value, (*keys, name), f"{pointer}/{_pointer_token(name)}", flow))
            stack.extend(reversed(children))
        elif isinstance(node, yaml.SequenceNode):
            flow = in_flow or bool(node.flow_style)
            stack.extend(
                reversed(
                    [(item, keys, f"{pointer}/{i}", flow) for i, item in enumerate(node.value)]
                )
            )


def leaf_value(leaf: Leaf, *, path: str) -> Value | None:
    try:
        return typed_value(leaf.node)
    except UnsupportedValue as exc:
        raise located_error(
            path, leaf.node, f"{leaf.pointer} is {exc}; sops cannot store it, quote it"
        ) from None


# --- selection ------------------------------------------------------------------

SelectionKind = Literal[
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
]
SELECTION_KINDS: tuple[SelectionKind, ...] = (
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
)


@dataclass(frozen=True, slots=True)
class Selection:
    """Which leaves are encrypted: sops's one-of-six rule (`shouldBeEncrypted`)."""

    kind: SelectionKind
    pattern: str

    def encrypts(self, keys: Sequence[str]) -> bool:
        if self.kind == "unencrypted_suffix":
            return not any(k.endswith(self.pattern) for k in keys)
        if self.kind == "encrypted_suffix":
            return any(k.endswith(self.pattern) for k in keys)
        regex = re.compile(self.pattern)  # Go's regexp.Match: unanchored search
        if self.kind == "unencrypted_regex":
            return not any(regex.search(k) for k in keys)
        return any(regex.search(k) for k in keys)


DEFAULT_SELECTION = Selection("encrypted_regex", KEY_FIELDS_REGEX)
SOPS_DEFAULT_SELECTION = Selection("unencrypted_suffix", "_unencrypted")
"""What sops assumes when a file names no rule."""


# --- values ------------------------------------------------------------------------


class EnvelopeError(ValueError):
    """A value could not be decrypted; the message never contains plaintext."""


def encrypt_value(value: Value, key: bytes, aad: str, *, iv: bytes | None = None) -> str:
    """One sops value: AES-256-GCM, 32-byte IV, `aad` = the path (`aes.Cipher.Encrypt`)."""
    nonce = iv if iv is not None else os.urandom(IV_BYTES)
    sealed = AESGCM(key).encrypt(nonce, value_bytes(value), aad.encode("utf-8"))
    b64 = base64.b64encode
    return (
        f"ENC[AES256_GCM,data:{b64(sealed[:-TAG_BYTES]).decode()},iv:{b64(nonce).decode()},"
        f"tag:{b64(sealed[-TAG_BYTES:]).decode()},type:{value_type(value)}]"
    )


@dataclass(frozen=True, slots=True)
class Decrypted:
    """A decrypted value and the IV it had (reused when re-encrypting it unchanged)."""

    value: Value
    iv: bytes = field(repr=False)

    def __repr__(self) -> str:
        return "Decrypted(<redacted>)"


def _canonical_b64decode(text: str) -> bytes:
    """Stricter than sops: unused low bits must be zero, as every encoder writes them."""
    decoded = base64.b64decode(text, validate=True)
    if base64.b64encode(decoded).decode() != text:
        raise binascii.Error("non-canonical base64")
    return decoded


def decrypt_value(envelope: str, key: bytes, aad: str) -> Decrypted:
    """Open one `ENC[...]`; EnvelopeError says what is wrong, never the plaintext."""
    match = ENVELOPE_RE.match(envelope)
    if match is None:
        if _LOOSE_ENVELOPE_RE.match(envelope):
            raise EnvelopeError("malformed ENC[...] value (not data/iv/tag/type with base64)")
        raise EnvelopeError("not an ENC[...] value")
    try:
        data, iv, tag = (_canonical_b64decode(match[g]) for g in ("data", "iv", "tag"))
    except binascii.Error:
        raise EnvelopeError("malformed ENC[...] value (bad base64)") from None
    if not data or len(iv) < 8 or len(tag) != TAG_BYTES:
        raise EnvelopeError("malformed ENC[...] value (truncated data, iv or tag)")
    try:
        plain = AESGCM(key).decrypt(iv, data + tag, aad.encode("utf-8"))
    except InvalidTag:
        raise EnvelopeError(
            "authentication failed: the ciphertext was altered or truncated, moved from another "
            "key path, or encrypted with another data key"
        ) from None
    kind = match["type"]
    try:
        text = plain.decode("utf-8")
    except UnicodeDecodeError:
        raise EnvelopeError(f"decrypted {kind} is not UTF-8") from None
    return Decrypted(_typed_plaintext(kind, text), iv)


def _typed_plaintext(kind: str, text: str) -> Value:
    if kind == "str":
        return text
    if kind == "int" and re.fullmatch(r"[+-]?[0-9]+", text):
        return int(text)
    if kind == "float":
        try:
            return float(text.replace("Inf", "inf"))
        except ValueError:
            pass
    if kind == "bool":
        for truth, spellings in (
            (True, ("1", "t", "T", "TRUE", "true", "True")),
            (False, ("0", "f", "F", "FALSE", "false", "False")),
        ):
            if text in spellings:
                return truth
    if kind == "time":
        stamp = parse_timestamp(text)
        if stamp is not None and "T" in stamp.text:
            return stamp
    if kind in ("bytes", "comment"):
        return text
    raise EnvelopeError(f"decrypted value is not a valid {kind}")


# --- metadata --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Metadata:
    """The in-memory `sops:` block (what sops calls `sops.Metadata`)."""

    age: tuple[WrappedDataKey, ...]
    last_modified: datetime
    mac: str
    selection: Selection = DEFAULT_SELECTION
    mac_only_encrypted: bool = False
    version: str = SOPS_VERSION
    other_key_types: tuple[str, ...] = ()

    @property
    def mac_aad(self) -> str:
        return format_rfc3339(self.last_modified)

    @property
    def recipients(self) -> tuple[str, ...]:
        return tuple(w.recipient for w in self.age)


_OTHER_KEY_TYPES = ("kms", "gcp_kms", "hckms", "azure_kv", "hc_vault", "pgp")


@dataclass(frozen=True, slots=True)
class StoredMetadata:
    """The `sops:` block as written in files, in sops 3.11's key order (`stores.metadata`)."""

    age: tuple[tuple[str, str], ...]
    lastmodified: str
    mac: str
    selection: tuple[str, str] | None
    mac_only_encrypted: bool
    version: str

    @classmethod
    def from_internal(cls, meta: Metadata) -> StoredMetadata:
        return cls(
            age=tuple((w.recipient, w.enc) for w in meta.age),
            lastmodified=format_rfc3339(meta.last_modified),
            mac=meta.mac,
            selection=(meta.selection.kind, meta.selection.pattern),
            mac_only_encrypted=meta.mac_only_encrypted,
            version=meta.version,
        )

    def to_yaml(self) -> str:
        """The block sops 3.11 writes (4-space indent), ending with a newline."""
        lines = ["sops:", "    age:"]
        for recipient, enc in self.age:
            lines.append(f"        - recipient: {recipient}")
            lines.append("          enc: |")
            lines.extend(f"            {line}" for line in enc.rstrip("\n").split("\n"))
        lines.append(f'    lastmodified: "{self.lastmodified}"')
        lines.append(f"    mac: {self.mac}")
        if self.selection is not None:
            lines.append(f"    {self.selection[0]}: {_yaml_string(self.selection[1])}")
        if self.mac_only_encrypted:
            lines.append("    mac_only_encrypted: true")
        lines.append(f"    version: {self.version}")
        return "\n".join(lines) + "\n"


def _yaml_string(text: str) -> str:
    if (
        re.fullmatch(r"[\^A-Za-z_(][^'\"#:{}\[\],&*!%@`]*", text)
        and not text.endswith(" ")
        and isinstance(resolve_plain(text), str)
    ):
        return text
    return "'" + text.replace("'", "''") + "'"


def metadata_from_node(node: yaml.Node, *, path: str) -> Metadata:
    """Read a `sops:` mapping; unsupported shapes are one-line errors naming the file."""
    fields = _plain_mapping(node, path=path)
    version = fields.get("version")
    if not isinstance(version, str) or not SUPPORTED_VERSION_RE.match(version):
        raise located_error(
            path,
            node,
            f"unsupported sops version {version!r} in the sops block; atpay reads sops 3.x files "
            "(re-encrypt it with sops 3)",
        )
    if fields.get("key_groups") or fields.get("shamir_threshold"):
        raise located_error(
            path,
            node,
            "sops key_groups/shamir_threshold are not supported; use plain age recipients",
        )
    age_entries = fields.get("age") or []
    if not isinstance(age_entries, list):
        raise located_error(path, node, "sops.age is not a list")
    wrapped = []
    for entry in age_entries:
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("recipient"), str)
            or not isinstance(entry.get("enc"), str)
        ):
            raise located_error(path, node, "sops.age entry without recipient/enc strings")
        wrapped.append(WrappedDataKey(entry["recipient"].strip(), entry["enc"]))
    others = tuple(k for k in _OTHER_KEY_TYPES if fields.get(k))
    last = fields.get("lastmodified")
    moment = (
        parse_rfc3339(last.text if isinstance(last, Timestamp) else last)
        if isinstance(last, str | Timestamp)
        else None
    )
    if moment is None:
        raise located_error(path, node, "sops.lastmodified is missing or not RFC 3339")
    mac = fields.get("mac")
    if not isinstance(mac, str):
        raise located_error(path, node, "sops.mac is missing")
    chosen = [k for k in SELECTION_KINDS if fields.get(k) not in (None, "")]
    if len(chosen) > 1:
        raise located_error(
            path, node, f"sops block sets {' and '.join(chosen)}; at most one is allowed"
        )
    if chosen:
        pattern = fields[chosen[0]]
        if not isinstance(pattern, str):
            raise located_error(path, node, f"sops.{chosen[0]} is not a string")
        if chosen[0].endswith("comment_regex"):
            raise located_error(
                path, node, f"sops.{chosen[0]} (comment-based selection) is not supported"
            )
        selection = Selection(chosen[0], pattern)
        if selection.kind.endswith("regex"):
            try:
                re.compile(pattern)
            except re.error:
                raise located_error(
                    path, node, f"sops.{chosen[0]} is not a valid regular expression"
                ) from None
    else:
        selection = SOPS_DEFAULT_SELECTION
    mac_only = fields.get("mac_only_encrypted", False)
    if not isinstance(mac_only, bool):
        raise located_error(path, node, "sops.mac_only_encrypted is not a boolean")
    return Metadata(
        age=tuple(wrapped),
        last_modified=moment,
        mac=mac,
        selection=selection,
        mac_only_encrypted=mac_only,
        version=version,
        other_key_types=others,
    )


def _plain_mapping(node: yaml.Node, *, path: str) -> dict[str, object]:
    """The sops block as plain values (yaml.v3 typing), small and alias-free."""

    def convert(n: yaml.Node, depth: int) -> object:
        if depth > 8:
            raise located_error(path, n, "sops block nested too deeply")
        if isinstance(n, yaml.ScalarNode):
            try:
                return typed_value(n)
            except UnsupportedValue:
                raise located_error(path, n, "unreadable value in the sops block") from None
        if isinstance(n, yaml.SequenceNode):
            return [convert(item, depth + 1) for item in n.value]
        if isinstance(n, yaml.MappingNode):
            return {str(k.value): convert(v, depth + 1) for k, v in n.value}
        raise located_error(path, n, "unreadable sops block")

    result = convert(node, 0)
    if not isinstance(result, dict):
        raise located_error(path, node, "the sops key is not a mapping")
    return result


def file_metadata(documents: Sequence[Document], *, path: str) -> Metadata | None:
    """The metadata of an encrypted file (None when plaintext); every document must carry it."""
    present = [d for d in documents if d.sops_value is not None]
    if not present:
        return None
    if len(present) != len(documents):
        missing = next(d for d in documents if d.sops_value is None)
        raise located_error(
            path, missing.root, f"document {missing.index + 1} has no sops block while others do"
        )
    first = present[0].sops_value
    assert first is not None
    return metadata_from_node(first, path=path)


# --- walking, decrypting and the MAC ----------------------------------------------------


class MacHasher:
    """SHA-512 over leaf bytes in walk order (`Tree.Encrypt`/`Tree.Decrypt`)."""

    def __init__(self, *, mac_only_encrypted: bool) -> None:
        self._hash = hashlib.sha512()
        self.mac_only_encrypted = mac_only_encrypted
        if mac_only_encrypted:
            self._hash.update(MAC_ONLY_ENCRYPTED_INIT)

    def add(self, value: Value, *, encrypted: bool) -> None:
        if encrypted or not self.mac_only_encrypted:
            self._hash.update(value_bytes(value))

    def hexdigest(self) -> str:
        return self._hash.hexdigest().upper()


@dataclass(frozen=True, slots=True)
class DecryptedLeaf:
    """A leaf with its plaintext value; never printed (repr hides the value)."""

    leaf: Leaf
    value: Value | None = field(repr=False)
    encrypted: bool
    iv: bytes | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"DecryptedLeaf({self.leaf.pointer!r}, encrypted={self.encrypted})"


@dataclass(frozen=True, slots=True)
class DecryptedTree:
    """Every leaf of every document, decrypted and MAC-verified."""

    documents: tuple[Document, ...]
    metadata: Metadata
    leaves: tuple[DecryptedLeaf, ...] = field(repr=False)
    data_key: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"DecryptedTree({len(self.leaves)} leaves)"

    def iv_stash(self) -> dict[tuple[str, bytes], bytes]:
        """(aad, plaintext bytes) -> IV, so re-encrypting an unchanged value gives the same text."""
        return {
            (d.leaf.aad, value_bytes(d.value)): d.iv
            for d in self.leaves
            if d.iv is not None and d.value is not None
        }


def decrypt_tree(
    documents: Sequence[Document],
    metadata: Metadata,
    data_key: bytes,
    *,
    path: str,
    verify_mac: bool = True,
) -> DecryptedTree:
    """Decrypt every selected leaf and check the MAC, as `sops -d` does."""
    hasher = MacHasher(mac_only_encrypted=metadata.mac_only_encrypted)
    out: list[DecryptedLeaf] = []
    for document in documents:
        for leaf in leaves(document, path=path):
            raw = leaf_value(leaf, path=path)
            if raw is None:
                continue
            encrypted = metadata.selection.encrypts(leaf.path)
            if not encrypted:
                hasher.add(raw, encrypted=False)
                out.append(DecryptedLeaf(leaf, raw, False))
                continue
            if not isinstance(raw, str):
                raise located_error(
                    path,
                    leaf.node,
                    f"{leaf.pointer} should be an ENC[...] value; restore it from git",
                )
            if raw == "":
                out.append(DecryptedLeaf(leaf, "", True))
                continue
            try:
                opened = decrypt_value(raw, data_key, leaf.aad)
            except EnvelopeError as exc:
                raise located_error(
                    path,
                    leaf.node,
                    f"cannot decrypt {leaf.pointer}: {exc}; restore the file from git",
                ) from None
            hasher.add(opened.value, encrypted=True)
            out.append(DecryptedLeaf(leaf, opened.value, True, opened.iv))
    tree = DecryptedTree(tuple(documents), metadata, tuple(out), data_key)
    if verify_mac:
        check_mac(tree, hasher.hexdigest(), path=path)
    return tree


def mac_node(documents: Sequence[Document]) -> yaml.Node | None:
    """The `sops.mac` scalar of the first document (where MAC findings point)."""
    for document in documents:
        if isinstance(document.sops_value, yaml.MappingNode):
            for key, value in document.sops_value.value:
                if key.value == "mac":
                    node: yaml.Node = value
                    return node
            return document.sops_value
    return None


def check_mac(tree: DecryptedTree, computed: str, *, path: str) -> None:
    """Compare the stored MAC with the computed one; a mismatch means tampering."""
    where = mac_node(tree.documents)
    try:
        stored = decrypt_value(tree.metadata.mac, tree.data_key, tree.metadata.mac_aad).value
    except EnvelopeError as exc:
        raise located_error(
            path,
            where,
            f"MAC cannot be decrypted ({exc}); the sops block was altered, restore it from git",
        ) from None
    if (
        not isinstance(stored, str)
        or not hashlib.sha512(stored.encode()).digest()
        == hashlib.sha512(computed.encode()).digest()
    ):
        raise located_error(
            path,
            where,
            "MAC mismatch: the file was changed without re-encrypting (values, tenant id, payment "
            "types or keys moved from another file); restore it from git, or change it with "
            "`atpay edit`/`atpay set`",
        )


def compute_mac(values: Sequence[tuple[Value, bool]], *, mac_only_encrypted: bool) -> str:
    """The MAC over (plaintext, encrypted?) pairs in walk order."""
    hasher = MacHasher(mac_only_encrypted=mac_only_encrypted)
    for value, encrypted in values:
        hasher.add(value, encrypted=encrypted)
    return hasher.hexdigest()


def now_utc() -> datetime:
    """`lastmodified` is written in UTC, seconds precision, like sops."""
    return datetime.now(UTC).replace(microsecond=0)


# --- opening files: the API the validate rules and `apply` use ------------------------


def sops_block_location(documents: Sequence[Document], *, path: str) -> str:
    """`file:line:col` of the first `sops:` key, for errors about the metadata."""
    for document in documents:
        if document.sops_key is not None:
            where = Position.of(document.sops_key)
            return f"{path}:{where.line}:{where.column}"
    return path


def open_tree(text: str, *, path: str, identities: Sequence[Identity]) -> DecryptedTree:
    """Parse, unwrap the data key, decrypt every value, verify the MAC; else SecretsError."""
    documents = parse_documents(text, path=path)
    metadata = file_metadata(documents, path=path)
    if metadata is None:
        raise SecretsError(
            f"{path}: not encrypted (no sops block); run `atpay encrypt {path}` first"
        )
    data_key = unwrap_data_key(
        metadata.age, identities, path=path, where=sops_block_location(documents, path=path)
    )
    return decrypt_tree(documents, metadata, data_key, path=path)


Pointer = str
Problem = tuple[Pointer, int, int, str]
MacStatus = Literal["ok", "mismatch", "skipped", "absent"]


@dataclass(slots=True)
class KeyCheck:
    """What inspecting one file found; holds no plaintext, only comparisons made from it."""

    mac: MacStatus
    skipped_reason: str | None = None
    problems: list[Problem] = field(default_factory=list)
    mac_only_encrypted: bool = False
    _equal: dict[int, bool] = field(default_factory=dict, repr=False)
    _whitespace: dict[int, list[str]] = field(default_factory=dict, repr=False)

    def equal_keys(self, document: int) -> bool | None:
        """publicKey == privateKey after decryption; None when not decrypted."""
        return self._equal.get(document)

    def whitespace_keys(self, document: int) -> list[str]:
        """Pointers of keys whose plaintext has leading or trailing whitespace."""
        return list(self._whitespace.get(document, []))


KEY_NAMES = ("publicKey", "privateKey")
_KEYS_PATH = ("spec", "keys")


def inspect_file(text: str, *, path: str, identities: Sequence[Identity] | None) -> KeyCheck:
    """Check envelopes, metadata and (with identities) the MAC; never raises for a bad file."""
    try:
        documents = parse_documents(text, path=path)
    except SecretsError as exc:
        return KeyCheck(
            mac="absent", problems=[("", *_line_col(str(exc)), _strip_location(str(exc), path))]
        )
    check = KeyCheck(mac="absent")
    for document in documents:
        try:
            for leaf in leaves(document, path=path):
                value = typed_value(leaf.node)
                if (
                    isinstance(value, str)
                    and _LOOSE_ENVELOPE_RE.match(value)
                    and not is_envelope(value)
                ):
                    where = leaf.position
                    check.problems.append(
                        (leaf.pointer, where.line, where.column, "malformed ENC[...] value")
                    )
        except (SecretsError, UnsupportedValue) as exc:
            check.problems.append(("", 1, 1, _strip_location(str(exc), path)))
    try:
        metadata = file_metadata(documents, path=path)
    except SecretsError as exc:
        line, column = _line_col(str(exc))
        check.problems.append(("/sops", line, column, _strip_location(str(exc), path)))
        return check
    if metadata is None:
        return check
    check.mac_only_encrypted = metadata.mac_only_encrypted
    if not identities:
        check.mac = "skipped"
        check.skipped_reason = "no age identity available (set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY)"
        return check
    try:
        data_key = unwrap_data_key(
            metadata.age, identities, path=path, where=sops_block_location(documents, path=path)
        )
    except SecretsError as exc:
        check.mac = "skipped"
        check.skipped_reason = _strip_location(str(exc), path)
        return check
    try:
        tree = decrypt_tree(documents, metadata, data_key, path=path)
    except SecretsError as exc:
        check.mac = "mismatch"
        line, column = _line_col(str(exc))
        pointer = (
            "/sops/mac" if "MAC" in str(exc) else _pointer_at(documents, line, column, path=path)
        )
        check.problems.append((pointer, line, column, _strip_location(str(exc), path)))
        return check
    check.mac = "ok"
    for number, keys in _keys_by_document(tree).items():
        if all(name in keys for name in KEY_NAMES):
            check._equal[number] = keys["publicKey"][1] == keys["privateKey"][1]
        check._whitespace[number] = [
            pointer for pointer, plain in keys.values() if plain != plain.strip()
        ]
    return check


def decrypt_keys(
    text: str, *, path: str, identities: Sequence[Identity]
) -> dict[int, dict[str, str]]:
    """document -> {"publicKey": plaintext, "privateKey": plaintext}, MAC verified (for apply)."""
    tree = open_tree(text, path=path, identities=identities)
    return {
        doc: {name: plain for name, (_, plain) in keys.items()}
        for doc, keys in _keys_by_document(tree).items()
    }


def _keys_by_document(tree: DecryptedTree) -> dict[int, dict[str, tuple[str, str]]]:
    found: dict[int, dict[str, tuple[str, str]]] = {}
    for item in tree.leaves:
        path = item.leaf.path
        if (
            len(path) == 3
            and path[:2] == _KEYS_PATH
            and path[2] in KEY_NAMES
            and item.value is not None
        ):
            plain = item.value if isinstance(item.value, str) else value_bytes(item.value).decode()
            found.setdefault(item.leaf.document, {})[path[2]] = (item.leaf.pointer, plain)
    return found


_LOCATION_RE = re.compile(r"\A.*?:(\d+):(\d+): ")


def _line_col(message: str) -> tuple[int, int]:
    match = _LOCATION_RE.match(message)
    return (int(match[1]), int(match[2])) if match else (1, 1)


def _strip_location(message: str, path: str) -> str:
    if message.startswith(path + ":"):
        rest = message[len(path) + 1 :]
        return re.sub(r"\A\d+:\d+: ", "", rest).lstrip()
    return message


def _pointer_at(documents: Sequence[Document], line: int, column: int, *, path: str) -> str:
    for document in documents:
        for leaf in leaves(document, path=path):
            where = leaf.position
            if (where.line, where.column) == (line, column):
                return leaf.pointer
    return ""


__all__ = [
    "ENVELOPE_RE",
    "KeyCheck",
    "decrypt_keys",
    "inspect_file",
    "is_envelope",
    "load_identities",
]
