"""Encrypt and decrypt in place: splice at the scalars' source positions.

Only the selected values and the `sops:` block change; comments, key order,
quoting, blank lines and everything else stay byte for byte, so a pull request
diff shows what changed and nothing else. Positions come from PyYAML's composed
nodes (`start_mark.index`/`end_mark.index`, character offsets). Every operation
is text in, text out; the CLI does the I/O.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import yaml

from atpay_config.errors import SecretsError
from atpay_config.secrets.identities import Identity
from atpay_config.secrets.keysources import DATA_KEY_BYTES, KEY_SOURCES, WrappedDataKey
from atpay_config.secrets.sops import (
    DEFAULT_SELECTION,
    SOPS_VERSION,
    DecryptedTree,
    Document,
    MacHasher,
    Metadata,
    Selection,
    StoredMetadata,
    Timestamp,
    encrypt_value,
    format_rfc3339,
    leaf_value,
    leaves,
    located_error,
    now_utc,
    open_tree,
    parse_documents,
    resolve_plain,
    value_bytes,
)


@dataclass(frozen=True, slots=True)
class Splice:
    """Replace text[start:end] with `text`."""

    start: int
    end: int
    text: str


def apply_splices(text: str, splices: Iterable[Splice]) -> str:
    """Apply non-overlapping splices (any order)."""
    out = []
    cursor = 0
    for splice in sorted(splices, key=lambda s: (s.start, s.end)):
        out.append(text[cursor : splice.start])
        out.append(splice.text)
        cursor = splice.end
    out.append(text[cursor:])
    return "".join(out)


# --- rendering scalars ------------------------------------------------------------------

_PLAIN_SAFE = re.compile(r"[A-Za-z_/][A-Za-z0-9_./@+=-]*(?: [A-Za-z0-9_./@+=-]+)*\Z")
_YAML11_WORDS = frozenset({"y", "n", "yes", "no", "on", "off"})
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def double_quoted(text: str) -> str:
    """A YAML double-quoted scalar that reads back as exactly `text`."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif (
            code < 0x20
            or code == 0x7F
            or char in "\x85\u2028\u2029\ufeff"
            or 0xD800 <= code <= 0xDFFF
        ):
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def render_value(value: object) -> str:
    """YAML for a plaintext value that sops and PyYAML both read back with the same type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return ".nan"
        if value in (float("inf"), float("-inf")):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, Timestamp):
        return value.text
    if isinstance(value, str):
        if (
            _PLAIN_SAFE.match(value)
            and resolve_plain(value) == value
            and value.lower() not in _YAML11_WORDS
        ):
            return value
        return double_quoted(value)
    return json.dumps(value, ensure_ascii=True)  # lists and mappings from `set`, as flow YAML


def _scalar_splice(text: str, node: yaml.Node, replacement: str, *, in_flow: bool) -> Splice:
    start, end = node.start_mark.index, node.end_mark.index
    if in_flow and not _PLAIN_SAFE.match(replacement):
        replacement = (
            replacement if replacement.startswith(('"', "{", "[")) else double_quoted(replacement)
        )
    if getattr(node, "style", None) in ("|", ">"):
        original = text[start:end]
        replacement += original[len(original.rstrip()) :]  # keep the block's line breaks
    return Splice(start, end, replacement)


# --- encrypting --------------------------------------------------------------------------


def encrypt_text(
    text: str,
    *,
    path: str,
    recipients: Sequence[str] = (),
    wrapped: Sequence[WrappedDataKey] | None = None,
    selection: Selection = DEFAULT_SELECTION,
    mac_only_encrypted: bool = False,
    data_key: bytes | None = None,
    iv_stash: Mapping[tuple[str, bytes], bytes] | None = None,
    now: datetime | None = None,
) -> str:
    """Encrypt the selected values of a plaintext file in place and append the `sops:` block.

    `wrapped` reuses existing copies of `data_key` (edit/set keep the key and recipients);
    otherwise a new data key is wrapped for each of `recipients`.
    """
    documents = parse_documents(text, path=path)
    for document in documents:
        if document.sops_key is not None:
            raise located_error(
                path,
                document.sops_key,
                "already encrypted (has a sops block); "
                "use `atpay edit`, `atpay set` or `atpay rotate`",
            )
        _check_appendable(document, path=path)
    key = data_key if data_key is not None else os.urandom(DATA_KEY_BYTES)
    if len(key) != DATA_KEY_BYTES:
        raise ValueError("data key must be 32 bytes")
    stash = iv_stash or {}
    hasher = MacHasher(mac_only_encrypted=mac_only_encrypted)
    splices: list[Splice] = []
    selected_at: dict[int, bool] = {}
    for document in documents:
        for leaf in leaves(document, path=path):
            value = leaf_value(leaf, path=path)
            if value is None:
                continue
            encrypted = selection.encrypts(leaf.path)
            node_id = id(leaf.node)
            if node_id in selected_at and (selected_at[node_id] or encrypted):
                raise located_error(
                    path,
                    leaf.node,
                    f"{leaf.pointer} repeats an encrypted value through an alias; write it out",
                )
            selected_at[node_id] = encrypted
            hasher.add(value, encrypted=encrypted)
            if not encrypted or value == "":
                continue
            iv = stash.get((leaf.aad, value_bytes(value)))
            envelope = encrypt_value(value, key, leaf.aad, iv=iv)
            splices.append(_scalar_splice(text, leaf.node, envelope, in_flow=leaf.in_flow))
    moment = now if now is not None else now_utc()
    if wrapped is None:
        if not recipients:
            raise SecretsError(
                f"{path}: no age recipients; pass --age or add a .sops.yaml creation rule"
            )
        source = KEY_SOURCES["age"]
        wrapped = [source.wrap(key, recipient) for recipient in dict.fromkeys(recipients)]
    metadata = Metadata(
        age=tuple(wrapped),
        last_modified=moment,
        mac=encrypt_value(hasher.hexdigest(), key, format_rfc3339(moment)),
        selection=selection,
        mac_only_encrypted=mac_only_encrypted,
        version=SOPS_VERSION,
    )
    block = StoredMetadata.from_internal(metadata).to_yaml()
    for document in documents:
        position = document.root.end_mark.index
        lead = "" if position == 0 or text[position - 1] == "\n" else "\n"
        splices.append(Splice(position, position, lead + block))
    return apply_splices(text, splices)


def _check_appendable(document: Document, *, path: str) -> None:
    root = document.root
    if root.flow_style:
        raise located_error(
            path,
            root,
            "a top-level {...} mapping cannot take a sops block; write it in block style",
        )
    if root.start_mark.column != 0:
        raise located_error(
            path, root, "the top-level mapping is indented; start its keys in column 1"
        )


# --- decrypting ----------------------------------------------------------------------------


def plaintext_text(text: str, tree: DecryptedTree) -> str:
    """The file with every encrypted value replaced by its plaintext and no `sops:` block."""
    splices: list[Splice] = []
    for item in tree.leaves:
        if item.encrypted and item.value not in (None, ""):
            splices.append(
                _scalar_splice(
                    text, item.leaf.node, render_value(item.value), in_flow=item.leaf.in_flow
                )
            )
    for document in tree.documents:
        if document.sops_key is not None and document.sops_value is not None:
            splices.append(
                Splice(document.sops_key.start_mark.index, document.sops_value.end_mark.index, "")
            )
    return apply_splices(text, splices)


def decrypt_text(text: str, *, path: str, identities: Sequence[Identity]) -> str:
    """Decrypt a file (MAC verified) to its plaintext YAML."""
    return plaintext_text(text, open_tree(text, path=path, identities=identities))


# --- re-encrypting: rotate, edit, set --------------------------------------------------------


def rotate_text(
    text: str,
    *,
    path: str,
    identities: Sequence[Identity],
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    now: datetime | None = None,
) -> str:
    """A new data key for the file, wrapped for the recipients minus `remove` plus `add`."""
    tree = open_tree(text, path=path, identities=identities)
    metadata = tree.metadata
    _refuse_other_key_types(metadata, path=path)
    current = list(metadata.recipients)
    for recipient in remove:
        if recipient not in current:
            raise SecretsError(
                f"{path}: {recipient[:20]}… is not a recipient of this file; nothing to remove"
            )
    recipients = [r for r in current if r not in remove] + [r for r in add if r not in current]
    if not recipients:
        raise SecretsError(
            f"{path}: removing every recipient would make the file undecryptable; add one first"
        )
    return encrypt_text(
        plaintext_text(text, tree),
        path=path,
        recipients=recipients,
        selection=metadata.selection,
        mac_only_encrypted=metadata.mac_only_encrypted,
        now=now,
    )


def _refuse_other_key_types(metadata: Metadata, *, path: str) -> None:
    if metadata.other_key_types:
        raise SecretsError(
            f"{path}: the file also has {', '.join(metadata.other_key_types)} keys "
            "that atpay cannot "
            "re-wrap; change it with sops"
        )


def reencrypt_text(
    plain: str, tree: DecryptedTree, *, path: str, now: datetime | None = None
) -> str:
    """Encrypt edited plaintext with the same data key and recipients (sops edit)."""
    _refuse_other_key_types(tree.metadata, path=path)
    return encrypt_text(
        plain,
        path=path,
        wrapped=tree.metadata.age,
        selection=tree.metadata.selection,
        mac_only_encrypted=tree.metadata.mac_only_encrypted,
        data_key=tree.data_key,
        iv_stash=tree.iv_stash(),
        now=now,
    )


_INDEX_RE = re.compile(r'\[\s*(?:"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|(-?[0-9]+))\s*\]')


def parse_index_path(expression: str) -> list[str | int]:
    """sops's `set` path syntax: `["spec"]["keys"]["privateKey"]`, `[0]` for list items."""
    parts: list[str | int] = []
    position = 0
    stripped = expression.strip()
    while position < len(stripped):
        match = _INDEX_RE.match(stripped, position)
        if match is None:
            raise SecretsError(
                f'path {expression[:60]!r} is not like \'["spec"]["keys"]["privateKey"]\''
            )
        if match[1] is not None:
            parts.append(json.loads(f'"{match[1]}"'))
        elif match[2] is not None:
            parts.append(match[2])
        else:
            parts.append(int(match[3]))
        position = match.end()
    if not parts:
        raise SecretsError('empty path; write it like \'["spec"]["keys"]["privateKey"]\'')
    return parts


def set_text(
    text: str,
    *,
    path: str,
    identities: Sequence[Identity],
    index_path: str,
    value_json: str,
    now: datetime | None = None,
) -> str:
    """Set one value (JSON, like `sops set`) in the first document and re-encrypt."""
    keys = parse_index_path(index_path)
    try:
        value = json.loads(value_json)
    except json.JSONDecodeError:
        raise SecretsError(
            f"{path}: the value is not JSON; quote strings, e.g. '\"abc\"'"
        ) from None
    tree = open_tree(text, path=path, identities=identities)
    plain = plaintext_text(text, tree)
    updated = set_in_text(plain, keys, value, path=path)
    return reencrypt_text(updated, tree, path=path, now=now)


def set_in_text(text: str, keys: Sequence[str | int], value: object, *, path: str) -> str:
    """Replace (or add, as the last key of an existing block mapping) one value."""
    document = parse_documents(text, path=path)[0]
    node: yaml.Node = document.root
    rendered = render_value(value)
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        if isinstance(key, str) and isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == key), None)
            if match is None:
                if not last:
                    raise SecretsError(f"{path}: {key!r} does not exist; set the parent first")
                return _add_key(text, node, key, rendered, path=path)
            node = match
        elif isinstance(key, int) and isinstance(node, yaml.SequenceNode):
            if not -len(node.value) <= key < len(node.value):
                raise SecretsError(f"{path}: index [{key}] is out of range")
            node = node.value[key]
        else:
            raise SecretsError(f"{path}: [{key!r}] does not match the file's structure")
    in_flow = bool(getattr(node, "flow_style", False))
    return apply_splices(text, [_scalar_splice(text, node, rendered, in_flow=in_flow)])


def _add_key(text: str, mapping: yaml.MappingNode, key: str, rendered: str, *, path: str) -> str:
    if mapping.flow_style or not mapping.value:
        raise located_error(
            path, mapping, f"cannot add {key!r} to a flow or empty mapping; edit the file"
        )
    indent = mapping.value[0][0].start_mark.column
    end = mapping.end_mark.index
    line_start = text.rfind("\n", 0, end) + 1
    position = line_start if text[line_start:end].strip() == "" else end
    lead = "" if position == 0 or text[position - 1] == "\n" else "\n"
    line = f"{lead}{' ' * indent}{render_value(key)}: {rendered}\n"
    return text[:position] + line + text[position:]
