"""Compiled conditions agree with jsonschema, the reference, on every input."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atpay_config.manifest.loader import load_file
from atpay_config.manifest.schema import SCHEMA_FILES
from atpay_config.resources import builtin_policies_dir, schema_path
from atpay_config.rules.conditions import (
    InvalidCondition,
    _Compiler,
    compile_condition,
    json_equal,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False, width=16)
    | st.sampled_from(
        [
            "active",
            "inactive",
            "creditCard",
            "eCheck",
            "bng",
            "atpay/v1",
            "PaymentProcessing",
            "ENC[AES256_GCM,data:cGs=,iv:aXY=,tag:dGFn,type:str]",
            "x",
            "",
            "billing@a.example",
        ]
    ),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "spec",
                    "metadata",
                    "keys",
                    "publicKey",
                    "privateKey",
                    "paymentTypes",
                    "autotask",
                    "clientPortal",
                    "activation",
                    "salesContact",
                    "requested",
                    "gateway",
                    "accountActive",
                    "tenant",
                    "labels",
                    "kind",
                    "apiVersion",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


def _shipped() -> list[tuple[str, Any]]:
    """Every schema and built-in policy condition, with its name."""
    found: list[tuple[str, Any]] = []
    for kind, name in SCHEMA_FILES.items():
        path = schema_path(name)
        if path.exists():
            found.append((kind, json.loads(path.read_text())))
    for path in sorted(builtin_policies_dir().glob("*.yaml")):
        found.append((path.name, load_file(path).documents[0].data["spec"]["when"]))
    return found


PAIRS = [
    (name, compile_condition(schema), jsonschema.Draft202012Validator(schema).is_valid)
    for name, schema in _shipped()
]


def test_every_shipped_schema_and_policy_compiles_without_fallback() -> None:
    for _name, schema in _shipped():
        _Compiler(schema).compile(schema)  # raises Unsupported on a fallback


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_compiled_schemas_and_policies_agree_with_jsonschema(value: Any) -> None:
    for name, compiled, reference in PAIRS:
        assert compiled(value) == reference(value), name


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (1, 1.0, True),
        (True, 1, False),
        (False, 0, False),
        ([1, {"a": 2}], [1.0, {"a": 2}], True),
        ("1", 1, False),
    ],
)
def test_json_equality(a: Any, b: Any, equal: bool) -> None:
    assert json_equal(a, b) is equal


def test_unsupported_keywords_fall_back_to_jsonschema() -> None:
    schema = {"patternProperties": {"^x": {"type": "integer"}}}
    check = compile_condition(schema)
    assert check({"x1": 1}) and not check({"x1": "no"})


def test_an_invalid_condition_is_rejected() -> None:
    with pytest.raises(InvalidCondition, match="not-a-type"):
        compile_condition({"type": "not-a-type"})


def test_shipped_schemas_and_policies_are_valid_json_schemas() -> None:
    for _name, schema in _shipped():
        jsonschema.Draft202012Validator.check_schema(schema)
