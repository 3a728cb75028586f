"""JSON Schema conditions compiled to plain Python predicates.

Policies are JSON Schema (rules as data), evaluated for every document; the
`jsonschema` validator costs tens of microseconds a call, which at 10,000
tenants and a dozen policies dominates the run. The keywords our policies and
schemas use are few and simple, so we compile them once into closures. A schema
that uses anything else falls back to `jsonschema` itself, so behaviour never
depends on which path ran; a property test checks both agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Predicate = Callable[[Any], bool]

_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "format",  # an annotation only, as in jsonschema's default validators
        "$defs",
        "definitions",
    }
)


class InvalidCondition(ValueError):
    """The condition is not a valid JSON Schema; the message says why."""


class Unsupported(Exception):
    """The schema uses a keyword the compiler does not handle."""


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON Schema defines it: 1 == 1.0, but true != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def _is_type(value: Any, name: str) -> bool:
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if isinstance(value, bool):
        return False
    if name == "number":
        return isinstance(value, (int, float))
    if name == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    raise Unsupported(f"type {name!r}")


class _Compiler:
    def __init__(self, root: Mapping[str, Any] | bool) -> None:
        self.root = root
        self.refs: dict[str, Predicate] = {}

    def ref(self, ref: str) -> Predicate:
        if not ref.startswith("#/"):
            raise Unsupported(f"$ref {ref!r}")
        if ref not in self.refs:
            target: Any = self.root
            for token in ref[2:].split("/"):
                token = token.replace("~1", "/").replace("~0", "~")
                if not isinstance(target, Mapping) or token not in target:
                    raise Unsupported(f"$ref {ref!r} does not resolve")
                target = target[token]
            holder: list[Predicate] = []
            self.refs[ref] = lambda value: holder[0](value)
            holder.append(self.compile(target))
        return self.refs[ref]

    def compile(self, schema: Mapping[str, Any] | bool) -> Predicate:
        if schema is True:
            return lambda value: True
        if schema is False:
            return lambda value: False
        if not isinstance(schema, Mapping):
            raise Unsupported("schema is not an object")
        checks: list[Predicate] = []
        for keyword, argument in schema.items():
            if keyword in _ANNOTATIONS:
                continue
            checks.append(self.keyword(keyword, argument, schema))
        return _all_of(checks)

    def keyword(self, keyword: str, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        method = getattr(self, "kw_" + keyword.replace("$", "dollar_"), None)
        if method is None:
            raise Unsupported(keyword)
        predicate: Predicate = method(argument, schema)
        return predicate

    def kw_type(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        names = (argument,) if isinstance(argument, str) else tuple(argument)
        for name in names:
            _is_type(None, name)  # raises Unsupported for unknown names
        simple = {"object": dict, "array": list, "string": str}
        if len(names) == 1 and names[0] in simple:
            kind = simple[names[0]]
            return lambda value: isinstance(value, kind)
        return lambda value: any(_is_type(value, name) for name in names)

    def kw_const(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        return lambda value: json_equal(value, argument)

    def kw_enum(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        options = list(argument)
        return lambda value: any(json_equal(value, option) for option in options)

    def kw_properties(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        compiled = {name: self.compile(sub) for name, sub in argument.items()}

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return True
            for name, predicate in compiled.items():
                if name in value and not predicate(value[name]):
                    return False
            return True

        return check

    def kw_additionalProperties(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        known = frozenset(schema.get("properties", {}))
        if "patternProperties" in schema:
            raise Unsupported("patternProperties")
        predicate = self.compile(argument)
        if argument is False:
            return lambda value: not isinstance(value, dict) or value.keys() <= known

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return True
            return all(predicate(item) for name, item in value.items() if name not in known)

        return check

    def kw_required(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        names = tuple(argument)
        return lambda value: not isinstance(value, dict) or all(name in value for name in names)

    def kw_propertyNames(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        predicate = self.compile(argument)
        return lambda value: not isinstance(value, dict) or all(predicate(name) for name in value)

    def kw_minProperties(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        return lambda value: not isinstance(value, dict) or len(value) >= argument

    def kw_maxProperties(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        return lambda value: not isinstance(value, dict) or len(value) <= argument

    def kw_dependentRequired(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        pairs = {name: tuple(needed) for name, needed in argument.items()}
        return lambda value: (
            not isinstance(value, dict)
            or all(
                all(other in value for other in needed)
                for name, needed in pairs.items()
                if name in value
            )
        )

    def kw_items(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        if "prefixItems" in schema:
            raise Unsupported("prefixItems")
        predicate = self.compile(argument)
        return lambda value: not isinstance(value, list) or all(predicate(item) for item in value)

    def kw_contains(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        if "minContains" in schema or "maxContains" in schema:
            raise Unsupported("minContains")
        predicate = self.compile(argument)
        return lambda value: not isinstance(value, list) or any(predicate(item) for item in value)

    def kw_minItems(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        return lambda value: not isinstance(value, list) or len(value) >= argument

    def kw_maxItems(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        return lambda value: not isinstance(value, list) or len(value) <= argument

    def kw_uniqueItems(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        if not argument:
            return lambda value: True

        def check(value: Any) -> bool:
            if not isinstance(value, list):
                return True
            return not any(
                json_equal(value[i], value[j])
                for i in range(len(value))
                for j in range(i + 1, len(value))
            )

        return check

    def kw_minLength(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        return lambda value: not isinstance(value, str) or len(value) >= argument

    def kw_maxLength(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        return lambda value: not isinstance(value, str) or len(value) <= argument

    def kw_pattern(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        regex = re.compile(argument)
        return lambda value: not isinstance(value, str) or regex.search(value) is not None

    def kw_minimum(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        return lambda value: not _is_type(value, "number") or value >= argument

    def kw_maximum(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        return lambda value: not _is_type(value, "number") or value <= argument

    def kw_dollar_ref(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        return self.ref(argument)

    def kw_allOf(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        return _all_of([self.compile(sub) for sub in argument])

    def kw_anyOf(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        parts = tuple(self.compile(sub) for sub in argument)
        return lambda value: any(part(value) for part in parts)

    def kw_oneOf(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        parts = tuple(self.compile(sub) for sub in argument)
        return lambda value: sum(1 for part in parts if part(value)) == 1

    def kw_not(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        inner = self.compile(argument)
        return lambda value: not inner(value)

    def kw_if(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        condition = self.compile(argument)
        then = self.compile(schema.get("then", True))
        otherwise = self.compile(schema.get("else", True))
        return lambda value: then(value) if condition(value) else otherwise(value)

    def kw_then(self, argument: Any, schema: Mapping[str, Any]) -> Predicate:
        return lambda value: True  # evaluated by `if`

    kw_else = kw_then


def _all_of(checks: list[Predicate]) -> Predicate:
    """One predicate for "every check holds", without a generator per call (hot path)."""
    if not checks:
        return lambda value: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda value: first(value) and second(value)
    frozen = tuple(checks)

    def every(value: Any) -> bool:
        for check in frozen:  # noqa: SIM110 - a loop, not a generator: this is the hot path
            if not check(value):
                return False
        return True

    return every


def compile_condition(schema: Mapping[str, Any] | bool, *, trusted: bool = False) -> Predicate:
    """A predicate equivalent to `jsonschema` validity of `schema` (draft 2020-12).

    `trusted` skips the meta-schema check for the schemas and policies we ship
    (a test checks them), so a clean run never has to import `jsonschema`.
    """
    if not trusted:
        import jsonschema

        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise InvalidCondition(exc.message) from None
    try:
        return _Compiler(schema).compile(schema)
    except Unsupported:
        import jsonschema

        validator = jsonschema.Draft202012Validator(schema)
        fallback: Predicate = validator.is_valid
        return fallback
