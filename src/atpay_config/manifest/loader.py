"""YAML loading that keeps where every value came from and never lets bad input escape.

PyYAML's loaders accept duplicate keys silently, resolve scalars by YAML 1.1
(`yes` is a bool) while sops resolves them by YAML 1.2, and expand aliases
without limit. So we build the data ourselves from libyaml's event stream (the C
parser when present): one pass, an explicit stack (no recursion, so no depth
crash), YAML 1.2 core typing, duplicate keys and 1.1-only scalars reported as
findings, and hard limits on size, depth and alias expansion. Every problem
becomes a `Finding` with rule `yaml` and a 1-based line and column.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from atpay_config.rules.finding import Finding

try:  # libyaml's C parser when present: several times faster
    from yaml import CSafeLoader as _EventLoader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _EventLoader  # type: ignore[assignment]

MAX_FILE_BYTES = 1024 * 1024
"""Manifests are a few hundred bytes; anything past 1 MiB is a mistake or an attack."""
MAX_DEPTH = 64
"""Nesting deeper than this is refused; the manifest needs 4 levels."""
MAX_ALIASES = 100
"""Alias references per document."""
MAX_NODES = 100_000
"""Values per document after alias expansion: stops "billion laughs" early."""

YAML_RULE = "yaml"

_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUES = frozenset({"true", "True", "TRUE"})
_FALSES = frozenset({"false", "False", "FALSE"})
_INT_RE = re.compile(r"[-+]?[0-9]+\Z")
_OCT_RE = re.compile(r"0o[0-7]+\Z")
_HEX_RE = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT_RE = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_INF_RE = re.compile(r"[-+]?\.(?:inf|Inf|INF)\Z")
_NAN_RE = re.compile(r"\.(?:nan|NaN|NAN)\Z")

# Plain scalars that YAML 1.1 (PyYAML, old tooling) and YAML 1.2 (sops's yaml.v3)
# read as different types. Quoting them removes the ambiguity.
_AMBIGUOUS_STARTS = frozenset("yYnNoO0123456789+-")
_YAML11_BOOL_RE = re.compile(r"(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)\Z")
_YAML11_NUMBER_RE = re.compile(
    r"[-+]?(?:0[0-7_]+|0b[01_]+|[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?"
    r"|[0-9][0-9_]*_[0-9_]*(?:\.[0-9_]*)?)\Z"
)


@dataclass(slots=True)
class SourceDocument:
    """One YAML document: its data and the 1-based position of every value and key."""

    file: str
    index: int
    data: Any
    line: int
    column: int
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[str, tuple[int, int]] = field(default_factory=dict)

    def locate(self, pointer: str, *, key: bool = False) -> tuple[int, int]:
        """Position of `pointer`, or of its nearest ancestor that exists."""
        table = self.key_positions if key else self.positions
        while True:
            if pointer in table:
                return table[pointer]
            if key and pointer in self.positions:
                return self.positions[pointer]
            if not pointer:
                return (self.line, self.column)
            pointer = pointer.rsplit("/", 1)[0]

    @property
    def kind(self) -> str | None:
        return self.data.get("kind") if isinstance(self.data, dict) else None


@dataclass(slots=True)
class SourceFile:
    """A file's documents and the problems found reading it."""

    path: str
    text: str | None
    documents: list[SourceDocument]
    findings: list[Finding]


def escape_pointer_token(token: str) -> str:
    if "~" not in token and "/" not in token:
        return token
    return token.replace("~", "~0").replace("/", "~1")


def _finding(
    path: str, message: str, line: int, column: int, *, document: int, pointer: str = ""
) -> Finding:
    return Finding(
        rule=YAML_RULE,
        level="error",
        message=message,
        file=path,
        line=line,
        column=column,
        pointer=pointer,
        document=document,
    )


def _resolve_plain(value: str) -> Any:
    """Type a plain scalar as YAML 1.2's core schema does (and sops's yaml.v3)."""
    if value in _NULLS:
        return None
    if value in _TRUES:
        return True
    if value in _FALSES:
        return False
    first = value[0]
    if first.isdigit() or first in "-+.":
        if _INT_RE.match(value):
            return int(value)
        if _OCT_RE.match(value):
            return int(value[2:], 8)
        if _HEX_RE.match(value):
            return int(value[2:], 16)
        if _FLOAT_RE.match(value):
            return float(value)
        if _INF_RE.match(value):
            return -math.inf if value[0] == "-" else math.inf
        if _NAN_RE.match(value):
            return math.nan
    return value


def yaml11_ambiguity(value: str) -> str | None:
    """Why a plain scalar reads differently under YAML 1.1 and 1.2, or None."""
    if _YAML11_BOOL_RE.match(value):
        return (
            f"'{value}' is a boolean in YAML 1.1 but a string in YAML 1.2; write true/false "
            f'for a boolean or quote it ("{value}") for a string'
        )
    if _OCT_RE.match(value) or _YAML11_NUMBER_RE.match(value):
        return (
            f"'{value}' is a number whose value differs between YAML 1.1 and YAML 1.2; quote it "
            f'("{value}") or write a plain decimal'
        )
    return None


_STR_TAGS = {"tag:yaml.org,2002:str"}
_KNOWN_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
}


class _Refused(Exception):
    """A limit or structural rule broke: stop this document, report once."""

    def __init__(self, message: str, line: int, column: int, pointer: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.pointer = pointer


def _size_of(value: Any) -> int:
    """Values inside `value`, counting itself: what an alias to it expands to."""
    count = 0
    stack = [value]
    while stack:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        if count > MAX_NODES:
            break
    return count


class _DocumentBuilder:
    """Turns one document's events into data plus positions, enforcing the limits."""

    def __init__(self, path: str, index: int, findings: list[Finding]) -> None:
        self.path = path
        self.index = index
        self.findings = findings
        self.positions: dict[str, tuple[int, int]] = {}
        self.key_positions: dict[str, tuple[int, int]] = {}
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.nodes = 0
        self.aliases = 0
        # stack frames: [container, pointer, pending_key, anchor, keys_seen]
        self.stack: list[list[Any]] = []
        self.root: Any = None
        self.done = False

    def _pointer_for_child(self) -> str | None:
        """The pointer of the next value, or None when it is a mapping key."""
        if not self.stack:
            return ""
        frame = self.stack[-1]
        container, pointer = frame[0], frame[1]
        if isinstance(container, list):
            return f"{pointer}/{len(container)}"
        if frame[2] is _NO_KEY:
            return None
        return f"{pointer}/{escape_pointer_token(str(frame[2]))}"

    def _attach(
        self, value: Any, line: int, column: int, pointer: str | None, anchor: str | None
    ) -> None:
        if not self.stack:
            self.root = value
            self.done = True
            return
        frame = self.stack[-1]
        container = frame[0]
        if isinstance(container, list):
            container.append(value)
        elif pointer is None:  # a mapping key
            if isinstance(value, (dict, list)):
                raise _Refused(
                    "mapping keys must be plain strings, not collections; rewrite the key",
                    line,
                    column,
                    frame[1],
                )
            key = value if isinstance(value, str) else _key_text(value)
            if not isinstance(value, str):
                raise _Refused(
                    f'mapping key {key!r} is not a string; quote it ("{key}")',
                    line,
                    column,
                    frame[1],
                )
            key_pointer = f"{frame[1]}/{escape_pointer_token(key)}"
            if key in container:
                first = self.key_positions.get(key_pointer, (line, column))
                self.findings.append(
                    _finding(
                        self.path,
                        f"duplicate key '{key}' (first defined at line {first[0]}); "
                        "remove one of them",
                        line,
                        column,
                        document=self.index,
                        pointer=key_pointer,
                    )
                )
            else:
                self.key_positions[key_pointer] = (line, column)
            frame[2] = key
            return
        else:
            container[frame[2]] = value
            frame[2] = _NO_KEY

    def _count(self, amount: int, line: int, column: int) -> None:
        self.nodes += amount
        if self.nodes > MAX_NODES:
            raise _Refused(
                f"document expands to more than {MAX_NODES} values (alias bomb?); "
                "remove the aliases or split the document",
                line,
                column,
            )

    def feed(self, event: yaml.Event) -> None:
        mark = event.start_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        if type(event) is yaml.ScalarEvent:
            self.nodes += 1
            if self.nodes > MAX_NODES:
                self._count(0, line, column)
            frame = self.stack[-1] if self.stack else None
            if (
                frame is not None
                and frame[2] is _NO_KEY
                and type(frame[0]) is dict
                and not event.style
                and event.implicit[0]
                and not event.tag
                and not event.anchor
            ):
                # The hot path: a plain key of a mapping (most scalars are keys or values).
                key = event.value
                if not key or _resolve_plain(key).__class__ is not str:
                    self._attach(self._scalar(event, line, column, None), line, column, None, None)
                    return
                key_pointer = f"{frame[1]}/{escape_pointer_token(key)}"
                if key in frame[0]:
                    self._attach(key, line, column, None, None)
                    return
                self.key_positions[key_pointer] = (line, column)
                frame[2] = key
                return
            pointer = self._pointer_for_child()
            value = self._scalar(event, line, column, pointer)
            if pointer is not None:
                self.positions[pointer] = (line, column)
            if event.anchor:
                self.anchors[event.anchor] = (value, 1)
            self._attach(value, line, column, pointer, event.anchor)
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            self._count(1, line, column)
            pointer = self._pointer_for_child()
            if pointer is None:
                raise _Refused(
                    "mapping keys must be plain strings, not collections; rewrite the key",
                    line,
                    column,
                )
            if len(self.stack) >= MAX_DEPTH:
                raise _Refused(
                    f"nesting deeper than {MAX_DEPTH} levels; flatten the document",
                    line,
                    column,
                    pointer,
                )
            tag = event.tag
            if tag and tag not in _KNOWN_TAGS:
                raise _Refused(f"unsupported tag {tag!r}; remove it", line, column, pointer)
            container: dict[str, Any] | list[Any] = (
                {} if isinstance(event, yaml.MappingStartEvent) else []
            )
            # A collection under a key is reported at its key: `paymentTypes:`, not its first child.
            self.positions[pointer] = self.key_positions.get(pointer, (line, column))
            self.stack.append([container, pointer, _NO_KEY, event.anchor, line, column])
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            frame = self.stack.pop()
            value, pointer, _, anchor, start_line, start_column = frame
            if anchor:
                self.anchors[anchor] = (value, _size_of(value))
            self._attach(value, start_line, start_column, pointer, anchor)
        elif isinstance(event, yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise _Refused(
                    f"more than {MAX_ALIASES} alias references; remove the aliases",
                    line,
                    column,
                )
            anchor = event.anchor
            if anchor not in self.anchors:
                open_anchors = {frame[3] for frame in self.stack}
                what = "refers to itself" if anchor in open_anchors else "is not defined"
                raise _Refused(f"alias *{anchor} {what}; remove it", line, column)
            value, size = self.anchors[anchor]
            self._count(size, line, column)
            pointer = self._pointer_for_child()
            if pointer is not None:
                self.positions[pointer] = (line, column)
            # Share the value: the node budget above already charged its expansion.
            self._attach(value, line, column, pointer, None)

    def _scalar(self, event: yaml.ScalarEvent, line: int, column: int, pointer: str | None) -> Any:
        value = event.value
        tag = event.tag
        plain = event.implicit[0] and not event.style
        if tag and tag != "!":
            if tag not in _KNOWN_TAGS:
                raise _Refused(f"unsupported tag {tag!r}; remove it", line, column, pointer or "")
            if tag in _STR_TAGS:
                return value
            resolved = _resolve_plain(value)
            expected = tag.rsplit(":", 1)[1]
            kinds: dict[str, type | tuple[type, ...]] = {
                "int": int,
                "float": (float, int),
                "bool": bool,
                "null": type(None),
            }
            wanted = kinds.get(expected)
            if wanted is not None and (
                not isinstance(resolved, wanted)
                or (expected == "int" and isinstance(resolved, bool))
            ):
                raise _Refused(
                    f"{value!r} is not a valid !!{expected}", line, column, pointer or ""
                )
            return float(resolved) if expected == "float" else resolved
        if not plain:
            return value
        ambiguity = yaml11_ambiguity(value) if value[:1] in _AMBIGUOUS_STARTS else None
        if ambiguity is not None:
            self.findings.append(
                _finding(
                    self.path,
                    f"{ambiguity}, so every tool (and the sops MAC) reads the same value",
                    line,
                    column,
                    document=self.index,
                    pointer=pointer or "",
                )
            )
        return _resolve_plain(value)


def _key_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_NO_KEY = object()
_FRAMING_EVENTS = frozenset(
    {yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentStartEvent, yaml.DocumentEndEvent}
)


def _line_column_of_offset(data: bytes, offset: int) -> tuple[int, int]:
    before = data[:offset]
    line = before.count(b"\n") + 1
    start = before.rfind(b"\n") + 1
    return line, len(before[start:].decode("utf-8", errors="replace")) + 1


def decode_source(data: bytes, path: str) -> tuple[str | None, Finding | None]:
    """UTF-8 text of a file (BOM dropped), or a finding at the first bad byte."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None, _finding(path, "file is UTF-16; save it as UTF-8", 1, 1, document=0)
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        line, column = _line_column_of_offset(data, exc.start)
        return None, _finding(
            path,
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8",
            line,
            column,
            document=0,
        )


def load_text(text: str, path: str) -> SourceFile:
    """Parse YAML text into located documents; every problem becomes a finding."""
    findings: list[Finding] = []
    documents: list[SourceDocument] = []
    builder: _DocumentBuilder | None = None
    index = -1
    parser = _EventLoader(text)
    get_event = parser.get_event
    feed = None  # the current document's builder.feed, None between or after a refusal
    try:
        while (event := get_event()) is not None:
            kind = event.__class__
            if kind not in _FRAMING_EVENTS:  # the hot path: a node inside a document
                if feed is None:
                    continue
                try:
                    feed(event)
                except _Refused as refused:
                    findings.append(
                        _finding(
                            path,
                            refused.message,
                            refused.line,
                            refused.column,
                            document=index,
                            pointer=refused.pointer,
                        )
                    )
                    feed = None
            elif kind is yaml.DocumentStartEvent:
                index += 1
                builder = _DocumentBuilder(path, index, findings)
                feed = builder.feed
                mark = event.start_mark
                start = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
            elif kind is yaml.DocumentEndEvent:
                if builder is not None and feed is not None:
                    documents.append(
                        SourceDocument(
                            file=path,
                            index=index,
                            data=builder.root,
                            line=start[0],
                            column=start[1],
                            positions=builder.positions,
                            key_positions=builder.key_positions,
                        )
                    )
                builder = None
                feed = None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        findings.append(
            _finding(
                path,
                f"YAML syntax error: {problem}{context}; fix the YAML at this position",
                line,
                column,
                document=max(index, 0),
            )
        )
    except yaml.YAMLError as exc:  # reader errors without marks (e.g. control characters)
        findings.append(
            _finding(path, f"YAML error: {_one_line(str(exc))}", 1, 1, document=max(index, 0))
        )
    finally:
        parser.dispose()
    if not documents and not findings:
        findings.append(
            _finding(
                path, "file holds no YAML document; add a manifest or delete it", 1, 1, document=0
            )
        )
    return SourceFile(path=path, text=text, documents=documents, findings=findings)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def load_file(path: str | os.PathLike[str], *, display: str | None = None) -> SourceFile:
    """Read and parse one file, refusing oversized or non-UTF-8 input with a finding."""
    shown = display if display is not None else str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        message = f"cannot read file: {exc.strerror or exc}"
        return SourceFile(shown, None, [], [_finding(shown, message, 1, 1, document=0)])
    if len(data) > MAX_FILE_BYTES:
        message = (
            f"file is larger than {MAX_FILE_BYTES // 1024} KiB; manifests are small — split it"
        )
        return SourceFile(shown, None, [], [_finding(shown, message, 1, 1, document=0)])
    text, problem = decode_source(data, shown)
    if text is None:
        assert problem is not None
        return SourceFile(shown, None, [], [problem])
    return load_text(text, shown)


def iter_manifest_paths(paths: list[str]) -> list[tuple[Path, str]]:
    """Files named, and `*.yaml`/`*.yml` below named directories (sorted, hidden skipped).

    Returns (path, display path) pairs; raises FileNotFoundError for a missing path.
    """
    found: list[tuple[Path, str]] = []
    for raw in paths:
        root = Path(raw)
        if root.is_dir():
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if name.startswith(".") or not name.endswith((".yaml", ".yml")):
                        continue
                    full = Path(dirpath) / name
                    found.append((full, full.as_posix()))
        elif root.exists():
            found.append((root, root.as_posix()))
        else:
            raise FileNotFoundError(raw)
    return found
