"""The validate progress bar: stderr only, only on a terminal, only for large trees."""

from __future__ import annotations

import sys

import pytest

from atpay_config.cli import validate as validate_cli


class FakeTty:
    def __init__(self) -> None:
        self.written: list[str] = []

    def isatty(self) -> bool:
        return True

    encoding = "utf-8"

    def write(self, text: str | bytes) -> int:
        self.written.append(text.decode() if isinstance(text, bytes) else text)
        return len(text)

    def flush(self) -> None:
        pass


def test_no_bar_when_stderr_is_not_a_terminal() -> None:
    assert validate_cli.progress_bar() is None  # pytest captures stderr: not a TTY


def test_bar_counts_files_and_clears_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    tty = FakeTty()
    monkeypatch.setattr(sys, "stderr", tty)
    show = validate_cli.progress_bar()
    assert show is not None
    for done in range(1, 1001):
        show(done, 1000)
    text = "".join(tty.written)
    assert "[###############...............] 500/1000 files" in text
    assert text.endswith("1000/1000 files\r\x1b[K")


def test_no_bar_for_small_trees(monkeypatch: pytest.MonkeyPatch) -> None:
    tty = FakeTty()
    monkeypatch.setattr(sys, "stderr", tty)
    show = validate_cli.progress_bar()
    assert show is not None
    for done in range(1, 11):
        show(done, 10)
    assert tty.written == []
