"""Every findings format is a rendering of the same list (STYLE practice 1, SPEC 4, 7, 9)."""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from atpay_config.report.findings import (
    REPORTERS,
    ValidationResult,
    fingerprint,
    render_github,
    render_json,
    render_junit,
    render_sarif,
    render_text,
    summary_line,
)
from atpay_config.rules.finding import Finding, RuleInfo, Summary, docs_url

DATA = Path(__file__).resolve().parents[2] / "data" / "report"
GOLDEN = DATA / "findings"
REGEN = os.environ.get("ATPAY_REGEN_GOLDEN") == "1"

RULES = {
    info.id: info
    for info in (
        RuleInfo("yaml", "error", "Unreadable or ambiguous YAML"),
        RuleInfo("schema", "error", "Manifest violates the JSON Schema"),
        RuleInfo("AT001", "error", "Settings on an inactive tenant", "AT-3"),
        RuleInfo(
            "AT002",
            "error",
            "Payment type without both keys",
            "AT-7",
            "An enabled payment type needs the public and the private key.",
        ),
        RuleInfo("AT007", "warning", "Keys but no payment type", "AT-11"),
        RuleInfo("AT008", "warning", "Client Portal type without an Autotask type", "AT-15"),
    )
}

FINDINGS = [
    Finding(
        "AT002",
        "error",
        "creditCard is enabled but the private key is missing",
        "tenants/contoso.yaml",
        14,
        5,
        "/spec/paymentTypes",
        0,
        "AT-7",
        "contoso",
    ),
    Finding(
        "schema",
        "error",
        "unknown key 'activaton'; did you mean 'activation'?",
        "tenants/contoso.yaml",
        5,
        3,
        "/spec/activaton",
        0,
        None,
        "contoso",
    ),
    Finding(
        "AT007",
        "warning",
        "keys are set but no payment type is enabled: Process Payment stays hidden",
        "tenants/contoso.yaml",
        30,
        3,
        "/spec",
        1,
        "AT-11",
        "contoso-eu",
    ),
    Finding(
        "AT008",
        "warning",
        "Client Portal eCheck is enabled but no Autotask payment type is",
        "tenants/fabrikam.yaml",
        9,
        7,
        "/spec/paymentTypes/clientPortal",
        0,
        "AT-15",
        "fabrikam",
    ).waive("portal-only rollout until Q3 (OPS-42)"),
    Finding(
        "org.require-owner",
        "info",
        "metadata.labels.owner is not set",
        "tenants/fabrikam.yaml",
        3,
        3,
        "/metadata/labels",
        0,
        None,
        "fabrikam",
    ),
    Finding(
        "yaml", "error", "duplicate key 'tenant' (first at line 2)", "tenants/broken.yaml", 3, 3
    ),
    Finding(
        "yaml",
        "info",
        "file starts with a UTF-8 byte order mark",
        "tenants/clean.yaml",
        1,
        1,
        document=-1,
    ),
]

FILES = [
    "tenants/broken.yaml",
    "tenants/clean.yaml",
    "tenants/contoso.yaml",
    "tenants/fabrikam.yaml",
]
DOCUMENTS: list[tuple[str, int, str | None]] = [
    ("tenants/broken.yaml", 0, None),
    ("tenants/clean.yaml", 0, "northwind"),
    ("tenants/contoso.yaml", 0, "contoso"),
    ("tenants/contoso.yaml", 1, "contoso-eu"),
    ("tenants/fabrikam.yaml", 0, "fabrikam"),
]


def make_result(
    findings: list[Finding] = FINDINGS,
    *,
    files: list[str] = FILES,
    documents: list[tuple[str, int, str | None]] = DOCUMENTS,
    rules: dict[str, RuleInfo] = RULES,
    strict: bool = False,
) -> ValidationResult:
    return ValidationResult(
        findings=list(findings),
        summary=Summary.of(findings, files=len(files), documents=len(documents)),
        rules=rules,
        files=files,
        documents=documents,
        strict=strict,
    )


RESULT = make_result()

HOSTILE_MESSAGE = (
    "<script>alert(\"x\")</script> & 'quotes' ünïcødé ✓ 𝄞 \x00\x07\x1b[31mred\x1b[0m\r\n"
    "::error file=evil.yaml,line=1::forged %0A 100% ]]> \u202eevil\u2028x\x85y"
)
HOSTILE_FILE = 'tenants/<b>"we\'ird", name:1\x1b\n%2C ünï 𝄞\udcff.yaml'
HOSTILE_REASON = 'ok\'d by <ops> "team" ::warning::x\n%'


def hostile_result() -> ValidationResult:
    findings = [
        Finding(
            "AT002", "error", HOSTILE_MESSAGE, HOSTILE_FILE, 2, 4, "/spec/a~1b", 0, "AT-7", "t<1>"
        ),
        Finding("org,rule:x", "warning", HOSTILE_MESSAGE, HOSTILE_FILE, 3, 1, "", 0, None, "t<1>"),
        Finding("yaml", "info", HOSTILE_MESSAGE, HOSTILE_FILE, 1, 1, document=-1),
        Finding("AT007", "warning", HOSTILE_MESSAGE, HOSTILE_FILE, 9, 9).waive(HOSTILE_REASON),
    ]
    return make_result(
        findings, files=[HOSTILE_FILE], documents=[(HOSTILE_FILE, 0, "t<1>\"&'\x01")]
    )


def check_golden(name: str, output: str) -> None:
    path = GOLDEN / f"{name}.golden"
    if REGEN:
        path.write_text(output + "\n", encoding="utf-8")
    assert path.exists(), f"{path} missing; run with ATPAY_REGEN_GOLDEN=1 and review it"
    assert output + "\n" == path.read_text(encoding="utf-8")


# --- the registry ------------------------------------------------------------------


def test_registry_lists_the_five_formats_of_spec_section_7() -> None:
    assert list(REPORTERS) == ["text", "json", "sarif", "junit", "github"]


@pytest.mark.parametrize("name", list(REPORTERS))
def test_every_format_matches_its_golden_output(name: str) -> None:
    check_golden(name, REPORTERS[name](RESULT))


@pytest.mark.parametrize("name", list(REPORTERS))
def test_every_format_renders_no_findings(name: str) -> None:
    output = REPORTERS[name](make_result([]))
    assert isinstance(output, str)
    assert not output.endswith("\n")


@pytest.mark.parametrize("name", list(REPORTERS))
def test_output_does_not_depend_on_input_order(name: str) -> None:
    shuffled = make_result(list(reversed(FINDINGS)))
    assert REPORTERS[name](shuffled) == REPORTERS[name](RESULT)


# --- text --------------------------------------------------------------------------


def test_text_groups_by_file_and_sorts_by_position() -> None:
    blocks = render_text(RESULT).split("\n\n")
    contoso = blocks[2].splitlines()
    assert contoso[0] == "tenants/contoso.yaml"
    assert contoso[1:] == [
        "tenants/contoso.yaml:5:3: [error] unknown key 'activaton'; did you mean 'activation'? "
        "(schema)",
        "tenants/contoso.yaml:14:5: [error] creditCard is enabled but the private key is "
        "missing (AT002)",
        "tenants/contoso.yaml:30:3: [warning] keys are set but no payment type is enabled: "
        "Process Payment stays hidden (AT007)",
    ]


def test_text_lists_waived_findings_separately_with_the_reason() -> None:
    blocks = render_text(RESULT).split("\n\n")
    assert blocks[-2].splitlines() == [
        "waived (1):",
        "tenants/fabrikam.yaml:9:7: [warning] Client Portal eCheck is enabled but no Autotask "
        "payment type is (AT008) [waived: portal-only rollout until Q3 (OPS-42)]",
    ]
    active = "\n\n".join(blocks[:-2])
    assert "AT008" not in active


def test_text_ends_with_the_summary_line() -> None:
    last = render_text(RESULT).splitlines()[-1]
    assert last == "4 files, 5 documents: 3 errors, 1 warning, 2 infos, 1 waived"


def test_summary_line_counts_in_words() -> None:
    assert summary_line(Summary(1, 1, 1, 0, 0, 0)) == (
        "1 file, 1 document: 1 error, 0 warnings, 0 infos, 0 waived"
    )
    assert summary_line(Summary(3, 4, 1, 2, 0, 1)) == (
        "3 files, 4 documents: 1 error, 2 warnings, 0 infos, 1 waived"
    )


def test_text_of_a_clean_run_is_the_summary_line() -> None:
    assert (
        render_text(make_result([]))
        == "4 files, 5 documents: 0 errors, 0 warnings, 0 infos, 0 waived"
    )


def test_text_escapes_hostile_content_so_one_finding_is_one_line() -> None:
    output = render_text(hostile_result())
    lines = output.splitlines()
    # file header and three findings, blank, waived header and line, blank, summary
    assert len(lines) == 9
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff\u202e]", output)
    assert "<script>alert(\"x\")</script> & 'quotes' ünïcødé ✓ 𝄞 \\x00\\x07\\x1b[31mred" in output
    assert "\\r\\n::error file=evil.yaml" in output
    assert "\\u202eevil" in output
    assert 'tenants/<b>"we\'ird", name:1\\x1b\\n%2C ünï 𝄞\\udcff.yaml:2:4: [error]' in output
    assert '[waived: ok\'d by <ops> "team" ::warning::x\\n%]' in output


# --- json (SPEC section 9) ---------------------------------------------------------


def test_json_is_exactly_the_spec_section_9_shape() -> None:
    document = json.loads(render_json(RESULT))
    assert list(document) == ["version", "findings", "summary"]
    assert document["version"] == 1
    assert document["summary"] == {
        "files": 4,
        "documents": 5,
        "errors": 3,
        "warnings": 1,
        "infos": 2,
        "waived": 1,
    }
    assert list(document["summary"]) == [
        "files",
        "documents",
        "errors",
        "warnings",
        "infos",
        "waived",
    ]
    first = document["findings"][0]
    assert first == {
        "rule": "yaml",
        "level": "error",
        "message": "duplicate key 'tenant' (first at line 2)",
        "fact": None,
        "file": "tenants/broken.yaml",
        "line": 3,
        "column": 3,
        "pointer": "",
        "document": 0,
        "docs": docs_url("yaml"),
    }
    spec_keys = [
        "rule",
        "level",
        "message",
        "fact",
        "file",
        "line",
        "column",
        "pointer",
        "document",
    ]
    for finding in document["findings"]:
        assert list(finding)[:9] == spec_keys
        assert set(finding) - set(spec_keys) <= {"docs", "waived"}


def test_json_lists_waived_findings_with_their_reason() -> None:
    document = json.loads(render_json(RESULT))
    waived = [f for f in document["findings"] if "waived" in f]
    assert [(f["rule"], f["waived"]) for f in waived] == [
        ("AT008", "portal-only rollout until Q3 (OPS-42)")
    ]
    assert len(document["findings"]) == len(FINDINGS)


def test_json_is_indented_with_stable_key_order() -> None:
    output = render_json(RESULT)
    assert output.startswith('{\n  "version": 1,\n  "findings": [\n    {\n      "rule": ')


def test_json_round_trips_hostile_content_exactly() -> None:
    result = hostile_result()
    output = render_json(result)
    assert output.isascii()
    document = json.loads(output)
    assert [f["message"] for f in document["findings"]] == [HOSTILE_MESSAGE] * 4
    assert {f["file"] for f in document["findings"]} == {HOSTILE_FILE}
    assert [f.get("waived") for f in document["findings"]].count(HOSTILE_REASON) == 1


# --- sarif 2.1.0 -------------------------------------------------------------------


@pytest.fixture(scope="module")
def sarif_validator() -> Any:
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def sarif_errors(validator: Any, log: object) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(log)]


def test_sarif_is_valid_against_the_sarif_2_1_0_schema(sarif_validator: Any) -> None:
    log = json.loads(render_sarif(RESULT))
    assert sarif_errors(sarif_validator, log) == []
    assert log["version"] == "2.1.0"


def test_sarif_validation_would_catch_a_broken_log(sarif_validator: Any) -> None:
    log = json.loads(render_sarif(RESULT))
    log["runs"][0]["results"][0]["level"] = "fatal"
    del log["runs"][0]["tool"]["driver"]["name"]
    assert len(sarif_errors(sarif_validator, log)) == 2


def test_sarif_describes_rules_with_help_links_and_facts() -> None:
    driver = json.loads(render_sarif(RESULT))["runs"][0]["tool"]["driver"]
    assert driver["name"] == "atpay"
    assert driver["informationUri"].startswith("https://")
    by_id = {rule["id"]: rule for rule in driver["rules"]}
    assert by_id["AT002"] == {
        "id": "AT002",
        "shortDescription": {"text": "Payment type without both keys"},
        "fullDescription": {
            "text": "An enabled payment type needs the public and the private key."
        },
        "helpUri": docs_url("AT002"),
        "help": {
            "text": "An enabled payment type needs the public and the private key.\n\n"
            f"See {docs_url('AT002')}"
        },
        "defaultConfiguration": {"level": "error"},
        "properties": {"fact": "AT-7"},
    }
    assert "AT001" in by_id  # described even when nothing broke it


def test_sarif_gives_unknown_rules_a_minimal_descriptor_and_right_indexes() -> None:
    run = json.loads(render_sarif(RESULT))["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    org_rule = next(r for r in rules if r["id"] == "org.require-owner")
    assert org_rule["id"] == "org.require-owner"
    assert "helpUri" not in org_rule  # an organisation's rule is not on our docs page
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_sarif_results_carry_level_location_and_fingerprint() -> None:
    results = json.loads(render_sarif(RESULT))["runs"][0]["results"]
    assert [r["level"] for r in results] == [
        "error",
        "note",
        "error",
        "error",
        "warning",
        "note",
        "warning",
    ]
    at002 = next(r for r in results if r["ruleId"] == "AT002")
    assert at002["message"] == {"text": "creditCard is enabled but the private key is missing"}
    assert at002["locations"] == [
        {
            "physicalLocation": {
                "artifactLocation": {"uri": "tenants/contoso.yaml", "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": 14, "startColumn": 5},
            }
        }
    ]
    assert at002["partialFingerprints"] == {"atpayFinding/v1": fingerprint(FINDINGS[0])}


def test_sarif_marks_waived_findings_as_external_suppressions() -> None:
    results = json.loads(render_sarif(RESULT))["runs"][0]["results"]
    suppressed = [r for r in results if "suppressions" in r]
    assert [(r["ruleId"], r["suppressions"]) for r in suppressed] == [
        (
            "AT008",
            [
                {
                    "kind": "external",
                    "status": "accepted",
                    "justification": "portal-only rollout until Q3 (OPS-42)",
                }
            ],
        )
    ]


def test_fingerprint_survives_moved_lines_but_not_another_tenant_or_pointer() -> None:
    base = FINDINGS[0]
    moved = Finding(
        base.rule, base.level, "reworded", base.file, 99, 1, base.pointer, 3, base.fact, base.tenant
    )
    assert fingerprint(moved) == fingerprint(base)
    other_tenant = Finding(base.rule, base.level, base.message, base.file, tenant="other")
    assert fingerprint(other_tenant) != fingerprint(base)
    other_pointer = Finding(
        base.rule, base.level, base.message, base.file, pointer="/x", tenant="contoso"
    )
    assert fingerprint(other_pointer) != fingerprint(base)
    assert re.fullmatch("[0-9a-f]{32}", fingerprint(base))


def test_sarif_uses_file_uris_for_absolute_paths(sarif_validator: Any) -> None:
    finding = Finding("AT002", "error", "m", "/srv/repo/tenants/a b.yaml")
    log = json.loads(render_sarif(make_result([finding], files=[finding.file], documents=[])))
    location = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "file:///srv/repo/tenants/a%20b.yaml"}
    assert sarif_errors(sarif_validator, log) == []


def test_sarif_stays_valid_and_exact_with_hostile_content(sarif_validator: Any) -> None:
    log = json.loads(render_sarif(hostile_result()))
    assert sarif_errors(sarif_validator, log) == []
    results = log["runs"][0]["results"]
    assert [r["message"]["text"] for r in results] == [HOSTILE_MESSAGE] * 4
    uri = results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert re.fullmatch(r"[A-Za-z0-9/._~%-]+", uri)
    assert uri.endswith("%F0%9D%84%9E%FF.yaml")  # 𝄞 as UTF-8, the undecodable byte as itself
    waived = next(r for r in results if "suppressions" in r)
    assert waived["suppressions"][0]["justification"] == HOSTILE_REASON


# --- junit -------------------------------------------------------------------------


def junit_cases(output: str) -> list[ET.Element]:
    root = ET.fromstring(output)
    assert root.tag == "testsuites"
    (suite,) = root
    return list(suite.iter("testcase"))


def test_junit_has_one_case_per_document_and_failures_where_errors() -> None:
    output = render_junit(RESULT)
    assert output.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites ')
    cases = junit_cases(output)
    assert [(c.get("classname"), c.get("name"), c.find("failure") is not None) for c in cases] == [
        ("tenants/broken.yaml", "document 0", True),
        ("tenants/clean.yaml", "file", False),
        ("tenants/clean.yaml", "document 0 (northwind)", False),
        ("tenants/contoso.yaml", "document 0 (contoso)", True),
        ("tenants/contoso.yaml", "document 1 (contoso-eu)", False),
        ("tenants/fabrikam.yaml", "document 0 (fabrikam)", False),
    ]


def test_junit_failure_lists_all_errors_and_warnings_of_the_document() -> None:
    case = junit_cases(render_junit(RESULT))[3]
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == "2 errors"
    assert failure.get("type") == "AT002, schema"
    assert (failure.text or "").splitlines() == [
        "tenants/contoso.yaml:5:3: [error] unknown key 'activaton'; did you mean 'activation'? "
        "(schema)",
        "tenants/contoso.yaml:14:5: [error] creditCard is enabled but the private key is "
        "missing (AT002)",
    ]


def test_junit_keeps_warnings_infos_and_waived_of_passing_cases_in_system_out() -> None:
    cases = junit_cases(render_junit(RESULT))
    fabrikam = cases[5].find("system-out")
    assert fabrikam is not None
    assert "(org.require-owner)" in (fabrikam.text or "")
    assert "[waived: portal-only rollout until Q3 (OPS-42)]" in (fabrikam.text or "")
    contoso_eu = cases[4].find("system-out")
    assert contoso_eu is not None and "(AT007)" in (contoso_eu.text or "")


def test_junit_suite_counts_are_correct() -> None:
    root = ET.fromstring(render_junit(RESULT))
    suite = root[0]
    for element in (root, suite):
        assert element.get("tests") == "6"
        assert element.get("failures") == "2"
        assert element.get("errors") == "0"
        assert element.get("skipped") == "0"


def test_junit_under_strict_fails_documents_with_warnings() -> None:
    cases = junit_cases(render_junit(make_result(strict=True)))
    failing = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failing == ["document 0", "document 0 (contoso)", "document 1 (contoso-eu)"]
    # waived warnings never fail, strict or not
    assert cases[5].find("failure") is None


def test_junit_lists_every_checked_file_even_without_documents() -> None:
    result = make_result([], files=["empty.yaml"], documents=[])
    (case,) = junit_cases(render_junit(result))
    assert (case.get("classname"), case.get("name"), len(case)) == ("empty.yaml", "file", 0)


def test_junit_is_well_formed_with_hostile_content() -> None:
    output = render_junit(hostile_result())
    assert "<script>" not in output
    cases = junit_cases(output)
    assert [(c.get("name"), c.find("failure") is not None) for c in cases] == [
        ("file", False),
        ("document 0 (t<1>\"&'\\x01)", True),
    ]
    document = cases[1]
    assert document.get("classname") == 'tenants/<b>"we\'ird", name:1\\x1b\n%2C ünï 𝄞\\udcff.yaml'
    failure = document.find("failure")
    assert failure is not None
    assert failure.get("type") == "AT002, org,rule:x"
    text = failure.text or ""
    assert "<script>alert(\"x\")</script> & 'quotes' ünïcødé ✓ 𝄞 \\x00\\x07\\x1b[31mred" in text
    assert "]]>" in text
    assert len(text.splitlines()) == 2
    out = document.find("system-out")
    assert out is not None and '[waived: ok\'d by <ops> "team" ::warning::x\\n%]' in (
        out.text or ""
    )


# --- github ------------------------------------------------------------------------

_COMMAND = re.compile(r"::(?P<command>\w+) (?P<properties>.*?)::(?P<data>.*)")


def _unescape(text: str, table: dict[str, str]) -> str:
    return re.sub("%(25|0D|0A|3A|2C)", lambda m: table.get(m.group(), m.group()), text)


DATA_ESCAPES = {"%25": "%", "%0D": "\r", "%0A": "\n"}
PROPERTY_ESCAPES = {**DATA_ESCAPES, "%3A": ":", "%2C": ","}


def parse_github(line: str) -> tuple[str, dict[str, str], str]:
    """Read a workflow command the way the Actions runner does."""
    match = _COMMAND.fullmatch(line)
    assert match, line
    properties = {}
    for pair in match["properties"].split(","):
        key, _, value = pair.partition("=")
        properties[key] = _unescape(value, PROPERTY_ESCAPES)
    return match["command"], properties, _unescape(match["data"], DATA_ESCAPES)


def test_github_emits_one_annotation_per_finding_with_file_line_and_column() -> None:
    lines = render_github(RESULT).splitlines()
    assert len(lines) == len(FINDINGS)
    assert lines[0] == "::error file=tenants/broken.yaml,line=3,col=3,title=yaml::" + (
        "duplicate key 'tenant' (first at line 2)"
    )
    parsed = [parse_github(line) for line in lines]
    assert [(c, p["title"]) for c, p, _ in parsed] == [
        ("error", "yaml"),
        ("notice", "yaml"),
        ("error", "schema"),
        ("error", "AT002"),
        ("warning", "AT007"),
        ("notice", "org.require-owner"),
        ("notice", "AT008 (waived)"),
    ]
    waived = parsed[-1]
    assert waived[1] == {
        "file": "tenants/fabrikam.yaml",
        "line": "9",
        "col": "7",
        "title": "AT008 (waived)",
    }
    assert waived[2].endswith("[waived: portal-only rollout until Q3 (OPS-42)]")


def test_github_escapes_hostile_messages_and_properties() -> None:
    finding = Finding(
        "org,rule:x", "error", "50% done\r\nline two ::warning::x %0A", "a:b,c%.yaml", 7, 2
    )
    line = render_github(make_result([finding]))
    assert line == (
        "::error file=a%3Ab%2Cc%25.yaml,line=7,col=2,title=org%2Crule%3Ax::"
        "50%25 done%0D%0Aline two ::warning::x %250A"
    )
    command, properties, message = parse_github(line)
    assert command == "error"
    assert properties == {"file": "a:b,c%.yaml", "line": "7", "col": "2", "title": "org,rule:x"}
    assert message == "50% done\r\nline two ::warning::x %0A"


def test_github_cannot_be_tricked_into_a_second_command_by_hostile_content() -> None:
    output = render_github(hostile_result())
    lines = output.splitlines()
    assert len(lines) == 4
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff\u2028\u202e]", output)
    for line in lines:
        _, properties, message = parse_github(line)
        assert set(properties) == {"file", "line", "col", "title"}
        assert properties["file"] == 'tenants/<b>"we\'ird", name:1\\x1b\n%2C ünï 𝄞\\udcff.yaml'
        assert message.startswith("<script>alert(\"x\")</script> & 'quotes' ünïcødé ✓ 𝄞 \\x00")
        assert "\r\n::error file=evil.yaml,line=1::forged %0A 100% ]]> \\u202eevil" in message
    assert [parse_github(line)[1]["title"] for line in lines] == [
        "yaml",
        "AT002",
        "org,rule:x",
        "AT007 (waived)",
    ]
