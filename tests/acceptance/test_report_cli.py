"""`atpay report` end to end: the example tenants planned against a fresh simulated state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import EXAMPLES, RunCli
from tests.spec_ids import LINK

from atpay_config.cli import report as report_cli

TENANTS = str(EXAMPLES / "tenants")
FIXTURES = str(EXAMPLES / "fixtures")
DEMO_KEY = EXAMPLES / "demo-identity" / "age-demo.key"


@pytest.fixture(autouse=True)
def demo_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(DEMO_KEY))
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.fixture
def initialised(run_cli: RunCli) -> RunCli:
    run_cli("state", "init", FIXTURES)
    return run_cli


def test_text_report_reads_like_the_autotask_menus(initialised: RunCli) -> None:
    out = initialised("report", TENANTS, "--tenant", "contoso").stdout
    assert "contoso  region=us-east, tier=enterprise" in out
    assert "  inactive → processing enabled" in out
    assert "    Admin > Features & Settings > Finance, Accounting & Invoicing\n" in out
    assert "      + Payment Processing link  [AT-2 AT-4 AT-17]" in out
    assert "\x1b" not in out  # not a terminal: no colour


def test_json_report_is_spec_section_9(initialised: RunCli) -> None:
    doc = json.loads(initialised("report", TENANTS, "--format", "json").stdout)
    assert list(doc) == ["version", "tenants"]
    tenants = {t["tenant"]: t for t in doc["tenants"]}
    assert set(tenants) == {"contoso", "fabrikam", "northwind", "tailspin", "adatum"}
    clerk = next(a for a in tenants["contoso"]["audiences"] if a["level"] == "Billing Clerk")
    assert clerk["kind"] == "staff" and clerk["before"] == [] and LINK in clerk["after"]
    # tailspin stays inactive: nobody sees anything, before or after (AT-3)
    assert all(a["before"] == a["after"] == [] for a in tenants["tailspin"]["audiences"])


def test_after_the_apply_nothing_changes(initialised: RunCli) -> None:
    initialised("apply", TENANTS, "--auto-approve")
    out = initialised("report", TENANTS, "--changes-only").stdout
    assert "No tenant changes what anyone sees." in out
    doc = json.loads(initialised("report", TENANTS, "--format", "json").stdout)
    contoso = next(t for t in doc["tenants"] if t["tenant"] == "contoso")
    assert all(a["before"] == a["after"] for a in contoso["audiences"])


def test_audience_and_changes_only(initialised: RunCli) -> None:
    doc = json.loads(
        initialised(
            "report", TENANTS, "--format", "json", "--audience", "portal:Manager", "--changes-only"
        ).stdout
    )
    # northwind stops before the keys (gateway inactive): nothing changes in its portal
    assert {t["tenant"] for t in doc["tenants"]} == {"contoso", "fabrikam"}
    assert all(
        [(a["kind"], a["level"]) for a in t["audiences"]] == [("portal", "Manager")]
        for t in doc["tenants"]
    )


def test_markdown_report(initialised: RunCli) -> None:
    out = initialised("report", TENANTS, "--format", "markdown", "--tenant", "fabrikam").stdout
    assert out.startswith("## Who sees what")
    assert "> [!WARNING]\n> **AT-15**" in out


def test_html_written_atomically_with_o(initialised: RunCli, tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.html"
    result = initialised("report", TENANTS, "--format", "html", "-o", str(target))
    assert result.stdout == ""
    assert "report written to" in result.stderr
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>")
    data = [
        json.loads(block.split(">", 1)[1])
        for block in page.split("</script>")
        if 'class="atpay-tenant"' in block
    ]
    assert {t[0] for t in data} == {"contoso", "fabrikam", "northwind", "tailspin", "adatum"}
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_failing_report_leaves_no_file_behind(initialised: RunCli, tmp_path: Path) -> None:
    """-o is atomic while streaming: an error mid-way keeps the old file and no temporary."""
    template = tmp_path / "mine.txt.j2"
    template.write_text("{% for t in tenants %}{{ t.tenant }}\n{{ t.nope }}{% endfor %}")
    target = tmp_path / "report.txt"
    target.write_text("old\n", encoding="utf-8")
    result = initialised("report", TENANTS, "--template", str(template), "-o", str(target), exit=1)
    assert "template error" in result.stderr
    assert target.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_template_that_counts_tenants_is_a_clear_error(
    initialised: RunCli, tmp_path: Path
) -> None:
    template = tmp_path / "count.txt"
    template.write_text("{{ tenants | length }}", encoding="utf-8")
    result = initialised("report", TENANTS, "--template", str(template), exit=1)
    assert "looped over once" in result.stderr


def test_many_refusals_are_summarised(run_cli: RunCli) -> None:
    result = run_cli("report", TENANTS, "--format", "json", exit=1)
    assert len(json.loads(result.stdout)["tenants"]) == 5
    assert result.stderr.count("atpay: refused:") == 5
    assert "refused for 5 tenant(s)" in result.stderr


def test_user_template(initialised: RunCli, tmp_path: Path) -> None:
    template = tmp_path / "mine.txt.j2"
    template.write_text(
        "{% for t in tenants %}{{ t.tenant }} {{ t.after.name }}\n{% endfor %}", encoding="utf-8"
    )
    out = initialised("report", TENANTS, "--template", str(template)).stdout
    assert "contoso processing enabled\n" in out
    assert "tailspin inactive\n" in out


def test_unreadable_template_is_exit_1(initialised: RunCli, tmp_path: Path) -> None:
    result = initialised("report", TENANTS, "--template", str(tmp_path / "nope.j2"), exit=1)
    assert "cannot read" in result.stderr


def test_unknown_tenant_is_exit_1(initialised: RunCli) -> None:
    assert "no manifest declares" in initialised(
        "report", TENANTS, "--tenant", "nope", exit=1
    ).stderr


def test_unknown_audience_is_exit_1(initialised: RunCli) -> None:
    assert "no tenant has that security level" in initialised(
        "report", TENANTS, "--audience", "Janitor", exit=1
    ).stderr


def test_validation_errors_are_exit_1_with_findings_on_stderr(initialised: RunCli) -> None:
    result = initialised("report", str(EXAMPLES / "invalid"), exit=1)
    assert result.stdout == ""
    assert "[error]" in result.stderr
    assert "validation errors" in result.stderr


def test_tenant_without_state_is_reported_unchanged_and_exit_1(run_cli: RunCli) -> None:
    result = run_cli("report", TENANTS, "--tenant", "contoso", exit=1)
    assert "plan refused" in result.stdout
    assert "atpay: refused:" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_path_is_exit_1(run_cli: RunCli, tmp_path: Path) -> None:
    assert "no such file" in run_cli("report", str(tmp_path / "nope"), exit=1).stderr


@pytest.mark.parametrize(
    ("tty", "no_color", "output", "template", "fmt", "expected"),
    [
        (True, None, None, None, "text", True),
        (True, "1", None, None, "text", False),  # https://no-color.org
        (True, "", None, None, "text", True),  # empty NO_COLOR is unset
        (False, None, None, None, "text", False),
        (True, None, "out.txt", None, "text", False),
        (True, None, None, None, "markdown", False),
        (True, None, None, "mine.txt.j2", "text", True),
        (True, None, None, "mine.html", "text", False),
    ],
)
def test_colour_only_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
    tty: bool,
    no_color: str | None,
    output: str | None,
    template: str | None,
    fmt: str,
    expected: bool,
) -> None:
    monkeypatch.setattr(report_cli.sys.stdout, "isatty", lambda: tty)
    if no_color is not None:
        monkeypatch.setenv("NO_COLOR", no_color)
    assert report_cli.use_color(output=output, template=template, fmt=fmt) is expected


def _walkthrough() -> str:
    """The report walkthrough in examples/README.md (its console blocks are checked below)."""
    heading = "## The report: from inactive to fully enabled"
    text = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    assert heading in text, "examples/README.md lost its report walkthrough"
    return text.split(heading, 1)[1]


@pytest.mark.parametrize(
    "command",
    [
        "atpay report examples/tenants --tenant contoso",
        "atpay report examples/tenants --tenant fabrikam --audience staff:Manager",
    ],
)
def test_walkthrough_shows_the_real_output(
    initialised: RunCli, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    monkeypatch.chdir(EXAMPLES.parent)
    text = _walkthrough()
    block = text.split(f"$ {command}\n", 1)[1].split("```", 1)[0]
    args = command.split()[1:]
    assert initialised(*args).stdout == block
    assert (EXAMPLES / "report-screenshot.png").read_bytes().startswith(b"\x89PNG")
