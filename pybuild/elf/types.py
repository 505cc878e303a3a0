"""What pybuild knows about an ELF file, as plain frozen dataclasses, and the gABI constants.

No LIEF here: `pybuild.elf.reader` fills these types from LIEF's parse, and everything else
(policy, verify, strip, prune) works with them, so importing the policy or reading a symbol
version never loads LIEF.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import total_ordering
from pathlib import Path

from pybuild.errors import PybuildError
from pybuild.model.target import Arch

ELF_MAGIC = b"\x7fELF"

# ELF constants (System V gABI) used by pybuild.
ELFCLASS32, ELFCLASS64 = 1, 2
ELFDATA2LSB, ELFDATA2MSB = 1, 2
ET_REL, ET_EXEC, ET_DYN, ET_CORE = 1, 2, 3, 4
EM_386, EM_ARM, EM_X86_64, EM_AARCH64 = 3, 40, 62, 183
SHT_NULL, SHT_STRTAB, SHT_RELA, SHT_NOBITS, SHT_REL, SHT_GROUP = 0, 3, 4, 8, 9, 17
SHF_ALLOC, SHF_INFO_LINK, SHF_COMPRESSED = 0x2, 0x40, 0x800
SHN_LORESERVE = 0xFF00
PT_LOAD, PT_INTERP = 1, 3
PF_W = 0x2
DT_FLAGS_1, DF_1_PIE = 0x6FFFFFFB, 0x08000000

_MACHINE_NAMES = {EM_386: "i386", EM_ARM: "arm", EM_X86_64: "x86_64", EM_AARCH64: "aarch64"}
_ARCH_MACHINE = {Arch.AARCH64: EM_AARCH64, Arch.X86_64: EM_X86_64}
# Header sizes the gABI fixes per class: (e_ehsize, e_phentsize, e_shentsize).
HEADER_SIZES = {ELFCLASS32: (52, 32, 40), ELFCLASS64: (64, 56, 64)}


class ElfError(PybuildError):
    """A file starts like an ELF file but cannot be read as one."""


class ElfClass(enum.IntEnum):
    """The file's class (``EI_CLASS``): 32- or 64-bit."""

    ELF32 = ELFCLASS32
    ELF64 = ELFCLASS64


def machine_name(machine: int) -> str:
    """The name of an ``e_machine`` value ("aarch64", "x86_64", ...), or "machine N"."""
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
        """Split a version name at its last ``_NUMBER``; a name without one is all prefix."""
        match = _VERSION_NAME.fullmatch(name)
        if match is None:
            return cls(name, ())
        return cls(match["prefix"], tuple(int(p) for p in match["version"].split(".")))

    @property
    def name(self) -> str:
        """The version name as the file spells it, e.g. ``GLIBC_2.17``."""
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
        """Whether the section is loaded into memory (``SHF_ALLOC``)."""
        return bool(self.flags & SHF_ALLOC)

    @property
    def occupies_file(self) -> bool:
        """Whether the section has bytes in the file (it is not empty, NULL or NOBITS)."""
        return self.type not in (SHT_NULL, SHT_NOBITS) and self.size > 0

    @property
    def end(self) -> int:
        """The first offset past the section in the file (its offset, if it occupies none)."""
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
        """The first offset past the segment's bytes in the file."""
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
        """The Lambda architecture of ``e_machine``; None for any other machine (i386, arm)."""
        for arch, machine in _ARCH_MACHINE.items():
            if machine == self.machine:
                return arch
        return None

    @property
    def bits(self) -> int:
        """The word size in bits, 32 or 64, from the class."""
        return 64 if self.elf_class is ElfClass.ELF64 else 32

    @property
    def ehsize(self) -> int:
        """The ELF header's size in bytes, as the gABI fixes it for the class (the reader refuses a
        file whose ``e_ehsize`` differs)."""
        return HEADER_SIZES[self.elf_class][0]

    @property
    def phentsize(self) -> int:
        """One program header's size in bytes, as the gABI fixes it for the class (the reader
        refuses a file with program headers of another size)."""
        return HEADER_SIZES[self.elf_class][1]

    @property
    def shentsize(self) -> int:
        """One section header's size in bytes, as the gABI fixes it for the class (the reader
        refuses a file with section headers of another size)."""
        return HEADER_SIZES[self.elf_class][2]

    def describe(self) -> str:
        """e.g. ``aarch64 (ELF64 LSB)``."""
        endian = "LSB" if self.little_endian else "MSB"
        return f"{machine_name(self.machine)} (ELF{self.bits} {endian})"


def looks_like_elf(path: Path) -> bool:
    """Whether the file starts with the ELF magic (reads four bytes)."""
    try:
        with path.open("rb") as handle:
            return handle.read(4) == ELF_MAGIC
    except OSError:
        return False
