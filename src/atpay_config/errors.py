"""Domain errors and the one table of exit codes.

Every error the user can cause is an `AtpayError`: the CLI prints its one-line
message and exits 1 (or the code it carries). Anything else is a bug.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes, in one place (SPEC section 7)."""

    OK = 0
    FINDINGS = 1  # validate: error findings; plan/apply/report: an error
    ERROR = 1
    USAGE = 2  # validate: usage or I/O problem
    CHANGES = 2  # plan --detailed-exitcode: there are changes
    INTERRUPTED = 130


class AtpayError(Exception):
    """An error the user can fix; its message says what and how."""

    exit_code: int = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UsageError(AtpayError):
    """Bad invocation or unreadable input path."""

    exit_code = ExitCode.USAGE


class SecretsError(AtpayError):
    """Encryption/decryption failed: no identity, bad MAC, malformed value..."""


class StateError(AtpayError):
    """The state store refused or failed: lock held, stale version, unreachable."""


class RefusedByAutotask(AtpayError):
    """The simulated Autotask refused a write, citing the documented fact."""

    def __init__(self, message: str, *, fact: str) -> None:
        super().__init__(f"{message} ({fact})")
        self.fact = fact
