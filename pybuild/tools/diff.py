"""`pybuild diff A.zip B.zip`: where two layer zips differ, entry by entry, and how.

For a changed entry it says what kind of change it is: an ELF file (which sections differ), a
``.pyc`` (header or code), a text file (how many lines), or only zip metadata (mode, time,
compression). Exit 0 when the zips are byte-identical, 1 when they differ, 2 on failure.
"""

from __future__ import annotations

import difflib
import hashlib
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pybuild.elf.types import ELF_MAGIC, ElfError
from pybuild.support.extract import CheckedZipFile, ZipMember, open_zip, zip_members


@dataclass(frozen=True, slots=True)
class Change:
    """An entry in both zips that differs: its name, and what differs as one line."""

    name: str
    detail: str


@dataclass(frozen=True, slots=True)
class ZipDiff:
    """How two zips, A and B, differ: entries only in B (`added`), only in A (`removed`), in both
    but different (`changed`), and differences of the archives themselves. `identical` is byte
    for byte; the sha256s are of the whole files."""

    identical: bool
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[Change, ...]
    archive_only: tuple[str, ...]  # differences of the archive itself, not of any entry
    sha256_a: str = ""
    sha256_b: str = ""

    def lines(self, limit: int | None = None) -> list[str]:
        """One line per difference (``+`` added, ``-`` removed, ``~`` changed, then the archive's
        own), the first `limit` if given."""
        out = [f"+ {name}" for name in self.added]
        out += [f"- {name}" for name in self.removed]
        out += [f"~ {c.name}: {c.detail}" for c in self.changed]
        out += [f"  archive: {text}" for text in self.archive_only]
        return out if limit is None else out[:limit]


def _read(path: Path) -> tuple[CheckedZipFile, dict[str, ZipMember]]:
    archive = open_zip(path)
    try:
        return archive, {m.name: m for m in zip_members(archive, str(path))}
    except BaseException:
        archive.close()
        raise


_LOCAL_HEADER = 30


def _stored(data: bytes, info: zipfile.ZipInfo) -> bytes:
    """An entry's bytes as stored: its local header, name, extra field and compressed data."""
    start = info.header_offset
    header = data[start : start + _LOCAL_HEADER]
    if len(header) < _LOCAL_HEADER:
        return header
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return data[start : start + _LOCAL_HEADER + name_length + extra_length + info.compress_size]


def _elf_detail(a: bytes, b: bytes) -> str:
    from pybuild.elf.reader import read_elf_bytes

    try:
        ea, eb = read_elf_bytes(a, "a"), read_elf_bytes(b, "b")
    except ElfError as err:
        return f"ELF, unreadable ({err})"
    sections_a = {s.name: a[s.offset : s.end] for s in ea.sections}
    sections_b = {s.name: b[s.offset : s.end] for s in eb.sections}
    differing = sorted(
        n for n in sections_a.keys() | sections_b.keys() if sections_a.get(n) != sections_b.get(n)
    )
    parts = []
    if ea.segments != eb.segments:
        parts.append("program headers")
    if differing:
        parts.append(
            "sections "
            + ", ".join(differing[:8])
            + (f" (+{len(differing) - 8})" if len(differing) > 8 else "")
        )
    return "ELF: " + ("; ".join(parts) if parts else "header fields")


def _content_detail(name: str, a: bytes, b: bytes) -> str:
    if a.startswith(ELF_MAGIC) and b.startswith(ELF_MAGIC):
        return _elf_detail(a, b)
    if name.endswith(".pyc") and len(a) >= 16 and len(b) >= 16:
        if a[:4] != b[:4]:
            return f"pyc: magic {a[:4].hex()} -> {b[:4].hex()}"
        if a[4:16] != b[4:16]:
            return "pyc: header (flags or source hash) differs"
        return "pyc: code object differs"
    try:
        lines_a = a.decode("utf-8").splitlines()
        lines_b = b.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return f"binary content differs ({len(a):,} -> {len(b):,} bytes)"
    changed = sum(
        1
        for line in difflib.unified_diff(lines_a, lines_b, lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    )
    return f"text: {changed} lines differ ({len(a):,} -> {len(b):,} bytes)"


def _metadata_detail(ma: ZipMember, mb: ZipMember) -> list[str]:
    out = []
    if ma.mode != mb.mode or ma.kind != mb.kind:
        out.append(f"mode {ma.kind} {ma.mode:o} -> {mb.kind} {mb.mode:o}")
    if ma.info.date_time != mb.info.date_time:
        out.append(f"time {ma.info.date_time} -> {mb.info.date_time}")
    if ma.info.compress_type != mb.info.compress_type:
        out.append(f"compression {ma.info.compress_type} -> {mb.info.compress_type}")
    elif ma.info.compress_size != mb.info.compress_size:
        out.append(f"compressed size {ma.info.compress_size:,} -> {mb.info.compress_size:,}")
    if ma.info.extra != mb.info.extra:
        out.append("extra fields")
    return out


def diff_zips(path_a: Path, path_b: Path) -> ZipDiff:
    """Compare two layer zips entry by entry (each read whole, its members checked as for any layer
    zip); UnsafeArchiveError if one cannot be read."""
    bytes_a, bytes_b = path_a.read_bytes(), path_b.read_bytes()
    archive_a, members_a = _read(path_a)
    archive_b, members_b = _read(path_b)
    with archive_a, archive_b:
        added = tuple(sorted(members_b.keys() - members_a.keys()))
        removed = tuple(sorted(members_a.keys() - members_b.keys()))
        changed = []
        for name in sorted(members_a.keys() & members_b.keys()):
            ma, mb = members_a[name], members_b[name]
            details = _metadata_detail(ma, mb)
            if ma.info.CRC != mb.info.CRC or ma.info.file_size != mb.info.file_size:
                details.insert(
                    0, _content_detail(name, archive_a.read(ma.info), archive_b.read(mb.info))
                )
            elif bytes_a != bytes_b and _stored(bytes_a, ma.info) != _stored(bytes_b, mb.info):
                # the central records agree but the stored bytes do not: read both (each checked
                # against its CRC, so a damaged entry is an error naming it, not a silent "same")
                content_a, content_b = archive_a.read(ma.info), archive_b.read(mb.info)
                if content_a != content_b:
                    details.insert(0, _content_detail(name, content_a, content_b))
                elif not details:
                    details.append("local header or compressed bytes differ (the same content)")
            if details:
                changed.append(Change(name, "; ".join(details)))
        archive_only = []
        if (
            [m.name for m in members_a.values()] != [m.name for m in members_b.values()]
            and not added
            and not removed
        ):
            archive_only.append("entries are in a different order")
        if bytes_a != bytes_b and not (added or removed or changed or archive_only):
            archive_only.append(
                "the archives' bytes differ outside the entries' contents "
                "(headers, comment or layout)"
            )
    return ZipDiff(
        bytes_a == bytes_b,
        added,
        removed,
        tuple(changed),
        tuple(archive_only),
        hashlib.sha256(bytes_a).hexdigest(),
        hashlib.sha256(bytes_b).hexdigest(),
    )
