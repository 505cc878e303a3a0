from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO
from helpers import check_reads_only_regular_files
from pybuild.errors import ConfigError
from pybuild.model.requirements import load_requirements, parse_requirements


def test_reference_requirements_are_all_pinned() -> None:
    pins = load_requirements(REPO / "requirements.txt")
    names = {p.name for p in pins}
    assert "litellm" in names
    assert next(p for p in pins if p.name == "litellm").version == "1.78.7"
    assert len(pins) > 40  # the whole closure, not just litellm


def test_comments_continuations_markers_and_extras() -> None:
    pins = parse_requirements(
        "# a comment\n"
        "Foo_Bar==1.0  # why this pin\n"
        "baz[Extra]==2.0 ; \\\n  sys_platform == 'linux'\n"
        "\n",
        "req.txt",
    )
    assert [str(p) for p in pins] == ['baz[extra]==2.0 ; sys_platform == "linux"', "foo-bar==1.0"]
    assert pins[0].line == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("foo>=1.0\n", "req.txt:1: foo>=1.0 is not pinned: use foo==VERSION"),
        ("foo==1.*\n", "foo==1.* is not pinned"),
        ("foo\n", "foo is not pinned"),
        ("foo==1,<2\n", "is not pinned"),
        ("foo==1.0\nbar==1\nFOO==2.0\n", "req.txt:3: foo==2.0 conflicts with foo==1.0 on line 1"),
        ("foo==1.0\nfoo==1.0\n", "foo is pinned twice (also line 1)"),
        ("-r other.txt\n", "req.txt:1: pip options are not supported here (-r)"),
        ("foo==1.0 --hash=sha256:abc\n", "per-requirement options are not supported (--hash)"),
        ("foo==\n", "invalid requirement 'foo==': Expected semicolon"),
        ("foo @ https://example.invalid/foo.whl\n", "direct URL references are not supported"),
        ("foo===\n", "foo=== is not pinned"),
        ("# only comments\n", "no requirements"),
    ],
)
def test_rejected(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_requirements(text, "req.txt")
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_all_problems_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        parse_requirements("a>=1\nb\n", "req.txt")
    assert str(info.value) == "req.txt: 2 problems"
    assert [line.split(": ")[0] for line in info.value.details] == ["req.txt:1", "req.txt:2"]


def test_parentheses_nested_past_the_recursion_limit_are_one_problem() -> None:
    marker = "(" * 3000 + "python_version > '3'" + ")" * 3000
    with pytest.raises(ConfigError) as info:
        parse_requirements(f"foo==1.0\nnative==2.0 ; {marker}\n", "req.txt")
    assert str(info.value) == "req.txt:2: invalid requirement: parentheses nested too deeply"


def test_a_byte_order_mark_is_dropped_as_pip_does(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_bytes(b"\xef\xbb\xbfnative==2.0\n")
    assert [str(p) for p in load_requirements(path)] == ["native==2.0"]


def test_only_a_regular_file_of_sane_size_is_read(tmp_path: Path) -> None:
    check_reads_only_regular_files(tmp_path / "requirements.txt", load_requirements, ConfigError)
    with pytest.raises(ConfigError) as info:
        load_requirements(Path("/dev/zero"))  # `requirements = "/dev/zero"` in layer.toml
    assert str(info.value) == "/dev/zero: cannot read: not a regular file (a character device)"
