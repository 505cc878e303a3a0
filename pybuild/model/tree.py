"""The layer being built: a directory (Lambda's ``/opt``) and its inventory.

The tree is its own inventory: every stage that writes, rewrites or removes a file does it
through `Tree`, which records the file's owner, kind, size and (parsed once, on first use) its
ELF layout. No stage walks the directory to find out what is there; `check_disk` walks it once,
before the zip is written, to prove the inventory and the disk agree.
"""

from __future__ import annotations

import enum
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pybuild.elf.types import ELF_MAGIC, ElfError, ElfFile
from pybuild.errors import PybuildError
from pybuild.model.versions import PythonVersion
from pybuild.support.extract import Written
from pybuild.support.fsutil import AtomicFile, tree_entries

LAYER_MOUNT = "/opt"


class OwnerKind(enum.StrEnum):
    """What put a file into the layer: the runtime, a wheel, the layer's own files or pybuild."""

    RUNTIME = "runtime"  # laid out by the runtime provider
    WHEEL = "wheel"  # installed from a locked wheel
    LAYER = "layer"  # the layer's own files (`[include]`)
    PYBUILD = "pybuild"  # written by pybuild (the SBOM)


@dataclass(frozen=True, slots=True, order=True)
class Owner:
    """Who put a file into the layer."""

    kind: OwnerKind
    name: str = ""  # the distribution, for wheels

    def __str__(self) -> str:
        return self.name if self.kind is OwnerKind.WHEEL else self.kind.value


RUNTIME = Owner(OwnerKind.RUNTIME)
LAYER = Owner(OwnerKind.LAYER)
PYBUILD = Owner(OwnerKind.PYBUILD)


def wheel_owner(distribution: str) -> Owner:
    """The owner of the files installed from a distribution's wheel."""
    return Owner(OwnerKind.WHEEL, distribution)


class EntryKind(enum.StrEnum):
    """A tree entry is a regular file or a symbolic link; directories are not entries."""

    FILE = "file"
    SYMLINK = "symlink"


@dataclass(slots=True)
class Entry:
    """One file or symbolic link of the tree."""

    kind: EntryKind
    owner: Owner
    size: int  # bytes (a link: the length of its target)
    link: str = ""  # a link's target
    elf_magic: bool = False  # starts with \x7fELF
    elf: ElfFile | None = None  # its layout, once parsed
    elf_error: str | None = None  # why it could not be parsed


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a runtime puts things under the layer root (the provider decides site-packages)."""

    python: PythonVersion
    site_packages: str  # e.g. "python/lib/python3.11/site-packages"

    @property
    def stdlib(self) -> str:
        """The standard library's directory under the layer root: ``python/lib/python3.X``."""
        return f"python/lib/{self.python.executable}"

    @property
    def interpreter(self) -> str:
        """The interpreter, relative to the layer root."""
        return f"python/bin/{self.python.executable}"

    @property
    def scripts(self) -> str:
        """Where wheels' scripts are installed, relative to the layer root."""
        return "python/bin"

    def mounted(self, relative: str) -> str:
        """Where a layer path is on Lambda: ``/opt/<relative>``."""
        return f"{LAYER_MOUNT}/{relative}"


@dataclass(frozen=True, slots=True)
class Removal:
    """A file taken out of the layer on purpose, and why."""

    path: str  # relative to the layer root
    size: int
    rule: str


class TreeError(PybuildError):
    """The inventory and the disk disagree: a bug in pybuild, reported as one line."""


@dataclass
class Tree:
    """The layer's build directory (`root`) and its inventory: every file and link by its path
    relative to the root, with the `layout` its runtime gave it.

    Every change to the directory goes through the methods below, so that the inventory stays the
    truth about the disk.
    """

    root: Path
    layout: Layout
    entries: dict[str, Entry] = field(default_factory=dict)
    elf_parses: int = 0  # how many times an ELF file was parsed (the counting test reads it)
    _emptied: set[str] = field(default_factory=set, repr=False)

    # --- recording -------------------------------------------------------------------------

    def record(self, written: Written, owner: Owner) -> None:
        """Record what a `TreeWriter` created (directories are implied by their files)."""
        if written.kind == "dir":
            return
        if written.kind == "symlink":
            self.entries[written.path] = Entry(EntryKind.SYMLINK, owner, written.size, written.link)
            return
        self.entries[written.path] = Entry(
            EntryKind.FILE, owner, written.size, elf_magic=self._has_magic(written.path)
        )

    def record_path(self, relative: str, owner: Owner) -> Entry:
        """Record a file another program wrote (the bytecode compiler)."""
        path = self.root / relative
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            entry = Entry(EntryKind.SYMLINK, owner, info.st_size, str(path.readlink()))
        elif stat.S_ISREG(info.st_mode):
            entry = Entry(EntryKind.FILE, owner, info.st_size, elf_magic=self._has_magic(relative))
        else:
            raise TreeError(f"{relative}: neither a file nor a link")
        self.entries[relative] = entry
        return entry

    def _has_magic(self, relative: str) -> bool:
        with (self.root / relative).open("rb") as handle:
            return handle.read(4) == ELF_MAGIC

    def write(self, relative: str, data: bytes, owner: Owner, mode: int = 0o644) -> None:
        """Write (or replace) a file of the tree atomically and record it."""
        target = self.root / relative
        with AtomicFile(target.parent, target.name) as out:
            out.write(data)
            out.commit(target, mode)
        previous = self.entries.get(relative)
        self.entries[relative] = Entry(
            EntryKind.FILE,
            owner if previous is None else previous.owner,
            len(data),
            elf_magic=data[:4] == ELF_MAGIC,
        )

    def replace_elf(self, relative: str, data: bytes, elf: ElfFile) -> None:
        """Replace an ELF file's bytes (mode kept) with `elf` its already-parsed layout."""
        mode = stat.S_IMODE((self.root / relative).stat().st_mode)
        self.write(relative, data, self.entries[relative].owner, mode)
        self.entries[relative].elf = elf

    def remove(self, relative: str) -> Entry:
        """Delete a file or link and forget it; its directories may become empty."""
        entry = self.entries.pop(relative)
        (self.root / relative).unlink()
        parts = relative.split("/")
        self._emptied.update("/".join(parts[:i]) for i in range(1, len(parts)))
        return entry

    def remove_empty_directories(self) -> None:
        """Remove the directories removals emptied (deepest first), without walking the tree."""
        for directory in sorted(self._emptied, key=lambda d: -d.count("/")):
            target = self.root / directory
            if target.is_dir() and not target.is_symlink() and not any(target.iterdir()):
                target.rmdir()
        self._emptied.clear()

    # --- reading ---------------------------------------------------------------------------

    def paths(self) -> list[str]:
        """Every file and link, sorted."""
        return sorted(self.entries)

    def owner(self, relative: str) -> Owner:
        """Who put the file or link at `relative` into the layer (KeyError if none is recorded)."""
        return self.entries[relative].owner

    def files(self) -> Iterator[tuple[str, Entry]]:
        """Every file and link with its entry, sorted by path."""
        for path in self.paths():
            yield path, self.entries[path]

    def total_size(self) -> int:
        """The sum of the entries' sizes in bytes (a link counts the length of its target)."""
        return sum(e.size for e in self.entries.values())

    def elf(self, relative: str) -> ElfFile | None:
        """The parsed layout of an ELF file (parsed on first use); None if it is not one or
        cannot be parsed (`Entry.elf_error` says why)."""
        from pybuild.elf.reader import read_elf

        entry = self.entries[relative]
        if entry.kind is not EntryKind.FILE or not entry.elf_magic:
            return None
        if entry.elf is None and entry.elf_error is None:
            self.elf_parses += 1
            try:
                entry.elf = read_elf(self.root / relative, label=relative)
            except ElfError as err:
                entry.elf_error = str(err).removeprefix(f"{relative}: ")
        return entry.elf

    def require_real_directory(self, relative: str) -> None:
        """Refuse to install into `relative` unless every component is a real directory."""
        current = self.root
        for part in relative.split("/"):
            current = current / part
            try:
                info = current.lstat()
            except FileNotFoundError:
                return  # created later, as a real directory
            if not stat.S_ISDIR(info.st_mode):
                what = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a directory"
                raise TreeError(
                    f"{current.relative_to(self.root)} is {what}: packages are installed only "
                    "into real directories of the layer"
                )

    def check_disk(self) -> None:
        """Walk the tree once and prove it holds exactly the inventory (sizes included)."""
        on_disk = tree_entries(self.root)
        missing = sorted(set(self.entries) - set(on_disk))
        extra = sorted(set(on_disk) - set(self.entries))
        if missing or extra:
            raise TreeError(
                f"the build tree and its inventory disagree: on disk only: {extra[:5]}; "
                f"in the inventory only: {missing[:5]}"
            )
        for path in on_disk:
            size = os.lstat(self.root / path).st_size
            if size != self.entries[path].size:
                raise TreeError(
                    f"the build tree and its inventory disagree on {path}: {size} bytes on "
                    f"disk, {self.entries[path].size} recorded"
                )
