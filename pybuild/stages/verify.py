"""Proving that every ELF file of a layer can run on the target.

For each ELF file (and each file whose name says it should be one) every problem is collected, then
all are reported together, each naming the file, what was expected and what was found:

- the architecture (class, byte order, machine) differs from the target's;
- a symbol version needed from a system library is outside the target's manylinux policy
  (every prefix: GLIBC, GLIBCXX, CXXABI, GCC, ...; GLIBC_PRIVATE never);
- a DT_NEEDED is neither inside the layer (found through RPATH/RUNPATH with $ORIGIN, /opt/lib, or a
  wheel's ``*.libs`` directory) nor one of the profile's system libraries;
- an RPATH/RUNPATH entry points outside the layer, or is relative;
- a file claims to be ELF (or is named ``*.so``) but cannot be read as one.

The layer root is what Lambda mounts at ``/opt``.
"""

from __future__ import annotations

import posixpath
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pybuild.elf.policy import Policy, Profile, load_policy, profile_for
from pybuild.elf.reader import read_elf
from pybuild.elf.types import ELF_MAGIC, ElfError, ElfFile, arch_machine, looks_like_elf
from pybuild.errors import PybuildError
from pybuild.model.target import Arch
from pybuild.support.fsutil import tree_entries
from pybuild.support.layerzip import extract_layer

LAYER_MOUNT = "/opt"
_SO_NAME = re.compile(r".*\.so(\.\d+)*")


@dataclass(frozen=True, slots=True)
class VerifyTarget:
    arch: Arch
    glibc: tuple[int, int]
    profile: Profile
    policy: Policy

    def describe(self) -> str:
        return (
            f"{self.arch.value}, glibc {self.glibc[0]}.{self.glibc[1]} "
            f"({self.policy.name}, {self.profile.description})"
        )


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    path: str
    what: str
    expected: str
    found: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what}: expected {self.expected}, found {self.found}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    target: VerifyTarget
    elf_files: tuple[str, ...]
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_target(arch: Arch, glibc: tuple[int, int], profile: str | None = None) -> VerifyTarget:
    return VerifyTarget(
        arch=arch, glibc=glibc, profile=profile_for(glibc, profile), policy=load_policy(arch, glibc)
    )


def _expected_ident(arch: Arch) -> str:
    return f"{arch.value} (ELF64 LSB)"


def _check_identity(rel: str, elf: ElfFile, target: VerifyTarget) -> list[Problem]:
    if (elf.machine, elf.bits, elf.little_endian) == (arch_machine(target.arch), 64, True):
        return []
    return [Problem(rel, "architecture", _expected_ident(target.arch), elf.describe())]


def _search_dirs(rel: str, elf: ElfFile, names: set[str]) -> tuple[list[str], list[Problem]]:
    """Layer-relative directories the dynamic loader searches for this file's DT_NEEDED."""
    problems: list[Problem] = []
    dirs: list[str] = []
    origin = posixpath.join(LAYER_MOUNT, posixpath.dirname(rel))
    kind, entries = ("RUNPATH", elf.runpath) if elf.runpath else ("RPATH", elf.rpath)
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
    dirs.append("lib")  # Lambda's LD_LIBRARY_PATH ends with /opt/lib
    dirs += sorted(
        {
            posixpath.dirname(n)
            for n in names
            if posixpath.basename(posixpath.dirname(n)).endswith(".libs")
        }
    )
    return dirs, problems


def _check_libraries(
    rel: str, elf: ElfFile, names: set[str], target: VerifyTarget
) -> list[Problem]:
    dirs, problems = _search_dirs(rel, elf, names)
    system: set[str] = set()
    for needed in elf.needed:
        if any(posixpath.join(d, needed).lstrip("/") in names for d in dirs):
            continue
        if needed in target.profile.system_libraries:
            system.add(needed)
            continue
        searched = ", ".join(f"{LAYER_MOUNT}/{d}".rstrip("/") for d in dict.fromkeys(dirs))
        problems.append(
            Problem(
                rel,
                f"DT_NEEDED {needed}",
                f"inside the layer (searched {searched}) or a system library of "
                f"{target.profile.name}",
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


def _is_candidate(path: Path) -> bool:
    return _SO_NAME.fullmatch(path.name) is not None or looks_like_elf(path)


def verify_tree(root: Path, target: VerifyTarget) -> VerifyReport:
    """Check every ELF file under `root` (the layer's /opt) against `target`."""
    entries = tree_entries(root)
    names = set(entries)
    problems: list[Problem] = []
    elf_files: list[str] = []
    for rel in entries:
        path = root / rel
        if path.is_symlink() or not _is_candidate(path):
            continue
        elf_files.append(rel)
        with path.open("rb") as handle:
            head = handle.read(16)
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
            elf = read_elf(path, label=rel)
        except ElfError as err:
            problems.append(
                Problem(rel, "ELF", "a readable ELF file", str(err).removeprefix(f"{rel}: "))
            )
            continue
        identity = _check_identity(rel, elf, target)
        problems += identity or _check_libraries(rel, elf, names, target)
    return VerifyReport(target, tuple(elf_files), tuple(sorted(problems)))


def verify_path(path: Path, target: VerifyTarget) -> VerifyReport:
    """Verify a layer directory or a layer zip."""
    if path.is_dir():
        return verify_tree(path, target)
    if zipfile.is_zipfile(path):
        with tempfile.TemporaryDirectory(prefix="pybuild-verify-") as tmp:
            extract_layer(path, Path(tmp))
            return verify_tree(Path(tmp), target)
    raise PybuildError(f"{path}: neither a directory nor a zip file")
