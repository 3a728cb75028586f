"""The UI-visibility report model and its renderers (SPEC sections 8, 9)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.spec_ids import (
    BUTTON,
    CP_CC,
    FIELDS,
    FORM,
    LINK,
    OPTION,
    PAY,
    PP_CC,
    PP_EC,
    SEARCH,
)
from tests.unit.report.visibility_scenarios import (
    HOSTILE,
    activated,
    deactivation,
    fixture,
    fully_enabled,
    hostile,
    inactive_to_enabled,
    multi_tenant,
    outside_us,
    portal_only,
)

from atpay_config.autotask.tenant import TenantState
from atpay_config.autotask.ui import ELEMENTS
from atpay_config.errors import AtpayError
from atpay_config.manifest.model import Manifest
from atpay_config.plan.planner import TenantPlan
from atpay_config.report.visibility import (
    REPORT_RENDERERS,
    SCREENS,
    TenantVisibility,
    VisibilityReport,
    autoescape_for,
    build_visibility,
    iter_json,
    markdown_text,
    render,
    render_html,
    render_markdown,
    render_template,
    render_text,
    script_json,
    terminal_text,
    visibility_markdown_section,
)

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "report" / "visibility"
REGEN = os.environ.get("ATPAY_REGEN_GOLDEN") == "1"


STAFF_ALL = [LINK, FIELDS, SEARCH, BUTTON, OPTION, PP_CC, PP_EC]
STAFF_ALL_BY_ELEMENT_ORDER = [e.id for e in ELEMENTS if e.id in STAFF_ALL]


def first(report: VisibilityReport) -> TenantVisibility:
    return next(iter(report.tenants))


def tenant_data(page: str) -> list[list[Any]]:
    """The HTML page's per-tenant JSON blocks, parsed."""
    marker = '<script type="application/json" class="atpay-tenant">'
    return [json.loads(block.split("</script>", 1)[0]) for block in page.split(marker)[1:]]


def audience(report: VisibilityReport, kind: str, level: str, tenant: int = 0) -> dict[str, object]:
    found = [
        a for a in report.to_dict()["tenants"][tenant]["audiences"]
        if a["kind"] == kind and a["level"] == level
    ]
    assert len(found) == 1, f"{kind}:{level} appears {len(found)} times"
    return dict(found[0])


# --- the model --------------------------------------------------------------------------


def test_json_is_exactly_the_spec_section_9_shape() -> None:
    doc = json.loads(build_visibility([inactive_to_enabled()]).to_json())
    assert list(doc) == ["version", "tenants"]
    assert doc["version"] == 1
    [tenant] = doc["tenants"]
    assert list(tenant) == ["tenant", "audiences"]
    assert tenant["tenant"] == "contoso"
    for aud in tenant["audiences"]:
        # SPEC keys first; added, removed and warnings are our documented extras.
        assert list(aud) == ["kind", "level", "before", "after", "added", "removed", "warnings"]
        assert aud["kind"] in ("staff", "portal")
        assert all(isinstance(i, str) for i in aud["before"] + aud["after"])


def test_every_staff_level_then_every_portal_level_is_an_audience() -> None:
    doc = build_visibility([inactive_to_enabled()]).to_dict()
    assert [(a["kind"], a["level"]) for a in doc["tenants"][0]["audiences"]] == [
        ("staff", "System Administrator"),
        ("staff", "Full Access"),
        ("staff", "Manager"),
        ("staff", "API User"),
        ("staff", "Billing Clerk"),
        ("staff", "Dispatcher"),
        ("portal", "Manager"),
        ("portal", "User"),
        ("portal", "Client Accountant"),
    ]


def test_sales_contact_form_before_the_demo_request() -> None:
    state = fixture("contoso")
    report = build_visibility([("contoso", {}, state, activated(state))])
    assert audience(report, "staff", "Billing Clerk")["after"] == [LINK, FORM]  # AT-5


@pytest.mark.parametrize(
    ("kind", "level", "after"),
    [
        ("staff", "System Administrator", STAFF_ALL),
        ("staff", "Manager", STAFF_ALL),
        ("staff", "Billing Clerk", STAFF_ALL),
        # AT-18: API User has no Contracts payments permission: no Payment Search.
        ("staff", "API User", [LINK, FIELDS, BUTTON, OPTION, PP_CC, PP_EC]),
        # AT-1: no Finance Admin permission: no link, no page; AT-13 still adds the button.
        ("staff", "Dispatcher", [BUTTON, OPTION, PP_CC, PP_EC]),
        ("portal", "Manager", [PAY, CP_CC]),
        ("portal", "Client Accountant", [PAY, CP_CC]),
        ("portal", "User", []),  # AT-19: may not view invoices
    ],
)
def test_inactive_to_fully_enabled(kind: str, level: str, after: list[str]) -> None:
    aud = audience(build_visibility([inactive_to_enabled()]), kind, level)
    assert aud["before"] == []  # AT-3: everything hidden while inactive
    assert aud["after"] == after
    assert aud["added"] == after
    assert aud["removed"] == []
    assert aud["warnings"] == []


def test_deactivation_removes_everything() -> None:
    report = build_visibility([deactivation()])
    aud = audience(report, "staff", "Manager")
    assert aud["before"] == STAFF_ALL
    assert aud["after"] == []
    assert aud["removed"] == STAFF_ALL
    assert audience(report, "portal", "Manager")["removed"] == [PAY, CP_CC]


def test_at15_warning_sits_beside_process_payment_only() -> None:
    report = build_visibility([portal_only()])
    aud = audience(report, "staff", "System Administrator")
    assert aud["before"] == [LINK, FIELDS]
    assert aud["added"] == [SEARCH, BUTTON, OPTION]  # no staff payment type (AT-15)
    assert {(w["element"], w["fact"]) for w in aud["warnings"]} == {  # type: ignore[union-attr]
        (BUTTON, "AT-15"),
        (OPTION, "AT-15"),
    }
    assert audience(report, "portal", "Manager")["warnings"] == []
    [note] = first(report).warnings
    assert note.fact == "AT-15"
    assert note.elements == ("Process Payment button", "Process Payment option")


def test_at20_and_at21_warnings_sit_beside_the_link() -> None:
    report = build_visibility([outside_us()])
    aud = audience(report, "staff", "Manager")
    assert aud["after"] == [LINK, FIELDS]
    assert [(w["element"], w["fact"]) for w in aud["warnings"]] == [  # type: ignore[union-attr]
        (LINK, "AT-20"),
        (LINK, "AT-21"),
    ]
    assert "CA/CAD" in render_text(report)
    assert "quickbooks-payments" in render_markdown(report)


def test_changes_only_drops_unchanged_audiences_and_tenants() -> None:
    report = build_visibility(multi_tenant(), changes_only=True)
    names = [t.tenant for t in report.tenants]
    assert "maple" not in names  # nothing changes there
    contoso = first(report)
    assert "User" not in [a.level for a in contoso.audiences if a.kind == "portal"]
    assert all(a.changed for t in report.tenants for a in t.audiences)
    assert "No tenant changes" in render_text(build_visibility([outside_us()], changes_only=True))


def test_audience_filter_by_level_matches_both_kinds_case_insensitively() -> None:
    report = build_visibility([inactive_to_enabled()], audience="manager")
    assert [a.key for a in first(report).audiences] == ["staff:Manager", "portal:Manager"]


def test_audience_filter_with_a_kind() -> None:
    report = build_visibility([inactive_to_enabled()], audience="portal:Manager")
    assert [a.key for a in first(report).audiences] == ["portal:Manager"]


def test_unknown_audience_names_the_levels() -> None:
    with pytest.raises(AtpayError, match=r"no tenant has that security level.*Billing Clerk"):
        build_visibility([inactive_to_enabled()], audience="Janitor")


def test_tenant_filter() -> None:
    report = build_visibility(multi_tenant(), tenant=["fabrikam", "maple"])
    assert [t.tenant for t in report.tenants] == ["fabrikam", "maple"]
    assert [t.tenant for t in build_visibility(multi_tenant(), tenant="maple").tenants] == ["maple"]


def test_a_level_only_one_state_has_sees_nothing_on_the_other_side() -> None:
    before = fully_enabled(fixture("contoso"))
    after = fully_enabled(fixture("contoso", securityLevels=[]))
    report = build_visibility([("contoso", {}, before, after)], audience="Billing Clerk")
    aud = audience(report, "staff", "Billing Clerk")
    assert aud["after"] == [] and aud["removed"] == STAFF_ALL


def test_a_refused_plan_shows_unchanged_with_the_reason() -> None:
    state = TenantState.fresh("contoso")
    plan = TenantPlan(
        tenant="contoso",
        manifest=Manifest(tenant="contoso", file="t.yaml", labels={"region": "eu"}),
        steps=(),
        before=state,
        after=state,
        state_version=0,
        refusal="tenant 'contoso' has no simulated Autotask state",
    )
    report = build_visibility([plan])
    [tenant] = report.tenants
    assert tenant.labels == (("region", "eu"),)
    assert not tenant.changed
    assert tenant.note is not None and "no simulated Autotask state" in tenant.note
    assert "plan refused" in render_text(report)


def test_every_element_is_on_exactly_one_screen() -> None:
    placed = [e.id for s in SCREENS for e in s.elements]
    assert sorted(placed) == sorted(e.id for e in ELEMENTS)
    assert all(e.kind == s.kind for s in SCREENS for e in s.elements)


def test_no_key_material_reaches_any_output() -> None:
    report = build_visibility(multi_tenant())
    for name in REPORT_RENDERERS:
        out = render(report, name)
        # the masks in the state hold a fingerprint prefix (a1b2, c3d4): never shown
        assert "a1b2" not in out and "c3d4" not in out, name


# --- renderers --------------------------------------------------------------------------


def test_registry_lists_the_four_formats() -> None:
    assert list(REPORT_RENDERERS) == ["text", "markdown", "html", "json"]


def test_text_marks_appearing_and_disappearing_elements() -> None:
    text = render_text(build_visibility([deactivation()], audience="staff:Manager"))
    assert "    Admin > Features & Settings > Finance, Accounting & Invoicing\n" in text
    assert "      − Payment Processing link  [AT-2 AT-4 AT-17]" in text
    assert "\x1b" not in text
    enabled = render_text(build_visibility([inactive_to_enabled()], audience="staff:Manager"))
    assert "      + Process Payment button  [AT-11 AT-13]" in enabled


def test_text_colour_only_when_asked() -> None:
    report = build_visibility([inactive_to_enabled()])
    coloured = render_text(report, color=True)
    assert "\x1b[32m+ Payment Processing link\x1b[0m" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == render_text(report)


def test_text_escapes_control_characters_from_level_names() -> None:
    base = fixture("contoso", securityLevels=[{"name": "Clerk\x1b[2J", "admin": []}])
    text = render_text(build_visibility([("contoso", {}, base, base)]))
    assert "\x1b" not in text
    assert "Clerk\\x1b[2J" in text
    assert terminal_text("a\nb") == "a\\x0ab"


def test_markdown_is_a_table_per_tenant_with_changes_bold() -> None:
    md = render_markdown(build_visibility([portal_only()]))
    assert md.startswith("## Who sees what")
    assert "| Staff | System Administrator | Full Access | Manager | API User |" in md
    assert "**+ appears** ⚠️ AT-15" in md
    assert "> [!WARNING]\n> **AT-15** (Process Payment button; Process Payment option)" in md


def test_markdown_section_for_the_plan_comment() -> None:
    section = visibility_markdown_section(build_visibility([inactive_to_enabled()]))
    assert section.startswith("### Who sees what\n")
    assert "#### contoso: inactive → processing enabled" in section
    assert "UI-visibility report for" not in section  # the plan comment has its own intro


def test_markdown_escapes_markup_and_table_syntax() -> None:
    md = render_markdown(build_visibility([hostile()]))
    assert "<script>" not in md
    assert "&lt;script>alert\\(1)" not in md  # parentheses are harmless and left alone
    assert "Clerk &lt;script>alert(1)&lt;/script> \\| \\*bold\\*" in md
    assert markdown_text("[x](javascript:y)") == "\\[x\\](javascript:y)"


def test_html_escapes_everything_from_data() -> None:
    page = render_html(build_visibility([hostile()]))
    assert HOSTILE not in page
    assert page.count("<script>") == 1  # ours; the rest is data the browser never runs
    assert page.count("</script>") == page.count("<script")  # no value ended a block early
    [data] = tenant_data(page)
    assert data[0] == f"evil{HOSTILE}"  # the value, intact, once parsed
    assert "evil\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in page


def test_script_json_keeps_markup_out_of_the_page() -> None:
    raw = script_json(["</script><!-- & \u2028"])
    assert "<" not in raw and ">" not in raw and "&" not in raw and "\u2028" not in raw
    assert json.loads(raw) == ["</script><!-- & \u2028"]


def test_html_forbids_every_request() -> None:
    page = render_html(build_visibility(multi_tenant()))
    assert "default-src 'none'" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "@import" not in page and "url(" not in page


def test_html_writes_screens_once_and_per_tenant_only_compact_data() -> None:
    one = render_html(build_visibility([inactive_to_enabled()]))
    many = render_html(build_visibility([inactive_to_enabled()] * 50))
    assert one.count('<template id="screen-') == len(SCREENS)
    assert many.count('<template id="screen-') == len(SCREENS)
    assert 'data-slot="admin.payment_processing_link"' in one
    per_tenant = (len(many) - len(one)) / 49
    assert per_tenant < 700, per_tenant  # bytes: ids as bits, stages and warnings shared
    page = render_html(build_visibility([inactive_to_enabled()], audience="staff:Manager"))
    [data] = tenant_data(page)
    tenant, _labels, before, after, note, [aud] = data
    assert (tenant, aud[0], aud[1]) == ("contoso", "staff", "Manager")
    assert before != after and note is None
    bits = [e.id for i, e in enumerate(ELEMENTS) if aud[3] >> i & 1]
    assert bits == STAFF_ALL_BY_ELEMENT_ORDER


def test_html_meta_carries_the_facts_for_the_tooltips() -> None:
    page = render_html(build_visibility([]))
    marker = '<script type="application/json" id="atpay-meta">'
    meta = json.loads(page.split(marker)[1].split("<")[0])
    link = meta["elements"][0]
    assert link[0] == "admin.payment_processing_link" and link[3] == ["AT-2", "AT-4", "AT-17"]


@pytest.mark.parametrize(
    ("name", "escaped"),
    [
        ("report.html", True),
        ("report.HTML.j2", True),
        ("r.htm.jinja", True),
        ("r.xml", True),
        ("report.md", False),
        ("report.txt.j2", False),
        ("report.j2", False),
    ],
)
def test_user_templates_autoescape_by_extension(name: str, escaped: bool) -> None:
    assert autoescape_for(name) is escaped
    out = render_template(
        build_visibility([hostile()]), "{% for t in tenants %}{{ t.tenant }}{% endfor %}", name=name
    )
    assert (HOSTILE in out) is not escaped


def test_user_template_sees_the_shipped_context() -> None:
    source = (
        "{% for t in tenants %}{% for a in t.audiences if a.changed %}"
        "{{ t.tenant }}/{{ a.key }}: {{ a.added | join(',') }}\n{% endfor %}{% endfor %}"
    )
    out = render_template(build_visibility([outside_us(), deactivation()]), source, name="x.txt")
    assert out.splitlines()[0] == "northwind/staff:System Administrator: "


def test_the_readme_example_template_runs_in_one_pass() -> None:
    readme = Path(__file__).resolve().parents[3] / "src/atpay_config/report/templates/README.md"
    source = readme.read_text(encoding="utf-8").split("```jinja\n", 1)[1].split("```", 1)[0]
    out = render_template(build_visibility(iter([outside_us(), deactivation()])), source, name="x")
    assert out.endswith("2 tenant(s)")
    assert "northwind / Staff · Manager" in out
    assert render_template(build_visibility([]), source, name="x").split() == [
        "No", "tenants.", "0", "tenant(s)",
    ]


def test_user_template_errors_name_the_file_and_line() -> None:
    with pytest.raises(AtpayError, match=r"mine\.txt:2: template error"):
        render_template(build_visibility([]), "ok\n{% for %}", name="mine.txt")
    with pytest.raises(AtpayError, match=r"mine\.txt: template error"):
        render_template(build_visibility([]), "{{ nope.x }}", name="mine.txt")


def test_empty_report_renders_in_every_format() -> None:
    report = build_visibility([])
    for fmt in REPORT_RENDERERS:
        assert render(report, fmt)
    assert json.loads(render(report, "json")) == {
        "version": 1,
        "tenants": [],
    }


# --- golden files -------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "fmt"), [("text", "text"), ("markdown", "markdown")])
def test_golden(name: str, fmt: str) -> None:
    """The multi-tenant example, pinned; ATPAY_REGEN_GOLDEN=1 rewrites (review the diff)."""
    out = "".join(REPORT_RENDERERS[fmt](build_visibility(multi_tenant())))
    path = GOLDEN / f"{name}.golden"
    if REGEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(out, encoding="utf-8")
    assert path.exists(), f"{path} missing; run with ATPAY_REGEN_GOLDEN=1 and review it"
    assert out == path.read_text(encoding="utf-8")


# --- laziness -----------------------------------------------------------------------------


def _exploding(items: list[Any], *, after: int, seen: list[str]) -> Iterator[Any]:
    """The items, then an error: a stand-in for a plan stream that fails part way."""
    for item in items[:after]:
        seen.append(item[0])
        yield item
    raise RuntimeError(f"stream broke after {after} tenants")


@pytest.mark.parametrize("fmt", list(REPORT_RENDERERS))
def test_each_tenant_is_written_before_the_next_is_read(
    monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """Fed a stream that breaks at its third tenant, the first two were already written."""
    monkeypatch.setattr("atpay_config.report.visibility.CHUNK_CHARS", 1)  # no batching
    items = multi_tenant()
    seen: list[str] = []
    report = build_visibility(_exploding(items, after=2, seen=seen))
    assert seen == [items[0][0]]  # started up to its first tenant, no further
    written: list[str] = []
    with pytest.raises(RuntimeError, match="after 2 tenants"):
        for chunk in REPORT_RENDERERS[fmt](report):
            written.append(chunk)
    out = "".join(written)
    assert items[0][0] in out and items[1][0] in out


def test_a_report_over_a_stream_renders_once() -> None:
    reads = 0

    def stream() -> Iterator[Any]:
        nonlocal reads
        for item in multi_tenant():
            reads += 1
            yield item

    report = build_visibility(stream())
    text = render_text(report)
    assert reads == len(multi_tenant())
    assert text == render_text(build_visibility(multi_tenant()))
    with pytest.raises(RuntimeError, match="rendered once"):
        render_text(report)


def test_a_report_over_a_list_renders_again() -> None:
    report = build_visibility(multi_tenant())
    assert render_text(report) == render_text(report)


def test_unknown_audience_fails_before_any_output_from_a_stream() -> None:
    with pytest.raises(AtpayError, match="no tenant has that security level"):
        build_visibility(iter(multi_tenant()), audience="Janitor")


def test_audience_found_late_keeps_earlier_tenants() -> None:
    later = fixture("late", securityLevels=[{"name": "Night Clerk", "admin": []}])
    items = [*multi_tenant(), ("late", {}, later, later)]
    report = build_visibility(iter(items), audience="Night Clerk")
    tenants = list(report.tenants)
    assert [t.tenant for t in tenants] == [item[0] for item in items]
    assert [a.key for a in tenants[-1].audiences] == ["staff:Night Clerk"]
    assert all(not t.audiences for t in tenants[:-1])


def test_streamed_json_is_byte_for_byte_json_dumps() -> None:
    for items in ([], [inactive_to_enabled()], multi_tenant()):
        report = build_visibility(items)
        expected = json.dumps(report.to_dict(), indent=2, ensure_ascii=False)
        assert "".join(iter_json(report)) == expected
        assert render(report, "json") == expected
