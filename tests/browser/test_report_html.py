"""The HTML report in headless Chromium: loads clean, asks for nothing, picks, stays inert.

Driven over the DevTools protocol (`cdp.py`), so every console message, exception
and network request the page causes is seen. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from tests.browser.cdp import Chromium
from tests.conftest import REPO, require_peer
from tests.unit.report.visibility_scenarios import HOSTILE, multi_tenant

from atpay_config.report.visibility import REPORT_RENDERERS, build_visibility, render_html

pytestmark = pytest.mark.peer

ARTIFACTS = REPO / "test-artifacts" / "report-html"

VISIBLE_ELEMENTS = """
Array.from(document.querySelectorAll('[data-element]'))
  .filter(e => e.offsetParent !== null)
  .map(e => [e.closest('section.tenant').dataset.tenant,
             e.closest('section.audience').dataset.audience,
             e.closest('[data-side]').dataset.side,
             e.dataset.element, e.className])
"""

COLUMNS = (
    "getComputedStyle(document.querySelector('.sides')).gridTemplateColumns.split(' ').length"
)


@pytest.fixture(scope="module")
def chromium_path() -> str:
    return require_peer("chromium", why="browser tests of the HTML report")


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render_html(build_visibility(multi_tenant())), encoding="utf-8")
    return path


@pytest.fixture
def browser(chromium_path: str) -> Iterator[Chromium]:
    with Chromium(chromium_path) as chromium:
        yield chromium


def visible(browser: Chromium) -> list[list[str]]:
    return list(browser.evaluate(VISIBLE_ELEMENTS))


def test_loads_with_no_console_errors_and_no_requests(browser: Chromium, page: Path) -> None:
    run = browser.open(page.as_uri())
    assert run.errors == []
    assert run.requests == [page.as_uri()]  # the page itself, nothing else
    csp = browser.evaluate(
        "document.querySelector('meta[http-equiv=\"Content-Security-Policy\"]').content"
    )
    assert csp.startswith("default-src 'none';")
    shot = browser.screenshot(ARTIFACTS / "desktop-1280.png")
    assert shot.read_bytes().startswith(b"\x89PNG")


def test_the_detectors_see_a_request_and_a_console_error(
    browser: Chromium, tmp_path: Path
) -> None:
    """Negative control: a page that asks for something or logs an error is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!doctype html><img src="http://example.invalid/x.png">'
        "<script>console.error('boom'); undefinedFunction();</script>",
        encoding="utf-8",
    )
    run = browser.open(bad.as_uri())
    assert "http://example.invalid/x.png" in run.requests
    assert "boom" in run.errors
    assert any("undefinedFunction" in e for e in run.exceptions)


def test_audience_from_the_url_fragment(browser: Chromium, page: Path) -> None:
    run = browser.open(page.as_uri() + "#tenant=contoso&audience=" + quote("portal:Manager"))
    assert run.errors == []
    assert browser.evaluate("document.getElementById('audience-picker').value") == "portal:Manager"
    shown = visible(browser)
    assert {(t, a) for t, a, *_ in shown} == {("contoso", "portal:Manager")}
    after = [(e, cls) for _t, _a, side, e, cls in shown if side == "after"]
    assert [e for e, _ in after] == ["client_portal.make_a_payment", "client_portal.credit_card"]
    assert all("is-arriving" in cls for _, cls in after)  # inactive → enabled: all new
    assert [e for _t, _a, side, e, _c in shown if side == "before"] == []
    browser.screenshot(ARTIFACTS / "contoso-portal-manager.png")


def test_staff_level_without_admin_sees_no_link(browser: Chromium, page: Path) -> None:
    browser.open(page.as_uri() + "#tenant=contoso&audience=" + quote("staff:Dispatcher"))
    after = [e for _t, _a, side, e, _c in visible(browser) if side == "after"]
    assert "admin.payment_processing_link" not in after  # AT-1
    assert "invoice.process_payment_button" in after  # AT-13


def test_changes_are_marked_and_warnings_sit_beside_elements(
    browser: Chromium, page: Path
) -> None:
    browser.open(page.as_uri() + "#tenant=northwind&audience=" + quote("staff:Manager"))
    shown = visible(browser)
    assert all("is-leaving" in c for _t, _a, side, _e, c in shown if side == "before")
    assert all("is-gone" in c for _t, _a, side, _e, c in shown if side == "after")
    browser.open(page.as_uri() + "#tenant=fabrikam&audience=" + quote("staff:Manager"))
    callouts = browser.evaluate(
        "Array.from(document.querySelectorAll('.callout')).filter(e => e.offsetParent)"
        ".map(e => [e.previousElementSibling.dataset.element, e.dataset.fact])"
    )
    assert sorted(callouts) == [
        ["invoice.process_payment_button", "AT-15"],
        ["invoice_history.process_payment_option", "AT-15"],
    ]
    title = browser.evaluate(
        "document.querySelector('section.tenant:not([hidden]) "
        "[data-side=after] [data-element=\"invoice.process_payment_button\"]').title"
    )
    assert "Facts: AT-11, AT-13" in title and "AT-15:" in title


def test_the_picker_updates_the_fragment_and_the_view(browser: Chromium, page: Path) -> None:
    browser.open(page.as_uri())
    assert len({a for _t, a, *_ in visible(browser)}) > 2
    browser.evaluate(
        "(() => { const s = document.getElementById('audience-picker');"
        " s.value = 'staff:API User'; s.dispatchEvent(new Event('change')); })()"
    )
    browser.evaluate("new Promise(r => setTimeout(() => r(true), 50))")
    assert browser.evaluate("location.hash") == "#audience=staff%3AAPI+User"
    assert {a for _t, a, *_ in visible(browser)} == {"staff:API User"}


def test_markup_in_tenant_labels_and_levels_is_inert(browser: Chromium, page: Path) -> None:
    tenant = f"evil{HOSTILE}"
    run = browser.open(page.as_uri() + "#tenant=" + quote(tenant))
    assert run.errors == []
    # only the page's own script runs; the data blocks are JSON the browser never executes
    assert browser.evaluate(
        "Array.from(document.scripts).filter(s => s.type !== 'application/json').length"
    ) == 1
    assert browser.evaluate("document.querySelectorAll('script.atpay-tenant').length") == len(
        multi_tenant()
    )
    texts = browser.evaluate(
        "(() => { const s = document.querySelector('section.tenant:not([hidden])');"
        " return [s.dataset.tenant, s.querySelector('h2').textContent,"
        " Array.from(s.querySelectorAll('section.audience h3')).map(h => h.textContent)]; })()"
    )
    assert texts[0] == tenant
    assert HOSTILE in texts[1]  # shown as text
    assert any(HOSTILE in h for h in texts[2])
    browser.screenshot(ARTIFACTS / "hostile-inert.png")


def test_usable_on_a_phone(chromium_path: str, page: Path) -> None:
    with Chromium(chromium_path, width=390, height=844, mobile=True) as phone:
        run = phone.open(page.as_uri() + "#audience=" + quote("staff:Manager"))
        assert run.errors == []
        # no sideways scrolling: everything fits the 390 px viewport
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        assert phone.evaluate(COLUMNS) == 1
        phone.screenshot(ARTIFACTS / "phone-390.png", max_height=2500)


def test_two_columns_at_1280(browser: Chromium, page: Path) -> None:
    browser.open(page.as_uri())
    assert browser.evaluate("document.documentElement.scrollWidth") <= 1280
    assert browser.evaluate(COLUMNS) == 2


def test_ten_thousand_tenants_open_in_seconds(browser: Chromium, tmp_path: Path) -> None:
    """Compact data, drawn on demand: a 10,000-tenant page loads fast and the picker works."""
    scenarios = multi_tenant()
    items = (
        (f"tenant-{i:05d}", labels, before, after)
        for i, (_name, labels, before, after) in zip(
            range(10_000), itertools.cycle(scenarios), strict=False
        )
    )
    path = tmp_path / "big.html"
    with path.open("w", encoding="utf-8") as handle:
        for chunk in REPORT_RENDERERS["html"](build_visibility(items)):
            handle.write(chunk)
    assert path.stat().st_size < 10_000_000
    started = time.perf_counter()
    run = browser.open(path.as_uri() + "#audience=" + quote("staff:Manager"))
    opened = time.perf_counter() - started
    assert run.errors == []
    assert opened < 10, f"{opened:.1f} s to open"
    assert browser.evaluate("document.getElementById('tenant-picker').options.length") == 10_001
    assert browser.evaluate("document.querySelectorAll('section.tenant').length") == 20
    assert "of 10000 tenants" in browser.evaluate("document.querySelector('.more').textContent")
    browser.open(path.as_uri() + "#tenant=tenant-09999&audience=" + quote("portal:Manager"))
    shown = visible(browser)
    assert {(t, a) for t, a, *_ in shown} <= {("tenant-09999", "portal:Manager")}
    assert browser.evaluate("document.querySelectorAll('section.tenant').length") == 1
