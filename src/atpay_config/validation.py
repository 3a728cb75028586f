"""Validation of a tree of manifests: schema, then the documented rules, then policies.

Files are read one at a time and only per-tenant summaries are kept (the first
location of each tenant id, and the typed `Manifest` when the caller needs it
for planning), so memory stays flat however many tenants there are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Protocol

from atpay_config.errors import UsageError
from atpay_config.manifest.loader import (
    YAML_RULE,
    SourceDocument,
    SourceFile,
    iter_manifest_paths,
    load_file,
)
from atpay_config.manifest.model import Manifest
from atpay_config.manifest.schema import SCHEMA_RULE, check_kind, validate_document
from atpay_config.rules import duplicate_tenant, key_secrets, waivers
from atpay_config.rules.engine import (
    POLICY_RULE,
    Policy,
    builtin_policies,
    load_policy_dirs,
)
from atpay_config.rules.finding import Finding, RuleInfo, Summary


class FileRule(Protocol):
    """A rule that needs the whole file (decryption, the sops MAC)."""

    rules: Sequence[RuleInfo]

    def check_file(
        self, source: SourceFile, manifests: Sequence[SourceDocument]
    ) -> list[Finding]: ...


CODE_RULES: tuple[tuple[ModuleType, tuple[RuleInfo, ...]], ...] = (
    (duplicate_tenant, (duplicate_tenant.RULE,)),
    (key_secrets, (key_secrets.TAMPER, key_secrets.KEY_VALUES, key_secrets.MAC_ONLY_ENCRYPTED)),
)
"""The rules that need code, one module each (their docstrings are their documentation)."""

BASE_RULES: tuple[RuleInfo, ...] = (
    RuleInfo(YAML_RULE, "error", "Unreadable or ambiguous YAML"),
    RuleInfo(SCHEMA_RULE, "error", "Manifest violates the JSON Schema"),
    RuleInfo(POLICY_RULE, "error", "Policy file is broken"),
    duplicate_tenant.RULE,
    waivers.RULE,
)


@dataclass
class ValidationRun:
    """Everything a validation produced: findings and the summaries to render them."""

    findings: list[Finding] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    documents: list[tuple[str, int, str | None]] = field(default_factory=list)
    rules: dict[str, RuleInfo] = field(default_factory=dict)
    manifests: list[Manifest] = field(default_factory=list)
    fixtures: list[Mapping[str, Any]] = field(default_factory=list)  # the documents' data only

    @property
    def summary(self) -> Summary:
        return Summary.of(self.findings, files=len(self.files), documents=len(self.documents))

    def has_errors(self, *, strict: bool = False) -> bool:
        levels = ("error", "warning") if strict else ("error",)
        return any(f.level in levels and f.waived_by is None for f in self.findings)


def load_policies(policy_dirs: Sequence[str]) -> list[Policy]:
    """Built-in rules plus the organisation's; broken policy files raise with findings."""
    policies = list(builtin_policies())
    if policy_dirs:
        try:
            org = load_policy_dirs(policy_dirs)
        except FileNotFoundError as exc:
            raise UsageError(f"policy folder {exc.args[0]} does not exist") from None
        clash = {p.id for p in policies} & {p.id for p in org}
        if clash:
            raise UsageError(
                f"organisation policy id(s) {', '.join(sorted(clash))} clash with built-in "
                "rules; pick other ids"
            )
        policies.extend(org)
    return policies


def validate_paths(
    paths: Sequence[str],
    *,
    policies: Sequence[Policy],
    file_rules: Sequence[FileRule] = (),
    today: dt.date,
    keep_manifests: bool = False,
    keep_fixtures: bool = False,
    on_file: Callable[[int, int], None] | None = None,
) -> ValidationRun:
    """Validate every manifest file under `paths` (files or folders).

    `on_file(done, total)` is called after each file, for a progress display.
    """
    try:
        found = iter_manifest_paths(list(paths))
    except FileNotFoundError as exc:
        raise UsageError(f"{exc.args[0]}: no such file or directory") from None
    if not found:
        raise UsageError(f"no *.yaml or *.yml files under {', '.join(paths)}")
    total = len(found)

    def loaded() -> Iterator[SourceFile]:
        for done, (path, shown) in enumerate(found, 1):
            yield load_file(path, display=shown)
            if on_file is not None:
                on_file(done, total)

    return validate_files(
        loaded(),
        policies=policies,
        file_rules=file_rules,
        today=today,
        keep_manifests=keep_manifests,
        keep_fixtures=keep_fixtures,
    )


def validate_files(
    sources: Iterable[SourceFile],
    *,
    policies: Sequence[Policy],
    file_rules: Sequence[FileRule] = (),
    today: dt.date,
    keep_manifests: bool = False,
    keep_fixtures: bool = False,
) -> ValidationRun:
    """The validation pipeline over already-loaded files (streamed one at a time)."""
    run = ValidationRun()
    for info in BASE_RULES:
        run.rules[info.id] = info
    for policy in policies:
        run.rules[policy.id] = policy.info
    for rule in file_rules:
        for info in rule.rules:
            run.rules.setdefault(info.id, info)
    tenants = duplicate_tenant.TenantRegistry()
    found_waivers: list[waivers.Waiver] = []
    for source in sources:
        run.files.append(source.path)
        run.findings.extend(source.findings)
        manifests: list[SourceDocument] = []
        for doc in source.documents:
            _check_document(
                doc, run, policies, tenants, found_waivers, manifests, keep_manifests, keep_fixtures
            )
        if source.text is not None and manifests:
            for rule in file_rules:
                run.findings.extend(rule.check_file(source, manifests))
        if not source.documents:
            run.documents.append((source.path, 0, None))
    run.findings = waivers.apply_waivers(run.findings, found_waivers, today=today)
    run.findings.sort(key=Finding.sort_key)
    return run


def _check_document(
    doc: SourceDocument,
    run: ValidationRun,
    policies: Sequence[Policy],
    tenants: duplicate_tenant.TenantRegistry,
    found_waivers: list[waivers.Waiver],
    manifests: list[SourceDocument],
    keep_manifests: bool,
    keep_fixtures: bool,
) -> None:
    kind, problems = check_kind(doc)
    tenant = None
    if isinstance(doc.data, dict):
        metadata = doc.data.get("metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("tenant"), str):
            tenant = metadata["tenant"]
    run.documents.append((doc.file, doc.index, tenant))
    if kind is None:
        run.findings.extend(problems)
        return
    schema_findings = validate_document(doc, kind)
    run.findings.extend(schema_findings)
    if kind == "PaymentProcessing" and tenant is not None:
        duplicate = tenants.declare(tenant, doc)
        if duplicate is not None:
            run.findings.append(duplicate)
    if schema_findings:
        return
    if kind == "PaymentProcessing":
        manifests.append(doc)
        labels = doc.data["metadata"].get("labels") or {}
        for policy in policies:
            if policy.selects(kind, labels):
                run.findings.extend(policy.evaluate(doc, tenant=tenant))
        if keep_manifests:
            run.manifests.append(
                Manifest.from_document(doc.data, file=doc.file, document=doc.index)
            )
    elif kind == "Waiver":
        waiver = waivers.Waiver.from_document(doc)
        if isinstance(waiver, Finding):
            run.findings.append(waiver)
        else:
            found_waivers.append(waiver)
    elif kind == "SimulatedTenant" and keep_fixtures:
        run.fixtures.append(doc.data)
