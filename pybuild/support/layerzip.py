"""Reading layer zips, ours or anyone's, without trusting them.

A member may not escape the extraction root: no absolute names, no ``..``, no symbolic link pointing
outside, no device or FIFO, no name twice. Nothing is extracted before every member has been
checked, so a bad zip leaves nothing behind.
"""

from __future__ import annotations

import posixpath
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pybuild.errors import PybuildError

# AWS accepts 262,144,000 bytes unzipped for a function and all its layers; anything far above is
# not a layer, and may be a zip bomb.
MAX_UNPACKED = 4 * 262_144_000


class LayerZipError(PybuildError):
    """A zip that is not a safe, readable layer."""


@dataclass(frozen=True, slots=True)
class Member:
    info: zipfile.ZipInfo
    name: str  # normalised, relative, no trailing slash
    kind: str  # "file", "dir" or "symlink"
    mode: int  # permission bits


def _kind(info: zipfile.ZipInfo) -> tuple[str, int]:
    unix = info.external_attr >> 16 if info.create_system == 3 else 0
    file_type = stat.S_IFMT(unix)
    mode = stat.S_IMODE(unix)
    if info.is_dir() or file_type == stat.S_IFDIR:
        return "dir", mode or 0o755
    if file_type == stat.S_IFLNK:
        return "symlink", 0o777
    if file_type in (0, stat.S_IFREG):
        return "file", mode or 0o644
    raise LayerZipError(f"{info.filename}: not a regular file, directory or link (mode {unix:o})")


def _normalise(name: str) -> str:
    if name.startswith("/") or "\\" in name or (len(name) > 1 and name[1] == ":"):
        raise LayerZipError(f"{name!r}: absolute or non-POSIX member name")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts or not parts:
        raise LayerZipError(f"{name!r}: member name escapes the layer root")
    return "/".join(parts)


def read_members(archive: zipfile.ZipFile) -> list[Member]:
    """Check every member of `archive`; raise `LayerZipError` for the first unsafe one."""
    members: list[Member] = []
    seen: set[str] = set()
    total = 0
    for info in archive.infolist():
        name = _normalise(info.filename)
        kind, mode = _kind(info)
        if name in seen:
            raise LayerZipError(f"{name}: appears twice in the zip")
        seen.add(name)
        total += info.file_size
        if total > MAX_UNPACKED:
            raise LayerZipError(f"unpacks to more than {MAX_UNPACKED} bytes: not a Lambda layer")
        if kind == "symlink":
            target = archive.read(info).decode("utf-8", errors="replace")
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
            if target.startswith("/") or resolved.startswith(".."):
                raise LayerZipError(f"{name}: symbolic link to {target!r} points outside the layer")
        members.append(Member(info, name, kind, mode))
    return members


def extract_layer(zip_path: Path, destination: Path) -> list[Member]:
    """Extract a layer zip into `destination` (which should be empty) after checking it all."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = read_members(archive)
            for member in sorted(members, key=lambda m: m.name):
                target = destination / member.name
                if member.kind == "dir":
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                data = archive.read(member.info)
                if member.kind == "symlink":
                    target.symlink_to(data.decode("utf-8"))
                else:
                    target.write_bytes(data)
                    target.chmod(0o755 if member.mode & 0o111 else 0o644)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as err:
        raise LayerZipError(f"{zip_path}: cannot read the zip: {err}") from None
    return members
