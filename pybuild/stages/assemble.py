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
import configparser
import email.parser
import hashlib
import os
import re
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.exceptions import InstallerError, InvalidWheelSource
from installer.records import Hash, RecordEntry
from installer.sources import WheelFile
from installer.utils import Scheme, parse_entrypoints
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from pybuild.errors import PybuildError
from pybuild.model.lockfile import LockedRuntime
from pybuild.model.tree import LAYER, Owner, Removal, Tree, TreeError, wheel_owner
from pybuild.runtimes import RuntimeProvider
from pybuild.support.extract import CheckedZipFile, TreeWriter, printable
from pybuild.support.fsutil import resolve_path


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


PYCACHE_IN_WHEEL = "a __pycache__ file in a wheel (installer never installs one)"


def install_wheel(wheel: WheelInput, tree: Tree, links: Path) -> list[Removal]:
    """Install one wheel into the tree's site-packages with pypa/installer; return the files left
    out on purpose (``__pycache__`` files, which installer skips).

    installer reads the distribution's name and version from the file name, so a
    content-addressed cache path is linked under its real name in `links` first. Every member is
    read through the checked zip reader: one that cannot be read is one line naming it.
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
        with CheckedZipFile(path, wheel.filename) as archive:
            source = WheelFile(archive)
            source.validate_record()
            _check_metadata(source, wheel)
            _check_entry_points(source, wheel.filename)
            skipped = [
                Removal(f"{layout.site_packages}/{info.filename}", info.file_size, PYCACHE_IN_WHEEL)
                for info in archive.infolist()
                if "__pycache__" in info.filename.split("/")[:-1]
            ]
            with warnings.catch_warnings():
                # reported as removals instead of a raw RuntimeWarning on stderr
                warnings.filterwarnings("ignore", "Skip installing .*__pycache__", RuntimeWarning)
                install(source, destination, additional_metadata={})
    except PybuildError:
        raise
    except (InstallerError, ValueError, OSError, KeyError, zipfile.BadZipFile) as err:
        cause = _pybuild_cause(err)
        if cause is not None:
            raise cause from None
        raise AssembleError(f"{wheel.filename}: cannot install it: {_reason(err, path)}") from None
    return skipped


def _reason(err: Exception, path: Path) -> str:
    """installer's error as one line, naming the wheel by its file name (not by the repr of its
    source object, nor by the path of its link in the work directory)."""
    issues = getattr(err, "issues", None)  # the record validation's list of problems
    if isinstance(err, InvalidWheelSource) and len(err.args) == 2:
        message = str(err.args[1])  # (source, message)
    elif isinstance(issues, list) and issues:
        message = "; ".join(map(str, issues))
    else:
        message = str(err)
    message = _SOURCE_REPR.sub("the wheel", message).replace(f"In {path}, ", "")
    return " ".join(message.replace(str(path), "the wheel").split())


_SOURCE_REPR = re.compile(r"<installer\.sources\.\w+ object at 0x[0-9a-fA-F]+>")


def _pybuild_cause(err: BaseException) -> PybuildError | None:
    """The PybuildError `err` was raised while handling (installer wraps a failure to read RECORD
    in its own error), if any."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, PybuildError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _check_metadata(source: WheelFile, wheel: WheelInput) -> None:
    """METADATA must name the distribution and version of the wheel's file name (which the lock
    pins): a wheel that says it is something else is not installed."""
    name, version, _, _ = parse_wheel_filename(wheel.filename)
    metadata = email.parser.HeaderParser().parsestr(source.read_dist_info("METADATA"))
    said_name, said_version = metadata.get("Name"), metadata.get("Version")
    if said_name is None or said_version is None:
        raise AssembleError(f"{wheel.filename}: METADATA has no Name or no Version")
    try:
        same_version = Version(said_version) == version
    except InvalidVersion:
        same_version = False
    if canonicalize_name(said_name) != name or not same_version:
        raise AssembleError(
            f"{wheel.filename}: METADATA says {said_name!r} {said_version!r}, but the file name "
            f"(and the lock) says {name} {version}"
        )
    if canonicalize_name(wheel.distribution) != name:
        raise AssembleError(
            f"{wheel.filename}: the lock installs it as {wheel.distribution!r}, the file name "
            f"says {name}"
        )


def _check_entry_points(source: WheelFile, filename: str) -> None:
    """Parse entry_points.txt as installer will, turning its errors (configparser's, and the
    assertions installer uses for a malformed reference) into one line naming the wheel."""
    if "entry_points.txt" not in source.dist_info_filenames:
        return
    where = f"{filename}: {source.dist_info_dir}/entry_points.txt"
    try:
        text = source.read_dist_info("entry_points.txt")
    except UnicodeDecodeError:
        raise AssembleError(f"{where}: not UTF-8") from None
    try:
        list(parse_entrypoints(text))
    except configparser.MissingSectionHeaderError as err:
        raise AssembleError(f"{where}: line {err.lineno}: an entry before any [section]") from None
    except configparser.DuplicateSectionError as err:
        raise AssembleError(f"{where}: [{err.section}] appears twice") from None
    except configparser.Error as err:
        raise AssembleError(f"{where}: {' '.join(str(err).split())}") from None
    except AssertionError:
        bad = _bad_script_reference(text)
        raise AssembleError(f"{where}: {bad or 'a malformed entry'}") from None


def _bad_script_reference(text: str) -> str | None:
    """The first script entry whose reference is not ``module:attr`` (what installer asserts)."""
    config = configparser.ConfigParser(delimiters="=", interpolation=None)
    config.optionxform = str  # type: ignore[assignment, method-assign]
    config.read_string(text)
    for section in ("console_scripts", "gui_scripts"):
        if config.has_section(section):
            for name, value in config.items(section):
                if not _SCRIPT_REFERENCE.fullmatch(value.strip()):
                    return f"[{section}] {name} = {value!r}: not a module:function reference"
    return None


_SCRIPT_REFERENCE = re.compile(r"[\w.]+\s*:\s*[\w.]+(\s*\[.*\])?")


def include_sources(paths: Iterable[Path], tree: Tree, project: Path | None = None) -> None:
    """Copy the layer's own files and packages into site-packages (owner "layer").

    Directories are copied recursively, without bytecode caches; anything but regular files and
    directories is refused, and so is a path some wheel already installed, a name that is not
    UTF-8 and (given the `project` directory the paths are written relative to) a path through
    a symbolic link.
    """
    writer = TreeWriter(tree.root, "[include]")
    for source in paths:
        if project is not None:
            _refuse_links_on_the_way(source, project)
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
                raise AssembleError(f"[include] {printable(str(path))}: not a regular file")
            relative = f"{tree.layout.site_packages}/{source.name}"
            if path != source:
                relative += "/" + path.relative_to(source).as_posix()
            try:
                relative.encode("utf-8")
            except UnicodeEncodeError:
                raise AssembleError(
                    f"[include] {printable(str(path))}: the name is not UTF-8 (a zip entry's "
                    "name must be)"
                ) from None
            other = tree.entries.get(relative)
            if other is not None:
                raise AssembleError(f"[include] {path} and {other.owner} both install {relative}")
            tree.record(writer.file(relative, path.read_bytes(), 0o644), LAYER)


def _refuse_links_on_the_way(source: Path, project: Path) -> None:
    """Refuse an include path that goes through a symbolic link anywhere below the directory it
    is written relative to (``lnk/pkg`` with ``lnk`` pointing elsewhere): where it really is must
    be where it reads (links above the project, such as a system's /tmp, do not matter)."""
    written = os.path.relpath(source, project)  # textually, as the layer file gives it
    reads = Path(os.path.normpath(resolve_path(project) / written))
    real = resolve_path(source)
    if real != reads:
        raise AssembleError(
            f"[include] {printable(str(source))}: a symbolic link on its path leads to "
            f"{printable(str(real))} (give the real path)"
        )


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
    project: Path | None = None,
) -> list[Removal]:
    """Lay out the runtime, then every wheel (sorted by name; reversed to prove the order does
    not matter), then the layer's own files (paths written relative to `project`, the layer
    file's directory); return what was left out on purpose."""
    removed = provider.install(runtime, files, tree, reverse=reverse)
    try:
        for directory in (tree.layout.site_packages, tree.layout.scripts):
            tree.require_real_directory(directory)
    except TreeError as err:
        raise AssembleError(f"runtime: {err}") from None
    ordered = sorted(wheels, key=lambda w: w.distribution)
    for wheel in ordered[::-1] if reverse else ordered:
        removed += install_wheel(wheel, tree, work / "wheels")
    include_sources(include, tree, project)
    return removed
