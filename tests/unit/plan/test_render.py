"""Plan renderers: terraform-like text, machine-readable JSON, a Markdown PR comment."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from tests.unit.plan.builders import PRIVATE, PUBLIC, write_workspace

from atpay_config.plan.build import Plan, build_plan
from atpay_config.plan.render import PLAN_RENDERERS, render_json, render_markdown, render_text
from atpay_config.state import open_store


def example_plan(tmp_path: Path) -> Plan:
    from tests.unit.plan.builders import fixture_doc

    from atpay_config.autotask.tenant import TenantState

    manifests, _ = write_workspace(tmp_path, {"contoso": "enabled", "tailspin": "inactive"})
    with open_store(str(tmp_path / "state.db")) as store:
        for tenant in ("contoso", "tailspin"):
            store.init_tenant(tenant, TenantState.from_fixture(fixture_doc(tenant)).to_dict())
        return build_plan(
            [str(manifests)],
            store=store,
            now="2026-01-05T10:00:00+00:00",
            today=dt.date(2026, 1, 5),
        )


def test_registry_lists_every_format() -> None:
    assert set(PLAN_RENDERERS) == {"text", "json", "markdown"}


def test_text_shows_ordered_steps_with_markers_and_facts(tmp_path: Path) -> None:
    text = render_text(example_plan(tmp_path))
    lines = text.splitlines()
    assert lines[0].startswith("contoso (state version 1, acting as gitops-bot)")
    assert lines[1] == "  + activate Autotask Electronic Payments (Admin > Activations)  [AT-3]"
    assert "  keys: new" in lines
    assert text.endswith("Plan: 1 tenant(s) to change (6 step(s)), 1 unchanged.")
    assert "tailspin" not in text


def test_markdown_has_a_one_line_summary_per_changed_tenant(tmp_path: Path) -> None:
    md = render_markdown(example_plan(tmp_path))
    assert md.startswith("### atpay plan: 1 tenant(s) to change, 1 unchanged")
    assert (
        "- contoso: 6 to change (activate, request sales contact, record gateway, save keys, "
        "set payment types)" in md
    )
    assert "<details><summary>contoso: 6 step(s)</summary>" in md


def test_json_is_machine_readable_and_masks_keys(tmp_path: Path) -> None:
    text = render_json(example_plan(tmp_path))
    doc = json.loads(text)
    assert doc["summary"] == {
        "tenants": 2,
        "to_change": 1,
        "steps": 6,
        "unchanged": 1,
        "refused": 0,
    }
    contoso = doc["tenants"][0]
    assert [s["marker"] for s in contoso["steps"]] == ["+"] * 6
    save = next(s for s in contoso["steps"] if s["action"] == "save_keys")
    assert save["args"]["public_mask"].startswith("••••••••")
    assert PUBLIC not in text and PRIVATE not in text
