"""The one finding model every output format renders (STYLE practice 1)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

Level = Literal["error", "warning", "info"]
LEVELS: tuple[Level, ...] = ("error", "warning", "info")

DOCS_BASE = "https://github.com/atpay-config/atpay-config/blob/main/docs/rules.md"


_OUR_RULES = re.compile(r"(AT[0-9]{3}|yaml|schema|policy|waiver)\Z")


def docs_url(rule: str) -> str | None:
    """Link to one of our rules' documentation (an anchor per id); None for others' rules."""
    return f"{DOCS_BASE}#{rule.lower()}" if _OUR_RULES.match(rule) else None


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem at one place: what, where (1-based), and why (the fact)."""

    rule: str
    level: Level
    message: str
    file: str
    line: int = 1
    column: int = 1
    pointer: str = ""
    document: int = 0
    fact: str | None = None
    tenant: str | None = None
    waived_by: str | None = field(default=None, compare=False)
    help_uri: str | None = field(default=None, compare=False)

    @property
    def docs(self) -> str | None:
        """Where the rule is documented: the policy's own `docs`, else our rules page."""
        return self.help_uri or docs_url(self.rule)

    def waive(self, reason: str) -> Finding:
        return replace(self, waived_by=reason)

    def sort_key(self) -> tuple[str, int, int, int, str]:
        return (self.file, self.document, self.line, self.column, self.rule)

    def to_json(self) -> dict[str, object]:
        """The SPEC section 9 shape."""
        out: dict[str, object] = {
            "rule": self.rule,
            "level": self.level,
            "message": self.message,
            "fact": self.fact,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "pointer": self.pointer,
            "document": self.document,
            "docs": self.docs,
        }
        if self.waived_by is not None:
            out["waived"] = self.waived_by
        return out


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """What a rule is, for SARIF rule metadata, docs and `atpay policy` listings."""

    id: str
    level: Level
    title: str
    fact: str | None = None
    description: str = ""
    help_uri: str | None = None

    @property
    def docs(self) -> str | None:
        return self.help_uri or docs_url(self.id)


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts for the summary line and the JSON `summary` object (SPEC section 9)."""

    files: int
    documents: int
    errors: int
    warnings: int
    infos: int
    waived: int

    @classmethod
    def of(cls, findings: list[Finding], *, files: int, documents: int) -> Summary:
        active = [f for f in findings if f.waived_by is None]
        return cls(
            files=files,
            documents=documents,
            errors=sum(f.level == "error" for f in active),
            warnings=sum(f.level == "warning" for f in active),
            infos=sum(f.level == "info" for f in active),
            waived=len(findings) - len(active),
        )

    def to_json(self) -> dict[str, int]:
        return {
            "files": self.files,
            "documents": self.documents,
            "errors": self.errors,
            "warnings": self.warnings,
            "infos": self.infos,
            "waived": self.waived,
        }
