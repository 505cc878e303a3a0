"""Stripping: smaller files, identical loadable bytes, refusals that leave files alone."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from elfgen import Sect, Spec, build
from pybuild.cli import main
from pybuild.elf.reader import read_elf
from pybuild.stages.strip import StripResult, strip_file, strip_paths

FIXTURES = Path(__file__).parent / "fixtures" / "elf"


def _copy(tmp_path: Path, name: str, mode: int = 0o755) -> Path:
    path = tmp_path / name
    shutil.copy(FIXTURES / name, path)
    path.chmod(mode)
    return path


def _mask_section_table_fields(data: bytes, bits: int) -> bytes:
    """The ELF header with e_shoff, e_shnum and e_shstrndx zeroed: the only header fields a
    stripper must change (the loader never reads them)."""
    out = bytearray(data)
    spans = [(0x28, 8), (0x3C, 4)] if bits == 64 else [(0x20, 4), (0x30, 4)]
    for start, width in spans:
        out[start : start + width] = bytes(width)
    return bytes(out)


def _assert_loadable_identical(before: bytes, after_path: Path, original: Path) -> None:
    old, new = read_elf(original), read_elf(after_path)
    assert new.segments == old.segments
    assert new.dynamic == old.dynamic
    after = _mask_section_table_fields(after_path.read_bytes(), old.bits)
    before = _mask_section_table_fields(before, old.bits)
    assert after != before
    for segment in old.segments:
        if segment.type == 1:  # PT_LOAD
            assert after[segment.offset : segment.end] == before[segment.offset : segment.end]
    old_alloc = [(s.name, s.addr, s.offset, s.size) for s in old.sections if s.is_alloc]
    assert [(s.name, s.addr, s.offset, s.size) for s in new.sections if s.is_alloc] == old_alloc


@pytest.mark.parametrize(
    "name", ["good-aarch64.so", "good-x86_64.so", "good-i686.so", "hello-aarch64", "abs-runpath.so"]
)
def test_strip_shrinks_and_keeps_every_loadable_byte(tmp_path: Path, name: str) -> None:
    original = FIXTURES / name
    path = _copy(tmp_path, name, mode=0o750)
    result = strip_file(path)
    assert result.status == "stripped"
    assert result.size_after == path.stat().st_size < original.stat().st_size
    assert path.stat().st_mode & 0o7777 == 0o750
    names = {s.name for s in read_elf(path).sections}
    assert not names & {".symtab", ".strtab", ".comment"}
    assert not any(n.startswith(".debug") for n in names)
    assert ".shstrtab" in names
    _assert_loadable_identical(original.read_bytes(), path, original)


def test_strip_is_deterministic_and_idempotent(tmp_path: Path) -> None:
    first = _copy(tmp_path, "good-aarch64.so")
    (tmp_path / "b").mkdir()
    second = _copy(tmp_path / "b", "good-aarch64.so")
    strip_file(first)
    strip_file(second)
    assert first.read_bytes() == second.read_bytes()
    again = strip_file(first)
    assert again == StripResult(
        first, "already-stripped", again.size_before, again.size_before, "already stripped"
    )
    assert first.read_bytes() == second.read_bytes()


def test_matches_or_beats_binutils(tmp_path: Path) -> None:
    strip_tool = shutil.which("aarch64-linux-gnu-strip")
    if strip_tool is None:
        pytest.skip("aarch64-linux-gnu-strip (binutils-aarch64-linux-gnu) is not installed")
    ours = _copy(tmp_path, "good-aarch64.so")
    (tmp_path / "gnu").mkdir()
    theirs = _copy(tmp_path / "gnu", "good-aarch64.so")
    strip_file(ours)
    subprocess.run([strip_tool, "--strip-unneeded", str(theirs)], check=True)
    assert ours.stat().st_size <= theirs.stat().st_size * 1.001


def _patch_section_flags(path: Path, section_name: str, clear: int) -> None:
    elf = read_elf(path)
    section = next(s for s in elf.sections if s.name == section_name)
    data = bytearray(path.read_bytes())
    at = elf.shoff + section.index * elf.shentsize + 8  # sh_flags in a 64-bit section header
    struct.pack_into("<Q", data, at, section.flags & ~clear)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("big-endian", "big-endian files are not handled"),
        ("object", "is not an executable or shared object"),
        ("signature", "28 bytes of unknown data after the loadable content"),
        ("non-alloc-inside", "non-allocated section .eh_frame_hdr lies inside the loadable range"),
        ("alloc-links-dropped", "allocated section .text links to non-allocated .comment"),
        ("truncated", "truncated"),
        ("group", "section group .group is not handled"),
    ],
)
def test_refusals_leave_the_file_as_it_was(tmp_path: Path, case: str, reason: str) -> None:
    path = tmp_path / "lib.so"
    if case == "big-endian":
        path.write_bytes(build(Spec(big_endian=True)))
    elif case == "object":
        path.write_bytes(build(Spec(file_type=1)))
    elif case == "signature":
        path.write_bytes(
            (FIXTURES / "good-aarch64.so").read_bytes() + b"~Module signature appended~\n"
        )
    elif case == "non-alloc-inside":
        shutil.copy(FIXTURES / "good-aarch64.so", path)
        _patch_section_flags(path, ".eh_frame_hdr", clear=0x2)
    elif case == "alloc-links-dropped":
        path.write_bytes(
            build(
                Spec(
                    sections=[
                        Sect(".text", 1, 0x6, b"\0" * 32, link=2),
                        Sect(".comment", 1, 0x30, b"x\0", in_load=False),
                    ]
                )
            )
        )
    elif case == "group":
        path.write_bytes(
            build(
                Spec(
                    sections=[
                        Sect(".text", 1, 0x6, b"\0" * 32),
                        Sect(".group", 17, 0, b"\1\0\0\0", in_load=False),
                    ]
                )
            )
        )
    else:
        data = (FIXTURES / "good-aarch64.so").read_bytes()
        path.write_bytes(data[: len(data) - 100])
    before = path.read_bytes()
    result = strip_file(path)
    assert result.status == "refused"
    assert reason in result.reason
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lib.so"]  # no temp file left


def test_synthetic_little_endian_file_strips(tmp_path: Path) -> None:
    path = tmp_path / "syn.so"
    path.write_bytes(build(Spec()))
    assert strip_file(path).status == "stripped"


def test_directories_recursively_symlinks_not_followed(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    shutil.copy(FIXTURES / "good-aarch64.so", tree / "a" / "b" / "mod.so")
    shutil.copy(FIXTURES / "hello-aarch64", tree / "hello")
    (tree / "notes.so").write_text("not an ELF file\n")
    (tree / "link.so").symlink_to(tree / "a" / "b" / "mod.so")
    results = strip_paths([tree])
    assert [r.path.relative_to(tree).as_posix() for r in results] == ["a/b/mod.so", "hello"]
    assert all(r.status == "stripped" for r in results)
    assert (tree / "link.so").is_symlink()


def test_cli_prints_bytes_saved(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _copy(tmp_path, "good-aarch64.so")
    size = path.stat().st_size
    assert main(["strip", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert f"stripped  {path}: {size:,} -> {path.stat().st_size:,} bytes" in err
    assert f"1 ELF files, 1 stripped: {size:,} -> {path.stat().st_size:,} bytes" in err


def test_cli_missing_path_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pybuild", "strip", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == f"error: no such file or directory: {tmp_path / 'nope'}\n"
