"""ELF files as pybuild sees them. The only module that imports lief.

`read_elf` parses a file with LIEF and returns plain frozen dataclasses (`ElfFile`, `Section`,
`Segment`, `VersionNeed`, `SymbolVersion`); everything else in pybuild works with these, so a
change of parser touches this file alone. LIEF is lenient (a truncated file parses with its
sections silently missing), so the layout is checked against the file size here before anyone
relies on it.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import total_ordering
from pathlib import Path

import lief

from pybuild.errors import PybuildError
from pybuild.model.target import Arch

lief.logging.disable()

ELF_MAGIC = b"\x7fELF"

# ELF constants (System V gABI) used by pybuild.
ELFCLASS32, ELFCLASS64 = 1, 2
ELFDATA2LSB, ELFDATA2MSB = 1, 2
ET_REL, ET_EXEC, ET_DYN, ET_CORE = 1, 2, 3, 4
EM_386, EM_ARM, EM_X86_64, EM_AARCH64 = 3, 40, 62, 183
SHT_NULL, SHT_STRTAB, SHT_RELA, SHT_NOBITS, SHT_REL, SHT_GROUP = 0, 3, 4, 8, 9, 17
SHF_ALLOC, SHF_INFO_LINK, SHF_COMPRESSED = 0x2, 0x40, 0x800
SHN_LORESERVE = 0xFF00
PT_LOAD = 1

_MACHINE_NAMES = {EM_386: "i386", EM_ARM: "arm", EM_X86_64: "x86_64", EM_AARCH64: "aarch64"}
_ARCH_MACHINE = {Arch.AARCH64: EM_AARCH64, Arch.X86_64: EM_X86_64}
# Header sizes the gABI fixes per class: (e_ehsize, e_phentsize, e_shentsize).
_HEADER_SIZES = {ELFCLASS32: (52, 32, 40), ELFCLASS64: (64, 56, 64)}


class ElfError(PybuildError):
    """A file starts like an ELF file but cannot be read as one."""


class ElfClass(enum.IntEnum):
    ELF32 = ELFCLASS32
    ELF64 = ELFCLASS64


def machine_name(machine: int) -> str:
    return _MACHINE_NAMES.get(machine, f"machine {machine}")


def arch_machine(arch: Arch) -> int:
    """The ``e_machine`` value of a target architecture."""
    return _ARCH_MACHINE[arch]


_VERSION_NAME = re.compile(r"(?P<prefix>.+?)_(?P<version>\d+(?:\.\d+)*)")


@total_ordering
@dataclass(frozen=True, slots=True)
class SymbolVersion:
    """A symbol version name such as ``GLIBC_2.17`` or ``GLIBCXX_3.4.29``, ordered by number.

    Names without a number (``GLIBC_PRIVATE``) have an empty `version` and compare only equal
    to themselves; they are never "at most" anything.
    """

    prefix: str
    version: tuple[int, ...]

    @classmethod
    def parse(cls, name: str) -> SymbolVersion:
        match = _VERSION_NAME.fullmatch(name)
        if match is None:
            return cls(name, ())
        return cls(match["prefix"], tuple(int(p) for p in match["version"].split(".")))

    @property
    def name(self) -> str:
        if not self.version:
            return self.prefix
        return f"{self.prefix}_{'.'.join(str(v) for v in self.version)}"

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, SymbolVersion):
            return NotImplemented
        return (self.prefix, self.version) < (other.prefix, other.version)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class VersionNeed:
    """The symbol versions a file requires from one library (its ``.gnu.version_r`` entry)."""

    library: str
    versions: tuple[SymbolVersion, ...]


@dataclass(frozen=True, slots=True)
class Section:
    """One section header, every field as in the file."""

    index: int
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    addralign: int
    entsize: int

    @property
    def is_alloc(self) -> bool:
        return bool(self.flags & SHF_ALLOC)

    @property
    def occupies_file(self) -> bool:
        return self.type not in (SHT_NULL, SHT_NOBITS) and self.size > 0

    @property
    def end(self) -> int:
        return self.offset + (self.size if self.occupies_file else 0)


@dataclass(frozen=True, slots=True)
class Segment:
    """One program header, every field as in the file."""

    type: int
    flags: int
    offset: int
    vaddr: int
    paddr: int
    filesz: int
    memsz: int
    align: int

    @property
    def end(self) -> int:
        return self.offset + self.filesz


@dataclass(frozen=True, slots=True)
class ElfFile:
    """What pybuild knows about one ELF file."""

    size: int
    elf_class: ElfClass
    little_endian: bool
    machine: int
    file_type: int
    phoff: int
    phnum: int
    shoff: int
    shnum: int
    shstrndx: int
    sections: tuple[Section, ...]
    segments: tuple[Segment, ...]
    dynamic: tuple[tuple[int, int], ...]
    needed: tuple[str, ...]
    rpath: tuple[str, ...]
    runpath: tuple[str, ...]
    soname: str | None
    version_needs: tuple[VersionNeed, ...]

    @property
    def arch(self) -> Arch | None:
        for arch, machine in _ARCH_MACHINE.items():
            if machine == self.machine:
                return arch
        return None

    @property
    def bits(self) -> int:
        return 64 if self.elf_class is ElfClass.ELF64 else 32

    @property
    def ehsize(self) -> int:
        return _HEADER_SIZES[self.elf_class][0]

    @property
    def phentsize(self) -> int:
        return _HEADER_SIZES[self.elf_class][1]

    @property
    def shentsize(self) -> int:
        return _HEADER_SIZES[self.elf_class][2]

    def describe(self) -> str:
        """e.g. ``aarch64 (ELF64 LSB)``."""
        endian = "LSB" if self.little_endian else "MSB"
        return f"{machine_name(self.machine)} (ELF{self.bits} {endian})"


def _text(value: str | bytes) -> str:
    """LIEF returns bytes for names that are not UTF-8; keep them readable and lossless."""
    return value if isinstance(value, str) else value.decode("utf-8", errors="backslashreplace")


def looks_like_elf(path: Path) -> bool:
    """Whether the file starts with the ELF magic (reads four bytes)."""
    try:
        with path.open("rb") as handle:
            return handle.read(4) == ELF_MAGIC
    except OSError:
        return False


def _ident(data: bytes, label: str) -> tuple[ElfClass, bool]:
    if len(data) < 16 or data[:4] != ELF_MAGIC:
        raise ElfError(f"{label}: not an ELF file")
    if data[4] not in (ELFCLASS32, ELFCLASS64):
        raise ElfError(f"{label}: unknown ELF class {data[4]}")
    if data[5] not in (ELFDATA2LSB, ELFDATA2MSB):
        raise ElfError(f"{label}: unknown ELF data encoding {data[5]}")
    return ElfClass(data[4]), data[5] == ELFDATA2LSB


def _check_layout(binary: lief.ELF.Binary, elf_class: ElfClass, size: int, label: str) -> None:
    """LIEF accepts truncated or inconsistent headers; refuse them before anyone relies on them."""
    header = binary.header
    ehsize, phentsize, shentsize = _HEADER_SIZES[elf_class]
    if size < ehsize:
        raise ElfError(f"{label}: truncated: {size} bytes, shorter than an ELF header")
    if header.header_size != ehsize:
        raise ElfError(f"{label}: e_ehsize is {header.header_size}, expected {ehsize}")
    shnum, phnum = header.numberof_sections, header.numberof_segments
    if phnum and header.program_header_size != phentsize:
        raise ElfError(
            f"{label}: e_phentsize is {header.program_header_size}, expected {phentsize}"
        )
    if shnum and header.section_header_size != shentsize:
        raise ElfError(
            f"{label}: e_shentsize is {header.section_header_size}, expected {shentsize}"
        )
    if header.program_header_offset + phnum * phentsize > size:
        raise ElfError(f"{label}: truncated: program headers end past the file's {size} bytes")
    if header.section_header_offset + shnum * shentsize > size:
        raise ElfError(f"{label}: truncated: section headers end past the file's {size} bytes")
    if len(binary.sections) != shnum:
        raise ElfError(f"{label}: LIEF read {len(binary.sections)} of {shnum} section headers")
    if len(binary.segments) != phnum:
        raise ElfError(f"{label}: LIEF read {len(binary.segments)} of {phnum} program headers")


def _sections(binary: lief.ELF.Binary) -> tuple[Section, ...]:
    return tuple(
        Section(
            index=i,
            name=_text(s.name),
            type=int(s.type),
            flags=int(s.flags),
            addr=s.virtual_address,
            offset=s.offset,
            size=s.size,
            link=s.link,
            info=s.information,
            addralign=s.alignment,
            entsize=s.entry_size,
        )
        for i, s in enumerate(binary.sections)
    )


def _segments(binary: lief.ELF.Binary) -> tuple[Segment, ...]:
    return tuple(
        Segment(
            type=int(p.type),
            flags=int(p.flags),
            offset=p.file_offset,
            vaddr=p.virtual_address,
            paddr=p.physical_address,
            filesz=p.physical_size,
            memsz=p.virtual_size,
            align=p.alignment,
        )
        for p in binary.segments
    )


@dataclass(frozen=True, slots=True)
class _Dynamic:
    entries: tuple[tuple[int, int], ...]
    needed: tuple[str, ...]
    rpath: tuple[str, ...]
    runpath: tuple[str, ...]
    soname: str | None


def _dynamic(binary: lief.ELF.Binary) -> _Dynamic:
    needed: list[str] = []
    rpath: list[str] = []
    runpath: list[str] = []
    soname = None
    entries: list[tuple[int, int]] = []
    for entry in binary.dynamic_entries:
        entries.append((int(entry.tag), entry.value))
        if isinstance(entry, lief.ELF.DynamicEntryLibrary):
            needed.append(_text(entry.name))
        elif isinstance(entry, lief.ELF.DynamicEntryRunPath):
            runpath += _text(entry.runpath).split(":")
        elif isinstance(entry, lief.ELF.DynamicEntryRpath):
            rpath += _text(entry.rpath).split(":")
        elif isinstance(entry, lief.ELF.DynamicSharedObject):
            soname = _text(entry.name)
    return _Dynamic(tuple(entries), tuple(needed), tuple(rpath), tuple(runpath), soname)


def read_elf(path: Path, label: str | None = None) -> ElfFile:
    """Parse `path`; raise `ElfError` (one line, naming `label`) if it is not a sound ELF file."""
    label = label or str(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ElfError(f"{label}: cannot read: {err}") from None
    elf_class, little_endian = _ident(data, label)
    binary = lief.ELF.parse(str(path))
    if binary is None:
        raise ElfError(f"{label}: LIEF cannot parse it")
    _check_layout(binary, elf_class, len(data), label)
    sections = _sections(binary)
    segments = _segments(binary)
    for section in sections:
        if section.end > len(data):
            raise ElfError(
                f"{label}: truncated: section {section.name or section.index} ends at "
                f"{section.end}, past the file's {len(data)} bytes"
            )
    for segment in segments:
        if segment.end > len(data):
            raise ElfError(
                f"{label}: truncated: a segment ends at {segment.end}, past the file's "
                f"{len(data)} bytes"
            )
    dynamic = _dynamic(binary)
    needs = tuple(
        VersionNeed(
            library=_text(req.name),
            versions=tuple(
                SymbolVersion.parse(_text(aux.name)) for aux in req.get_auxiliary_symbols()
            ),
        )
        for req in binary.symbols_version_requirement
    )
    header = binary.header
    return ElfFile(
        size=len(data),
        elf_class=elf_class,
        little_endian=little_endian,
        machine=int(header.machine_type),
        file_type=int(header.file_type),
        phoff=header.program_header_offset,
        phnum=header.numberof_segments,
        shoff=header.section_header_offset,
        shnum=header.numberof_sections,
        shstrndx=header.section_name_table_idx,
        sections=sections,
        segments=segments,
        dynamic=dynamic.entries,
        needed=dynamic.needed,
        rpath=dynamic.rpath,
        runpath=dynamic.runpath,
        soname=dynamic.soname,
        version_needs=needs,
    )
