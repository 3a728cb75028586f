"""AT005 (tampering), AT006 and AT011: the checks that need the encrypted keys themselves.

AT005's plaintext half is a declarative policy; its other half lives here: a
`sops:` block whose MAC does not verify means the file was edited outside
`atpay edit`/`sops` — or encrypted values were moved in from another tenant's
file, since the MAC covers the tenant id too.

AT006: Autotask only saves keys, it never checks them (AT-9). So we decrypt
(when an age identity is available) and refuse a public key equal to the
private key, or either carrying leading/trailing whitespace from a sloppy paste.
Without an identity the check is skipped with an info finding saying so.

AT011: `mac_only_encrypted: true` makes the MAC cover the encrypted values only,
so the tenant id and payment types are no longer bound to the keys.

Passes: keys encrypted by `atpay encrypt`, distinct, no surrounding whitespace.
Fails: `publicKey` and `privateKey` both decrypting to `"abc"` (AT006); a file
whose `metadata.tenant` was changed after encryption (AT005).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from atpay_config.manifest.loader import SourceDocument, SourceFile
from atpay_config.rules.finding import Finding, Level, RuleInfo

if TYPE_CHECKING:
    from atpay_config.secrets.age import Identity

TAMPER = RuleInfo(
    "AT005",
    "error",
    "Key stored in plaintext, or the sops MAC does not verify",
    "AT-8",
    "Keys are secrets (AT-8): they must be encrypted, and the file's sops MAC must verify.",
)
KEY_VALUES = RuleInfo(
    "AT006",
    "error",
    "Public and private key equal, or padded with whitespace",
    "AT-9",
    "Autotask does not check that keys work (AT-9); we catch the mistakes we can see.",
)
MAC_ONLY_ENCRYPTED = RuleInfo(
    "AT011",
    "warning",
    "MAC covers only the encrypted values",
    "AT-8",
    "mac_only_encrypted drops the binding between the keys and the tenant's other settings.",
)


@dataclass
class KeySecretsRule:
    """Decrypting checks of one file; identities are loaded on the first encrypted file."""

    identity_source: Callable[[], Sequence[Identity]] = list
    rules: Sequence[RuleInfo] = (TAMPER, KEY_VALUES, MAC_ONLY_ENCRYPTED)
    _identities: Sequence[Identity] | None = field(default=None, init=False, repr=False)

    @property
    def identities(self) -> Sequence[Identity]:
        if self._identities is None:
            self._identities = self.identity_source()
        return self._identities

    def check_file(self, source: SourceFile, manifests: Sequence[SourceDocument]) -> list[Finding]:
        if source.text is None or not _has_encryption(manifests):
            return []
        if not self.identities and all("sops" in doc.data for doc in manifests):
            # Nothing to verify without an identity: the schema has checked the sops
            # block's shape, the AT005 policy the envelopes. Say what was skipped.
            first = manifests[0]
            line, column = first.locate("/spec/keys")
            return [
                Finding(
                    KEY_VALUES.id,
                    "info",
                    "key checks skipped (sops MAC, AT006): no age identity; set "
                    "SOPS_AGE_KEY_FILE or SOPS_AGE_KEY to one that can decrypt this file",
                    source.path,
                    line,
                    column,
                    "/spec/keys",
                    first.index,
                    fact=KEY_VALUES.fact,
                    tenant=_tenant(first),
                )
            ]
        from atpay_config.secrets.sops import inspect_file  # crypto only for encrypted files

        check = inspect_file(source.text, path=source.path, identities=self.identities or None)
        findings: list[Finding] = []

        def add(
            info: RuleInfo,
            doc: SourceDocument,
            pointer: str,
            message: str,
            *,
            level: Level | None = None,
            at: tuple[int, int] | None = None,
        ) -> None:
            line, column = at if at is not None else doc.locate(pointer)
            findings.append(
                Finding(
                    info.id,
                    level or info.level,
                    message,
                    source.path,
                    line,
                    column,
                    pointer,
                    doc.index,
                    fact=info.fact,
                    tenant=_tenant(doc),
                )
            )

        for pointer, line, column, message in check.problems:
            add(TAMPER, _document_at(manifests, line), pointer, message, at=(line, column))
        first = manifests[0]
        if check.mac == "mismatch" and not any(p[0] == "/sops/mac" for p in check.problems):
            add(
                TAMPER,
                first,
                "/sops/mac",
                "the sops MAC does not verify: the file was changed outside `atpay edit`/sops, "
                "or encrypted values were copied from another file; restore it from git or "
                "re-encrypt the keys",
            )
        if check.mac == "absent":
            add(
                TAMPER,
                first,
                "/spec/keys",
                "keys are ENC[...] values but the file has no sops metadata, so they cannot be "
                "decrypted; re-encrypt them with `atpay encrypt`",
            )
        if check.mac_only_encrypted:
            add(
                MAC_ONLY_ENCRYPTED,
                first,
                "/sops/mac_only_encrypted",
                "sops.mac_only_encrypted is true: the MAC no longer binds the keys to this "
                "tenant's other settings; remove it and re-encrypt unless a tool needs it",
            )
        if check.mac == "skipped":
            add(
                KEY_VALUES,
                first,
                "/spec/keys",
                "key checks skipped (sops MAC, AT006): "
                + (
                    check.skipped_reason
                    or "no age identity; set SOPS_AGE_KEY_FILE to one that can decrypt this file"
                ),
                level="info",
            )
            return findings
        for doc in manifests:
            if check.equal_keys(doc.index):
                add(
                    KEY_VALUES,
                    doc,
                    "/spec/keys/privateKey",
                    "publicKey and privateKey decrypt to the same value; paste each key from "
                    "ConnectBooster into its own field (AT-9: Autotask will not notice)",
                )
            for pointer in check.whitespace_keys(doc.index):
                name = pointer.rsplit("/", 1)[-1]
                add(
                    KEY_VALUES,
                    doc,
                    pointer,
                    f"{name} has leading or trailing whitespace; set it again without the "
                    "spaces (`atpay set`) (AT-9: Autotask will not notice)",
                )
        return findings


def _has_encryption(manifests: Sequence[SourceDocument]) -> bool:
    for doc in manifests:
        data = doc.data
        if "sops" in data:
            return True
        keys = (data.get("spec") or {}).get("keys") or {}
        if any(isinstance(v, str) and v.startswith("ENC[") for v in keys.values()):
            return True
    return False


def _document_at(manifests: Sequence[SourceDocument], line: int) -> SourceDocument:
    chosen = manifests[0]
    for doc in manifests:
        if doc.line <= line:
            chosen = doc
    return chosen


def _tenant(doc: SourceDocument) -> str | None:
    tenant = (doc.data.get("metadata") or {}).get("tenant")
    return tenant if isinstance(tenant, str) else None
