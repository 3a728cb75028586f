"""Every rule, pinned by example files: a failing manifest per rule and passing ones.

Each file under tests/cases/invalid/ and examples/invalid/ names the findings it
must produce in `# expect: RULE LINE:COLUMN` comments — exactly those, no more.
Files under tests/cases/valid/ and examples/tenants/ must produce no error or
warning that is not waived.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from atpay_config.manifest.loader import load_file
from atpay_config.rules.key_secrets import KeySecretsRule
from atpay_config.secrets.age import parse_identity_file
from atpay_config.validation import load_policies, validate_files

REPO = Path(__file__).resolve().parents[3]
CASES = REPO / "tests" / "cases"
TODAY = dt.date(2026, 11, 28)
DEMO_IDENTITY = REPO / "examples" / "demo-identity" / "age-demo.key"
EXPECT_RE = re.compile(r"#\s*expect:\s*(\S+)\s+(\d+):(\d+)")


def _rule() -> KeySecretsRule:
    identities = parse_identity_file(DEMO_IDENTITY.read_text()) if DEMO_IDENTITY.exists() else []
    return KeySecretsRule(identity_source=lambda: identities)


def findings_of(path: Path) -> list[tuple[str, int, int]]:
    run = validate_files(
        [load_file(path, display=path.name)],
        policies=load_policies([]),
        file_rules=(_rule(),),
        today=TODAY,
    )
    return sorted(
        (f.rule, f.line, f.column)
        for f in run.findings
        if f.waived_by is None and f.level in ("error", "warning")
    )


def expected_of(path: Path) -> list[tuple[str, int, int]]:
    text = path.read_text(encoding="utf-8", errors="replace")
    return sorted((m[1], int(m[2]), int(m[3])) for m in EXPECT_RE.finditer(text))


INVALID = sorted((CASES / "invalid").glob("*.yaml")) + sorted(
    (REPO / "examples" / "invalid").glob("*.yaml")
)
VALID = sorted((CASES / "valid").glob("*.yaml"))


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_case_fails_exactly_its_rules_at_their_positions(path: Path) -> None:
    expected = expected_of(path)
    assert expected, f"{path.name} has no '# expect: RULE LINE:COL' comment"
    assert findings_of(path) == expected


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_case_passes(path: Path) -> None:
    assert findings_of(path) == []


def test_every_builtin_rule_has_a_failing_case_and_a_passing_case() -> None:
    failing = {rule for path in INVALID for rule, _, _ in expected_of(path)}
    builtin = {p.id for p in load_policies([])} | {"AT006", "AT009", "AT011", "yaml", "schema"}
    assert builtin <= failing, f"rules without a failing case: {sorted(builtin - failing)}"
    assert VALID, "no passing cases"
