"""`.sops.yaml` creation rules: which recipients and selection a new file gets.

As sops (`config/config.go`): the first rule whose `path_regex` matches the
file's path relative to the config file's folder (unanchored, Go `MatchString`)
wins, and a rule without `path_regex` matches everything. We look for
`.sops.yaml` upward from the file being encrypted (sops looks upward from the
working directory); only `age`, the selection keys and `mac_only_encrypted` are
read. A rule that names no selection gets our default (`encrypted_regex` on the
two gateway keys), not sops's encrypt-everything default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from atpay_config.errors import SecretsError
from atpay_config.secrets.sops import DEFAULT_SELECTION, SELECTION_KINDS, Selection

CONFIG_NAME = ".sops.yaml"
MAX_DEPTH = 100


@dataclass(frozen=True, slots=True)
class CreationRule:
    """What `atpay encrypt` uses for a file when `--age` is not given."""

    config: Path
    age: tuple[str, ...]
    selection: Selection = DEFAULT_SELECTION
    mac_only_encrypted: bool = False


def find_config(file: Path) -> Path | None:
    """The nearest `.sops.yaml` in the file's folder or above."""
    folder = file.resolve().parent
    for _ in range(MAX_DEPTH):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
        if folder.parent == folder:
            return None
        folder = folder.parent
    return None


def rule_for_file(file: Path) -> CreationRule | None:
    """The matching rule, None without a config file; SecretsError when none matches."""
    config = find_config(file)
    if config is None:
        return None
    try:
        document = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SecretsError(
            f"{config}: cannot read the sops config ({type(exc).__name__}); fix it"
        ) from None
    rules = document.get("creation_rules") if isinstance(document, dict) else None
    if rules is None:
        return None
    if not isinstance(rules, list):
        raise SecretsError(f"{config}: creation_rules is not a list")
    relative = str(file.resolve()).removeprefix(str(config.parent.resolve()) + "/")
    for number, rule in enumerate(rules, start=1):
        if not isinstance(rule, dict):
            raise SecretsError(f"{config}: creation rule {number} is not a mapping")
        pattern = rule.get("path_regex")
        if pattern not in (None, ""):
            try:
                if not re.search(str(pattern), relative):
                    continue
            except re.error:
                raise SecretsError(
                    f"{config}: creation rule {number} has an invalid path_regex"
                ) from None
        return _rule(rule, config=config, number=number)
    raise SecretsError(f"{config}: no creation rule matches {relative}; add one or pass --age")


def _rule(rule: dict[str, object], *, config: Path, number: int) -> CreationRule:
    where = f"{config}: creation rule {number}"
    raw = rule.get("age")
    if isinstance(raw, str):
        recipients = tuple(r.strip() for r in raw.split(",") if r.strip())
    elif isinstance(raw, list) and all(isinstance(r, str) for r in raw):
        recipients = tuple(r.strip() for r in raw if isinstance(r, str) and r.strip())
    else:
        recipients = ()
    if not recipients:
        raise SecretsError(f"{where} has no age recipients; atpay encrypts for age only")
    chosen = [k for k in SELECTION_KINDS if rule.get(k) not in (None, "")]
    if len(chosen) > 1:
        raise SecretsError(f"{where} sets {' and '.join(chosen)}; at most one is allowed")
    selection = DEFAULT_SELECTION
    if chosen:
        if chosen[0].endswith("comment_regex"):
            raise SecretsError(f"{where}: {chosen[0]} (comment-based selection) is not supported")
        selection = Selection(chosen[0], str(rule[chosen[0]]))
    mac_only = rule.get("mac_only_encrypted", False)
    if not isinstance(mac_only, bool):
        raise SecretsError(f"{where}: mac_only_encrypted must be true or false")
    return CreationRule(
        config=config, age=recipients, selection=selection, mac_only_encrypted=mac_only
    )
