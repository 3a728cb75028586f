"""Waivers: counted and listed, never hidden; expired ones fail; unused ones are reported."""

from __future__ import annotations

import datetime as dt

from atpay_config.manifest.loader import load_text
from atpay_config.rules.waivers import Waiver, apply_waivers
from atpay_config.validation import load_policies, validate_files

PORTAL_ONLY = """\
apiVersion: atpay/v1
kind: PaymentProcessing
metadata: {tenant: fabrikam}
spec:
  activation: active
  salesContact: {requested: true}
  gateway: {provider: bng, accountActive: true}
  keys:
    publicKey: ENC[AES256_GCM,data:cGs=,iv:aXY=,tag:dGFn,type:str]
    privateKey: ENC[AES256_GCM,data:c2s=,iv:aXY=,tag:dGFn,type:str]
  paymentTypes: {clientPortal: [creditCard]}
"""


def waiver_doc(
    *, rule: str = "AT008", expires: str = "2027-01-31", tenant: str = "fabrikam"
) -> str:
    return f"""\
apiVersion: atpay/v1
kind: Waiver
metadata: {{name: w1}}
spec:
  tenant: {tenant}
  rule: {rule}
  reason: Clients pay in the portal only, by contract.
  owner: finance@msp.example
  expires: "{expires}"
"""


def run(*texts: str, today: dt.date = dt.date(2026, 11, 28)) -> list[tuple[str, str, str | None]]:
    sources = [load_text(text, f"f{i}.yaml") for i, text in enumerate(texts)]
    result = validate_files(sources, policies=load_policies([]), today=today)
    return [(f.rule, f.level, f.waived_by) for f in result.findings]


def test_a_waived_finding_is_still_listed_with_its_reason() -> None:
    [(rule, level, waived)] = run(PORTAL_ONLY, waiver_doc())
    assert (rule, level) == ("AT008", "warning")
    assert waived is not None and "Clients pay in the portal only" in waived
    assert "finance@msp.example" in waived


def test_an_expired_waiver_is_an_error_and_waives_nothing() -> None:
    findings = run(PORTAL_ONLY, waiver_doc(expires="2026-11-27"))
    assert ("AT008", "warning", None) in findings
    assert ("waiver", "error", None) in findings


def test_a_waiver_is_valid_through_its_expiry_day() -> None:
    findings = run(PORTAL_ONLY, waiver_doc(expires="2026-11-28"))
    assert [f[0] for f in findings] == ["AT008"]
    assert findings[0][2] is not None


def test_an_unused_waiver_is_reported() -> None:
    findings = run(PORTAL_ONLY, waiver_doc(tenant="contoso"))
    assert ("waiver", "warning", None) in findings


def test_schema_findings_cannot_be_waived() -> None:
    findings = run(waiver_doc(rule="schema"))
    assert findings == [("waiver", "error", None)]


def test_an_impossible_date_is_a_finding() -> None:
    findings = run(waiver_doc(expires="2026-02-30"))
    assert findings == [("waiver", "error", None)]


def test_waiver_from_document_keeps_its_location() -> None:
    doc = load_text("# c\n" + waiver_doc(), "w.yaml").documents[0]
    waiver = Waiver.from_document(doc)
    assert isinstance(waiver, Waiver)
    assert (waiver.file, waiver.line) == ("w.yaml", 2)
    assert apply_waivers([], [waiver], today=dt.date(2026, 1, 1))[0].rule == "waiver"
