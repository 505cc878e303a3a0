"""Reading ELF files with LIEF. The only module that imports lief.

`read_elf` (a file) and `read_elf_bytes` (a file's bytes in memory) parse with LIEF and return the
plain frozen dataclasses of `pybuild.elf.types` (`ElfFile`, `Section`, `Segment`, `VersionNeed`,
`SymbolVersion`); everything else in pybuild works with these, so a change of parser touches
this file alone. LIEF is lenient (a truncated file parses with its sections silently missing), so
the layout is checked against the file size here before anyone relies on it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import lief

from pybuild.elf.types import (
    ELF_MAGIC,
    ELFCLASS32,
    ELFCLASS64,
    ELFDATA2LSB,
    ELFDATA2MSB,
    HEADER_SIZES,
    ElfClass,
    ElfError,
    ElfFile,
    Section,
    Segment,
    SymbolVersion,
    VersionNeed,
)

lief.logging.disable()


def _text(value: str | bytes) -> str:
    """LIEF returns bytes for names that are not UTF-8; keep them readable and lossless."""
    return value if isinstance(value, str) else value.decode("utf-8", errors="backslashreplace")


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
    ehsize, phentsize, shentsize = HEADER_SIZES[elf_class]
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


def _parser_config() -> lief.ELF.ParserConfig:
    """What pybuild reads: headers, sections, segments, dynamic entries, symbol versions.

    The symbol table, relocations, notes and overlay are skipped: nothing in pybuild uses them,
    and the symbol table alone is most of LIEF's time on an unstripped file.
    """
    config = lief.ELF.ParserConfig()
    config.parse_symtab_symbols = False
    config.parse_relocations = False
    config.parse_notes = False
    config.parse_overlay = False
    return config


_CONFIG = _parser_config()


def read_elf(path: Path, label: str | None = None) -> ElfFile:
    """Parse `path`; raise `ElfError` (one line, naming `label`) if it is not a sound ELF file."""
    label = label or str(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ElfError(f"{label}: cannot read: {err}") from None
    return read_elf_bytes(data, label)


def read_elf_bytes(data: bytes, label: str) -> ElfFile:
    """Parse an ELF file held in memory; raise `ElfError` (one line, naming `label`) if it is
    not a sound ELF file. No file is written: the stripper checks its result with this."""
    elf_class, little_endian = _ident(data, label)
    # A file object, not bytes: LIEF copies bytes element by element, a stream in one read.
    binary = lief.ELF.parse(io.BytesIO(data), _CONFIG)
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
