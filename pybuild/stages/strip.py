"""Stripping ELF files without touching a single loadable byte.

A running program reads only what its program headers map: the bytes up to the end of the loadable
content. Everything after it that is not allocated (``.symtab``, ``.strtab``, ``.debug_*``,
``.comment``, ...) is cut; a fresh ``.shstrtab`` and a section header table of the kept sections
are appended, and the ELF header's ``e_shoff``/``e_shnum``/``e_shstrndx`` are patched (the only
bytes of the loaded range that change; the loader never reads them). The layout
comes from `pybuild.elf.reader` (LIEF); the bytes are written here.

What cannot be done safely is refused, the file left as it was and the reason reported: other
than little-endian executables and shared objects, non-allocated sections inside the loadable
range, allocated sections that refer to dropped ones, data of unknown purpose after the loadable
content (a signature, an appended archive). After writing, the result is parsed again and every
program header, dynamic entry and allocated section is compared with the input; on any difference
the original is kept.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pybuild.elf.reader import read_elf_bytes
from pybuild.elf.types import (
    ET_DYN,
    ET_EXEC,
    SHF_COMPRESSED,
    SHF_INFO_LINK,
    SHN_LORESERVE,
    SHT_GROUP,
    SHT_NULL,
    SHT_REL,
    SHT_RELA,
    SHT_STRTAB,
    ElfError,
    ElfFile,
    Section,
    looks_like_elf,
)
from pybuild.model.tree import EntryKind, Tree
from pybuild.support.fsutil import AtomicFile

Status = Literal["stripped", "already-stripped", "refused"]

# Where e_shoff, e_shnum and e_shstrndx live in the ELF header (offset, struct format), and how
# a section header is packed.
_SECTION_TABLE_FIELDS = {
    32: ((0x20, "<I"), (0x30, "<H"), (0x32, "<H")),
    64: ((0x28, "<Q"), (0x3C, "<H"), (0x3E, "<H")),
}
_SECTION_HEADER = {32: struct.Struct("<IIIIIIIIII"), 64: struct.Struct("<IIQQQQIIQQ")}


@dataclass(frozen=True, slots=True)
class StripResult:
    path: Path
    status: Status
    size_before: int
    size_after: int
    reason: str = ""

    @property
    def saved(self) -> int:
        return self.size_before - self.size_after


class _RefusedError(Exception):
    pass


def _load_end(elf: ElfFile) -> int:
    """The end of everything the loader and the program can see in the file."""
    ends = [elf.ehsize, elf.phoff + elf.phnum * elf.phentsize]
    ends += [segment.end for segment in elf.segments]
    ends += [s.end for s in elf.sections if s.is_alloc and s.occupies_file]
    return max(ends)


def _check_strippable(elf: ElfFile, data: bytes, load_end: int) -> None:
    if not elf.little_endian:
        raise _RefusedError("big-endian files are not handled")
    if elf.file_type not in (ET_EXEC, ET_DYN):
        raise _RefusedError(
            f"ELF type {elf.file_type} is not an executable or shared object "
            "(stripping an object file would break linking)"
        )
    if elf.shnum == 0:
        raise _RefusedError("no section headers")
    if elf.shnum >= SHN_LORESERVE or elf.shstrndx >= SHN_LORESERVE:
        raise _RefusedError("extended section numbering is not handled")
    for section in elf.sections:
        label = section.name or f"#{section.index}"
        if section.type == SHT_GROUP:
            raise _RefusedError(f"section group {label} is not handled")
        if section.is_alloc and section.flags & SHF_COMPRESSED:
            raise _RefusedError(f"allocated section {label} is compressed")
        if not section.is_alloc and section.occupies_file and section.offset < load_end:
            raise _RefusedError(f"non-allocated section {label} lies inside the loadable range")
        if section.is_alloc and section.link and not elf.sections[section.link].is_alloc:
            raise _RefusedError(
                f"allocated section {label} links to non-allocated "
                f"{elf.sections[section.link].name}"
            )
    _check_trailing_data(elf, data, load_end)


def _check_trailing_data(elf: ElfFile, data: bytes, load_end: int) -> None:
    """Refuse bytes after the loadable content that no section or header accounts for."""
    covered = sorted(
        [(s.offset, s.end) for s in elf.sections if not s.is_alloc and s.occupies_file]
        + [(elf.shoff, elf.shoff + elf.shnum * elf.shentsize)]
    )
    position = load_end
    unknown = 0
    for start, end in [*covered, (len(data), len(data))]:
        if start > position:
            unknown += sum(1 for b in data[position:start] if b)  # zero padding is fine
        position = max(position, end)
    if unknown:
        raise _RefusedError(
            f"{unknown} bytes of unknown data after the loadable content "
            "(a signature or an appended archive?)"
        )


def _remap(section: Section, index: dict[int, int]) -> tuple[int, int]:
    """The section's sh_link and sh_info with section indices renumbered."""
    link = index[section.link] if section.link else 0
    info = section.info
    if info and (section.type in (SHT_REL, SHT_RELA) or section.flags & SHF_INFO_LINK):
        info = index[info]
    return link, info


def _render(elf: ElfFile, data: bytes, load_end: int, kept: list[Section]) -> bytes:
    index = {section.index: new for new, section in enumerate(kept)}
    names = bytearray(b"\0")
    offsets: dict[str, int] = {"": 0}
    for name in [s.name for s in kept] + [".shstrtab"]:
        if name not in offsets:
            offsets[name] = len(names)
            names += name.encode() + b"\0"
    header = _SECTION_HEADER[elf.bits]
    table = bytearray()
    for section in kept:
        if section.type == SHT_NULL and section.index == 0:
            table += bytes(header.size)
            continue
        link, info = _remap(section, index)
        table += header.pack(
            offsets[section.name],
            section.type,
            section.flags,
            section.addr,
            section.offset,
            section.size,
            link,
            info,
            section.addralign,
            section.entsize,
        )
    table += header.pack(offsets[".shstrtab"], SHT_STRTAB, 0, 0, load_end, len(names), 0, 0, 1, 0)

    out = bytearray(data[:load_end])
    out += names
    alignment = 8 if elf.bits == 64 else 4
    out += bytes(-len(out) % alignment)
    shoff = len(out)
    out += table
    values = (shoff, len(kept) + 1, len(kept))
    for (offset, fmt), value in zip(_SECTION_TABLE_FIELDS[elf.bits], values, strict=True):
        struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def _self_check(before: ElfFile, data: bytes, after: ElfFile, new: bytes, load_end: int) -> None:
    """Everything the loader reads must be identical; raise `_RefusedError` naming what is not."""
    if after.segments != before.segments:
        raise _RefusedError("self-check: program headers changed")
    if after.dynamic != before.dynamic:
        raise _RefusedError("self-check: dynamic section changed")
    if (after.machine, after.file_type, after.elf_class) != (
        before.machine,
        before.file_type,
        before.elf_class,
    ):
        raise _RefusedError("self-check: ELF header changed")
    # Apart from the three section-table fields of the ELF header, the prefix is untouched.
    restored = bytearray(new[:load_end])
    for offset, fmt in _SECTION_TABLE_FIELDS[before.bits]:
        width = struct.calcsize(fmt)
        restored[offset : offset + width] = data[offset : offset + width]
    if restored != data[:load_end]:
        raise _RefusedError("self-check: loadable bytes changed")
    old_alloc = [s for s in before.sections if s.is_alloc]
    new_alloc = [s for s in after.sections if s.is_alloc]
    if len(old_alloc) != len(new_alloc):
        raise _RefusedError("self-check: allocated sections lost")
    for old, fresh in zip(old_alloc, new_alloc, strict=True):
        same = (
            old.name,
            old.type,
            old.flags,
            old.addr,
            old.offset,
            old.size,
            old.addralign,
            old.entsize,
        ) == (
            fresh.name,
            fresh.type,
            fresh.flags,
            fresh.addr,
            fresh.offset,
            fresh.size,
            fresh.addralign,
            fresh.entsize,
        )
        links = (
            before.sections[old.link].name if old.link else None,
            after.sections[fresh.link].name if fresh.link else None,
        )
        if not same or links[0] != links[1]:
            raise _RefusedError(f"self-check: section {old.name} changed")
        if old.occupies_file and data[old.offset : old.end] != new[fresh.offset : fresh.end]:
            raise _RefusedError(f"self-check: contents of {old.name} changed")


@dataclass(frozen=True, slots=True)
class StripOutcome:
    """What stripping one file in memory gave: new bytes and their parse, or why not."""

    status: Status
    data: bytes | None = None
    elf: ElfFile | None = None  # the parse of `data` made by the self-check
    reason: str = ""


def strip_elf(data: bytes, elf: ElfFile, label: str) -> StripOutcome:
    """Strip an ELF file held in memory, from its parse `elf`; never raises for bad input.

    The result is parsed once (the self-check); that parse is returned for the caller to reuse.
    """
    try:
        load_end = _load_end(elf)
        _check_strippable(elf, data, load_end)
        dropped = [s for s in elf.sections if not s.is_alloc and s.index != 0]
        if all(s.index == elf.shstrndx for s in dropped):
            return StripOutcome("already-stripped", reason="already stripped")
        kept = [s for s in elf.sections if s.is_alloc or s.index == 0]
        new = _render(elf, data, load_end, kept)
        if len(new) >= len(data):
            return StripOutcome("already-stripped", reason="already stripped")
        try:
            after = read_elf_bytes(new, f"{label} (stripped)")
        except ElfError as err:
            raise _RefusedError(f"self-check: the result does not parse ({err})") from None
        _self_check(elf, data, after, new, load_end)
    except _RefusedError as err:
        return StripOutcome("refused", reason=str(err))
    return StripOutcome("stripped", new, after)


def strip_file(path: Path) -> StripResult:
    """Strip one ELF file in place (atomically, mode preserved); never raises for bad input."""
    data = path.read_bytes()
    before = len(data)
    try:
        elf = read_elf_bytes(data, str(path))
    except ElfError as err:
        return StripResult(path, "refused", before, before, str(err).removeprefix(f"{path}: "))
    outcome = strip_elf(data, elf, str(path))
    if outcome.data is None:
        return StripResult(path, outcome.status, before, before, outcome.reason)
    mode = path.stat().st_mode & 0o7777
    with AtomicFile(path.parent, path.name) as out:
        out.write(outcome.data)
        out.commit(path, mode)
    return StripResult(path, "stripped", before, len(outcome.data))


def elf_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Every regular ELF file among `paths`, directories walked recursively in sorted order.

    Symbolic links are not followed: the file they point to is stripped where it lives.
    """
    for path in paths:
        if path.is_symlink():
            continue
        if path.is_dir():
            yield from elf_files(sorted(path.iterdir()))
        elif path.is_file() and looks_like_elf(path):
            yield path


def strip_paths(paths: Iterable[Path]) -> list[StripResult]:
    """`pybuild strip`: every ELF file among `paths`, in place."""
    return [strip_file(path) for path in elf_files(paths)]


def strip_tree(tree: Tree) -> list[StripResult]:
    """The strip stage: every ELF file of the tree, from its one parse; the stripped file's
    parse (the self-check's) replaces it in the inventory, for verify."""
    results = []
    for relative, entry in list(tree.files()):
        if not entry.elf_magic or entry.kind is not EntryKind.FILE:
            continue
        path = tree.root / relative
        elf = tree.elf(relative)
        if elf is None:
            results.append(
                StripResult(path, "refused", entry.size, entry.size, entry.elf_error or "")
            )
            continue
        outcome = strip_elf(path.read_bytes(), elf, relative)
        if outcome.data is None or outcome.elf is None:
            results.append(
                StripResult(path, outcome.status, entry.size, entry.size, outcome.reason)
            )
            continue
        before = entry.size
        tree.replace_elf(relative, outcome.data, outcome.elf)
        results.append(StripResult(path, "stripped", before, len(outcome.data)))
    return results
