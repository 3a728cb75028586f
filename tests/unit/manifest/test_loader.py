"""The loader turns every kind of bad input into a located finding, never a traceback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from atpay_config.manifest.loader import (
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    load_file,
    load_text,
)


def only_finding(text: str) -> tuple[int, int, str]:
    source = load_text(text, "t.yaml")
    assert len(source.findings) == 1, source.findings
    finding = source.findings[0]
    assert finding.rule == "yaml"
    assert finding.level == "error"
    return finding.line, finding.column, finding.message


def test_positions_are_one_based_for_values_and_keys() -> None:
    source = load_text("a: 1\nb:\n  c: [x, 'y']\n", "t.yaml")
    doc = source.documents[0]
    assert doc.data == {"a": 1, "b": {"c": ["x", "y"]}}
    assert doc.locate("/a") == (1, 4)
    assert doc.locate("/b/c/1") == (3, 10)
    assert doc.locate("/b") == (2, 1)  # a collection is reported at its key
    assert doc.locate("/b/missing/deeper") == (2, 1)  # nearest existing ancestor
    assert doc.locate("/b/c", key=True) == (3, 3)


def test_duplicate_key_is_reported_at_the_second_occurrence() -> None:
    line, column, message = only_finding("spec:\n  activation: active\n  activation: inactive\n")
    assert (line, column) == (3, 3)
    assert "duplicate key 'activation'" in message
    assert "line 2" in message


def test_syntax_error_is_located() -> None:
    line, _, message = only_finding("spec: [active\n")
    assert line == 2
    assert message.startswith("YAML syntax error")


def test_every_document_of_a_multi_document_file_is_kept_with_its_index() -> None:
    source = load_text("a: 1\n---\nb: 2\n---\nc: 3\n", "t.yaml")
    assert [d.index for d in source.documents] == [0, 1, 2]
    assert [d.line for d in source.documents] == [1, 2, 4]  # a document starts at its ---


def test_documents_before_a_syntax_error_are_still_checked() -> None:
    source = load_text("a: 1\n---\nb: [\n", "t.yaml")
    assert [d.data for d in source.documents] == [{"a": 1}]
    assert source.findings[0].document == 1


def test_empty_file_is_a_finding() -> None:
    line, column, message = only_finding("")
    assert (line, column) == (1, 1)
    assert "no YAML document" in message


def test_comment_only_file_is_a_finding() -> None:
    assert "no YAML document" in only_finding("# nothing here\n")[2]


@pytest.mark.parametrize(
    ("scalar", "expected"),
    [
        ("yes", "yes"),
        ("On", "On"),
        ("0o17", 15),
        ("017", 17),
        ("1_000", "1_000"),
        ("1:30", "1:30"),
        ("0b101", "0b101"),
    ],
)
def test_yaml11_only_scalars_are_flagged_and_typed_as_yaml12(scalar: str, expected: object) -> None:
    source = load_text(f"value: {scalar}\n", "t.yaml")
    assert source.documents[0].data == {"value": expected}
    assert len(source.findings) == 1
    assert source.findings[0].rule == "yaml"
    assert (source.findings[0].line, source.findings[0].column) == (1, 8)
    assert "quote it" in source.findings[0].message


@pytest.mark.parametrize("scalar", ["'yes'", '"0o17"', "true", "False", "12", "1.5", "null", "~"])
def test_unambiguous_scalars_pass(scalar: str) -> None:
    assert load_text(f"value: {scalar}\n", "t.yaml").findings == []


def test_yaml12_core_typing() -> None:
    data = (
        load_text("a: 0x1F\nb: .inf\nc: -2\nd: 1e3\ne: Null\nf: '1'\n", "t.yaml").documents[0].data
    )
    assert data == {"a": 31, "b": float("inf"), "c": -2, "d": 1000.0, "e": None, "f": "1"}


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    started = time.perf_counter()
    _, _, message = only_finding("\n".join(lines) + "\n")
    assert time.perf_counter() - started < 1.0
    assert "alias bomb" in message


def test_too_many_aliases_are_refused() -> None:
    text = "a: &x 1\nb: [" + ", ".join(["*x"] * (MAX_ALIASES + 1)) + "]\n"
    assert "alias references" in only_finding(text)[2]


def test_recursive_alias_is_refused() -> None:
    assert "refers to itself" in only_finding("a: &a [*a]\n")[2]


def test_undefined_alias_is_a_finding() -> None:
    assert only_finding("a: *nope\n")[2]


def test_deep_nesting_is_refused() -> None:
    text = "a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"
    assert "nesting deeper" in only_finding(text)[2]


def test_very_deep_nesting_does_not_crash() -> None:
    text = "[" * 200_000 + "]" * 200_000
    assert only_finding(text)


def test_non_string_keys_are_findings() -> None:
    assert "not a string" in only_finding("1: a\n")[2]
    assert "not collections" in only_finding("? [a]\n: b\n")[2]


def test_unknown_tags_are_findings() -> None:
    assert "unsupported tag" in only_finding("a: !!python/object:os.system x\n")[2]


def test_non_utf8_bytes_are_located(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("tenant: ok\nemail: caf\xe9@x.example\n".encode("latin-1"))
    source = load_file(path, display="latin1.yaml")
    assert len(source.findings) == 1
    finding = source.findings[0]
    assert (finding.line, finding.column) == (2, 11)
    assert "UTF-8" in finding.message


def test_utf16_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "u16.yaml"
    path.write_bytes("a: 1\n".encode("utf-16"))
    assert "UTF-16" in load_file(path).findings[0].message


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert load_file(path).documents[0].data == {"a": 1}


def test_oversized_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: " + b"x" * (MAX_FILE_BYTES + 10) + b"\n")
    finding = load_file(path).findings[0]
    assert "larger than" in finding.message


def test_unreadable_path_is_a_finding(tmp_path: Path) -> None:
    finding = load_file(tmp_path / "missing.yaml").findings[0]
    assert "cannot read" in finding.message


def test_control_characters_are_findings() -> None:
    source = load_text("a: \x07bell\n", "t.yaml")
    assert source.findings and source.findings[0].rule == "yaml"
