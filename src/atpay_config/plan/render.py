"""Plan renderers: text (like `terraform plan`), JSON, and Markdown for a pull-request comment.

Each renderer is a pure function `Plan -> str` listed in `PLAN_RENDERERS`, which
the CLI's `--format` choice reads (STYLE practice 2). Keys appear only as masks
(eight bullets and four hex digits of a keyed fingerprint, AT-8).

Markers: `+` turns something on or saves it for the first time, `~` changes it,
`-` clears or turns it off.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from atpay_config.plan.build import Plan
from atpay_config.plan.planfile import SavedPlan
from atpay_config.plan.planner import (
    PlanStep,
    TenantPlan,
)

PlanRenderer = Callable[[Plan], str]

PLAN_JSON_VERSION = 1

_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(text: str) -> str:
    """No control characters or bidi overrides: a value cannot forge an output line."""
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def summary_counts(plan: Plan) -> tuple[int, int, int, int]:
    """(tenants to change, steps, unchanged, refused)."""
    changed = plan.changed
    refused = len(plan.refused)
    unchanged = len(plan.tenant_plans) - len(changed) - refused
    return len(changed), sum(len(tp.steps) for tp in changed), unchanged, refused


def summary_line(plan: Plan) -> str:
    changed, steps, unchanged, refused = summary_counts(plan)
    line = f"Plan: {changed} tenant(s) to change ({steps} step(s)), {unchanged} unchanged"
    return line + (f", {refused} refused." if refused else ".")


def tenant_summary(tp: TenantPlan) -> str:
    """One line per tenant: `contoso: 3 to change (activate, save keys, set payment types)`."""
    if tp.refusal is not None:
        return f"{tp.tenant}: refused: {tp.refusal}"
    if not tp.steps:
        return f"{tp.tenant}: no changes"
    labels = list(dict.fromkeys(step.label for step in tp.steps))
    return f"{tp.tenant}: {len(tp.steps)} to change ({', '.join(labels)})"


def render_text(plan: Plan) -> str:
    lines: list[str] = []
    for tp in plan.tenant_plans:
        if not tp.steps and tp.refusal is None and not tp.notes:
            continue
        acting = plan.user or tp.before.default_user() or "?"
        lines.append(f"{tp.tenant} (state version {tp.state_version}, acting as {acting})")
        if tp.refusal is not None:
            lines.append(f"  ! refused: {_visible(tp.refusal)}")
        for step in tp.steps:
            lines.append(f"  {step.change} {_visible(step.description)}  [{step.fact}]")
        if tp.key_change != "none":
            lines.append(f"  keys: {tp.key_change}")
        for note in tp.notes:
            lines.append(f"  note: {_visible(note)}")
        lines.append("")
    if not plan.changed and not plan.refused:
        lines.append("No changes. Every tenant matches its manifest.")
    lines.append(summary_line(plan))
    return "\n".join(lines)


def _step_json(tp: TenantPlan, step: PlanStep) -> dict[str, Any]:
    return {**step.to_dict(), "marker": step.change}


def render_json(plan: Plan) -> str:
    changed, steps, unchanged, refused = summary_counts(plan)
    doc = {
        "version": PLAN_JSON_VERSION,
        "created_at": plan.created_at,
        "state": plan.store,
        "manifest_digest": plan.manifest_digest,
        "tenants": [
            {
                "tenant": tp.tenant,
                "file": tp.manifest.file,
                "document": tp.manifest.document,
                "state_version": tp.state_version,
                "changed": tp.changed,
                "key_change": tp.key_change,
                "refusal": tp.refusal,
                "notes": list(tp.notes),
                "steps": [_step_json(tp, s) for s in tp.steps],
            }
            for tp in plan.tenant_plans
        ],
        "summary": {
            "tenants": len(plan.tenant_plans),
            "to_change": changed,
            "steps": steps,
            "unchanged": unchanged,
            "refused": refused,
        },
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


def _md(text: str) -> str:
    """Markdown-safe inline text: no HTML, no table breaks, no stray emphasis."""
    text = _visible(text)
    for char in "\\`*_[]<>|#":
        text = text.replace(char, "\\" + char)
    return text


def render_markdown(plan: Plan) -> str:
    changed, _steps, unchanged, refused = summary_counts(plan)
    head = f"### atpay plan: {changed} tenant(s) to change, {unchanged} unchanged"
    lines = [head + (f", **{refused} refused**" if refused else ""), ""]
    shown = [tp for tp in plan.tenant_plans if tp.steps or tp.refusal is not None]
    if not shown:
        lines.append("No changes. Every tenant matches its manifest.")
        return "\n".join(lines)
    for tp in shown:
        lines.append(f"- {_md(tenant_summary(tp))}")
    lines.append("")
    for tp in shown:
        if not tp.steps:
            continue
        lines += [
            f"<details><summary>{_md(tp.tenant)}: {len(tp.steps)} step(s)</summary>",
            "",
            "| | step | fact |",
            "|---|---|---|",
        ]
        lines += [f"| `{s.change}` | {_md(s.description)} | {s.fact} |" for s in tp.steps]
        if tp.key_change != "none":
            lines.append(f"\nKeys: **{tp.key_change}**")
        lines += [f"\n> {_md(note)}" for note in tp.notes]
        lines += ["", "</details>", ""]
    lines.append(f"_{summary_line(plan)}_")
    # The admins' question before merging: after this, who sees what (SPEC section 8)?
    from atpay_config.report.visibility import build_visibility, visibility_markdown_section

    report = build_visibility(plan.tenant_plans, changes_only=True)
    lines += ["", visibility_markdown_section(report, heading="####")]
    return "\n".join(lines)


PLAN_RENDERERS: dict[str, PlanRenderer] = {
    "text": render_text,
    "json": render_json,
    "markdown": render_markdown,
}


def render_saved(saved: SavedPlan) -> str:
    """A saved plan as text, for `atpay apply PLANFILE` to show before asking."""
    lines = [f"Saved plan {saved.path} (made {saved.created_at} against {saved.store})", ""]
    changed = [t for t in saved.tenants if t.steps]
    for t in changed:
        lines.append(f"{t.tenant} (state version {t.state_version}, acting as {t.user or '?'})")
        for step in t.steps:
            lines.append(
                f"  {step.change} {_visible(step.description)}  [{step.fact}]"
            )
        lines.append("")
    total = sum(len(t.steps) for t in changed)
    lines.append(
        f"Plan: {len(changed)} tenant(s) to change ({total} step(s)), "
        f"{len(saved.tenants) - len(changed)} unchanged."
    )
    return "\n".join(lines)
