"""Findings link to their rule's docs: ours on docs/rules.md, an organisation's where it says."""

from __future__ import annotations

import datetime as dt

from atpay_config.manifest.loader import load_text
from atpay_config.rules.engine import load_policy_files
from atpay_config.validation import validate_files

POLICY = """\
apiVersion: atpay/v1
kind: Policy
metadata: {{id: ORG9, title: Labels carry an owner}}
spec:
  level: warning
  message: add an owner label
  {docs}
  pointer: /metadata/labels
  when:
    properties:
      metadata: {{not: {{required: [labels], properties: {{labels: {{required: [owner]}}}}}}}}
  examples: {{fail: [{{metadata: {{}}}}]}}
"""
MANIFEST = "apiVersion: atpay/v1\nkind: PaymentProcessing\nmetadata: {tenant: t1}\n"


def docs_of(policy_text: str) -> list[str | None]:
    policies = load_policy_files([load_text(policy_text, "p.yaml")])
    run = validate_files([load_text(MANIFEST, "m.yaml")], policies=policies, today=dt.date.today())
    return [f.docs for f in run.findings if f.rule == "ORG9"]


def test_an_organisation_policy_links_to_its_own_docs() -> None:
    assert docs_of(POLICY.format(docs="docs: https://wiki.msp.example/atpay/org9")) == [
        "https://wiki.msp.example/atpay/org9"
    ]


def test_an_organisation_policy_without_docs_has_no_link() -> None:
    assert docs_of(POLICY.format(docs="")) == [None]
