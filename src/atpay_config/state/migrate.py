"""`atpay state migrate --to URL`: copy one store into another, verified.

Every tenant, record and audit entry is read from the source in one consistent
snapshot and written to the target in ONE transaction, which reads the copy
back and compares counts and a sha256 over canonical JSON before it commits; a
mismatch rolls the target back. Versions are kept, so plans saved against the
source still bind to the copy.
"""

from __future__ import annotations

from dataclasses import dataclass

from atpay_config.errors import StateError
from atpay_config.state.store import StateStore, StoreSummary, summarize


@dataclass(frozen=True)
class MigrationReport:
    """What was copied and the proof it arrived whole."""

    source: str
    target: str
    copied: StoreSummary
    replaced: bool

    def describe(self) -> str:
        verb = "replaced the content of" if self.replaced else "copied into"
        return f"{self.source} {verb} {self.target}: {self.copied.describe()}, verified"


def copy_store(source: StateStore, target: StateStore, *, replace: bool = False) -> MigrationReport:
    """Copy everything in `source` to `target`; refuses a non-empty target unless `replace`."""
    if source.url == target.url and type(source) is type(target):
        raise StateError(f"source and target are the same state store ({source.url})")
    tenants = source.snapshot()
    expected = summarize(tenants)
    copied = target.restore(tenants, replace=replace)
    if copied != expected:  # restore verifies too; this guards a backend that does not
        raise StateError(
            f"copy into {target.url} does not verify: {copied.describe()} "
            f"instead of {expected.describe()}"
        )
    return MigrationReport(source=source.url, target=target.url, copied=copied, replaced=replace)
