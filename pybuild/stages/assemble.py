"""The assemble stage: the runtime, every locked wheel and the layer's own files, laid out as
Lambda's ``/opt``.

The runtime's provider lays out ``python/`` (`pybuild.runtimes`). Each wheel is then installed
with pypa/installer, its RECORD verified, console scripts given the shebang of the layer's
interpreter; installer decides *what* goes *where*, and every byte is written through the tree's
`TreeWriter` (no link followed, no existing file replaced), only into real directories of the
tree: a runtime archive that made site-packages a link cannot send the wheels anywhere. Two
wheels writing one path is an error. Everything written is recorded in the tree's inventory
with its owner.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.exceptions import InstallerError
from installer.records import Hash, RecordEntry
from installer.sources import WheelFile
from installer.utils import Scheme

from pybuild.errors import PybuildError
from pybuild.model.lockfile import LockedRuntime
from pybuild.model.tree import LAYER, Owner, Removal, Tree, TreeError, wheel_owner
from pybuild.runtimes import RuntimeProvider
from pybuild.support.extract import TreeWriter, UnsafeArchiveError


class AssembleError(PybuildError):
    """A wheel or the layer's own files cannot be laid out safely."""


@dataclass(frozen=True, slots=True)
class WheelInput:
    """A wheel to install: its distribution, the file (perhaps a cache path named by its sha256),
    and its real file name."""

    distribution: str
    path: Path  # may be a content-addressed cache path
    filename: str  # the wheel's real file name


class _Destination(SchemeDictionaryDestination):
    """installer's destination, writing through the tree's safe writer and its inventory."""

    def __init__(self, tree: Tree, owner: Owner, schemes: dict[str, str]) -> None:
        super().__init__(
            schemes,
            interpreter=tree.layout.mounted(tree.layout.interpreter),
            script_kind="posix",
            overwrite_existing=False,
        )
        self.tree = tree
        self.owner = owner
        self.writer = TreeWriter(tree.root, f"wheel {owner}")

    def write_to_fs(
        self, scheme: Scheme, path: str, stream: BinaryIO, is_executable: bool
    ) -> RecordEntry:
        # installer's own check keeps `path` inside its scheme directory; the writer then
        # refuses links and existing files on the way.
        relative = self._path_with_destdir(scheme, path).relative_to(self.tree.root).as_posix()
        other = self.tree.entries.get(relative)
        if other is not None:
            raise AssembleError(f"{self.owner} and {other.owner} both install {relative}")
        data = stream.read()
        written = self.writer.file(relative, data, 0o755 if is_executable else 0o644)
        self.tree.record(written, self.owner)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        return RecordEntry(path, Hash("sha256", digest), len(data))


def install_wheel(wheel: WheelInput, tree: Tree, links: Path) -> None:
    """Install one wheel into the tree's site-packages with pypa/installer.

    installer reads the distribution's name and version from the file name, so a
    content-addressed cache path is linked under its real name in `links` first.
    """
    path = wheel.path
    if path.name != wheel.filename:
        named = links / wheel.filename
        named.parent.mkdir(parents=True, exist_ok=True)
        named.unlink(missing_ok=True)
        named.symlink_to(path.resolve())
        path = named
    layout = tree.layout
    site = str(tree.root / layout.site_packages)
    schemes = {
        "purelib": site,
        "platlib": site,
        "headers": str(
            tree.root / "python" / "include" / layout.python.executable / wheel.distribution
        ),
        "scripts": str(tree.root / layout.scripts),
        "data": str(tree.root / "python"),
    }
    destination = _Destination(tree, wheel_owner(wheel.distribution), schemes)
    try:
        with WheelFile.open(path) as source:
            source.validate_record()
            install(source, destination, additional_metadata={})
    except (AssembleError, UnsafeArchiveError):
        raise
    except (InstallerError, ValueError, OSError, KeyError, zipfile.BadZipFile) as err:
        raise AssembleError(f"{wheel.filename}: cannot install it: {err}") from None


def include_sources(paths: Iterable[Path], tree: Tree) -> None:
    """Copy the layer's own files and packages into site-packages (owner "layer").

    Directories are copied recursively, without bytecode caches; anything but regular files and
    directories is refused, and so is a path some wheel already installed.
    """
    writer = TreeWriter(tree.root, "[include]")
    for source in paths:
        files = (
            [source]
            if source.is_file()
            else sorted(
                p for p in source.rglob("*") if "__pycache__" not in p.parts and p.suffix != ".pyc"
            )
        )
        for path in files:
            if path.is_dir() and not path.is_symlink():
                continue
            if path.is_symlink() or not path.is_file():
                raise AssembleError(f"[include] {path}: not a regular file")
            relative = f"{tree.layout.site_packages}/{source.name}"
            if path != source:
                relative += "/" + path.relative_to(source).as_posix()
            other = tree.entries.get(relative)
            if other is not None:
                raise AssembleError(f"[include] {path} and {other.owner} both install {relative}")
            tree.record(writer.file(relative, path.read_bytes(), 0o644), LAYER)


def assemble(
    provider: RuntimeProvider,
    runtime: LockedRuntime,
    files: Mapping[str, Path],
    tree: Tree,
    *,
    wheels: Iterable[WheelInput],
    include: Iterable[Path] = (),
    work: Path,
    reverse: bool = False,
) -> list[Removal]:
    """Lay out the runtime, then every wheel (sorted by name; reversed to prove the order does
    not matter), then the layer's own files; return what was left out on purpose."""
    removed = provider.install(runtime, files, tree, reverse=reverse)
    try:
        for directory in (tree.layout.site_packages, tree.layout.scripts):
            tree.require_real_directory(directory)
    except TreeError as err:
        raise AssembleError(f"runtime: {err}") from None
    ordered = sorted(wheels, key=lambda w: w.distribution)
    for wheel in ordered[::-1] if reverse else ordered:
        install_wheel(wheel, tree, work / "wheels")
    include_sources(include, tree)
    return removed
