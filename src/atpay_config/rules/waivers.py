"""Waivers: accepting one rule's findings for one tenant, for a while, on the record.

A waived finding is still counted and listed (marked with the reason), never
hidden. An expired waiver stops applying and is itself an error; a waiver that
matches no finding is reported so stale ones get cleaned up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from atpay_config.manifest.loader import SourceDocument
from atpay_config.rules.finding import Finding, RuleInfo

RULE = RuleInfo(
    id="waiver",
    level="error",
    title="Waiver expired, unused or not allowed",
    description="Waivers carry an owner, a reason and an expiry date; expired ones fail the run.",
)

UNWAIVABLE = frozenset({"yaml", "schema", "waiver", "policy"})
"""Findings about the input itself cannot be waived: fix the file instead."""


@dataclass(frozen=True, slots=True)
class Waiver:
    name: str
    tenant: str
    rule: str
    reason: str
    owner: str
    expires: dt.date
    file: str
    line: int
    column: int
    document: int

    @classmethod
    def from_document(cls, doc: SourceDocument) -> Waiver | Finding:
        """A waiver from a schema-valid `Waiver` document, or a finding on a bad date."""
        spec = doc.data["spec"]
        line, column = doc.locate("")
        try:
            expires = dt.date.fromisoformat(spec["expires"])
        except ValueError:
            eline, ecolumn = doc.locate("/spec/expires")
            return Finding(
                RULE.id,
                "error",
                f"spec.expires {spec['expires']!r} is not a real date; write YYYY-MM-DD",
                doc.file,
                eline,
                ecolumn,
                "/spec/expires",
                doc.index,
            )
        return cls(
            name=doc.data["metadata"]["name"],
            tenant=spec["tenant"],
            rule=spec["rule"],
            reason=spec["reason"],
            owner=spec["owner"],
            expires=expires,
            file=doc.file,
            line=line,
            column=column,
            document=doc.index,
        )

    def finding(self, message: str, *, level: str = "error", pointer: str = "") -> Finding:
        return Finding(
            RULE.id,
            "error" if level == "error" else "warning",
            message,
            self.file,
            self.line,
            self.column,
            pointer,
            self.document,
            tenant=self.tenant,
        )


def apply_waivers(
    findings: Sequence[Finding], waivers: Sequence[Waiver], *, today: dt.date
) -> list[Finding]:
    """Mark waived findings and add findings about the waivers themselves."""
    active: dict[tuple[str, str], Waiver] = {}
    out_waivers: list[Finding] = []
    for waiver in waivers:
        if waiver.rule in UNWAIVABLE:
            out_waivers.append(
                waiver.finding(
                    f"waiver '{waiver.name}' targets rule '{waiver.rule}', which cannot be "
                    "waived; fix the input instead",
                    pointer="/spec/rule",
                )
            )
        elif waiver.expires < today:
            out_waivers.append(
                waiver.finding(
                    f"waiver '{waiver.name}' for {waiver.rule} on tenant '{waiver.tenant}' "
                    f"expired on {waiver.expires.isoformat()} (owner {waiver.owner}); fix the "
                    "finding or renew the waiver with a new expiry date",
                    pointer="/spec/expires",
                )
            )
        else:
            active[(waiver.tenant, waiver.rule)] = waiver
    used: set[tuple[str, str]] = set()
    result: list[Finding] = []
    for finding in findings:
        key = (finding.tenant or "", finding.rule)
        match = active.get(key)
        if match is not None and finding.rule not in UNWAIVABLE:
            used.add(key)
            finding = finding.waive(
                f"{match.reason} (waiver '{match.name}', owner {match.owner}, "
                f"until {match.expires.isoformat()})"
            )
        result.append(finding)
    for key, waiver in active.items():
        if key not in used:
            out_waivers.append(
                waiver.finding(
                    f"waiver '{waiver.name}' matches no {waiver.rule} finding for tenant "
                    f"'{waiver.tenant}'; remove it",
                    level="warning",
                )
            )
    return result + out_waivers
