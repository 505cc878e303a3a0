"""The archive stage: a zip whose bytes depend only on the tree's contents.

Every entry is written by hand, not through `zipfile`, so that nothing of the host leaks in:
entries in sorted order; one timestamp (``SOURCE_DATE_EPOCH`` clamped to 1980-01-01 or later,
rounded down to even seconds, in UTC; 1980-01-01 by default); modes 0755 for directories,
executables and ELF files, 0644 otherwise; ``create_system`` 3 (Unix); no extra fields; no data
descriptors. DEFLATE comes from libdeflate at a fixed level through the pinned `deflate` package,
not from the host's zlib (zlib-ng produces other bytes; zlib promises nothing across versions).
Compressed members are cached by content, so a rebuild only compresses what changed.

Symbolic links: AWS documents nothing about links in layer zips and reports conflict, so a link
is never trusted silently. ``copy-small`` (default) writes a link to a small file of the layer
(at most 64 KiB, e.g. a module alias) as a copy and leaves out every other link (``bin/python3``
-> the interpreter, library aliases): a link never becomes a second copy of a large file.
``drop`` leaves every link out; ``store`` writes real zip symlink entries, for those who have
checked that their deployment keeps them. Every copied or dropped link is reported.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import deflate

from pybuild.elf.types import looks_like_elf
from pybuild.errors import PybuildError

EPOCH_1980 = 315_532_800  # 1980-01-01T00:00:00Z, the earliest time a zip entry can hold
EPOCH_2107 = 4_354_819_199  # 2107-12-31T23:59:59Z, the latest
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
    name: str  # zip member name ("dir/" for directories)
    kind: str  # "file", "dir", "symlink"
    mode: int
    size: int  # uncompressed
    compressed: int
    method: int  # 0 stored, 8 deflated


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    path: Path
    sha256: str
    size: int
    entries: tuple[Entry, ...]
    dropped_links: tuple[tuple[str, str], ...]  # (link, target)
    timestamp: int
    copied_links: tuple[tuple[str, str], ...] = ()  # (link, target) written as copies

    @property
    def unpacked(self) -> int:
        return sum(e.size for e in self.entries)


def zip_epoch(source_date_epoch: str | None) -> int:
    """The entries' timestamp: SOURCE_DATE_EPOCH clamped to [1980, 2107], even seconds."""
    if source_date_epoch is None or source_date_epoch == "":
        return EPOCH_1980
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


def _compress(data: bytes, level: int, cache_dir: Path | None) -> bytes:
    if cache_dir is None:
        return bytes(deflate.deflate_compress(data, level))
    key = hashlib.sha256(data).hexdigest()
    cached = cache_dir / key[:2] / f"{key}-{level}"
    try:
        return cached.read_bytes()
    except FileNotFoundError:
        pass
    compressed = bytes(deflate.deflate_compress(data, level))
    cached.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=".partial.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(compressed)
    Path(tmp).replace(cached)
    return compressed


def _walk(root: Path) -> list[tuple[str, Path]]:
    """(member name, path) for every directory, file and link below root, sorted by name."""
    found: list[tuple[str, Path]] = []
    for directory, dirnames, filenames in os.walk(root):
        base = Path(directory)
        for name in dirnames:
            path = base / name
            suffix = "" if path.is_symlink() else "/"
            found.append((path.relative_to(root).as_posix() + suffix, path))
        for name in filenames:
            path = base / name
            found.append((path.relative_to(root).as_posix(), path))
    return sorted(found, key=lambda item: item[0].encode("utf-8"))


class _ZipStream:
    """Appends entries to an open file, hashing every byte written; builds the central directory."""

    def __init__(self, handle: BinaryIO, epoch: int, level: int, cache_dir: Path | None) -> None:
        self.handle = handle
        self.dos_time, self.dos_date = _dos_time(epoch)
        self.level = level
        self.cache_dir = cache_dir
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
            compressed = _compress(data, self.level, self.cache_dir)
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


def _member(name: str, path: Path) -> tuple[str, int, bytes]:
    """(kind, mode, data) of one tree member as it goes into the zip."""
    if path.is_symlink():
        return "symlink", 0o120777, str(path.readlink()).encode("utf-8")
    if name.endswith("/"):
        return "dir", 0o40755, b""
    executable = path.stat().st_mode & 0o111 or looks_like_elf(path)
    return "file", 0o100755 if executable else 0o100644, path.read_bytes()


def _small_link_target(root: Path, link: Path) -> Path | None:
    """The file `link` points to, if it is a small regular file inside `root`."""
    try:
        target = link.resolve(strict=True)
        target.relative_to(root.resolve())
    except (OSError, ValueError):
        return None
    if not target.is_file() or target.stat().st_size > SMALL_LINK_TARGET:
        return None
    return target


def write_zip(
    root: Path,
    out: Path,
    *,
    epoch: int,
    level: int,
    symlinks: str = "copy-small",
    cache_dir: Path | None = None,
    before_publish: Callable[[ArchiveResult], None] | None = None,
) -> ArchiveResult:
    """Write the tree under `root` as a zip at `out` (through a temporary file and a rename).

    `before_publish` sees the finished archive before it replaces `out`; if it raises, `out` is
    left as it was.
    """
    members = _walk(root)
    if len(members) > MAX_ENTRIES:
        raise ArchiveError(f"{len(members)} entries: more than a zip without zip64 holds")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial")
    tmp = Path(tmp_name)
    dropped: list[tuple[str, str]] = []
    copied: list[tuple[str, str]] = []
    try:
        with os.fdopen(fd, "wb") as handle:
            stream = _ZipStream(handle, epoch, level, cache_dir)
            for name, path in members:
                kind, mode, data = _member(name, path)
                if kind == "symlink" and symlinks != "store":
                    target = data.decode("utf-8")
                    small = _small_link_target(root, path)
                    if symlinks == "drop" or small is None:
                        dropped.append((name, target))
                        continue
                    copied.append((name, target))
                    kind, mode, data = _member(name, small)
                stream.add(name, kind, mode, data)
            stream.finish()
            handle.flush()
            os.fsync(handle.fileno())
        result = ArchiveResult(
            out,
            stream.digest.hexdigest(),
            tmp.stat().st_size,
            tuple(stream.entries),
            tuple(dropped),
            epoch,
            tuple(copied),
        )
        if before_publish is not None:
            before_publish(result)
        tmp.chmod(0o644)
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return result


def utc_date(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
