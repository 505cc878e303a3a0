from __future__ import annotations

from pathlib import Path

import pytest

from pybuild.elf.reader import read_elf, read_elf_bytes
from pybuild.elf.types import ElfError, SymbolVersion
from pybuild.model.target import Arch

FIXTURES = Path(__file__).parent / "fixtures" / "elf"


def test_reads_real_cross_compiled_files() -> None:
    good = read_elf(FIXTURES / "good-aarch64.so")
    assert good.arch is Arch.AARCH64 and good.bits == 64 and good.little_endian
    assert good.needed == ("libc.so.6",)
    assert [(n.library, [v.name for v in n.versions]) for n in good.version_needs] == [
        ("libc.so.6", ["GLIBC_2.17"])
    ]
    assert {".symtab", ".debug_info", ".dynamic", ".text"} <= {s.name for s in good.sections}
    assert read_elf(FIXTURES / "good-x86_64.so").describe() == "x86_64 (ELF64 LSB)"
    assert read_elf(FIXTURES / "good-i686.so").describe() == "i386 (ELF32 LSB)"
    assert read_elf(FIXTURES / "abs-runpath.so").runpath == ("/home/build/lib",)
    assert read_elf(FIXTURES / "origin-escape-rpath.so").rpath == (
        "$ORIGIN/../../../../../../usr/lib",
    )
    libcxx = read_elf(FIXTURES / "needs-glibcxx-3.4.30.so")
    assert libcxx.version_needs[0].versions == (SymbolVersion("GLIBCXX", (3, 4, 30)),)
    assert read_elf(FIXTURES / "libmissing.so.1").soname == "libmissing.so.1"


def test_symbol_versions_order_by_number() -> None:
    versions = [SymbolVersion.parse(n) for n in ("GLIBC_2.17", "GLIBC_2.9", "GLIBC_2.2.5")]
    assert [v.name for v in sorted(versions)] == ["GLIBC_2.2.5", "GLIBC_2.9", "GLIBC_2.17"]
    assert SymbolVersion.parse("GLIBCXX_3.4.30") > SymbolVersion.parse("GLIBCXX_3.4.9")
    private = SymbolVersion.parse("GLIBC_PRIVATE")
    assert private.version == () and private.name == "GLIBC_PRIVATE"
    assert SymbolVersion.parse("CXXABI_TM_1").name == "CXXABI_TM_1"


def test_truncated_file(tmp_path: Path) -> None:
    data = (FIXTURES / "good-aarch64.so").read_bytes()
    cut = tmp_path / "cut.so"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ElfError, match=r"cut.so: truncated: section headers end past"):
        read_elf(cut)
    cut.write_bytes(data[:30])
    with pytest.raises(ElfError, match="truncated"):
        read_elf(cut)


@pytest.mark.parametrize(
    "name", ["good-aarch64.so", "good-i686.so", "hello-aarch64", "patchelf-auditwheel.so"]
)
def test_bytes_parse_the_same_as_files(name: str) -> None:
    path = FIXTURES / name
    assert read_elf_bytes(path.read_bytes(), "in memory") == read_elf(path)


def test_bytes_errors_name_the_label() -> None:
    data = (FIXTURES / "good-aarch64.so").read_bytes()
    with pytest.raises(ElfError, match=r"^mod\.so \(stripped\): truncated: section headers"):
        read_elf_bytes(data[: len(data) // 2], "mod.so (stripped)")
    with pytest.raises(ElfError, match=r"^blob: not an ELF file"):
        read_elf_bytes(b"hello", "blob")


def test_not_elf(tmp_path: Path) -> None:
    text = tmp_path / "x.so"
    text.write_text("hello\n")
    with pytest.raises(ElfError, match=r"x\.so: not an ELF file"):
        read_elf(text)
