"""Where the shipped schemas and built-in policies are.

Top-level `schemas/` and `policies/` are the source of truth; the wheel carries
copies under `atpay_config/_data/`. An editable install finds the originals.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def data_dir(name: str) -> Path:
    """The packaged `name` folder, or the repository's own in a source checkout."""
    packaged = _PACKAGE / "_data" / name
    if packaged.is_dir():
        return packaged
    source = _PACKAGE.parent.parent / name
    if source.is_dir():
        return source
    raise FileNotFoundError(f"atpay-config data folder {name!r} is missing from the installation")


def schema_path(filename: str) -> Path:
    return data_dir("schemas") / filename


def builtin_policies_dir() -> Path:
    return data_dir("policies")
