"""The archive stage: a zip whose bytes depend only on the tree's contents.

Every entry is written by hand, not through `zipfile`, so that nothing of the host leaks in:
entries in sorted order; one timestamp (``SOURCE_DATE_EPOCH`` clamped to 1980-01-01 or later,
rounded down to even seconds, in UTC; by default 1980-01-01 12:01:00, the floor Debian's
``strip-nondeterminism`` normalises zip times to, so that the zip is a fixed point of the tool
distributions run on everything); modes 0755 for directories, executables and ELF files, 0644
otherwise; ``create_system`` 3 (Unix); no extra fields; no data descriptors. DEFLATE comes from
libdeflate at a fixed level through the pinned `deflate` package, not from the host's zlib
(zlib-ng produces other bytes; zlib promises nothing across versions).

Compressed members are cached by content, level and the compressor's identity (libdeflate's and
deflate's versions), so a rebuild only compresses what changed; every cached entry is
decompressed and compared with the content before it is used, and a bad one is replaced.

Symbolic links: AWS documents nothing about links in layer zips and reports conflict, so a link
is never trusted silently. ``copy-small`` (default) writes a link to a small file of the layer
(at most 64 KiB, e.g. a module alias) as a copy and leaves out every other link (``bin/python3``
-> the interpreter, library aliases): a link never becomes a second copy of a large file.
``drop`` leaves every link out; ``store`` writes real zip symlink entries, for those who have
checked that their deployment keeps them. Every copied or dropped link is reported.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import deflate

from pybuild.elf.types import looks_like_elf
from pybuild.errors import PybuildError
from pybuild.model.layerfile import SymlinkPolicy
from pybuild.model.tree import EntryKind, Tree
from pybuild.support.fsutil import AtomicFile, resolve_path, tree_entries
from pybuild.ui import Ui

EPOCH_1980 = 315_532_800  # 1980-01-01T00:00:00Z, the earliest time a zip entry can hold
EPOCH_2107 = 4_354_819_199  # 2107-12-31T23:59:59Z, the latest
# 1980-01-01T12:01:00Z: strip-nondeterminism rewrites any earlier zip time to this one.
DEFAULT_EPOCH = EPOCH_1980 + 12 * 3600 + 60
MAX_ENTRIES = 65_535  # without zip64, which a Lambda layer never needs
SMALL_LINK_TARGET = 64 * 1024  # `copy-small`: the largest file a link is replaced by a copy of

_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_END = struct.Struct("<4sHHHHIIH")
_VERSION_MADE_BY = (3 << 8) | 20  # Unix, spec 2.0
_VERSION_NEEDED = 20
_UTF8_FLAG = 0x800


class ArchiveError(PybuildError):
    """The zip cannot be written."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One member as written: zip name, kind ("file", "dir" or "symlink"), Unix mode, sizes in bytes
    (uncompressed and as stored) and method (0 stored, 8 deflated)."""

    name: str  # zip member name ("dir/" for directories)
    kind: str  # "file", "dir", "symlink"
    mode: int
    size: int  # uncompressed
    compressed: int
    method: int  # 0 stored, 8 deflated


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    """The zip written: its path, sha256 and size in bytes, its members in order, the timestamp of
    every entry (epoch seconds) and the links left out or written as copies."""

    path: Path
    sha256: str
    size: int
    entries: tuple[Entry, ...]
    dropped_links: tuple[tuple[str, str], ...]  # (link, target)
    timestamp: int
    copied_links: tuple[tuple[str, str], ...] = ()  # (link, target) written as copies

    @property
    def unpacked(self) -> int:
        """The members' total uncompressed size in bytes (a stored link: its target's length)."""
        return sum(e.size for e in self.entries)


def zip_epoch(source_date_epoch: str | None) -> int:
    """The entries' timestamp: SOURCE_DATE_EPOCH clamped to [1980, 2107], even seconds."""
    if source_date_epoch is None or source_date_epoch == "":
        return DEFAULT_EPOCH
    try:
        value = int(source_date_epoch)
    except ValueError:
        raise ArchiveError(f"SOURCE_DATE_EPOCH={source_date_epoch!r} is not an integer") from None
    return min(max(value, EPOCH_1980), EPOCH_2107) // 2 * 2


def _dos_time(epoch: int) -> tuple[int, int]:
    t = time.gmtime(epoch)
    return (
        (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2),
        ((t.tm_year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday,
    )


@dataclass
class Compressor:
    """libdeflate at one level, with an optional verified cache of compressed members."""

    level: int
    identity: str  # e.g. "libdeflate-1.26-deflate-0.9.0": part of every cache key
    cache_dir: Path | None = None
    ui: Ui | None = None
    replaced: int = 0  # cache entries found bad and recomputed
    _disabled: bool = field(default=False, repr=False)

    def _entry(self, data: bytes) -> Path:
        assert self.cache_dir is not None  # noqa: S101 - only called with a cache
        key = hashlib.sha256(data).hexdigest()
        return self.cache_dir / self.identity / str(self.level) / key[:2] / key

    def compress(self, data: bytes) -> bytes:
        """`data` as raw DEFLATE at `level`: the cached bytes if they decompress to `data` exactly,
        else compressed now (and cached, unless the cache is unusable)."""
        if self.cache_dir is None or self._disabled:
            return bytes(deflate.deflate_compress(data, self.level))
        entry = self._entry(data)
        try:
            cached = entry.read_bytes()
        except FileNotFoundError:
            cached = None
        except OSError as err:
            self._disable(err)
            cached = None
        if cached is not None:
            try:
                if bytes(deflate.deflate_decompress(cached, len(data))) == data:
                    return cached
            except deflate.DeflateError:
                pass
            self.replaced += 1
            if self.ui is not None:
                self.ui.warn(f"compression cache entry {entry.name} was corrupt; recomputed it")
            entry.unlink(missing_ok=True)
        compressed = bytes(deflate.deflate_compress(data, self.level))
        if not self._disabled:
            try:
                with AtomicFile(entry.parent, entry.name) as out:
                    out.write(compressed)
                    out.commit(entry)
            except OSError as err:
                self._disable(err)
        return compressed

    def _disable(self, err: OSError) -> None:
        """The cache is only a speed-up: a full or read-only one is reported and skipped."""
        self._disabled = True
        if self.ui is not None:
            self.ui.warn(f"compression cache not used: {err.strerror or err} ({self.cache_dir})")


@dataclass(frozen=True, slots=True)
class Source:
    """One member to write: its zip name and where its content is."""

    name: str  # "dir/" for directories
    path: Path
    kind: EntryKind | None  # None: a directory
    elf: bool = False


def sources_from_tree(tree: Tree) -> list[Source]:
    """The tree's inventory as zip members: every file and link, and their directories."""
    sources = []
    directories: set[str] = set()
    for path, entry in tree.files():
        parts = path.split("/")
        directories.update("/".join(parts[:i]) for i in range(1, len(parts)))
        sources.append(Source(path, tree.root / path, entry.kind, entry.elf_magic))
    sources += [Source(f"{d}/", tree.root / d, None) for d in directories]
    return sorted(sources, key=lambda s: s.name.encode("utf-8"))


def sources_from_directory(root: Path) -> list[Source]:
    """Every file, link and directory below `root` (walked once)."""
    sources = []
    directories: set[str] = set()
    for path in tree_entries(root):
        parts = path.split("/")
        directories.update("/".join(parts[:i]) for i in range(1, len(parts)))
        kind = EntryKind.SYMLINK if (root / path).is_symlink() else EntryKind.FILE
        elf = kind is EntryKind.FILE and looks_like_elf(root / path)
        sources.append(Source(path, root / path, kind, elf))
    sources += [Source(f"{d}/", root / d, None) for d in directories]
    return sorted(sources, key=lambda s: s.name.encode("utf-8"))


class _ZipStream:
    """Appends entries to an open file, hashing every byte written; builds the central directory."""

    def __init__(self, handle: BinaryIO, epoch: int, compressor: Compressor) -> None:
        self.handle = handle
        self.dos_time, self.dos_date = _dos_time(epoch)
        self.compressor = compressor
        self.digest = hashlib.sha256()
        self.offset = 0
        self.central = bytearray()
        self.entries: list[Entry] = []

    def _emit(self, chunk: bytes) -> None:
        self.handle.write(chunk)
        self.digest.update(chunk)
        self.offset += len(chunk)

    def add(self, name: str, kind: str, mode: int, data: bytes) -> None:
        method, payload = 0, data
        if kind == "file" and data:
            compressed = self.compressor.compress(data)
            if len(compressed) < len(data):
                method, payload = 8, compressed
        crc = deflate.crc32(data) & 0xFFFFFFFF
        encoded = name.encode("utf-8")
        flags = 0 if encoded.isascii() else _UTF8_FLAG
        attributes = (mode << 16) | (0x10 if kind == "dir" else 0)
        self.central += (
            _CENTRAL.pack(
                b"PK\x01\x02",
                _VERSION_MADE_BY,
                _VERSION_NEEDED,
                flags,
                method,
                self.dos_time,
                self.dos_date,
                crc,
                len(payload),
                len(data),
                len(encoded),
                0,
                0,
                0,
                0,
                attributes,
                self.offset,
            )
            + encoded
        )
        self._emit(
            _LOCAL.pack(
                b"PK\x03\x04",
                _VERSION_NEEDED,
                flags,
                method,
                self.dos_time,
                self.dos_date,
                crc,
                len(payload),
                len(data),
                len(encoded),
                0,
            )
            + encoded
        )
        self._emit(payload)
        self.entries.append(Entry(name, kind, mode, len(data), len(payload), method))

    def finish(self) -> None:
        start = self.offset
        count = len(self.entries)
        self._emit(bytes(self.central))
        self._emit(_END.pack(b"PK\x05\x06", 0, 0, count, count, len(self.central), start, 0))


def _content(source: Source) -> tuple[str, int, bytes]:
    """(kind, mode, data) of one member as it goes into the zip."""
    if source.kind is None:
        return "dir", 0o40755, b""
    if source.kind is EntryKind.SYMLINK:
        return "symlink", 0o120777, str(source.path.readlink()).encode("utf-8")
    executable = source.path.stat().st_mode & 0o111 or source.elf
    return "file", 0o100755 if executable else 0o100644, source.path.read_bytes()


def _small_link_target(root: Path, link: Path) -> Path | None:
    """The file `link` points to, if it is a small regular file inside `root`."""
    try:
        target = resolve_path(link, strict=True)
        target.relative_to(resolve_path(root))
    except (OSError, ValueError):
        return None
    if not target.is_file() or target.stat().st_size > SMALL_LINK_TARGET:
        return None
    return target


def write_zip(
    sources: Iterable[Source],
    root: Path,
    out: Path,
    *,
    epoch: int,
    compressor: Compressor,
    symlinks: SymlinkPolicy = SymlinkPolicy.COPY_SMALL,
    rename: Callable[[ArchiveResult], Path] | None = None,
) -> ArchiveResult:
    """Write `sources` (members of the tree at `root`) as a zip at `out`, through a temporary
    file and a rename. `rename` may choose another name in the same directory once the finished
    zip is known (its size decides whether it is deployable)."""
    members = list(sources)
    if len(members) > MAX_ENTRIES:
        raise ArchiveError(f"{len(members)} entries: more than a zip without zip64 holds")
    dropped: list[tuple[str, str]] = []
    copied: list[tuple[str, str]] = []
    with AtomicFile(out.parent, out.name) as tmp:
        stream = _ZipStream(tmp.handle, epoch, compressor)
        for source in members:
            kind, mode, data = _content(source)
            if kind == "symlink" and symlinks is not SymlinkPolicy.STORE:
                target = data.decode("utf-8")
                small = _small_link_target(root, source.path)
                if symlinks is SymlinkPolicy.DROP or small is None:
                    dropped.append((source.name, target))
                    continue
                copied.append((source.name, target))
                kind, mode, data = _content(
                    Source(source.name, small, EntryKind.FILE, looks_like_elf(small))
                )
            stream.add(source.name, kind, mode, data)
        stream.finish()
        result = ArchiveResult(
            out,
            stream.digest.hexdigest(),
            stream.offset,
            tuple(stream.entries),
            tuple(dropped),
            epoch,
            tuple(copied),
        )
        if rename is not None:
            result = dataclasses.replace(result, path=rename(result))
        tmp.commit(result.path)
    return result


def utc_date(epoch: int) -> str:
    """An epoch time (seconds) in ISO 8601, UTC: ``1980-01-01T12:01:00Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
