"""Stripping ELF files: what the loader reads stays, every section it does not read goes.

What the loader reads: the ELF header, the program headers, and the file range of every segment;
the allocated sections lie inside those. These ranges, merged where they overlap or touch, are
the *blocks* of a file. Everything between and after them can go: the non-allocated sections
(``.symtab``, ``.strtab``, ``.debug_*``, ``.comment``, ...), the section header table, padding.

A file straight from the linker has all of that after its last block, so cutting the tail is
enough. patchelf (and so auditwheel) appends a new loadable segment for the dynamic strings and
sections it rewrites, at the end of the file: the symbol table and debug info end up *between*
blocks. Removing them moves the later blocks down, and a segment may only move by a multiple of
the file's largest ``p_align`` (``p_offset`` must stay congruent to ``p_vaddr``): each gap keeps
its length modulo that alignment, as zeros. Virtual addresses, and so every dynamic entry, symbol
and relocation, stay; the file offsets that change are rewritten: each program header's
``p_offset``, ``e_phoff`` if the program headers move, and a new section header table listing the
allocated sections and a fresh ``.shstrtab``. That table goes into the last gap between blocks
that holds it, else after the last block, so a file whose gaps cannot shrink does not grow.

patchelf leaves one more thing behind: each rewrite appends a segment and abandons the previous
copies of ``.dynstr``, ``.dynsym`` or ``.dynamic`` in the segment it appended before, so a
writable segment can end in bytes that no allocated section, header or other segment covers.
Those are cut from the segment's file content (``p_filesz`` shrinks, ``p_memsz`` stays): the same
memory is mapped with the same protections, and the cut bytes read as zeros, as ``.bss`` does.
This is done only where glibc's loader maps the file (no ``PT_INTERP``, so not an executable the
kernel maps), only for writable segments (zero-filling a partial page needs no ``mprotect``), and
a segment is emptied only when its address is aligned (no file page is then mapped for it).

What cannot be done safely is refused, the file left as it was and the reason given: other than
little-endian executables and shared objects, section groups, compressed allocated sections,
allocated sections that refer to dropped ones, bytes of unknown purpose after the last block (a
signature, an appended archive). Unknown bytes *between* blocks are dropped: patchelf leaves its
previous section header table there, and the loader never reads them.

The result is parsed again and compared with the input, independently of how it was made: the ELF
header, every program header (only ``p_offset`` may move, by a multiple of the alignment, and a
cut ``p_filesz`` shrink, over bytes nothing else covers), the contents of every segment and
allocated section at its new offset byte for byte, that what shared bytes before moved together,
the dynamic entries. On any difference the input is kept. The parse of the result is returned
with it, so a caller that parses each file once has the stripped file's parse as well.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from pybuild.elf.reader import read_elf_bytes
from pybuild.elf.types import (
    DF_1_PIE,
    DT_FLAGS_1,
    ET_DYN,
    ET_EXEC,
    PF_W,
    PT_INTERP,
    PT_LOAD,
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
    Segment,
    looks_like_elf,
)
from pybuild.model.tree import EntryKind, Tree
from pybuild.support.fsutil import AtomicFile

Status = Literal["stripped", "already-stripped", "refused"]

# The smallest page size of any Linux target: a segment whose p_align is smaller is still mapped
# page by page, so its offset must keep its remainder modulo a page.
_MIN_PAGE = 4096

# ELF header fields a stripper rewrites (offset, struct format), per class.
_HEADER_FIELDS = {
    64: {
        "phoff": (0x20, "<Q"),
        "shoff": (0x28, "<Q"),
        "shnum": (0x3C, "<H"),
        "shstrndx": (0x3E, "<H"),
    },
    32: {
        "phoff": (0x1C, "<I"),
        "shoff": (0x20, "<I"),
        "shnum": (0x30, "<H"),
        "shstrndx": (0x32, "<H"),
    },
}
# Program header fields a stripper rewrites: p_offset and p_filesz, per class.
_SEGMENT_FIELDS = {
    64: {"offset": (0x08, "<Q"), "filesz": (0x20, "<Q")},
    32: {"offset": (0x04, "<I"), "filesz": (0x10, "<I")},
}
_SECTION_HEADER = {32: struct.Struct("<IIIIIIIIII"), 64: struct.Struct("<IIQQQQIIQQ")}

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Stripped:
    """The stripped file, and the self-check's parse of it (it describes `data` exactly)."""

    data: bytes
    elf: ElfFile
    status: ClassVar[Status] = "stripped"


@dataclass(frozen=True, slots=True)
class NotStripped:
    """The input stays as it was, and why."""

    status: Literal["already-stripped", "refused"]
    reason: str


StripOutcome = Stripped | NotStripped


@dataclass(frozen=True, slots=True)
class StripResult:
    """What stripping did to one file: its status, sizes in bytes before and after (equal unless
    stripped) and, when not stripped, why."""

    path: Path
    status: Status
    size_before: int
    size_after: int
    reason: str = ""

    @property
    def saved(self) -> int:
        """Bytes removed (0 unless stripped)."""
        return self.size_before - self.size_after


class _RefusedError(Exception):
    pass


def _alignment(elf: ElfFile) -> int:
    """The modulus every offset keeps its remainder for: the largest p_align, at least a page."""
    largest = _MIN_PAGE
    for number, segment in enumerate(elf.segments):
        if segment.align > 1 and segment.align & (segment.align - 1):
            raise _RefusedError(f"segment {number} has p_align {segment.align}, not a power of two")
        largest = max(largest, segment.align)
    return largest


def _info_section(section: Section) -> int:
    """The section index in sh_info, if sh_info holds one."""
    if section.type in (SHT_REL, SHT_RELA) or section.flags & SHF_INFO_LINK:
        return section.info
    return 0


def _check_strippable(elf: ElfFile) -> None:
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
    if elf.sections[0].type != SHT_NULL:
        raise _RefusedError("section 0 is not the null section")
    for section in elf.sections:
        label = section.name or f"#{section.index}"
        if max(section.link, _info_section(section)) >= elf.shnum:
            raise _RefusedError(f"section {label} refers to a section that does not exist")
        if section.type == SHT_GROUP:
            raise _RefusedError(f"section group {label} is not handled")
        if not section.is_alloc:
            continue
        if section.flags & SHF_COMPRESSED:
            raise _RefusedError(f"allocated section {label} is compressed")
        for verb, target in (("links", section.link), ("applies", _info_section(section))):
            if target and not elf.sections[target].is_alloc:
                raise _RefusedError(
                    f"allocated section {label} {verb} to non-allocated {elf.sections[target].name}"
                )


def _overlaps(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _headers(elf: ElfFile) -> list[Span]:
    spans = [(0, elf.ehsize)]
    if elf.phnum:
        spans.append((elf.phoff, elf.phoff + elf.phnum * elf.phentsize))
    return spans


def _covering(elf: ElfFile, number: int) -> list[Span]:
    """What covers bytes of segment `number` besides itself: the headers, the allocated
    sections, every other segment."""
    spans = _headers(elf) + [(s.offset, s.end) for s in elf.sections if s.is_alloc]
    spans += [(s.offset, s.end) for i, s in enumerate(elf.segments) if i != number and s.filesz]
    return [span for span in spans if span[1] > span[0]]


def _loaded_by_glibc(elf: ElfFile) -> bool:
    """A shared library: glibc's loader maps it (an executable, PIE or static, is mapped by the
    kernel, whose handling of a segment's zero-filled tail has varied across versions)."""
    pie = any(tag == DT_FLAGS_1 and value & DF_1_PIE for tag, value in elf.dynamic)
    interpreter = any(s.type == PT_INTERP for s in elf.segments)
    return elf.file_type == ET_DYN and not pie and not interpreter


def _may_cut(elf: ElfFile, segment: Segment) -> bool:
    """Whether the end of this segment's file content may go if nothing else covers it."""
    return _loaded_by_glibc(elf) and segment.type == PT_LOAD and bool(segment.flags & PF_W)


def _file_sizes(elf: ElfFile, align: int) -> tuple[int, ...]:
    """Each segment's p_filesz after stripping: cut back to the last byte something else covers,
    where that is allowed."""
    sizes = []
    for number, segment in enumerate(elf.segments):
        size = segment.filesz
        if size and _may_cut(elf, segment):
            span = (segment.offset, segment.end)
            covered = [c for c in _covering(elf, number) if _overlaps(c, span)]
            size = max((min(end, span[1]) for _, end in covered), default=span[0]) - span[0]
            if size == 0 and segment.vaddr % align:
                size = segment.filesz  # emptied, its first page would still be mapped
        sizes.append(size)
    return tuple(sizes)


def _merge(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _check_tail(elf: ElfFile, data: bytes, end: int) -> None:
    """Refuse bytes after the last block that no section, segment or header accounts for."""
    known = [(s.offset, s.end) for s in elf.sections if s.occupies_file]
    known += [(s.offset, s.end) for s in elf.segments]
    known.append((elf.shoff, elf.shoff + elf.shnum * elf.shentsize))
    position = end
    unknown = 0
    for start, stop in [*sorted(known), (len(data), len(data))]:
        if start > position:
            unknown += start - position - data.count(0, position, start)
        position = max(position, stop)
    if unknown:
        raise _RefusedError(
            f"{unknown} bytes of unknown data after the loadable content "
            "(a signature or an appended archive?)"
        )


@dataclass(frozen=True, slots=True)
class _Block:
    """A run of bytes the loader reads, moved down by `shift` bytes as a whole."""

    start: int
    end: int
    shift: int

    @property
    def new_start(self) -> int:
        return self.start - self.shift

    @property
    def new_end(self) -> int:
        return self.end - self.shift


@dataclass(frozen=True, slots=True)
class _Layout:
    blocks: tuple[_Block, ...]
    file_sizes: tuple[int, ...]  # each segment's new p_filesz
    names_offset: int  # where the new .shstrtab goes
    shoff: int  # where the new section header table goes
    size: int  # of the stripped file
    align: int

    def moved(self, offset: int) -> int:
        """The new offset of an old one (between blocks: moved as the block before it)."""
        starts = [block.start for block in self.blocks]
        block = self.blocks[max(bisect.bisect_right(starts, offset) - 1, 0)]
        return offset - block.shift

    def segment_offset(self, number: int, segment: Segment) -> int:
        offset = self.moved(segment.offset)
        if self.file_sizes[number] == 0 and offset > self.size:
            # Nothing of it is in the file: any congruent offset within the file will do.
            offset -= (offset - self.size + self.align - 1) // self.align * self.align
            if offset < 0:
                raise _RefusedError(f"segment {number}: no offset in the file keeps its alignment")
        return offset


def _plan(elf: ElfFile, data: bytes, names_size: int, table_size: int) -> _Layout:
    """Where each block goes, and the new section names and header table."""
    align = _alignment(elf)
    sizes = _file_sizes(elf, align)
    spans = _headers(elf) + [(s.offset, s.end) for s in elf.sections if s.is_alloc]
    spans += [(s.offset, s.offset + size) for s, size in zip(elf.segments, sizes, strict=True)]
    merged = _merge([span for span in spans if span[1] > span[0]])
    _check_tail(elf, data, merged[-1][1])
    blocks: list[_Block] = []
    cursor = 0
    for start, end in merged:
        # The lowest offset at or after `cursor` with the same remainder modulo `align`.
        new_start = start - (start - cursor) // align * align
        blocks.append(_Block(start, end, start - new_start))
        cursor = new_start + end - start
    word = 8 if elf.bits == 64 else 4

    def table_after(names_offset: int) -> int:
        return names_offset + names_size + -(names_offset + names_size) % word

    # In the last gap between blocks that holds them, else after the last block.
    for before, after in reversed(list(itertools.pairwise(blocks))):
        shoff = table_after(before.new_end)
        if shoff + table_size <= after.new_start:
            return _Layout(tuple(blocks), sizes, before.new_end, shoff, cursor, align)
    shoff = table_after(cursor)
    return _Layout(tuple(blocks), sizes, cursor, shoff, shoff + table_size, align)


def _names_table(kept: list[Section]) -> tuple[bytes, dict[str, int]]:
    names = bytearray(b"\0")
    offsets: dict[str, int] = {"": 0}
    for name in [s.name for s in kept] + [".shstrtab"]:
        if name not in offsets:
            offsets[name] = len(names)
            names += name.encode() + b"\0"
    return bytes(names), offsets


def _section_table(
    elf: ElfFile, kept: list[Section], layout: _Layout, names_size: int, offsets: dict[str, int]
) -> bytes:
    index = {section.index: new for new, section in enumerate(kept)}
    header = _SECTION_HEADER[elf.bits]
    table = bytearray(header.size)  # the null section
    for section in kept[1:]:
        table += header.pack(
            offsets[section.name],
            section.type,
            section.flags,
            section.addr,
            layout.moved(section.offset),
            section.size,
            index[section.link] if section.link else 0,
            index[section.info] if _info_section(section) else section.info,
            section.addralign,
            section.entsize,
        )
    table += header.pack(
        offsets[".shstrtab"], SHT_STRTAB, 0, 0, layout.names_offset, names_size, 0, 0, 1, 0
    )
    return bytes(table)


def _pack(out: bytearray, field: tuple[int, str], base: int, value: int) -> None:
    struct.pack_into(field[1], out, base + field[0], value)


def _render(elf: ElfFile, data: bytes) -> bytes:
    kept = [s for s in elf.sections if s.is_alloc or s.index == 0]
    names, offsets = _names_table(kept)
    table_size = (len(kept) + 1) * elf.shentsize
    layout = _plan(elf, data, len(names), table_size)
    out = bytearray(layout.size)
    for block in layout.blocks:
        out[block.new_start : block.new_end] = data[block.start : block.end]
    phoff = layout.moved(elf.phoff)
    fields = _SEGMENT_FIELDS[elf.bits]
    for number, segment in enumerate(elf.segments):
        at = phoff + number * elf.phentsize
        _pack(out, fields["offset"], at, layout.segment_offset(number, segment))
        _pack(out, fields["filesz"], at, layout.file_sizes[number])
    out[layout.names_offset : layout.names_offset + len(names)] = names
    table = _section_table(elf, kept, layout, len(names), offsets)
    out[layout.shoff : layout.shoff + len(table)] = table
    header = _HEADER_FIELDS[elf.bits]
    _pack(out, header["phoff"], 0, phoff)
    _pack(out, header["shoff"], 0, layout.shoff)
    _pack(out, header["shnum"], 0, len(kept) + 1)
    _pack(out, header["shstrndx"], 0, len(kept))
    return bytes(out)


# The self-check. It knows nothing of the plan: it compares the two files as parsed.


@dataclass(frozen=True, slots=True)
class _Piece:
    """Something the loader reads, at its old and its new offset."""

    label: str
    start: int
    size: int
    new_start: int

    @property
    def shift(self) -> int:
        return self.start - self.new_start


def _masked(data: bytes, elf: ElfFile) -> bytearray:
    """`data` with the header fields a stripper rewrites zeroed (they are compared as parsed
    values instead)."""
    out = bytearray(data)
    spans = [(0, field) for field in _HEADER_FIELDS[elf.bits].values()]
    for number in range(elf.phnum):
        at = elf.phoff + number * elf.phentsize
        spans += [(at, field) for field in _SEGMENT_FIELDS[elf.bits].values()]
    for base, (offset, fmt) in spans:
        width = struct.calcsize(fmt)
        out[base + offset : base + offset + width] = bytes(width)
    return out


def _section_fields(section: Section) -> tuple[object, ...]:
    """A section header apart from its index, its offset and the indices it refers to."""
    return (
        section.name,
        section.type,
        section.flags,
        section.addr,
        section.size,
        section.addralign,
        section.entsize,
        None if _info_section(section) else section.info,
    )


def _check_identity(before: ElfFile, after: ElfFile) -> None:
    fields = ("elf_class", "little_endian", "machine", "file_type", "phnum", "dynamic", "needed")
    for name in (*fields, "rpath", "runpath", "soname", "version_needs"):
        if getattr(after, name) != getattr(before, name):
            raise _RefusedError(f"self-check: {name} changed")


def _segment_pieces(before: ElfFile, after: ElfFile, align: int) -> list[_Piece]:
    pieces = []
    for number, (old, new) in enumerate(zip(before.segments, after.segments, strict=True)):
        label = f"segment {number}"
        if dataclasses.replace(new, offset=old.offset, filesz=old.filesz) != old:
            raise _RefusedError(f"self-check: program header {number} changed")
        if new.filesz != old.filesz:
            cut = (old.offset + new.filesz, old.end)
            if new.filesz > old.filesz or not _may_cut(before, old):
                raise _RefusedError(f"self-check: the file size of {label} changed")
            if any(_overlaps(cut, span) for span in _covering(before, number)):
                raise _RefusedError(f"self-check: {label} lost bytes something else covers")
            if new.filesz == 0 and old.vaddr % align:
                raise _RefusedError(f"self-check: {label} was emptied at an unaligned address")
        pieces.append(_Piece(label, old.offset, new.filesz, new.offset))
    return pieces


def _section_pieces(before: ElfFile, after: ElfFile, align: int) -> list[_Piece]:
    old_alloc = [s for s in before.sections if s.is_alloc]
    new_alloc = [s for s in after.sections if s.is_alloc]
    if len(old_alloc) != len(new_alloc):
        raise _RefusedError("self-check: allocated sections lost")
    pieces = []
    for old, new in zip(old_alloc, new_alloc, strict=True):
        label = f"section {old.name}"
        if _section_fields(old) != _section_fields(new):
            raise _RefusedError(f"self-check: {label} changed")
        for old_target, new_target in (
            (old.link, new.link),
            (_info_section(old), _info_section(new)),
        ):
            if new_target >= after.shnum or (
                before.sections[old_target].name != after.sections[new_target].name
            ):
                raise _RefusedError(f"self-check: what {label} refers to changed")
        if old.occupies_file:
            pieces.append(_Piece(label, old.offset, old.size, new.offset))
        elif (old.offset - new.offset) % align:
            raise _RefusedError(f"self-check: {label} moved out of alignment")
    return pieces


def _check_moves(pieces: Sequence[_Piece], align: int) -> None:
    """Each piece moved down by a multiple of the alignment; pieces that overlapped, together."""
    for piece in pieces:
        if piece.shift < 0 or piece.shift % align:
            raise _RefusedError(
                f"self-check: {piece.label} moved by {piece.shift} bytes, "
                f"not a multiple of the alignment {align}"
            )
    ordered = sorted(pieces, key=lambda p: p.start)
    for number, piece in enumerate(ordered):
        for other in ordered[number + 1 :]:
            if other.start >= piece.start + piece.size:
                break
            if other.shift != piece.shift:
                raise _RefusedError(f"self-check: {piece.label} and {other.label} came apart")


def _check_contents(
    pieces: Sequence[_Piece], before: ElfFile, data: bytes, after: ElfFile, new: bytes
) -> None:
    old_bytes, new_bytes = _masked(data, before), _masked(new, after)
    for piece in pieces:
        old = old_bytes[piece.start : piece.start + piece.size]
        if old != new_bytes[piece.new_start : piece.new_start + piece.size]:
            raise _RefusedError(f"self-check: contents of {piece.label} changed")
    names = after.sections[after.shstrndx]
    for what, span in (
        ("the section header table", (after.shoff, after.shoff + after.shnum * after.shentsize)),
        ("the section names", (names.offset, names.end)),
    ):
        for piece in pieces:
            if _overlaps(span, (piece.new_start, piece.new_start + piece.size)):
                raise _RefusedError(f"self-check: {what} overlaps {piece.label}")


def _self_check(before: ElfFile, data: bytes, after: ElfFile, new: bytes) -> None:
    """What the loader reads must be the same, at offsets moved only by multiples of the
    alignment; raise `_RefusedError` naming the first thing that is not."""
    _check_identity(before, after)
    align = _alignment(before)
    pieces = [_Piece("the ELF header", 0, before.ehsize, 0)]
    if before.phnum:
        size = before.phnum * before.phentsize
        pieces.append(_Piece("the program headers", before.phoff, size, after.phoff))
    pieces += _segment_pieces(before, after, align)
    pieces += _section_pieces(before, after, align)
    _check_moves(pieces, align)
    _check_contents(pieces, before, data, after, new)


def strip_elf(data: bytes, elf: ElfFile, label: str) -> StripOutcome:
    """Strip the ELF file `data`, whose parse is `elf`; no file is read or written.

    Returns `Stripped` (the new bytes and their parse) or `NotStripped` (already stripped, or
    refused, with the reason). `label` names the file in the reason of a failed self-check parse.
    """
    if elf.size != len(data):
        raise ValueError(f"{label}: the parse is of {elf.size} bytes, the data {len(data)}")
    try:
        _check_strippable(elf)
        new = _render(elf, data)
        if new == data:
            return NotStripped("already-stripped", "already stripped")
        if len(new) > len(data):
            return NotStripped("already-stripped", _why_not_smaller(elf, len(new) - len(data)))
        try:
            after = read_elf_bytes(new, f"{label} (stripped)")
        except ElfError as err:
            raise _RefusedError(f"self-check: the result does not parse ({err})") from None
        _self_check(elf, data, after, new)
    except _RefusedError as err:
        return NotStripped("refused", str(err))
    return Stripped(new, after)


def _why_not_smaller(elf: ElfFile, growth: int) -> str:
    removable = [
        s.name for s in elf.sections if not s.is_alloc and s.index not in (0, elf.shstrndx)
    ]
    if not removable:
        return "already stripped"
    return (
        f"stripping would not make it smaller: the removable sections ({', '.join(removable)}) "
        f"lie inside segments or their alignment padding, and a new section header table would "
        f"add {growth} bytes"
    )


def strip_file(path: Path) -> StripResult:
    """Strip one ELF file in place (atomically, mode preserved); never raises for bad input."""
    data = path.read_bytes()
    before = len(data)
    try:
        outcome = strip_elf(data, read_elf_bytes(data, str(path)), str(path))
    except ElfError as err:
        return StripResult(path, "refused", before, before, str(err).removeprefix(f"{path}: "))
    if isinstance(outcome, NotStripped):
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
    """Strip every ELF file among `paths` in place (see `elf_files`); one result per file."""
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
            reason = entry.elf_error or "not a readable ELF file"
            results.append(StripResult(path, "refused", entry.size, entry.size, reason))
            continue
        outcome = strip_elf(path.read_bytes(), elf, relative)
        if isinstance(outcome, NotStripped):
            results.append(
                StripResult(path, outcome.status, entry.size, entry.size, outcome.reason)
            )
            continue
        before = entry.size
        tree.replace_elf(relative, outcome.data, outcome.elf)
        results.append(StripResult(path, "stripped", before, len(outcome.data)))
    return results
