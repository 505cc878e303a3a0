"""Proving that every ELF file of a layer can run on the target.

For each ELF file (and each file whose name says it should be one) every problem is collected, then
all are reported together, each naming the file, what was expected and what was found:

- the architecture (class, byte order, machine) differs from the target's;
- a symbol version needed from a system library is outside the target's manylinux policy
  (every prefix: GLIBC, GLIBCXX, CXXABI, GCC, ...; GLIBC_PRIVATE never);
- a DT_NEEDED is found neither where the target's dynamic loader would look inside the layer nor
  among the profile's system libraries. The loader's order is followed exactly: the object's
  DT_RPATH (when it has no DT_RUNPATH), then the DT_RPATH of the interpreter that loads it (same
  condition), then Lambda's LD_LIBRARY_PATH (of which only /opt/lib is in a layer), then the
  object's DT_RUNPATH, then the system. Nothing else: a library in some unrelated ``*.libs``
  directory is not found by the loader, so it is not found here;
- an RPATH/RUNPATH entry points outside the layer, or is relative;
- a file claims to be ELF (or is named ``*.so``) but cannot be read as one.

A layer with no interpreter, or with nothing in it, fails too. The layer root is what Lambda
mounts at ``/opt``; it is read through a view: the build's tree (links the zip will leave out are
not there), a zip (read member by member, nothing extracted) or a directory.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pybuild.elf.policy import Policy, Profile, lambda_environment, load_policy
from pybuild.elf.types import ELF_MAGIC, ElfError, ElfFile, arch_machine
from pybuild.errors import PybuildError
from pybuild.model.layerfile import SymlinkPolicy
from pybuild.model.target import Arch
from pybuild.model.tree import LAYER_MOUNT, EntryKind, Tree
from pybuild.model.versions import GlibcVersion
from pybuild.stages.archive import SMALL_LINK_TARGET
from pybuild.support.extract import open_zip, zip_link_target, zip_members
from pybuild.support.fsutil import tree_entries
from pybuild.support.inputs import file_kind, open_regular

_SO_NAME = re.compile(r".*\.so(\.\d+)*")
_INTERPRETER = re.compile(r"python/bin/python3\.\d+")
MAX_LINK_HOPS = 40


@dataclass(frozen=True, slots=True)
class VerifyTarget:
    """What a layer is verified against: architecture, glibc, the system profile (the libraries the
    environment provides) and the manylinux policy for that glibc (the symbol versions allowed)."""

    arch: Arch
    glibc: GlibcVersion
    profile: Profile
    policy: Policy

    def describe(self) -> str:
        """e.g. ``aarch64, glibc 2.34 (manylinux_2_34, <the profile's description>)``."""
        return (
            f"{self.arch.value}, glibc {self.glibc} ({self.policy.name}, "
            f"{self.profile.description})"
        )


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One thing wrong with a layer: the layer-relative path, what was checked, what was expected
    and what was found. Problems sort by path."""

    path: str
    what: str
    expected: str
    found: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what}: expected {self.expected}, found {self.found}"


@dataclass(frozen=True, slots=True)
class TargetSummary:
    """The target as `pybuild verify --json` writes it: architecture, glibc, policy, profile."""

    arch: str
    glibc: str
    policy: str
    profile: str


@dataclass(frozen=True, slots=True)
class VerifySummary:
    """What `pybuild verify --json` writes."""

    ok: bool
    target: TargetSummary
    elf_files: tuple[str, ...]
    problems: tuple[Problem, ...]


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The result of verifying a layer: the target, every file checked as ELF (by its magic or a
    ``.so`` name) and every problem, sorted."""

    target: VerifyTarget
    elf_files: tuple[str, ...]
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        """Whether no problem was found."""
        return not self.problems

    def summary(self) -> VerifySummary:
        """The report as `pybuild verify --json` writes it."""
        t = self.target
        return VerifySummary(
            self.ok,
            TargetSummary(t.arch.value, str(t.glibc), t.policy.name, t.profile.name),
            self.elf_files,
            self.problems,
        )


def verify_target(arch: Arch, glibc: GlibcVersion, profile: Profile) -> VerifyTarget:
    """The target for an architecture, glibc and profile, with the manylinux policy for them
    (ConfigError if auditwheel has none)."""
    return VerifyTarget(arch=arch, glibc=glibc, profile=profile, policy=load_policy(arch, glibc))


# --- views of a layer -------------------------------------------------------------------------


class LayerView(Protocol):
    """A layer's files, wherever they are."""

    def names(self) -> dict[str, str | None]:
        """Every file (None) and link (its target) of the layer, by path."""
        ...

    def head(self, name: str) -> bytes:
        """The first 16 bytes of a file."""
        ...

    def is_elf(self, name: str) -> bool:
        """Whether a file starts with the ELF magic."""
        ...

    def elf(self, name: str) -> ElfFile:
        """The file's ELF layout (raises `ElfError`)."""
        ...


class TreeView:
    """The build's tree as the zip will hold it: links the symlink policy leaves out are absent;
    links it keeps (stored, or copied as their target's bytes) are given as links, which verify
    follows to the same file."""

    def __init__(self, tree: Tree, symlinks: SymlinkPolicy) -> None:
        self.tree = tree
        self._names: dict[str, str | None] = {}
        links = tree_links(tree)
        names = set(tree.entries)
        for path, entry in tree.files():
            if entry.kind is EntryKind.FILE:
                self._names[path] = None
            elif symlinks is SymlinkPolicy.STORE:
                self._names[path] = entry.link
            elif symlinks is SymlinkPolicy.COPY_SMALL:
                target = _follow(path, links, names)
                if target is not None and tree.entries[target].size <= SMALL_LINK_TARGET:
                    self._names[path] = entry.link  # followed to the same file below

    def names(self) -> dict[str, str | None]:
        """Every file (None) and link (its target) the zip will hold, by path; a link the zip will
        hold as a copy is still given as a link."""
        return self._names

    def head(self, name: str) -> bytes:
        """The first 16 bytes of a file of the tree."""
        with (self.tree.root / name).open("rb") as handle:
            return handle.read(16)

    def is_elf(self, name: str) -> bool:
        """Whether the file starts with the ELF magic, as the inventory recorded it."""
        return self.tree.entries[name].elf_magic

    def elf(self, name: str) -> ElfFile:
        """The file's layout from the tree (parsed once); ElfError with the reason if unparsable."""
        parsed = self.tree.elf(name)
        if parsed is None:
            raise ElfError(f"{name}: {self.tree.entries[name].elf_error or 'not an ELF file'}")
        return parsed


def tree_links(tree: Tree) -> dict[str, str]:
    """Every link of the tree: its path -> its target, as written."""
    return {p: e.link for p, e in tree.files() if e.kind is EntryKind.SYMLINK}


class ZipView:
    """A layer zip, read member by member (through the safe member checks)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.archive = open_zip(path)
        try:
            members = zip_members(self.archive, str(path))
            self._names = {
                m.name: zip_link_target(self.archive, m) if m.kind == "symlink" else None
                for m in members
                if m.kind != "dir"
            }
        except BaseException:
            self.archive.close()
            raise
        self._infos = {m.name: m.info for m in members}

    def names(self) -> dict[str, str | None]:
        """Every file (None) and link (its target) among the zip's members; directories left out."""
        return self._names

    def head(self, name: str) -> bytes:
        """The first 16 bytes of a member, decompressed (UnsafeArchiveError if unreadable)."""
        with self.archive.open(self._infos[name]) as handle:
            return handle.read(16)

    def is_elf(self, name: str) -> bool:
        """Whether the member starts with the ELF magic."""
        return self.head(name)[:4] == ELF_MAGIC

    def elf(self, name: str) -> ElfFile:
        """The member's ELF layout, parsed in memory; ElfError if it cannot be parsed,
        UnsafeArchiveError if the member cannot be read (it fails its CRC, ...)."""
        from pybuild.elf.reader import read_elf_bytes

        return read_elf_bytes(self.archive.read(self._infos[name]), name)


class DirectoryView:
    """A layer directory (walked once)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._names = {
            name: (str((root / name).readlink()) if (root / name).is_symlink() else None)
            for name in tree_entries(root)
        }

    def names(self) -> dict[str, str | None]:
        """Every file (None) and link (its target) below the root, as walked at construction."""
        return self._names

    def head(self, name: str) -> bytes:
        """The first 16 bytes of a file; OSError naming it if it is not a regular file (a FIFO would
        block the open, a device never end): a layer holds none, and it is never opened."""
        with os.fdopen(open_regular(self.root / name, follow_links=False), "rb") as handle:
            return handle.read(16)

    def is_elf(self, name: str) -> bool:
        """Whether the file starts with the ELF magic."""
        return self.head(name)[:4] == ELF_MAGIC

    def elf(self, name: str) -> ElfFile:
        """The file's ELF layout; ElfError if it cannot be parsed."""
        from pybuild.elf.reader import read_elf

        return read_elf(self.root / name, label=name)


def _follow(name: str, links: dict[str, str], files: set[str]) -> str | None:
    """The file `name` leads to inside the layer (links followed), or None."""
    current = name
    for _ in range(MAX_LINK_HOPS):
        if current not in links:
            return current if current in files else None
        target = links[current]
        if target.startswith("/"):
            return None
        current = posixpath.normpath(posixpath.join(posixpath.dirname(current), target))
        if current.startswith("../") or current == "..":
            return None
    return None


# --- checks -------------------------------------------------------------------------------------


def _check_identity(rel: str, elf: ElfFile, target: VerifyTarget) -> list[Problem]:
    if (elf.machine, elf.bits, elf.little_endian) == (arch_machine(target.arch), 64, True):
        return []
    return [Problem(rel, "architecture", f"{target.arch.value} (ELF64 LSB)", elf.describe())]


def _path_dirs(rel: str, kind: str, entries: tuple[str, ...]) -> tuple[list[str], list[Problem]]:
    """Layer-relative directories of RPATH or RUNPATH `entries` of the file `rel`."""
    problems: list[Problem] = []
    dirs: list[str] = []
    origin = posixpath.join(LAYER_MOUNT, posixpath.dirname(rel))
    for entry in entries:
        if not entry:
            continue
        expanded = entry.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
        if not expanded.startswith("/"):
            problems.append(
                Problem(
                    rel,
                    f"{kind} {entry}",
                    "an absolute or $ORIGIN path",
                    "a relative path (resolved against the working directory)",
                )
            )
            continue
        resolved = posixpath.normpath(expanded)
        if resolved == LAYER_MOUNT or resolved.startswith(LAYER_MOUNT + "/"):
            dirs.append(resolved[len(LAYER_MOUNT) + 1 :])
        else:
            problems.append(
                Problem(
                    rel,
                    f"{kind} {entry}",
                    f"a directory inside the layer ({LAYER_MOUNT}/... or $ORIGIN/...)",
                    f"{resolved}, outside the layer",
                )
            )
    return dirs, problems


def _layer_library_path() -> list[str]:
    """The directories of Lambda's LD_LIBRARY_PATH that are inside a layer."""
    entries = lambda_environment()["LD_LIBRARY_PATH"].split(":")
    return [
        posixpath.normpath(e)[len(LAYER_MOUNT) + 1 :]
        for e in entries
        if posixpath.normpath(e).startswith(LAYER_MOUNT + "/")
    ]


def search_dirs(
    rel: str, elf: ElfFile, interpreter: tuple[str, ElfFile] | None
) -> tuple[list[str], list[Problem]]:
    """The layer directories the loader searches for `rel`'s DT_NEEDED, in its order."""
    dirs, problems = [], []
    if not elf.runpath:
        found, bad = _path_dirs(rel, "RPATH", elf.rpath)
        dirs += found
        problems += bad
        if interpreter is not None and interpreter[0] != rel:
            loader_rel, loader = interpreter
            if not loader.runpath and loader.rpath:
                dirs += _path_dirs(loader_rel, "RPATH", loader.rpath)[0]
    dirs += _layer_library_path()
    found, bad = _path_dirs(rel, "RUNPATH", elf.runpath)
    return dirs + found, problems + bad


def _check_libraries(
    rel: str,
    elf: ElfFile,
    view: LayerView,
    target: VerifyTarget,
    interpreter: tuple[str, ElfFile] | None,
) -> list[Problem]:
    dirs, problems = search_dirs(rel, elf, interpreter)
    names = view.names()
    links = {n: t for n, t in names.items() if t is not None}
    files = {n for n, t in names.items() if t is None}
    system: set[str] = set()
    for needed in elf.needed:
        if any(_follow(posixpath.join(d, needed), links, files) for d in dirs):
            continue
        if needed in target.profile.system_libraries:
            system.add(needed)
            continue
        searched = ", ".join(f"{LAYER_MOUNT}/{d}".rstrip("/") for d in dict.fromkeys(dirs))
        problems.append(
            Problem(
                rel,
                f"DT_NEEDED {needed}",
                f"where the loader looks in the layer (searched {searched or 'nowhere'}) or a "
                f"system library of {target.profile.name}",
                "neither",
            )
        )
    for need in elf.version_needs:
        if need.library not in system:
            continue  # the layer ships it: its versions are its own business
        for version in need.versions:
            allowed = target.policy.violation(version.name)
            if allowed is not None:
                problems.append(
                    Problem(rel, f"symbol version from {need.library}", allowed, version.name)
                )
    return problems


def _candidates(view: LayerView) -> Iterator[str]:
    for name, link in sorted(view.names().items()):
        if link is None and (_SO_NAME.fullmatch(posixpath.basename(name)) or view.is_elf(name)):
            yield name


def verify_layer(
    view: LayerView, target: VerifyTarget, interpreter: str | None = None
) -> VerifyReport:
    """Check every ELF file of a layer against `target`. `interpreter`: where the layer's
    interpreter must be (None: any ``python/bin/python3.N``)."""
    problems: list[Problem] = []
    elf_files: list[str] = []
    parsed: dict[str, ElfFile] = {}
    names = view.names()
    files = {n for n, t in names.items() if t is None}
    links = {n: t for n, t in names.items() if t is not None}
    if interpreter is None:
        interpreter = next((n for n in sorted(names) if _INTERPRETER.fullmatch(n)), None)
    real_interpreter = None if interpreter is None else _follow(interpreter, links, files)
    if not names:
        problems.append(Problem("(layer)", "contents", "a runtime and packages", "nothing"))
    elif real_interpreter is None:
        problems.append(
            Problem(
                interpreter or "python/bin/python3.N",
                "interpreter",
                "the layer's Python interpreter",
                "no such file",
            )
        )
    for link, pointed in sorted(links.items()):
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(link), pointed))
        if pointed.startswith("/") or joined == ".." or joined.startswith("../"):
            problems.append(
                Problem(
                    link, "symbolic link", "a target inside the layer", f"{pointed}, outside it"
                )
            )
    for rel in _candidates(view):
        elf_files.append(rel)
        head = view.head(rel)
        if not head.startswith(ELF_MAGIC):
            problems.append(
                Problem(
                    rel,
                    "file type",
                    "an ELF shared object (named *.so)",
                    f"not ELF (starts with {head!r})",
                )
            )
            continue
        try:
            parsed[rel] = view.elf(rel)
        except ElfError as err:
            problems.append(
                Problem(rel, "ELF", "a readable ELF file", str(err).removeprefix(f"{rel}: "))
            )
    loader = None
    if real_interpreter is not None and real_interpreter in parsed:
        loader = (real_interpreter, parsed[real_interpreter])
    for rel, elf in parsed.items():
        identity = _check_identity(rel, elf, target)
        problems += identity or _check_libraries(rel, elf, view, target, loader)
    return VerifyReport(target, tuple(elf_files), tuple(sorted(problems)))


def verify_path(path: Path, target: VerifyTarget, interpreter: str | None = None) -> VerifyReport:
    """Verify a layer directory or a layer zip."""
    if path.is_dir():
        return verify_layer(DirectoryView(path), target, interpreter)
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):  # a FIFO would wait for a writer forever
        raise PybuildError(f"{path}: neither a directory nor a zip file ({file_kind(mode)})")
    if zipfile.is_zipfile(path):
        view = ZipView(path)
        with view.archive:
            return verify_layer(view, target, interpreter)
    raise PybuildError(f"{path}: neither a directory nor a zip file")
