"""The policy engine: rules as data.

A policy is a YAML document (`kind: Policy`, see `schemas/policy.schema.json`):
an id, a level, the fact it enforces, a message, an optional label selector and
a JSON Schema `when`. A document that matches `when` raises the finding — or,
with `targets`, each value at those pointers that matches. The built-in rules
AT001–AT010 are such files under `policies/`; an organisation's own are loaded
the same way from `--policies DIR`. Each policy carries examples that must pass
and must fail, which `atpay policy test` runs (like `conftest verify`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from atpay_config.manifest.loader import SourceDocument, SourceFile, iter_manifest_paths, load_file
from atpay_config.manifest.schema import check_kind, validate_document
from atpay_config.resources import builtin_policies_dir
from atpay_config.rules.conditions import InvalidCondition, Predicate, compile_condition
from atpay_config.rules.finding import Finding, Level, RuleInfo

POLICY_RULE = "policy"


def resolve_pointer(data: Any, pointer: str) -> tuple[bool, Any]:
    """(found, value) at a JSON pointer."""
    if not pointer:
        return True, data
    current = data
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(current, dict) and token in current:
            current = current[token]
        elif isinstance(current, list) and token.isdigit() and int(token) < len(current):
            current = current[int(token)]
        else:
            return False, None
    return True, current


@dataclass(frozen=True, slots=True)
class Policy:
    """One declarative rule, compiled and ready to evaluate."""

    id: str
    title: str
    level: Level
    message: str
    matches: Predicate
    fact: str | None = None
    inferred: bool = False
    description: str = ""
    match_labels: Mapping[str, str] = field(default_factory=dict)
    kinds: tuple[str, ...] = ("PaymentProcessing",)
    pointer: str = ""
    targets: tuple[str, ...] = ()
    examples_pass: tuple[Any, ...] = ()
    examples_fail: tuple[Any, ...] = ()
    source: str = ""
    builtin: bool = False
    docs: str | None = None

    @property
    def info(self) -> RuleInfo:
        fact = f"{self.fact} (inferred)" if self.fact and self.inferred else self.fact
        description = self.description or self.message
        return RuleInfo(self.id, self.level, self.title, fact, description, help_uri=self.docs)

    def selects(self, kind: str, labels: Mapping[str, Any]) -> bool:
        if kind not in self.kinds:
            return False
        return all(labels.get(key) == value for key, value in self.match_labels.items())

    def violations(self, data: Any) -> list[str]:
        """Pointers where `data` breaks this policy (an empty list when it passes)."""
        if not self.targets:
            return [self.pointer] if self.matches(data) else []
        hits = []
        for target in self.targets:
            found, value = resolve_pointer(data, target)
            if found and self.matches(value):
                hits.append(target)
        return hits

    def evaluate(self, doc: SourceDocument, *, tenant: str | None) -> list[Finding]:
        findings = []
        for pointer in self.violations(doc.data):
            line, column = doc.locate(pointer)
            target = pointer.rsplit("/", 1)[-1]
            findings.append(
                Finding(
                    rule=self.id,
                    level=self.level,
                    message=self.message.replace("{target}", target),
                    file=doc.file,
                    line=line,
                    column=column,
                    pointer=pointer,
                    document=doc.index,
                    fact=self.fact,
                    tenant=tenant,
                    help_uri=self.docs,
                )
            )
        return findings


class PolicyLoadError(Exception):
    """A policy file is broken; carries the findings that say where."""

    def __init__(self, findings: list[Finding]) -> None:
        super().__init__(f"{len(findings)} problem(s) in policy files")
        self.findings = findings


def policy_from_document(doc: SourceDocument, *, builtin: bool = False) -> Policy:
    # Built-in conditions are checked against the meta-schema by the test suite.
    """A compiled policy from a schema-valid `Policy` document."""
    data = doc.data
    spec = data["spec"]
    selector = spec.get("selector") or {}
    examples = spec.get("examples") or {}
    return Policy(
        id=data["metadata"]["id"],
        title=data["metadata"]["title"],
        level=spec["level"],
        message=spec["message"],
        matches=compile_condition(spec["when"], trusted=builtin),
        fact=spec.get("fact"),
        inferred=bool(spec.get("inferred", False)),
        description=spec.get("description", ""),
        match_labels=dict(selector.get("matchLabels") or {}),
        kinds=tuple(selector.get("kinds") or ("PaymentProcessing",)),
        pointer=spec.get("pointer", ""),
        targets=tuple(spec.get("targets") or ()),
        examples_pass=tuple(examples.get("pass") or ()),
        examples_fail=tuple(examples.get("fail") or ()),
        source=f"{doc.file}:{doc.line}",
        builtin=builtin,
        docs=spec.get("docs"),
    )


def _policy_finding(doc: SourceDocument, pointer: str, message: str) -> Finding:
    line, column = doc.locate(pointer)
    return Finding(POLICY_RULE, "error", message, doc.file, line, column, pointer, doc.index)


def load_policy_files(files: Iterable[SourceFile], *, builtin: bool = False) -> list[Policy]:
    """Compile the `Policy` documents of already-loaded files; raise with findings if broken."""
    policies: list[Policy] = []
    findings: list[Finding] = []
    seen: dict[str, str] = {}
    for source in files:
        findings.extend(source.findings)
        for doc in source.documents:
            kind, problems = check_kind(doc)
            if problems or kind != "Policy":
                findings.extend(
                    problems
                    or [
                        _policy_finding(
                            doc, "/kind", "a policy folder holds only 'kind: Policy' documents"
                        )
                    ]
                )
                continue
            schema_findings = validate_document(doc, "Policy")
            if schema_findings:
                findings.extend(schema_findings)
                continue
            try:
                policy = policy_from_document(doc, builtin=builtin)
            except InvalidCondition as exc:
                findings.append(
                    _policy_finding(
                        doc, "/spec/when", f"'when' is not a valid JSON Schema: {exc}"
                    )
                )
                continue
            if policy.id in seen:
                findings.append(
                    _policy_finding(
                        doc,
                        "/metadata/id",
                        f"policy id '{policy.id}' is already defined at {seen[policy.id]}; "
                        "ids must be unique",
                    )
                )
                continue
            seen[policy.id] = policy.source
            policies.append(policy)
    if findings:
        raise PolicyLoadError(findings)
    return policies


def load_policy_dirs(dirs: Sequence[str | Path], *, builtin: bool = False) -> list[Policy]:
    files = [
        load_file(path, display=shown)
        for path, shown in iter_manifest_paths([str(d) for d in dirs])
    ]
    return load_policy_files(files, builtin=builtin)


@cache
def builtin_policies() -> tuple[Policy, ...]:
    """The AT### rules shipped under `policies/`."""
    return tuple(load_policy_dirs([builtin_policies_dir()], builtin=True))


@dataclass(frozen=True, slots=True)
class PolicyTestResult:
    policy: Policy
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


def test_policy(policy: Policy) -> PolicyTestResult:
    """Run a policy's own examples: every `pass` must not trigger it, every `fail` must."""
    failures: list[str] = []
    if not policy.examples_fail:
        failures.append("has no failing example; add one under spec.examples.fail")
    for number, example in enumerate(policy.examples_pass, 1):
        if policy.violations(example):
            failures.append(f"pass example {number} triggers the policy")
    for number, example in enumerate(policy.examples_fail, 1):
        if not policy.violations(example):
            failures.append(f"fail example {number} does not trigger the policy")
    return PolicyTestResult(policy, tuple(failures))


test_policy.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
