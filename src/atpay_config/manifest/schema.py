"""Schema validation with located, human messages.

A compiled predicate answers "valid?" quickly for the common case; only an
invalid document pays for `jsonschema`'s detailed errors, which we turn into
findings at the offending node with a "did you mean" for near-miss names.
Values are never echoed from under `spec.keys` or `sops`: they may be secrets.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from atpay_config.manifest.loader import SourceDocument, escape_pointer_token
from atpay_config.resources import schema_path
from atpay_config.rules.conditions import Predicate, compile_condition
from atpay_config.rules.finding import Finding

if TYPE_CHECKING:
    import jsonschema
    from jsonschema.exceptions import ValidationError

SCHEMA_RULE = "schema"
API_VERSION = "atpay/v1"

SCHEMA_FILES: dict[str, str] = {
    "PaymentProcessing": "payment-processing.schema.json",
    "SimulatedTenant": "simulated-tenant.schema.json",
    "Waiver": "waiver.schema.json",
    "Policy": "policy.schema.json",
}
"""Every document kind the tool reads, with its schema file under `schemas/`."""

_SECRET_POINTERS = ("/spec/keys", "/sops")

_PATTERN_HINTS = {
    "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$": (
        "use 1-63 lowercase letters, digits and hyphens, starting and ending with a letter or digit"
    ),
}


@dataclass(frozen=True, slots=True)
class CompiledSchema:
    kind: str
    schema: Mapping[str, Any]
    is_valid: Predicate

    def iter_errors(self, instance: Any) -> Iterator[ValidationError]:
        """jsonschema's detailed errors: only invalid documents get here."""
        return _validator(self.kind).iter_errors(instance)


@cache
def _validator(kind: str) -> jsonschema.Draft202012Validator:
    import jsonschema

    return jsonschema.Draft202012Validator(compiled_schema(kind).schema)


@cache
def compiled_schema(kind: str) -> CompiledSchema:
    with open(schema_path(SCHEMA_FILES[kind]), encoding="utf-8") as handle:
        schema = json.load(handle)
    return CompiledSchema(
        kind=kind,
        schema=schema,
        is_valid=compile_condition(schema, trusted=True),
    )


def pointer_of(path: Any) -> str:
    return "".join("/" + escape_pointer_token(str(part)) for part in path)


def _dotted(pointer: str) -> str:
    return pointer.strip("/").replace("/", ".") or "the document"


def _is_secret(pointer: str) -> bool:
    return any(pointer == p or pointer.startswith(p + "/") for p in _SECRET_POINTERS)


def _suggest(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, [str(o) for o in options], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def _schema_at(schema: Mapping[str, Any], error: ValidationError) -> Mapping[str, Any]:
    sub = error.schema
    return sub if isinstance(sub, Mapping) else schema


def _messages(error: ValidationError, root: Mapping[str, Any]) -> Iterator[tuple[str, str, bool]]:
    """(pointer, message, at_key) for one jsonschema error."""
    pointer = pointer_of(error.absolute_path)
    where = _dotted(pointer)
    secret = _is_secret(pointer)
    instance: Any = error.instance
    validator: Any = error.validator
    expected: Any = error.validator_value
    sub = _schema_at(root, error)
    if validator == "additionalProperties" and isinstance(instance, dict):
        known = list((sub.get("properties") or {}).keys())
        for name in instance:
            if name not in known:
                child = f"{pointer}/{escape_pointer_token(str(name))}"
                hint = _suggest(str(name), known) or (
                    f"; allowed: {', '.join(known)}" if known else ""
                )
                yield child, f"unknown field '{name}' in {where}{hint}", True
        return
    if validator == "required":
        missing = [name for name in expected if name not in instance]
        for name in missing:
            yield pointer, f"{where} is missing the required field '{name}'", False
        return
    if validator in ("enum", "const"):
        options = expected if validator == "enum" else [expected]
        shown = ", ".join(json.dumps(o) for o in options)
        if secret:
            yield pointer, f"{where} has a value that is not allowed; expected {shown}", False
        elif pointer in ("/kind", ""):
            yield pointer, f"{where} must be {shown}", False
        else:
            suggestible = isinstance(instance, str) and len(options) > 1
            hint = _suggest(str(instance), options) if suggestible else ""
            yield pointer, f"{where} is {json.dumps(instance)}, expected {shown}{hint}", False
        return
    if validator == "type":
        wanted = expected
        names = [wanted] if isinstance(wanted, str) else list(wanted)
        yield pointer, f"{where} must be {' or '.join(names)}, not {_type_name(instance)}", False
        return
    if validator == "pattern":
        hint = _PATTERN_HINTS.get(expected, f"it must match {expected}")
        if secret:
            yield pointer, f"{where} is not in the expected format; {hint}", False
        else:
            yield pointer, f"{where} {json.dumps(instance)} is not valid: {hint}", False
        return
    if validator in ("minLength", "maxLength", "minItems", "maxItems"):
        limit = expected
        unit = "characters" if validator.endswith("Length") else "items"
        bound = "at least" if validator.startswith("min") else "at most"
        yield pointer, f"{where} must have {bound} {limit} {unit}", False
        return
    if validator == "uniqueItems":
        yield pointer, f"{where} lists the same item twice; remove the repeat", False
        return
    if validator == "propertyNames":
        yield pointer, f"{where} has a field name that is not allowed", False
        return
    if secret:
        yield pointer, f"{where} is not valid ({validator})", False
    else:
        yield pointer, f"{where}: {error.message}", False


def _leaf_errors(error: ValidationError) -> Iterator[ValidationError]:
    if error.context and error.validator in ("anyOf", "oneOf"):
        from jsonschema.exceptions import best_match

        best = best_match(error.context)
        if best is not None:
            yield from _leaf_errors(best)
            return
    yield error


def check_kind(doc: SourceDocument) -> tuple[str | None, list[Finding]]:
    """The document's kind, or findings saying why it has none we know."""
    data = doc.data
    if data is None:
        return None, [
            _finding(doc, "", "document is empty; add a manifest or remove the '---'", False)
        ]
    if not isinstance(data, dict):
        return None, [
            _finding(doc, "", f"document must be a mapping, not {_type_name(data)}", False)
        ]
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in SCHEMA_FILES:
        if kind is None:
            message = f"document has no 'kind'; expected one of {', '.join(SCHEMA_FILES)}"
        else:
            shown = json.dumps(kind) if isinstance(kind, str) else _type_name(kind)
            hint = _suggest(kind, SCHEMA_FILES) if isinstance(kind, str) else ""
            message = f"unknown kind {shown}; expected one of {', '.join(SCHEMA_FILES)}{hint}"
        return None, [_finding(doc, "/kind", message, False)]
    return kind, []


def _finding(doc: SourceDocument, pointer: str, message: str, at_key: bool) -> Finding:
    line, column = doc.locate(pointer, key=at_key)
    tenant = _tenant_of(doc.data)
    return Finding(
        rule=SCHEMA_RULE,
        level="error",
        message=message,
        file=doc.file,
        line=line,
        column=column,
        pointer=pointer,
        document=doc.index,
        tenant=tenant,
    )


def _tenant_of(data: Any) -> str | None:
    if isinstance(data, dict):
        metadata = data.get("metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("tenant"), str):
            return str(metadata["tenant"])
    return None


def validate_document(doc: SourceDocument, kind: str) -> list[Finding]:
    """Schema findings for a document of a known kind ([] when valid)."""
    compiled = compiled_schema(kind)
    if compiled.is_valid(doc.data):
        return []
    findings: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    errors = sorted(compiled.iter_errors(doc.data), key=lambda e: list(map(str, e.path)))
    for error in errors:
        for leaf in _leaf_errors(error):
            for pointer, message, at_key in _messages(leaf, compiled.schema):
                if (pointer, message) in seen:
                    continue
                seen.add((pointer, message))
                findings.append(_finding(doc, pointer, message, at_key))
    return findings
