"""The assemble stage: the runtime archive and every locked wheel, laid out as Lambda's ``/opt``.

The python-build-standalone tarball is checked member by member before anything is written (no
absolute names, no ``..``, no link leaving the root, no device or FIFO, nothing outside
``python/``). Its bundled installers (pip, setuptools in ``site-packages``, ``bin/pip*``) are not
part of a layer: packages come only from the lock, so they are removed before the wheels go in.
Each wheel is installed with pypa/installer, its RECORD verified; console scripts get the shebang
of the layer's interpreter; two wheels writing the same path is an error.

Every file of the tree is recorded with its owner (``runtime`` or a distribution name), which the
later stages and the report use.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TypeVar

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.exceptions import InstallerError
from installer.records import RecordEntry
from installer.sources import WheelFile
from installer.utils import Scheme

from pybuild.errors import PybuildError
from pybuild.support.fsutil import tree_entries

T = TypeVar("T")
RUNTIME = "runtime"
LAYER_MOUNT = "/opt"


class AssembleError(PybuildError):
    """The runtime archive or a wheel cannot be laid out safely."""


@dataclass(frozen=True, slots=True)
class Removal:
    path: str  # relative to the layer root
    size: int
    rule: str


@dataclass
class Tree:
    """The layer being built: its root directory (Lambda's /opt) and who owns each file."""

    root: Path
    python: str  # "python3.11"
    owners: dict[str, str] = field(default_factory=dict)

    @property
    def site_packages(self) -> str:
        return f"python/lib/{self.python}/site-packages"

    @property
    def interpreter(self) -> str:
        return f"{LAYER_MOUNT}/python/bin/{self.python}"

    def files(self) -> list[str]:
        """Every file and symlink of the tree, relative, sorted."""
        return tree_entries(self.root)


def _creation_order(items: list[T]) -> list[T]:
    """`items` as given, or reversed under PYBUILD_REVERSE_ORDER=1 (`build --check`)."""
    return items[::-1] if os.environ.get("PYBUILD_REVERSE_ORDER") == "1" else items


def _check_member(member: tarfile.TarInfo) -> str:
    name = member.name
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts or not parts:
        raise AssembleError(f"runtime archive: member {name!r} escapes the extraction root")
    if parts[0] != "python":
        raise AssembleError(
            f"runtime archive: member {name!r} is outside python/ (not a "
            "python-build-standalone install_only archive?)"
        )
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise AssembleError(
            f"runtime archive: member {name!r} is a device, FIFO or other special file"
        )
    relative = "/".join(parts)
    if member.issym() or member.islnk():
        target = member.linkname
        base = posixpath.dirname(relative) if member.issym() else ""
        resolved = posixpath.normpath(posixpath.join(base, target))
        if target.startswith("/") or resolved.startswith("..") or resolved == ".":
            raise AssembleError(
                f"runtime archive: link {name!r} -> {target!r} points outside the extraction root"
            )
    return relative


def extract_runtime(archive: Path, tree: Tree) -> None:
    """Extract a PBS tarball into `tree.root` after checking every member."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = [(m, _check_member(m)) for m in tar.getmembers()]
            seen: set[str] = set()
            for member, relative in members:
                if relative in seen and not member.isdir():
                    raise AssembleError(f"runtime archive: {relative!r} appears twice")
                seen.add(relative)
            # Files and directories first, links once their targets exist. The order must not
            # matter to the result; PYBUILD_REVERSE_ORDER=1 (`build --check`) proves it.
            ordered = sorted(members, key=lambda item: item[1])
            plain = [m for m in ordered if not (m[0].issym() or m[0].islnk())]
            links = [m for m in ordered if m[0].issym() or m[0].islnk()]
            for member, relative in _creation_order(plain) + links:
                _extract_member(tar, member, relative, tree)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise AssembleError(f"runtime archive {archive.name}: cannot read it: {err}") from None


def _extract_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, relative: str, tree: Tree
) -> None:
    target = tree.root / relative
    if member.isdir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if member.issym():
        target.symlink_to(member.linkname)
    elif member.islnk():
        # A hard link is written as its own file: a zip has no hard links anyway.
        source = tree.root / posixpath.normpath(member.linkname)
        if not source.is_file():
            raise AssembleError(f"runtime archive: hard link {relative!r} to a missing file")
        shutil.copyfile(source, target)
        target.chmod(source.stat().st_mode & 0o777)
    else:
        handle = tar.extractfile(member)
        if handle is None:
            raise AssembleError(f"runtime archive: cannot read {relative!r}")
        with handle, target.open("wb") as out:
            shutil.copyfileobj(handle, out)
        target.chmod(0o755 if member.mode & stat.S_IXUSR else 0o644)
    tree.owners[relative] = RUNTIME


def remove_bundled_installers(tree: Tree) -> list[Removal]:
    """Take the runtime's own pip/setuptools (site-packages and bin/pip*) out of the tree."""
    removed: list[Removal] = []
    prefixes = (f"{tree.site_packages}/", "python/bin/pip")
    for relative in tree.files():
        if relative.startswith(prefixes) and tree.owners.get(relative) == RUNTIME:
            path = tree.root / relative
            removed.append(
                Removal(
                    relative, path.lstat().st_size, "runtime's bundled installers (pip, setuptools)"
                )
            )
            path.unlink()
            del tree.owners[relative]
    return removed


class _Destination(SchemeDictionaryDestination):
    """installer's destination, recording owners and refusing to overwrite anyone's file."""

    def __init__(self, tree: Tree, distribution: str, schemes: dict[str, str]) -> None:
        super().__init__(
            schemes, interpreter=tree.interpreter, script_kind="posix", overwrite_existing=False
        )
        self.tree = tree
        self.distribution = distribution

    def write_to_fs(
        self, scheme: Scheme, path: str, stream: BinaryIO, is_executable: bool
    ) -> RecordEntry:
        # Every file installer writes (modules, data, scripts, RECORD) passes through here, after
        # installer's own check that `path` stays inside its scheme directory.
        target = self._path_with_destdir(scheme, path)
        relative = target.relative_to(self.tree.root).as_posix()
        owner = self.tree.owners.get(relative)
        if owner is not None:
            raise AssembleError(f"{self.distribution} and {owner} both install {relative}")
        entry = super().write_to_fs(scheme, path, stream, is_executable)
        self.tree.owners[relative] = self.distribution
        return entry


def install_wheel(
    wheel: Path,
    distribution: str,
    tree: Tree,
    filename: str | None = None,
) -> None:
    """Install one wheel into the tree's site-packages with pypa/installer.

    `filename` is the wheel's real name when `wheel` is a content-addressed cache path (installer
    reads the distribution's name and version from the file name).
    """
    if filename is not None and wheel.name != filename:
        named = tree.root.parent / "wheels" / filename
        named.parent.mkdir(exist_ok=True)
        named.unlink(missing_ok=True)
        named.symlink_to(wheel.resolve())
        wheel = named
    root = tree.root
    schemes = {
        "purelib": str(root / tree.site_packages),
        "platlib": str(root / tree.site_packages),
        "headers": str(root / "python" / "include" / tree.python / distribution),
        "scripts": str(root / "python" / "bin"),
        "data": str(root / "python"),
    }
    destination = _Destination(tree, distribution, schemes)
    try:
        with WheelFile.open(wheel) as source:
            source.validate_record()
            install(source, destination, additional_metadata={})
    except AssembleError:
        raise
    except (InstallerError, ValueError, OSError, KeyError, zipfile.BadZipFile) as err:
        raise AssembleError(f"{filename or wheel.name}: cannot install it: {err}") from None


@dataclass(frozen=True, slots=True)
class WheelInput:
    distribution: str
    path: Path  # may be a content-addressed cache path
    filename: str  # the wheel's real file name


LAYER_OWNER = "layer"  # files of `[include]`: the layer's own code


def include_sources(paths: Iterable[Path], tree: Tree) -> None:
    """Copy the layer's own files and packages into site-packages (owner "layer").

    Directories are copied recursively, without bytecode caches; anything but regular files and
    directories is refused, and so is a path some wheel already installed.
    """
    for source in paths:
        files = (
            [source]
            if source.is_file()
            else sorted(
                p for p in source.rglob("*") if "__pycache__" not in p.parts and p.suffix != ".pyc"
            )
        )
        for path in files:
            if path.is_dir():
                continue
            if path.is_symlink() or not path.is_file():
                raise AssembleError(f"[include] {path}: not a regular file")
            relative = f"{tree.site_packages}/{source.name}"
            if path != source:
                relative += "/" + path.relative_to(source).as_posix()
            owner = tree.owners.get(relative)
            if owner is not None:
                raise AssembleError(f"[include] {path} and {owner} both install {relative}")
            target = tree.root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            target.chmod(0o644)
            tree.owners[relative] = LAYER_OWNER


def assemble(
    runtime_archive: Path, wheels: Iterable[WheelInput], tree: Tree, include: Iterable[Path] = ()
) -> list[Removal]:
    """Lay out the runtime, then every wheel (sorted by name), then the layer's own files;
    return what was taken out."""
    extract_runtime(runtime_archive, tree)
    if not (tree.root / "python" / "bin" / tree.python).exists():
        raise AssembleError(
            f"runtime archive {runtime_archive.name} has no python/bin/"
            f"{tree.python}: not a CPython {tree.python[6:]} runtime"
        )
    removed = remove_bundled_installers(tree)
    for wheel in _creation_order(sorted(wheels, key=lambda w: w.distribution)):
        install_wheel(wheel.path, wheel.distribution, tree, wheel.filename)
    include_sources(include, tree)
    return removed
