"""Hostile input: whatever the bytes, the result is findings or a clean pass, never a crash."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atpay_config.manifest.loader import SourceFile, decode_source, load_text
from atpay_config.validation import load_policies, validate_files

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").rglob("*.yaml")) + sorted(
    (REPO / "tests" / "cases").rglob("*.yaml")
)
SEEDS = [path.read_bytes() for path in EXAMPLES]
POLICIES = load_policies([])


def validate_bytes(data: bytes) -> None:
    text, problem = decode_source(data, "mutant.yaml")
    source = (
        load_text(text, "mutant.yaml")
        if text is not None
        else SourceFile("mutant.yaml", None, [], [problem] if problem else [])
    )
    run = validate_files([source], policies=POLICIES, today=dt.date(2026, 11, 28))
    for finding in run.findings:
        assert finding.line >= 1 and finding.column >= 1
        assert finding.message and "\n" not in finding.message
        assert "Traceback" not in finding.message


@st.composite
def mutants(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        where = draw(st.integers(0, len(data) - 1))
        how = draw(st.sampled_from(["flip", "insert", "delete", "dup-line", "token"]))
        if how == "flip":
            data[where] = draw(st.integers(0, 255))
        elif how == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=4))
        elif how == "delete":
            del data[where : where + draw(st.integers(1, 8))]
        elif how == "dup-line":
            start = data.rfind(b"\n", 0, where) + 1
            end = data.find(b"\n", where)
            end = len(data) if end == -1 else end + 1
            data[start:start] = data[start:end]
        else:
            token = draw(
                st.sampled_from(
                    [
                        b"&a ",
                        b"*a",
                        b"!!binary ",
                        b"? ",
                        b"- ",
                        b"{",
                        b"]",
                        b": ",
                        b"yes",
                        b"~",
                        b"\t",
                        b"---\n",
                        b"...\n",
                        b"'",
                        b'"',
                        b"%YAML 1.1\n",
                        b"\xef\xbb\xbf",
                    ]
                )
            )
            data[where:where] = token
    return bytes(data)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutants())
def test_mutated_examples_never_crash(data: bytes) -> None:
    validate_bytes(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(data: bytes) -> None:
    validate_bytes(data)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_random_text_never_crashes(text: str) -> None:
    validate_bytes(text.encode("utf-8", errors="surrogatepass"))


KEYS = [
    "apiVersion",
    "kind",
    "metadata",
    "tenant",
    "labels",
    "spec",
    "activation",
    "salesContact",
    "requested",
    "email",
    "gateway",
    "provider",
    "accountActive",
    "keys",
    "publicKey",
    "privateKey",
    "paymentTypes",
    "autotask",
    "clientPortal",
    "sops",
    "mac",
    "spec",
]
shapes = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(
        [
            "atpay/v1",
            "PaymentProcessing",
            "Waiver",
            "Policy",
            "SimulatedTenant",
            "active",
            "inactive",
            "creditCard",
            "eCheck",
            "bng",
            "ENC[AES256_GCM,",
        ]
    ),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS), children, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=1000, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), shapes, max_size=6))
def test_random_manifest_shapes_never_crash(document: dict[str, object]) -> None:
    import yaml

    validate_bytes(yaml.safe_dump(document, allow_unicode=True).encode("utf-8"))
