"""A Debian 12 arm64 root file system for ``qemu-aarch64-static -L SYSROOT``: what `pybuild smoke`
(and a compiler run under emulation) needs on a host that is not arm64.

The packages listed in ``data/debian12-arm64-packages.txt`` (glibc, the GCC runtime and every
library a CPython and common wheels need) are resolved to their current .deb in Debian's archive
(`pybuild.runtimes.debian_archive`: no apt, no dpkg), fetched into the content-addressed cache and
unpacked through `pybuild.support.extract` (absolute links resolved inside the sysroot, as the
guest sees them). The result lives in a directory named by a hash of the exact .deb files and of
this format, built beside it and renamed into place: nothing half-built is ever visible, and of
two racing builds the loser discards its copy. Every DT_NEEDED of every ELF file in it must be
provided by it, or the build names what is missing.

Run ``python -m pybuild.smoke.sysroot``: the path is printed on stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.resources
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from pybuild.elf.types import ET_DYN, ElfError, ElfFile, looks_like_elf
from pybuild.errors import FetchError, LockError, PybuildError
from pybuild.model.target import Arch
from pybuild.runtimes.debian_archive import DebianArchive, DebPackage
from pybuild.support.cache import Cache, default_cache_dir
from pybuild.support.extract import TreeWriter, extract_deb
from pybuild.support.fsutil import WorkDir, reclaim_stale, tree_entries
from pybuild.ui import Ui

RELEASE = "bookworm"
ARCH = Arch.AARCH64
PACKAGES_RESOURCE = "data/debian12-arm64-packages.txt"
LOADER = "lib/ld-linux-aarch64.so.1"
# Where Debian's aarch64 ld.so looks when nothing (RUNPATH, LD_LIBRARY_PATH, a cache) says
# otherwise. The sysroot gets an empty etc/ld.so.cache: qemu would fall back to the host's.
SEARCH_DIRS = ("lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu", "lib", "usr/lib")
MANIFEST = "pybuild-packages.txt"
# Part of the cache key: bump when the same .debs would be built into something different.
SYSROOT_FORMAT = 3
_FORMAT_LINE = f"# pybuild sysroot format {SYSROOT_FORMAT}\n"  # the manifest's first line
_SKIPPED = ("usr/share/doc/", "usr/share/man/", "usr/share/locale/", "usr/share/lintian/")


class SysrootError(PybuildError):
    """The sysroot cannot be built."""


def package_names() -> tuple[str, ...]:
    """The packages of ``data/debian12-arm64-packages.txt``, in file order."""
    text = importlib.resources.files("pybuild").joinpath(PACKAGES_RESOURCE).read_text("utf-8")
    names: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.partition("#")[0].strip()
        if not line:
            continue
        if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", line):
            raise SysrootError(f"{PACKAGES_RESOURCE}:{number}: not a Debian package name: {line!r}")
        names.append(line)
    return tuple(names)


def _unpacked(name: str) -> str | None:
    """Members of a package that go into the sysroot: all but documentation and translations."""
    return None if f"{name.rstrip('/')}/".startswith(_SKIPPED) else name


def _key(packages: Sequence[DebPackage]) -> str:
    lines = [f"sysroot format {SYSROOT_FORMAT}"]
    lines += sorted(f"{p.name} {p.version} {p.sha256}" for p in packages)
    return hashlib.sha256(("\n".join(lines) + "\n").encode()).hexdigest()


def _manifest(packages: Sequence[DebPackage]) -> str:
    return _FORMAT_LINE + "".join(
        f"{p.name}:{p.architecture} {p.version} {p.filename} sha256:{p.sha256}\n" for p in packages
    )


def cached_sysroot(cache_dir: Path) -> Path | None:
    """The newest complete sysroot in the cache of this format and package list, if any: what
    a machine without access to Debian's archive can still use."""
    wanted = sorted(package_names())
    found: list[tuple[float, Path]] = []
    for manifest in (cache_dir / "sysroot").glob(f"*/{MANIFEST}"):
        try:
            lines = manifest.read_text(encoding="utf-8").splitlines(keepends=True)
        except OSError:
            continue
        if not lines or lines[0] != _FORMAT_LINE:
            continue
        if sorted(line.split(":", 1)[0] for line in lines[1:]) == wanted:
            found.append((manifest.stat().st_mtime, manifest.parent))
    return max(found)[1] if found else None


def _publish(tmp: Path, final: Path) -> Path:
    """Rename the finished directory `tmp` to `final`; if another process won, keep theirs."""
    tmp.chmod(0o755)
    try:
        tmp.rename(final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _read_dynamic(path: Path) -> ElfFile | None:
    from pybuild.elf.reader import read_elf

    if not looks_like_elf(path):
        return None
    try:
        return read_elf(path)
    except ElfError as err:
        raise SysrootError(f"malformed ELF file: {err}") from None


def _inside(root: Path, path: Path) -> Path | None:
    """Follow `path`'s links as the guest would, with `root` as "/"; None if it leaves root."""
    writer = TreeWriter(root, "sysroot", absolute_links="root")
    real = writer.resolve(path.relative_to(root).as_posix())
    return None if real is None else root / real


def sysroot_sonames(sysroot: Path) -> frozenset[str]:
    """The sonames of the shared libraries the guest's loader finds in `sysroot` by default.

    A name counts when a file (or link) of that name in one of `SEARCH_DIRS` is a shared library
    whose DT_SONAME is that name (or that has none): ``libz.so.1``, not ``libz.so.1.2.13``.
    """
    names: set[str] = set()
    for relative in SEARCH_DIRS:
        directory = sysroot / relative
        if not directory.is_dir() or directory.is_symlink():
            continue
        for entry in sorted(directory.iterdir()):
            if ".so" not in entry.name:
                continue
            target = _inside(sysroot, entry)
            if target is None or not target.is_file():
                continue
            dynamic = _read_dynamic(target)
            shared = dynamic is not None and dynamic.file_type == ET_DYN
            if dynamic is not None and shared and dynamic.soname in (None, entry.name):
                names.add(entry.name)
    return frozenset(names)


def missing_libraries(root: Path, provided: frozenset[str]) -> tuple[tuple[str, str], ...]:
    """(file, soname) for every DT_NEEDED of an ELF file under `root` that nothing provides.

    A need is met by `provided` or by the file's ``$ORIGIN`` RUNPATH (glibc's gconv modules).
    """
    missing: list[tuple[str, str]] = []
    for relative in tree_entries(root):
        path = root / relative
        if path.is_symlink() or not path.is_file():
            continue
        dynamic = _read_dynamic(path)
        if dynamic is None:
            continue
        origin_dirs = [
            path.parent / entry.replace("${ORIGIN}", ".").replace("$ORIGIN", ".")
            for entry in dynamic.runpath or dynamic.rpath
            if "ORIGIN" in entry
        ]
        for soname in dynamic.needed:
            if soname in provided or any((d / soname).exists() for d in origin_dirs):
                continue
            missing.append((relative, soname))
    return tuple(missing)


def fetch_packages(
    cache: Cache, packages: Sequence[DebPackage], mirrors: dict[str, str], ui: Ui
) -> dict[str, Path]:
    """name -> the .deb in the content-addressed cache, fetched from the mirrors if absent."""
    from pybuild.stages.fetch import Artifact, fetch_artifacts
    from pybuild.support.index import Indexes

    artifacts = [Artifact.for_file(p.locked(), "sysroot", mirrors) for p in packages]
    fetched = fetch_artifacts(artifacts, cache, indexes=Indexes((), "none"), ui=ui)
    return {p.name: f.path for p, f in zip(packages, fetched, strict=True)}


def build_sysroot(cache_dir: Path, ui: Ui, mirrors: dict[str, str] | None = None) -> Path:
    """An arm64 sysroot for ``qemu-aarch64-static -L``; cached under ``sysroot/<key>``."""
    cache = Cache(cache_dir)
    archive = DebianArchive(RELEASE, cache, ui, mirrors)
    try:
        packages = archive.newest(list(package_names()), ARCH)
    except (FetchError, LockError) as err:
        cached = cached_sysroot(cache_dir)
        if cached is None:
            raise
        ui.warn(
            f"sysroot: Debian's archive cannot be read ({err}); using the cached one "
            f"({cached.name[:12]}), which may lack its latest updates"
        )
        return cached
    parent = cache_dir / "sysroot"
    final = parent / _key(packages)
    if final.is_dir():
        ui.info(f"sysroot: cached ({len(packages)} Debian arm64 packages)")
        return final
    paths = fetch_packages(cache, packages, archive.mirrors, ui)
    reclaim_stale(parent, prefix=".build-")
    work = WorkDir(parent, ".build-")
    try:
        tmp = work.path / "root"
        ui.info(f"sysroot: unpacking {len(packages)} Debian arm64 packages")
        for package in packages:
            writer = TreeWriter(tmp, f"Debian package {package.filename}", absolute_links="root")
            extract_deb(
                paths[package.name],
                writer,
                select=_unpacked,
            )
        _finish(tmp, packages)
        published = _publish(tmp, final)
    finally:
        work.cleanup()
    size = sum((published / e).lstat().st_size for e in tree_entries(published))
    ui.info(f"sysroot: {len(packages)} packages, {size / 1e6:.0f} MB")
    return published


def _finish(root: Path, packages: Sequence[DebPackage]) -> None:
    loader = _inside(root, root / LOADER)
    if loader is None or not loader.is_file():
        raise SysrootError(f"the sysroot has no {LOADER}: is libc6 in {PACKAGES_RESOURCE}?")
    # An empty cache: the loader ignores it and searches SEARCH_DIRS, not the host's cache.
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc" / "ld.so.cache").write_bytes(b"")
    (root / MANIFEST).write_text(_manifest(packages), encoding="utf-8")
    missing = missing_libraries(root, sysroot_sonames(root))
    if missing:
        shown = ", ".join(f"{soname} (needed by {file})" for file, soname in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise SysrootError(
            f"the sysroot lacks {shown}{more}: add the packages that provide them to "
            f"pybuild/{PACKAGES_RESOURCE}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pybuild.smoke.sysroot``: build the sysroot or find it cached (Debian's indexes
    are read either way) and print its path; the exit status (a PybuildError's when it fails)."""
    parser = argparse.ArgumentParser(
        prog="python -m pybuild.smoke.sysroot",
        description="Build the Debian 12 arm64 sysroot of `pybuild smoke` and print its path.",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help=(
            "cache directory (default: $PYBUILD_CACHE_DIR, else $XDG_CACHE_HOME/pybuild, "
            "else ~/.cache/pybuild)"
        ),
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the path")
    args = parser.parse_args(argv)
    ui = Ui(quiet=args.quiet)
    try:
        path = build_sysroot(args.cache_dir or default_cache_dir(), ui)
    except PybuildError as err:
        ui.error(err)
        return err.exit_code
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
