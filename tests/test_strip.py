"""Stripping: smaller files, the same memory for the loader, refusals that leave files alone."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from elfgen import Sect, Spec, build
from pybuild.cli import main
from pybuild.elf.reader import read_elf, read_elf_bytes
from pybuild.elf.types import ElfFile
from pybuild.stages import strip
from pybuild.stages.strip import (
    NotStripped,
    Stripped,
    StripResult,
    strip_elf,
    strip_file,
    strip_paths,
)

FIXTURES = Path(__file__).parent / "fixtures" / "elf"
PT_LOAD, SHT_NOBITS = 1, 8
# Made by make-patchelf-fixtures.sh: rewritten by patchelf as auditwheel does.
PATCHELF = [
    "patchelf-rpath.so",
    "patchelf-auditwheel.so",
    "patchelf-soname.so.1",
    "patchelf-stacked.so.1",
    "patchelf-small-gap.so",
]
QEMU_SYSROOT = Path("/usr/aarch64-linux-gnu")  # Debian's libc6-arm64-cross


def _copy(tmp_path: Path, name: str, mode: int = 0o755) -> Path:
    path = tmp_path / name
    shutil.copy(FIXTURES / name, path)
    path.chmod(mode)
    return path


def _memory_image(data: bytes, elf: ElfFile) -> bytearray:
    """What the loader maps: every PT_LOAD's file bytes at its address, zeros up to p_memsz."""
    loads = [s for s in elf.segments if s.type == PT_LOAD]
    image = bytearray(max(s.vaddr + s.memsz for s in loads))
    for segment in loads:
        image[segment.vaddr : segment.vaddr + segment.filesz] = data[segment.offset : segment.end]
    return image


def _rewritten_fields(elf: ElfFile) -> set[int]:
    """Addresses of the header fields a stripper may rewrite: e_phoff, e_shoff, e_shnum,
    e_shstrndx, and each program header's p_offset and p_filesz (checked as parsed values)."""
    if elf.bits == 64:
        header, segment = [(0x20, 8), (0x28, 8), (0x3C, 4)], [(0x08, 8), (0x20, 8)]
    else:
        header, segment = [(0x1C, 4), (0x20, 4), (0x30, 4)], [(0x04, 4), (0x10, 4)]
    first = next(s for s in elf.segments if s.type == PT_LOAD)
    spans = [(first.vaddr - first.offset + start, width) for start, width in header]
    phdrs = first.vaddr - first.offset + elf.phoff
    for number in range(elf.phnum):
        spans += [(phdrs + number * elf.phentsize + at, width) for at, width in segment]
    return {address for start, width in spans for address in range(start, start + width)}


def assert_loads_the_same(before: bytes, after: bytes) -> None:
    """The stripped file maps the same memory: same program headers but for file offsets
    (congruent modulo p_align) and file sizes (cut only), and the same bytes at every address,
    except header fields naming file offsets and bytes nothing covers, which read as zero."""
    old, new = read_elf_bytes(before, "before"), read_elf_bytes(after, "after")
    assert new.dynamic == old.dynamic
    assert (new.needed, new.soname, new.rpath, new.runpath) == (
        old.needed,
        old.soname,
        old.rpath,
        old.runpath,
    )
    for o, n in zip(old.segments, new.segments, strict=True):
        assert (n.type, n.flags, n.vaddr, n.paddr, n.memsz, n.align) == (
            o.type,
            o.flags,
            o.vaddr,
            o.paddr,
            o.memsz,
            o.align,
        )
        assert n.filesz <= o.filesz
        if o.align > 1 and n.filesz:
            assert (n.offset - n.vaddr) % o.align == (o.offset - o.vaddr) % o.align
    old_image, new_image = _memory_image(before, old), _memory_image(after, new)
    assert len(new_image) == len(old_image)
    covered = {0}
    for section in old.sections:
        if section.is_alloc and section.type != SHT_NOBITS:
            assert (
                new_image[section.addr : section.addr + section.size]
                == (old_image[section.addr : section.addr + section.size])
            ), section.name
            covered |= set(range(section.addr, section.addr + section.size))
    rewritten = _rewritten_fields(old) | _rewritten_fields(new)
    for address, (was, now) in enumerate(zip(old_image, new_image, strict=True)):
        if was != now and address not in rewritten:
            assert now == 0 and address not in covered, hex(address)


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
    assert_loads_the_same(original.read_bytes(), path.read_bytes())
    # A file straight from the linker: nothing moves, nothing is cut from a segment.
    assert read_elf(path).segments == read_elf(original).segments


def _gnu_strip(tmp_path: Path, name: str) -> int:
    strip_tool = shutil.which("aarch64-linux-gnu-strip")
    if strip_tool is None:
        pytest.skip("aarch64-linux-gnu-strip (binutils-aarch64-linux-gnu) is not installed")
    (tmp_path / "gnu").mkdir()
    theirs = _copy(tmp_path / "gnu", name)
    subprocess.run([strip_tool, "--strip-unneeded", str(theirs)], check=True)
    return theirs.stat().st_size


def test_matches_or_beats_binutils(tmp_path: Path) -> None:
    ours = _copy(tmp_path, "good-aarch64.so")
    strip_file(ours)
    assert ours.stat().st_size <= _gnu_strip(tmp_path, "good-aarch64.so") * 1.001


@pytest.mark.parametrize("name", PATCHELF)
def test_patchelf_rewritten_files_strip_like_binutils(tmp_path: Path, name: str) -> None:
    original = (FIXTURES / name).read_bytes()
    path = _copy(tmp_path, name)
    result = strip_file(path)
    assert result.status == "stripped", result.reason
    assert result.size_after <= _gnu_strip(tmp_path, name) * 1.001
    assert result.size_after <= len(original)
    sections = read_elf(path).sections
    assert [s.name for s in sections if not s.is_alloc] == ["", ".shstrtab"]
    assert_loads_the_same(original, path.read_bytes())
    assert strip_file(path).status == "already-stripped"


def test_segments_after_the_symbol_table_move_down_by_pages(tmp_path: Path) -> None:
    """patchelf's segment follows .symtab and the debug info: it moves down by whole pages."""
    before = read_elf(FIXTURES / "patchelf-rpath.so")
    symtab = next(s for s in before.sections if s.name == ".symtab")
    last = before.segments[6]
    assert last.type == PT_LOAD and last.offset > symtab.end
    path = _copy(tmp_path, "patchelf-rpath.so")
    strip_file(path)
    after = read_elf(path).segments[6]
    assert after.vaddr == last.vaddr
    moved = last.offset - after.offset
    assert moved > 0 and moved % last.align == 0


def test_stale_segment_content_is_cut(tmp_path: Path) -> None:
    """Three patchelf runs abandon a whole segment (.dynamic and .dynstr copied again): its file
    content goes, its memory stays mapped (as zeros)."""
    before = read_elf(FIXTURES / "patchelf-stacked.so.1")
    path = _copy(tmp_path, "patchelf-stacked.so.1")
    strip_file(path)
    after = read_elf(path)
    emptied = [
        (old, new)
        for old, new in zip(before.segments, after.segments, strict=True)
        if old.filesz and not new.filesz
    ]
    assert len(emptied) == 1
    old, new = emptied[0]
    assert (new.vaddr, new.memsz, new.flags) == (old.vaddr, old.memsz, old.flags)
    assert not any(old.offset <= s.offset < old.end for s in before.sections if s.is_alloc)


def test_a_file_the_kernel_maps_keeps_whole_segments(tmp_path: Path) -> None:
    """Only glibc's loader maps shared libraries; an executable (here: one with PT_INTERP) keeps
    every segment's file content, stale or not, and still loses its symbols."""
    data = bytearray((FIXTURES / "patchelf-stacked.so.1").read_bytes())
    before = read_elf_bytes(bytes(data), "lib")
    struct.pack_into("<I", data, before.phoff + 6 * before.phentsize, 3)  # PT_NOTE -> PT_INTERP
    path = tmp_path / "exe"
    path.write_bytes(bytes(data))
    assert strip_file(path).status == "stripped"
    after = read_elf(path)
    assert [s.filesz for s in after.segments] == [s.filesz for s in before.segments]
    assert ".symtab" not in {s.name for s in after.sections}


@pytest.mark.parametrize("library", ["patchelf-soname.so.1", "patchelf-stacked.so.1"])
def test_stripped_auditwheel_module_runs_under_qemu(tmp_path: Path, library: str) -> None:
    """The module finds its bundled library through RUNPATH $ORIGIN/../x.libs and calls it,
    before and after both are stripped."""
    qemu = shutil.which("qemu-aarch64-static")
    if qemu is None or not (QEMU_SYSROOT / "lib" / "ld-linux-aarch64.so.1").exists():
        pytest.skip("needs qemu-user-static and libc6-arm64-cross")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "x.libs").mkdir()
    module = tmp_path / "pkg" / "mod.so"
    shutil.copy(FIXTURES / "patchelf-auditwheel.so", module)
    shutil.copy(FIXTURES / library, tmp_path / "x.libs" / "libdep-0123abcd.so.1")
    run = _copy(tmp_path, "dlopen-aarch64")
    command = [qemu, "-L", str(QEMU_SYSROOT), str(run), str(module), "pybuild_fixture"]

    def output() -> str:
        done = subprocess.run(command, capture_output=True, text=True, check=False, env={})
        return done.stdout + done.stderr

    assert output() == "378\n"  # dep_63(6) - 1 + mod_0(0) - 1
    results = strip_paths([tmp_path / "pkg", tmp_path / "x.libs"])
    assert [r.status for r in results] == ["stripped", "stripped"]
    assert output() == "378\n"


def test_strip_elf_works_on_bytes_and_returns_the_parse_of_its_result() -> None:
    data = (FIXTURES / "patchelf-auditwheel.so").read_bytes()
    outcome = strip_elf(data, read_elf_bytes(data, "mod.so"), "mod.so")
    assert isinstance(outcome, Stripped) and outcome.status == "stripped"
    assert outcome.elf == read_elf_bytes(outcome.data, "again")
    again = strip_elf(outcome.data, outcome.elf, "mod.so")
    assert again == NotStripped("already-stripped", "already stripped")
    with pytest.raises(ValueError, match="the parse is of"):
        strip_elf(data + b"\0", read_elf_bytes(data, "mod.so"), "mod.so")


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


def _patch_section_flags(path: Path, section_name: str, clear: int) -> None:
    elf = read_elf(path)
    section = next(s for s in elf.sections if s.name == section_name)
    data = bytearray(path.read_bytes())
    at = elf.shoff + section.index * elf.shentsize + 8  # sh_flags in a 64-bit section header
    struct.pack_into("<Q", data, at, section.flags & ~clear)
    path.write_bytes(bytes(data))


def test_non_allocated_section_inside_a_segment_keeps_its_bytes(tmp_path: Path) -> None:
    """Its header goes; its bytes are the segment's, so they stay."""
    path = _copy(tmp_path, "good-aarch64.so")
    _patch_section_flags(path, ".eh_frame_hdr", clear=0x2)
    before = path.read_bytes()
    assert strip_file(path).status == "stripped"
    assert ".eh_frame_hdr" not in {s.name for s in read_elf(path).sections}
    assert_loads_the_same(before, path.read_bytes())


def _whole_file_segment(spec: Spec) -> bytes:
    """A synthetic file whose one segment covers everything, section header table included."""
    data = bytearray(build(spec))
    struct.pack_into("<QQ", data, 64 + 0x20, len(data), len(data))  # p_filesz, p_memsz
    return bytes(data)


def _refused_input(case: str) -> bytes:
    """A file for each refusal: synthetic section layouts, or a real file damaged."""
    sections = {
        "alloc-links-dropped": [
            Sect(".text", 1, 0x6, b"\0" * 32, link=2),
            Sect(".comment", 1, 0x30, b"x\0", in_load=False),
        ],
        "alloc-applies-to-dropped": [
            Sect(".rela.x", 4, 0x2, b"\0" * 24, info=2),
            Sect(".note", 7, 0, b"\0" * 16, in_load=False),
        ],
        "link-out-of-range": [Sect(".text", 1, 0x6, b"\0" * 32, link=9)],
        "group": [
            Sect(".text", 1, 0x6, b"\0" * 32),
            Sect(".group", 17, 0, b"\1\0\0\0", in_load=False),
        ],
    }
    good = (FIXTURES / "good-aarch64.so").read_bytes()
    if case in sections:
        return build(Spec(sections=sections[case]))
    if case == "big-endian":
        return build(Spec(big_endian=True))
    if case == "object":
        return build(Spec(file_type=1))
    if case == "signature":
        return good + b"~Module signature appended~\n"
    if case == "odd-alignment":
        odd = bytearray(build(Spec()))
        struct.pack_into("<Q", odd, 64 + 0x30, 0x3000)  # p_align
        return bytes(odd)
    assert case == "truncated"
    return good[: len(good) - 100]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("big-endian", "big-endian files are not handled"),
        ("object", "is not an executable or shared object"),
        ("signature", "28 bytes of unknown data after the loadable content"),
        ("alloc-links-dropped", "allocated section .text links to non-allocated .comment"),
        ("alloc-applies-to-dropped", "allocated section .rela.x applies to non-allocated .note"),
        ("link-out-of-range", "section .text refers to a section that does not exist"),
        ("odd-alignment", "segment 0 has p_align 12288, not a power of two"),
        ("truncated", "truncated"),
        ("group", "section group .group is not handled"),
    ],
)
def test_refusals_leave_the_file_as_it_was(tmp_path: Path, case: str, reason: str) -> None:
    path = tmp_path / "lib.so"
    path.write_bytes(_refused_input(case))
    before = path.read_bytes()
    result = strip_file(path)
    assert result.status == "refused"
    assert reason in result.reason
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lib.so"]  # no temp file left


def test_a_file_that_cannot_shrink_is_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "lib.so"
    path.write_bytes(_whole_file_segment(Spec()))
    before = path.read_bytes()
    result = strip_file(path)
    assert result.status == "already-stripped"
    assert result.reason.startswith(
        "stripping would not make it smaller: the removable sections (.comment) lie inside "
        "segments or their alignment padding, and a new section header table would add"
    )
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("byte", "self-check: contents of segment"),
        ("offset", "self-check: segment 7 moved by 12800 bytes, not a multiple of the alignment"),
        ("apart", "self-check: segment 6 and segment 7 came apart"),
        ("filesz", "self-check: the file size of segment 0 changed"),
        ("parse", "self-check: the result does not parse"),
    ],
)
def test_self_check_refuses_a_wrong_result(
    monkeypatch: pytest.MonkeyPatch, damage: str, reason: str
) -> None:
    """Whatever goes wrong in the rewrite, the self-check finds it and the input is kept."""
    render = strip._render

    def damaged(elf: ElfFile, data: bytes) -> bytes:
        out = bytearray(render(elf, data))
        p_offset = elf.phoff + 7 * elf.phentsize + 0x08  # PT_NOTE, in patchelf's PT_LOAD
        if damage == "byte":
            out[elf.segments[3].offset + 8] ^= 0xFF  # inside the RW segment, which did not move
        elif damage in ("offset", "apart"):
            moved = struct.unpack_from("<Q", out, p_offset)[0] - (
                512 if damage == "offset" else 4096
            )
            struct.pack_into("<Q", out, p_offset, moved)
        elif damage == "filesz":
            struct.pack_into("<Q", out, elf.phoff + 0x20, elf.segments[0].filesz - 1)
        else:
            struct.pack_into("<Q", out, 0x28, len(out))  # e_shoff past the end
        return bytes(out)

    monkeypatch.setattr(strip, "_render", damaged)
    data = (FIXTURES / "patchelf-rpath.so").read_bytes()
    outcome = strip_elf(data, read_elf_bytes(data, "mod.so"), "mod.so")
    assert isinstance(outcome, NotStripped) and outcome.status == "refused"
    assert reason in outcome.reason


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
