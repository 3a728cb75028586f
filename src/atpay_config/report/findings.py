"""Renderers for validation findings: one list of `Finding`, five formats (STYLE 1, 2).

Every renderer is a pure function `ValidationResult -> str` listed in `REPORTERS`,
which the CLI's `--format` choice reads. Output carries no trailing newline
(`click.echo` adds one). Waived findings are never dropped: each format shows
them, marked with the waiver's reason, and none of them counts as a failure.

Hostile content (control characters, markup, quotes, lone surrogates from
undecodable file names) is escaped the way each format requires, so a message
can neither forge a line of text output, a GitHub workflow command, nor break
the XML or JSON around it.
"""

from __future__ import annotations

import hashlib
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from atpay_config import __version__
from atpay_config.rules.finding import LEVELS, Finding, Level, RuleInfo, Summary

INFORMATION_URI = "https://github.com/atpay-config/atpay-config"
SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
# GitHub code scanning keys alerts on this; bump the suffix if the hash inputs change.
FINGERPRINT_KEY = "atpayFinding/v1"


@dataclass(frozen=True)
class ValidationResult:
    """Everything a renderer needs: the findings and what was checked."""

    findings: list[Finding]
    summary: Summary
    rules: Mapping[str, RuleInfo]
    files: list[str]
    # (file, document index, tenant or None) for every document checked: JUnit
    # needs the documents that passed too.
    documents: list[tuple[str, int, str | None]]
    # `validate --strict`: warnings fail JUnit cases as they fail the exit code.
    strict: bool = False


Reporter = Callable[[ValidationResult], str]


# --- escaping shared by the line-oriented formats --------------------------------

# C0/C1 controls, DEL, lone surrogates, the Unicode line/paragraph separators and
# the bidi overrides ("Trojan Source").
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _visible(text: str) -> str:
    """One line of plain text: controls shown as escapes, never interpreted."""
    return _UNPRINTABLE.sub(_visible_char, text)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _sorted(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=Finding.sort_key)


def _position(finding: Finding) -> str:
    return f"{finding.file}:{finding.line}:{finding.column}"


# --- text ------------------------------------------------------------------------


def _text_line(finding: Finding) -> str:
    line = f"{_position(finding)}: [{finding.level}] {finding.message} ({finding.rule})"
    if finding.waived_by is not None:
        line += f" [waived: {finding.waived_by}]"
    return _visible(line)


def summary_line(summary: Summary) -> str:
    """`3 files, 4 documents: 1 error, 2 warnings, 0 infos, 1 waived`."""
    return (
        f"{_plural(summary.files, 'file')}, {_plural(summary.documents, 'document')}: "
        f"{_plural(summary.errors, 'error')}, {_plural(summary.warnings, 'warning')}, "
        f"{_plural(summary.infos, 'info')}, {summary.waived} waived"
    )


def render_text(result: ValidationResult) -> str:
    """Findings grouped by file (header, then one parsable line each), waived ones
    in their own section, and the summary line last."""
    blocks: list[str] = []
    active = _sorted(f for f in result.findings if f.waived_by is None)
    waived = _sorted(f for f in result.findings if f.waived_by is not None)
    current: str | None = None
    lines: list[str] = []
    for finding in active:
        if finding.file != current:
            if lines:
                blocks.append("\n".join(lines))
            current = finding.file
            lines = [_visible(finding.file)]
        lines.append(_text_line(finding))
    if lines:
        blocks.append("\n".join(lines))
    if waived:
        blocks.append("\n".join([f"waived ({len(waived)}):", *map(_text_line, waived)]))
    blocks.append(summary_line(result.summary))
    return "\n\n".join(blocks)


# --- json (SPEC section 9) -------------------------------------------------------


def render_json(result: ValidationResult) -> str:
    """SPEC section 9: `{"version": 1, "findings": [...], "summary": {...}}`.

    Findings are in file/document/position order; each also carries `docs`, and a
    waived one a `waived` key with the waiver's reason (it is still listed, and
    counted under `summary.waived` rather than its level). ASCII-only output, so
    an undecodable file name cannot make the write itself fail.
    """
    document = {
        "version": 1,
        "findings": [f.to_json() for f in _sorted(result.findings)],
        "summary": result.summary.to_json(),
    }
    return json.dumps(document, indent=2)


# --- sarif 2.1.0 -----------------------------------------------------------------

_SARIF_LEVEL: dict[Level, str] = {"error": "error", "warning": "warning", "info": "note"}


def _artifact_location(file: str) -> dict[str, str]:
    """A URI reference for a path: relative to %SRCROOT%, or file:// when absolute."""
    path = file.replace("\\", "/")
    # surrogateescape: an undecodable name becomes its original bytes, percent-encoded.
    if path.startswith("/"):
        return {"uri": "file://" + quote(path, safe="/", errors="surrogateescape")}
    while path.startswith("./"):
        path = path[2:]
    return {
        "uri": quote(path, safe="/", errors="surrogateescape"),
        "uriBaseId": "%SRCROOT%",
    }


def fingerprint(finding: Finding) -> str:
    """Stable across edits that only move lines: rule, file, pointer and tenant.

    Without a tenant the document index stands in, so two tenant-less documents
    in one file do not collapse into one alert.
    """
    owner = finding.tenant if finding.tenant is not None else f"#{finding.document}"
    parts = (finding.rule, finding.file, finding.pointer, owner)
    data = "\0".join(parts).encode("utf-8", "surrogateescape")
    return hashlib.sha256(data).hexdigest()[:32]


def _sarif_rule(info: RuleInfo) -> dict[str, object]:
    title = info.title or info.id
    descriptor: dict[str, object] = {
        "id": info.id,
        "shortDescription": {"text": title},
        "fullDescription": {"text": info.description or title},
        "defaultConfiguration": {"level": _SARIF_LEVEL[info.level]},
    }
    if info.docs is not None:
        descriptor["helpUri"] = info.docs
        descriptor["help"] = {"text": f"{info.description or title}\n\nSee {info.docs}"}
    if info.fact is not None:
        descriptor["properties"] = {"fact": info.fact}
    return descriptor


def _sarif_result(finding: Finding, index: int) -> dict[str, object]:
    properties: dict[str, object] = {"pointer": finding.pointer, "document": finding.document}
    if finding.fact is not None:
        properties["fact"] = finding.fact
    if finding.tenant is not None:
        properties["tenant"] = finding.tenant
    out: dict[str, object] = {
        "ruleId": finding.rule,
        "ruleIndex": index,
        "level": _SARIF_LEVEL[finding.level],
        "message": {"text": finding.message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": _artifact_location(finding.file),
                    "region": {"startLine": finding.line, "startColumn": finding.column},
                }
            }
        ],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(finding)},
        "properties": properties,
    }
    if finding.waived_by is not None:
        out["suppressions"] = [
            {"kind": "external", "status": "accepted", "justification": finding.waived_by}
        ]
    return out


def render_sarif(result: ValidationResult) -> str:
    """SARIF 2.1.0 for code-scanning UIs: rule metadata with help links, one result
    per finding, waived findings as external suppressions."""
    rules = dict(result.rules)
    for finding in result.findings:
        if finding.rule not in rules:
            # A rule the caller did not describe still needs a descriptor for ruleIndex.
            rules[finding.rule] = RuleInfo(finding.rule, finding.level, finding.rule, finding.fact)
    ordered = sorted(rules.values(), key=lambda info: info.id)
    index = {info.id: i for i, info in enumerate(ordered)}
    run: dict[str, object] = {
        "tool": {
            "driver": {
                "name": "atpay",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFORMATION_URI,
                "rules": [_sarif_rule(info) for info in ordered],
            }
        },
        "originalUriBaseIds": {
            "%SRCROOT%": {"description": {"text": "The directory atpay validate ran in."}}
        },
        # Columns count characters (code points) of the decoded file, as PyYAML does.
        "columnKind": "unicodeCodePoints",
        "results": [_sarif_result(f, index[f.rule]) for f in _sorted(result.findings)],
    }
    log = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(log, indent=2)


# --- junit -----------------------------------------------------------------------

# Characters XML 1.0 cannot carry at all, escaped or not.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    """ElementTree escapes markup but writes forbidden characters as they are."""
    return _NOT_XML.sub(_visible_char, text)


@dataclass
class _Case:
    file: str
    name: str
    findings: list[Finding]


def _fails(finding: Finding, *, strict: bool) -> bool:
    if finding.waived_by is not None:
        return False
    return finding.level == "error" or (strict and finding.level == "warning")


def _junit_cases(result: ValidationResult) -> list[_Case]:
    """One case per document; findings outside any known document go to a per-file
    case (named `file`), which also stands for a checked file with no documents."""
    by_file: dict[str, dict[int, _Case]] = {}
    for file, index, tenant in result.documents:
        name = f"document {index}" if tenant is None else f"document {index} ({tenant})"
        by_file.setdefault(file, {})[index] = _Case(file, name, [])
    for file in result.files:
        by_file.setdefault(file, {})
    file_cases: dict[str, _Case] = {}
    for finding in _sorted(result.findings):
        documents = by_file.setdefault(finding.file, {})
        case = documents.get(finding.document) if finding.document >= 0 else None
        if case is None:
            case = file_cases.setdefault(finding.file, _Case(finding.file, "file", []))
        case.findings.append(finding)
    cases: list[_Case] = []
    for file, documents in by_file.items():
        if file in file_cases or not documents:
            cases.append(file_cases.get(file) or _Case(file, "file", []))
        cases.extend(documents[i] for i in sorted(documents))
    return cases


def _counts(findings: list[Finding]) -> str:
    parts = [
        _plural(sum(f.level == level for f in findings), level)
        for level in LEVELS
        if any(f.level == level for f in findings)
    ]
    return ", ".join(parts)


def render_junit(result: ValidationResult) -> str:
    """JUnit XML: one test case per manifest document, failing when it has an
    error (or a warning under --strict); the failure lists every error and
    warning of the document, other findings go to system-out."""
    cases = _junit_cases(result)
    failing = 0
    suite = ET.Element("testsuite", name="atpay validate")
    for case in cases:
        element = ET.SubElement(
            suite, "testcase", classname=_xml_text(case.file), name=_xml_text(case.name)
        )
        listed: list[Finding] = []
        if any(_fails(f, strict=result.strict) for f in case.findings):
            failing += 1
            listed = [f for f in case.findings if f.waived_by is None and f.level != "info"]
            rules = sorted({f.rule for f in listed})
            failure = ET.SubElement(
                element, "failure", message=_counts(listed), type=_xml_text(", ".join(rules))
            )
            failure.text = _xml_text("\n".join(_text_line(f) for f in listed))
        # By identity: Finding equality ignores `waived_by`.
        shown = {id(f) for f in listed}
        rest = [f for f in case.findings if id(f) not in shown]
        if rest:
            ET.SubElement(element, "system-out").text = _xml_text(
                "\n".join(_text_line(f) for f in rest)
            )
    counts = {"tests": len(cases), "failures": failing, "errors": 0, "skipped": 0}
    for key, value in counts.items():
        suite.set(key, str(value))
    root = ET.Element("testsuites", {"name": "atpay validate"})
    for key, value in counts.items():
        root.set(key, str(value))
    root.append(suite)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body


# --- github actions --------------------------------------------------------------

_GITHUB_LEVEL: dict[Level, str] = {"error": "error", "warning": "warning", "info": "notice"}


def _github_data(text: str) -> str:
    """The message part: GitHub unescapes %25, %0D, %0A (so newlines survive)."""
    escaped = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return _visible(escaped)


def _github_property(text: str) -> str:
    """A property value: also `:` and `,`, which would end it early."""
    return _github_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(result: ValidationResult) -> str:
    """GitHub Actions workflow commands, one annotation per finding; waived ones
    become notices so the pull request still shows them."""
    lines: list[str] = []
    for finding in _sorted(result.findings):
        command = _GITHUB_LEVEL[finding.level]
        title = finding.rule
        message = finding.message
        if finding.waived_by is not None:
            command, title = "notice", f"{finding.rule} (waived)"
            message = f"{message} [waived: {finding.waived_by}]"
        properties = ",".join(
            f"{key}={_github_property(value)}"
            for key, value in (
                ("file", finding.file),
                ("line", str(finding.line)),
                ("col", str(finding.column)),
                ("title", title),
            )
        )
        lines.append(f"::{command} {properties}::{_github_data(message)}")
    return "\n".join(lines)


REPORTERS: dict[str, Reporter] = {
    "text": render_text,
    "json": render_json,
    "sarif": render_sarif,
    "junit": render_junit,
    "github": render_github,
}
