"""Writing archives from strangers into a directory, whatever their member graph.

Every archive pybuild unpacks (a python-build-standalone tarball, a Debian package, a layer zip)
goes through one `TreeWriter`, which never follows a link while writing:

- a member's name is relative, without ``..``; its parent directories are walked one component
  at a time from the tree's root with ``O_NOFOLLOW`` directory descriptors, and a symbolic link
  met on the way is resolved by pybuild *inside the tree* (its target joined to where the link
  is, ``..`` never above the root; an absolute target is refused, or, for a sysroot, taken from
  the tree's root as the guest would), so a chain of links that each look harmless cannot lead
  out (CPython's PEP 706 ``data_filter`` and pip's unpacking check one link at a time on disk;
  this resolves every path as ``openat2(RESOLVE_IN_ROOT)`` would);
- the file itself is created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` in that directory: an
  existing name (a duplicate member, or a link planted to be written through) is an error;
- a hard link is a copy of a regular file already written inside the tree, nothing else;
- devices, FIFOs and sockets are refused;
- once everything is written, every link of the tree is resolved again, whole chains included,
  so a link made harmless-looking by the order of the members is caught too.

What the writer created is reported with its *real* place in the tree (after in-tree link
resolution), so callers record exactly what is on disk.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import lzma
import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal, NoReturn

from pybuild.errors import PybuildError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

MAX_LINK_HOPS = 40  # the kernel's limit (ELOOP)
_CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

Kind = Literal["file", "dir", "symlink"]


class UnsafeArchiveError(PybuildError):
    """An archive member would land outside its tree, or cannot be written safely."""


@dataclass(frozen=True, slots=True)
class Written:
    """One thing the writer created: its real tree-relative path, kind and mode."""

    path: str
    kind: Kind
    mode: int = 0
    size: int = 0
    link: str = ""  # a symlink's target, as stored


def printable(name: str) -> str:
    """A name from a stranger, fit for one line: as it is if printable; else the repr of the
    string, or of its bytes if it is not UTF-8 (undecodable bytes kept as surrogates, shown as
    ``b'caf\\xe9.txt'``)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        pass
    else:
        return name if name.isprintable() else repr(name)
    try:
        return repr(name.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        return ascii(name)


def require_utf8(name: str, label: str) -> None:
    """Refuse a name that is not UTF-8: a zip entry's name is, and the tree becomes a zip."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeArchiveError(
            f"{label}: {printable(name)}: the name is not UTF-8 (a zip entry's name must be)"
        ) from None


def split_name(name: str, label: str) -> list[str]:
    """The components of a member name; refuse absolute names, ``..``, NUL and backslashes."""
    if "\0" in name or "\\" in name:
        raise UnsafeArchiveError(f"{label}: member {name!r}: a NUL or backslash in its name")
    if name.startswith("/"):
        raise UnsafeArchiveError(f"{label}: member {name!r} has an absolute name")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{label}: member {name!r} escapes the extraction root (..)")
    if not parts:
        raise UnsafeArchiveError(f"{label}: member {name!r} names the root itself")
    return parts


@dataclass
class TreeWriter:
    """Creates files, directories and links below `root` without ever following a link.

    `absolute_links`: "refuse" (a layer: /opt is the root, nothing may point at the host), or
    "root" (a sysroot: an absolute target is resolved from the tree's root, as the guest sees
    it). `label` names the archive in errors.
    """

    root: Path
    label: str
    absolute_links: Literal["refuse", "root"] = "refuse"
    written: list[Written] = field(default_factory=list)
    _links: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    # --- resolution inside the tree ----------------------------------------------------------

    def _fail(self, message: str) -> NoReturn:
        raise UnsafeArchiveError(f"{self.label}: {message}")

    def _open_root(self) -> int:
        return os.open(self.root, _DIR_FLAGS)

    def _open_resolved(self, parts: list[str]) -> int:
        """A descriptor of the real directory `parts` (no link among them), from the root."""
        fd = self._open_root()
        try:
            for part in parts:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
        except OSError:
            os.close(fd)
            raise
        return fd

    def _link_components(self, target: str, where: str) -> tuple[bool, list[str]]:
        """(from the root?, components) of a link's target; refuse what must not be followed."""
        if target.startswith("/"):
            if self.absolute_links == "refuse":
                raise UnsafeArchiveError(
                    f"{self.label}: {where} is a link to the absolute path {target!r}"
                )
            return True, [p for p in target.split("/") if p]
        return False, [p for p in target.split("/") if p]

    def walk(self, parts: list[str], *, create: bool, what: str) -> tuple[int, list[str]]:
        """Open directory `parts` (creating missing ones if `create`), resolving every link on
        the way inside the tree. Returns (descriptor, real components)."""
        pending = list(parts)
        resolved: list[str] = []
        fd = self._open_root()
        hops = 0
        try:
            while pending:
                part = pending.pop(0)
                if part in ("", "."):
                    continue
                if part == "..":
                    if not resolved:
                        self._fail(f"{what}: a link leads above the extraction root")
                    resolved.pop()
                    os.close(fd)
                    fd = self._open_resolved(resolved)
                    continue
                try:
                    info = os.stat(part, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    if not create:
                        raise UnsafeArchiveError(
                            f"{self.label}: {what}: {'/'.join([*resolved, part])} does not exist"
                        ) from None
                    os.mkdir(part, 0o755, dir_fd=fd)
                    info = os.stat(part, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISLNK(info.st_mode):
                    hops += 1
                    if hops > MAX_LINK_HOPS:
                        self._fail(f"{what}: too many levels of links")
                    here = "/".join([*resolved, part])
                    absolute, target = self._link_components(os.readlink(part, dir_fd=fd), here)
                    if absolute:
                        resolved = []
                        os.close(fd)
                        fd = self._open_root()
                    pending = target + pending
                    continue
                if not stat.S_ISDIR(info.st_mode):
                    self._fail(f"{what}: {'/'.join([*resolved, part])} is not a directory")
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
                resolved.append(part)
        except OSError as err:
            os.close(fd)
            raise UnsafeArchiveError(f"{self.label}: {what}: {err.strerror}") from None
        except BaseException:
            os.close(fd)
            raise
        return fd, resolved

    def _resolve(self, parts: list[str]) -> list[str] | None:
        """Follow `parts` from the root with every link resolved inside the tree; the real
        components, or None when a link leads out (or loops). Components that do not exist are
        taken as they are written. Reading only: no descriptor games are needed here."""
        pending = list(parts)
        resolved: list[str] = []
        hops = 0
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not resolved:
                    return None
                resolved.pop()
                continue
            try:
                info = self.root.joinpath(*resolved, part).lstat()
            except OSError:
                resolved.append(part)
                continue
            if stat.S_ISLNK(info.st_mode):
                hops += 1
                if hops > MAX_LINK_HOPS:
                    return None
                target = str(self.root.joinpath(*resolved, part).readlink())
                if target.startswith("/"):
                    if self.absolute_links == "refuse":
                        return None
                    resolved = []
                pending = [p for p in target.split("/") if p] + pending
                continue
            resolved.append(part)
        return resolved

    def resolve(self, name: str) -> str | None:
        """The real tree-relative path `name` leads to, links followed inside the tree; None
        when it would leave the tree."""
        real = self._resolve([p for p in name.split("/") if p])
        return None if real is None else "/".join(real)

    # --- creating things ---------------------------------------------------------------------

    def directory(self, name: str) -> None:
        """Create the directory `name` and any missing parents, links on the way resolved inside the
        tree; an existing directory is fine."""
        require_utf8(name, self.label)
        parts = split_name(name, self.label)
        fd, real = self.walk(parts, create=True, what=name)
        os.close(fd)
        self.written.append(Written("/".join(real), "dir", 0o755))

    def _create(self, name: str) -> tuple[int, list[str], str]:
        require_utf8(name, self.label)
        parts = split_name(name, self.label)
        parent, real = self.walk(parts[:-1], create=True, what=name)
        return parent, real, parts[-1]

    def file(self, name: str, source: bytes | IO[bytes], mode: int = 0o644) -> Written:
        """Create the regular file `name` from bytes or a readable stream."""
        parent, real, last = self._create(name)
        try:
            fd = os.open(
                last,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=parent,
            )
        except FileExistsError:
            raise UnsafeArchiveError(
                f"{self.label}: {name}: written twice (a duplicate member, or a name that exists)"
            ) from None
        except OSError as err:
            raise UnsafeArchiveError(f"{self.label}: {name}: {err.strerror}") from None
        finally:
            os.close(parent)
        size = 0
        with os.fdopen(fd, "wb") as out:
            if isinstance(source, bytes):
                out.write(source)
                size = len(source)
            else:
                while chunk := source.read(_CHUNK):
                    out.write(chunk)
                    size += len(chunk)
            os.fchmod(out.fileno(), mode & 0o777)
        written = Written("/".join([*real, last]), "file", mode & 0o777, size)
        self.written.append(written)
        return written

    def symlink(self, name: str, target: str) -> Written:
        """Create the link `name` -> `target`; a target that leaves the tree is refused."""
        if not target or "\0" in target:
            raise UnsafeArchiveError(f"{self.label}: {name}: a link with an empty target")
        require_utf8(target, f"{self.label}: {printable(name)}: its target")
        parent, real, last = self._create(name)
        try:
            absolute, components = self._link_components(target, name)
            depth = 0 if absolute else len(real)
            for part in components:
                depth = depth - 1 if part == ".." else depth + (part != ".")
                if depth < 0:
                    raise UnsafeArchiveError(
                        f"{self.label}: {name} is a link to {target!r}, outside the tree"
                    )
            try:
                os.symlink(target, last, dir_fd=parent)
            except FileExistsError:
                raise UnsafeArchiveError(f"{self.label}: {name}: written twice") from None
        finally:
            os.close(parent)
        path = "/".join([*real, last])
        self._links.append(path)
        written = Written(path, "symlink", 0o777, len(target.encode()), target)
        self.written.append(written)
        return written

    def hardlink(self, name: str, target: str) -> Written:
        """Write `name` as a copy of `target`, a regular file already written inside the tree."""
        missing = UnsafeArchiveError(
            f"{self.label}: {name} is a hard link to {target!r}, which is not a regular file "
            "already extracted inside the tree"
        )
        parts = split_name(target, self.label)
        try:
            parent, _ = self.walk(parts[:-1], create=False, what=f"{name} (hard link)")
        except UnsafeArchiveError as err:
            if "does not exist" in str(err):
                raise missing from None
            raise
        try:
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        except OSError:
            raise missing from None
        finally:
            os.close(parent)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise missing
        with os.fdopen(fd, "rb") as source:
            return self.file(name, source, stat.S_IMODE(os.fstat(fd).st_mode))

    def finish(self) -> list[Written]:
        """Resolve every link of the tree again (whole chains); refuse any that leaves it."""
        for link in self._links:
            if self._resolve(link.split("/")) is None:
                raise UnsafeArchiveError(
                    f"{self.label}: the link {link} leads outside the tree (through other links)"
                )
        return self.written


# --- archives ------------------------------------------------------------------------------------

Select = Callable[[str], str | None]  # member name -> name in the tree, or None to skip it


def _keep_all(name: str) -> str | None:
    return name


@dataclass(frozen=True, slots=True)
class TarMember:
    """A tar member to extract: its name in the tree (as `select` mapped it) and its header."""

    name: str  # as mapped by `select`
    info: tarfile.TarInfo


def tar_members(tar: tarfile.TarFile, label: str, select: Select) -> list[TarMember]:
    """The members to extract, checked for type; refuse devices, FIFOs and the like."""
    members = []
    for info in tar.getmembers():
        if not (info.isfile() or info.isdir() or info.issym() or info.islnk()):
            raise UnsafeArchiveError(
                f"{label}: member {info.name!r} is a device, FIFO or other special file"
            )
        if info.isdir() and info.name.strip("./") == "":
            continue  # "./", the root itself (Debian's data.tar starts with it)
        split_name(info.name, label)
        mapped = select(info.name.removeprefix("./"))
        if mapped is not None:
            members.append(TarMember(mapped, info))
    return members


def extract_tar_members(
    tar: tarfile.TarFile,
    members: list[TarMember],
    writer: TreeWriter,
    *,
    select: Select = _keep_all,
    reverse: bool = False,
) -> None:
    """Write `members`: symbolic links first (their targets need not exist), then directories
    and regular files (in archive order, or reversed: the result must not depend on it), then
    hard links (copies of files already written)."""
    symlinks = [m for m in members if m.info.issym()]
    plain = [m for m in members if not (m.info.issym() or m.info.islnk())]
    hardlinks = [m for m in members if m.info.islnk()]
    for member in symlinks + (plain[::-1] if reverse else plain) + hardlinks:
        info = member.info
        if info.isdir():
            writer.directory(member.name)
        elif info.issym():
            writer.symlink(member.name, info.linkname)
        elif info.islnk():
            target = select(info.linkname.removeprefix("./"))
            if target is None:
                raise UnsafeArchiveError(
                    f"{writer.label}: {member.name} is a hard link to {info.linkname!r}, "
                    "which is not extracted"
                )
            writer.hardlink(member.name, target)
        else:
            handle = tar.extractfile(info)
            if handle is None:
                raise UnsafeArchiveError(f"{writer.label}: cannot read {info.name!r}")
            with handle:
                writer.file(member.name, handle, 0o755 if info.mode & stat.S_IXUSR else 0o644)


def extract_tar(
    source: Path | IO[bytes],
    writer: TreeWriter,
    *,
    select: Select = _keep_all,
    reverse: bool = False,
) -> list[Written]:
    """Extract a (compressed) tar through `writer`; `select` maps or skips member names."""
    opened = {"name": source} if isinstance(source, Path) else {"fileobj": source}
    label = writer.label
    try:
        with tarfile.open(mode="r:*", **opened) as tar:
            members = tar_members(tar, label, select)
            extract_tar_members(tar, members, writer, select=select, reverse=reverse)
            _read_to_end(tar, label)
    except (tarfile.TarError, zipfile.BadZipFile) as err:
        raise UnsafeArchiveError(f"{label}: not a readable tar archive: {err}") from None
    except EOFError:
        raise UnsafeArchiveError(
            f"{label} is corrupt (its compressed stream is cut short)"
        ) from None
    except (zlib.error, lzma.LZMAError) as err:
        raise UnsafeArchiveError(f"{label} is corrupt (bad compressed data: {err})") from None
    except OSError as err:
        if isinstance(err, gzip.BadGzipFile):
            raise UnsafeArchiveError(f"{label} is corrupt (gzip: {err})") from None
        if "Invalid data stream" in str(err):  # bz2's corrupt data
            raise UnsafeArchiveError(f"{label} is corrupt (bzip2: {err})") from None
        raise UnsafeArchiveError(f"{label}: cannot read it: {err}") from None
    return writer.finish()


def _read_to_end(tar: tarfile.TarFile, label: str) -> None:
    """After the last member, a tar holds only NUL blocks (the end-of-archive marker and padding).

    tarfile takes a header that fails its checksum after the first as the end of the archive, and a
    compressed stream's checksum (gzip's CRC-32, xz's check) is only verified at its end: read the
    rest of the stream to its end and refuse anything but NULs, so that a damaged archive is never
    half-extracted in silence."""
    stream = tar.fileobj
    stream.seek(tar.offset)
    position = tar.offset
    while chunk := stream.read(_CHUNK):
        if chunk.count(0) != len(chunk):
            at = position + len(chunk) - len(chunk.lstrip(b"\0"))
            raise UnsafeArchiveError(
                f"{label} is corrupt (bytes at offset {at:,} of its tar stream, after "
                f"{len(tar.getmembers())} readable members, are neither a member nor the "
                "end-of-archive marker: a damaged header or trailing data)"
            )
        position += len(chunk)


# --- Debian packages (ar archives holding data.tar.*) -----------------------------------------

_AR_MAGIC = b"!<arch>\n"
_AR_HEADER = 60


def deb_data(path: Path, label: str) -> Iterator[IO[bytes]]:
    """Yield the ``data.tar.*`` member of a .deb as a readable stream (one item)."""
    with path.open("rb") as handle:
        if handle.read(len(_AR_MAGIC)) != _AR_MAGIC:
            raise UnsafeArchiveError(f"{label}: not a Debian package (no ar header)")
        while True:
            header = handle.read(_AR_HEADER)
            if not header:
                break
            if len(header) < _AR_HEADER or header[58:60] != b"`\n":
                raise UnsafeArchiveError(f"{label}: truncated or corrupt ar member header")
            name = header[:16].decode("ascii", errors="replace").strip().rstrip("/")
            try:
                size = int(header[48:58].decode("ascii").strip())
            except ValueError:
                raise UnsafeArchiveError(f"{label}: corrupt ar member size") from None
            if name.startswith("data.tar"):
                if name.endswith(".zst"):
                    raise UnsafeArchiveError(
                        f"{label}: data.tar.zst (zstd) is not readable with this Python's tarfile"
                    )
                data = handle.read(size)
                if len(data) != size:
                    raise UnsafeArchiveError(f"{label}: truncated data member")
                yield io.BytesIO(data)
                return
            handle.seek(size + (size & 1), os.SEEK_CUR)
    raise UnsafeArchiveError(f"{label}: no data.tar member")


def extract_deb(
    path: Path, writer: TreeWriter, *, select: Select = _keep_all, reverse: bool = False
) -> list[Written]:
    """Extract a Debian package's files (its data.tar) through `writer` (`reverse`: regular files
    in reverse archive order, as `extract_tar_members`)."""
    for data in deb_data(path, writer.label):
        return extract_tar(data, writer, select=select, reverse=reverse)
    raise AssertionError("unreachable")


# --- layer zips --------------------------------------------------------------------------------

# AWS accepts 262,144,000 bytes unzipped for a function and all its layers; anything far above is
# not a layer, and may be a zip bomb.
MAX_UNPACKED = 4 * 262_144_000


def _member_problem(  # noqa: PLR0911 - one reason per way of failing, side by side
    err: BaseException, info: zipfile.ZipInfo
) -> str | None:
    """Why a zip member's data cannot be read, for one line; None if `err` is no such reason."""
    if isinstance(err, zlib.error | lzma.LZMAError):
        return f"its compressed data is corrupt ({err})"
    if isinstance(err, zipfile.BadZipFile):
        return str(err).replace(f" for file {info.filename!r}", "")  # the name is said already
    if isinstance(err, RuntimeError) and info.flag_bits & 0x1:
        return "it is encrypted"
    if isinstance(err, NotImplementedError):
        return f"compression method {info.compress_type} is not supported"
    if isinstance(err, EOFError):
        return "its data is cut short"
    if isinstance(err, OSError):  # bz2's corrupt data, or the disk
        return f"cannot read it ({err})"
    return None


@contextlib.contextmanager
def reading_member(label: str, info: zipfile.ZipInfo) -> Iterator[None]:
    """Turn every way a zip member's data can fail to be read (a bad local header, a name that
    differs from the central directory's, corrupt compressed data, a failed CRC, encryption, an
    unsupported method) into ``<label>: <member>: <reason>``."""
    try:
        yield
    except (
        zlib.error,
        lzma.LZMAError,
        zipfile.BadZipFile,
        RuntimeError,
        NotImplementedError,
        EOFError,
        OSError,
    ) as err:
        reason = _member_problem(err, info)
        if reason is None:
            raise
        raise UnsafeArchiveError(f"{label}: {printable(info.filename)}: {reason}") from None


class _CheckedStream(io.RawIOBase):
    """A member's stream whose read errors become `UnsafeArchiveError` (see `reading_member`)."""

    def __init__(self, handle: IO[bytes], label: str, info: zipfile.ZipInfo) -> None:
        super().__init__()
        self._handle = handle
        self._label = label
        self._info = info

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        with reading_member(self._label, self._info):
            return self._handle.read(-1 if size is None else size)

    def readall(self) -> bytes:
        return self.read(-1)

    def seekable(self) -> bool:
        return self._handle.seekable()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        with reading_member(self._label, self._info):
            return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def close(self) -> None:
        if not self.closed:
            self._handle.close()
        super().close()


class CheckedZipFile(zipfile.ZipFile):
    """A zip opened for reading whose members can only be read whole and checked: every failure to
    read one (see `reading_member`) is an `UnsafeArchiveError` naming the zip and the member. The
    one place pybuild reads zip members: layer zips (verify, diff, smoke, invoke) and wheels."""

    def __init__(self, path: Path, label: str) -> None:
        super().__init__(path)
        self.label = label

    def open(  # type: ignore[override]
        self,
        name: str | zipfile.ZipInfo,
        mode: Literal["r"] = "r",
        pwd: bytes | None = None,
        *,
        force_zip64: bool = False,
    ) -> IO[bytes]:
        """A member's stream for reading; errors name the zip and the member."""
        info = name if isinstance(name, zipfile.ZipInfo) else self.getinfo(name)
        with reading_member(self.label, info):
            handle = super().open(info, mode, pwd, force_zip64=force_zip64)
        return io.BufferedReader(_CheckedStream(handle, self.label, info))


def open_zip(path: Path, label: str | None = None) -> CheckedZipFile:
    """Open a zip for reading through `CheckedZipFile`; one line if it is not a readable zip."""
    label = str(path) if label is None else label
    try:
        return CheckedZipFile(path, label)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as err:
        raise UnsafeArchiveError(f"{label}: cannot read the zip: {err}") from None


@dataclass(frozen=True, slots=True)
class ZipMember:
    """A checked zip member: header, name, kind and permission bits (0644/0755 if none stored)."""

    info: zipfile.ZipInfo
    name: str  # normalised, relative, no trailing slash
    kind: Kind
    mode: int  # permission bits


def _zip_kind(info: zipfile.ZipInfo, label: str) -> tuple[Kind, int]:
    unix = info.external_attr >> 16 if info.create_system == 3 else 0
    file_type = stat.S_IFMT(unix)
    mode = stat.S_IMODE(unix)
    if info.is_dir() or file_type == stat.S_IFDIR:
        if info.file_size or info.compress_size:
            raise UnsafeArchiveError(
                f"{label}: {printable(info.filename)}: a directory entry holding "
                f"{info.file_size:,} bytes of data"
            )
        return "dir", mode or 0o755
    if file_type == stat.S_IFLNK:
        return "symlink", 0o777
    if file_type in (0, stat.S_IFREG):
        return "file", mode or 0o644
    raise UnsafeArchiveError(
        f"{label}: {info.filename}: not a regular file, directory or link (mode {unix:o})"
    )


def zip_members(archive: zipfile.ZipFile, label: str) -> list[ZipMember]:
    """Check every member's name, type and the total size; refuse duplicates."""
    members: list[ZipMember] = []
    seen: set[str] = set()
    total = 0
    central = archive.start_dir  # where the central directory starts: every entry is before it
    for info in archive.infolist():
        if info.header_offset + 30 > central:
            raise UnsafeArchiveError(
                f"{label}: {printable(info.filename)}: its local header (at offset "
                f"{info.header_offset:,}) is not before the central directory"
            )
        if info.filename[1:2] == ":":
            raise UnsafeArchiveError(f"{label}: member {info.filename!r} has a drive letter")
        name = "/".join(split_name(info.filename, label))
        kind, mode = _zip_kind(info, label)
        if name in seen:
            raise UnsafeArchiveError(f"{label}: {name} appears twice in the zip")
        seen.add(name)
        total += info.file_size
        if total > MAX_UNPACKED:
            raise UnsafeArchiveError(
                f"{label}: unpacks to more than {MAX_UNPACKED:,} bytes: not a Lambda layer"
            )
        members.append(ZipMember(info, name, kind, mode))
    return members


def extract_zip(path: Path, writer: TreeWriter) -> list[ZipMember]:
    """Extract a layer zip through `writer` (links first, then directories and files)."""
    label = writer.label
    with open_zip(path, label) as archive:
        members = zip_members(archive, label)
        ordered = sorted(members, key=lambda m: (m.kind != "symlink", m.name))
        try:
            for member in ordered:
                if member.kind == "dir":
                    writer.directory(member.name)
                elif member.kind == "symlink":
                    writer.symlink(member.name, zip_link_target(archive, member))
                else:
                    with archive.open(member.info) as handle:
                        writer.file(member.name, handle, 0o755 if member.mode & 0o111 else 0o644)
        except OSError as err:
            raise UnsafeArchiveError(f"{label}: cannot extract the zip: {err}") from None
        writer.finish()
    return members


def zip_link_target(archive: CheckedZipFile, member: ZipMember) -> str:
    """A symlink member's target, which must be UTF-8."""
    data = archive.read(member.info)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafeArchiveError(
            f"{archive.label}: {member.name}: a link whose target {data!r} is not UTF-8"
        ) from None
