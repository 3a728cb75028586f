"""Schema findings: located at the offending node, human, never echoing secrets."""

from __future__ import annotations

from atpay_config.manifest.loader import load_text
from atpay_config.manifest.schema import check_kind, validate_document
from atpay_config.rules.finding import Finding

HEADER = "apiVersion: atpay/v1\nkind: PaymentProcessing\nmetadata: {tenant: t1}\n"


def schema_findings(text: str) -> list[Finding]:
    doc = load_text(text, "t.yaml").documents[0]
    kind, problems = check_kind(doc)
    return problems if kind is None else validate_document(doc, kind)


def test_unknown_field_points_at_the_key_with_a_suggestion() -> None:
    [finding] = schema_findings(HEADER + "spec:\n  paymentType: {}\n")
    assert (finding.line, finding.column) == (5, 3)
    assert finding.pointer == "/spec/paymentType"
    assert "did you mean 'paymentTypes'?" in finding.message


def test_unknown_field_without_a_close_name_lists_the_allowed_ones() -> None:
    [finding] = schema_findings(HEADER + "spec:\n  zzz: 1\n")
    assert "allowed: activation, salesContact, gateway, keys, paymentTypes" in finding.message


def test_enum_value_gets_a_suggestion() -> None:
    [finding] = schema_findings(HEADER + "spec:\n  paymentTypes: {autotask: [creditcard]}\n")
    assert finding.pointer == "/spec/paymentTypes/autotask/0"
    assert "did you mean 'creditCard'?" in finding.message


def test_missing_required_field_names_it() -> None:
    [finding] = schema_findings("apiVersion: atpay/v1\nkind: PaymentProcessing\nmetadata: {}\n")
    assert finding.message == "metadata is missing the required field 'tenant'"
    assert (finding.line, finding.column) == (3, 1)


def test_repeated_payment_type_is_reported() -> None:
    [finding] = schema_findings(HEADER + "spec:\n  paymentTypes: {autotask: [eCheck, eCheck]}\n")
    assert "same item twice" in finding.message


def test_key_values_are_never_echoed_in_schema_messages() -> None:
    canary = "CANARY-sk_live_do_not_print"
    text = HEADER + f"spec:\n  keys:\n    privateKey: [{canary}]\n    publicKey: {{x: {canary}}}\n"
    findings = schema_findings(text)
    assert len(findings) == 2
    for finding in findings:
        assert canary not in finding.message


def test_too_long_key_is_reported_without_its_value() -> None:
    canary = "CANARY" * 1000
    [finding] = schema_findings(HEADER + f"spec:\n  keys: {{privateKey: {canary}}}\n")
    assert "at most 4096 characters" in finding.message
    assert "CANARY" not in finding.message


def test_document_without_kind() -> None:
    [finding] = schema_findings("apiVersion: atpay/v1\n")
    assert "has no 'kind'" in finding.message


def test_empty_document() -> None:
    [finding] = schema_findings("---\n...\n")
    assert "document is empty" in finding.message


def test_wrong_api_version() -> None:
    text = "apiVersion: atpay/v2\nkind: PaymentProcessing\nmetadata: {tenant: a}\n"
    [finding] = schema_findings(text)
    assert finding.message == 'apiVersion is "atpay/v2", expected "atpay/v1"'
