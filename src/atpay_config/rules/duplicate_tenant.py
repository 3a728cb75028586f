"""AT009: the same tenant declared twice across the inputs.

Two manifests for one Autotask tenant would fight over its settings on every
apply, so a tenant id may appear once across every file validated together.

Passes::

    # tenants/contoso.yaml            # tenants/fabrikam.yaml
    metadata: {tenant: contoso}       metadata: {tenant: fabrikam}

Fails (reported at the second declaration, naming the first)::

    # tenants/contoso.yaml            # tenants/contoso-copy.yaml
    metadata: {tenant: contoso}       metadata: {tenant: contoso}
"""

from __future__ import annotations

from dataclasses import dataclass, field

from atpay_config.manifest.loader import SourceDocument
from atpay_config.rules.finding import Finding, RuleInfo

RULE = RuleInfo(
    id="AT009",
    level="error",
    title="Tenant declared twice",
    fact=None,
    description=__doc__ or "",
)


@dataclass
class TenantRegistry:
    """First declaration of every tenant seen so far: a per-tenant summary, not the document."""

    first: dict[str, tuple[str, int, int]] = field(default_factory=dict)

    def declare(self, tenant: str, doc: SourceDocument) -> Finding | None:
        line, column = doc.locate("/metadata/tenant")
        if tenant not in self.first:
            self.first[tenant] = (doc.file, line, column)
            return None
        file, first_line, _ = self.first[tenant]
        return Finding(
            rule=RULE.id,
            level=RULE.level,
            message=(
                f"tenant '{tenant}' is already declared at {file}:{first_line}; "
                "keep one manifest per tenant"
            ),
            file=doc.file,
            line=line,
            column=column,
            pointer="/metadata/tenant",
            document=doc.index,
            tenant=tenant,
        )
