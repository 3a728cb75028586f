"""Atomic writes: a reader sees the old file or the new one, never half."""

from __future__ import annotations

from pathlib import Path

import pytest

from atpay_config.files import atomic_writer


def test_atomic_writer_streams_then_renames(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "report.txt"
    with atomic_writer(target) as handle:
        handle.write("first ")
        assert not target.exists()  # nothing visible until the block ends
        handle.write("second\n")
    assert target.read_text(encoding="utf-8") == "first second\n"
    assert [p.name for p in target.parent.iterdir()] == ["report.txt"]


def test_atomic_writer_keeps_the_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "report.txt"
    target.write_text("old\n", encoding="utf-8")
    target.chmod(0o600)
    with pytest.raises(RuntimeError), atomic_writer(target) as handle:
        handle.write("half")
        raise RuntimeError("renderer failed")
    assert target.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.txt"]
    with atomic_writer(target) as handle:
        handle.write("new\n")
    assert target.stat().st_mode & 0o777 == 0o600  # an existing file keeps its mode
    assert target.read_bytes() == b"new\n"
