"""Debian 12 arm64 stand-ins for what cannot be downloaded here: a qemu sysroot and a runtime.

`build_sysroot` unpacks the Debian arm64 packages listed in ``data/debian12-arm64-packages.txt``
(glibc, the GCC runtime and every library Debian's python3.11 needs) into a directory for
``qemu-aarch64-static -L SYSROOT``. `build_standin_runtime` repackages Debian's arm64 python3.11
as a python-build-standalone ``install_only`` archive (everything under ``python/``), made to
use ``<prefix>/lib/python3.11/site-packages`` as upstream CPython does (a sitecustomize.py, since
3.11 runs a frozen copy of Debian's site.py), written byte-for-byte deterministically.

Packages are pinned by what the host's apt lists say now (``apt-cache show``: version and
sha256), fetched with ``apt-get download`` into the content-addressed cache and unpacked with
``dpkg-deb -x``. Each result lives in a directory named by a hash of the exact .deb files and of
the build format, so a Debian point release gives a new directory. Results are built in a
temporary directory beside their final place and renamed into it: nothing half-built is ever
visible, and of two racing builds the loser discards its copy.

Run ``python -m pybuild.runtimes.debian sysroot`` or ``... standin``: the path is printed on stdout.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import hashlib
import importlib.resources
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pybuild.elf.reader import read_elf
from pybuild.elf.types import ET_DYN, ElfError, ElfFile, looks_like_elf
from pybuild.errors import PybuildError
from pybuild.support.cache import Cache, Want, default_cache_dir, file_sha256
from pybuild.support.fsutil import tree_entries
from pybuild.ui import Ui

ARCH = "arm64"
RELEASE = "debian12"
TRIPLE = "aarch64-unknown-linux-gnu"
PACKAGES_RESOURCE = "data/debian12-arm64-packages.txt"
PYTHON_PACKAGES = (
    "libpython3.11",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "python3.11-minimal",
)
PYTHON_MINOR = "3.11"
LOADER = "lib/ld-linux-aarch64.so.1"
# Where Debian's aarch64 ld.so looks when nothing (RUNPATH, LD_LIBRARY_PATH, a cache) says
# otherwise. The sysroot gets an empty etc/ld.so.cache: qemu would fall back to the host's.
SEARCH_DIRS = ("lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu", "lib", "usr/lib")
MANIFEST = "pybuild-packages.txt"
# Fixed metadata of every member of the stand-in tarball (1980-01-01: a zip can hold it too).
TAR_MTIME = 315532800
# Part of the cache keys: bump when the same .debs would be built into something different.
SYSROOT_FORMAT = 1
STANDIN_FORMAT = 1

_SETUP = "run `dpkg --add-architecture arm64 && apt-get update` as root"
_CHUNK = 1 << 20


class DebianError(PybuildError):
    """A Debian package cannot be found, fetched or turned into a sysroot or stand-in runtime."""


@dataclass(frozen=True, slots=True)
class Deb:
    """One arm64 package as the apt lists pin it: the exact .deb file is `sha256`."""

    name: str
    version: str
    filename: str
    sha256: str
    size: int

    @property
    def spec(self) -> str:
        return f"{self.name}:{ARCH}={self.version}"

    @property
    def want(self) -> Want:
        return Want(self.filename, self.sha256, self.size)


# --- running apt and dpkg ------------------------------------------------------------------------


def _run(command: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
    try:
        return subprocess.run(
            list(command), cwd=cwd, capture_output=True, text=True, env=env, check=False
        )
    except OSError as err:
        raise DebianError(
            f"cannot run {command[0]}: {err.strerror} (pybuild.runtimes.debian needs a Debian host "
            "with apt and dpkg)"
        ) from None


def _one_line(text: str) -> str:
    """apt's report as one line: its errors if it printed any, else everything it said."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line.removeprefix("E: ") for line in lines if line.startswith("E: ")]
    return " ".join(errors or lines) or "no message"


def _apt_records(text: str) -> Iterator[dict[str, str]]:
    """The stanzas of ``apt-cache show`` as dicts (continuation lines are dropped)."""
    for stanza in re.split(r"\n\s*\n", text):
        record: dict[str, str] = {}
        for line in stanza.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                record[key] = value.strip()
        if record:
            yield record


def resolve_debs(names: Sequence[str]) -> tuple[Deb, ...]:
    """The arm64 .deb that ``apt-get download NAME:arm64`` would fetch now, for each name.

    Reads only the local apt lists (no network). Raises `DebianError` naming what to run when
    the arm64 lists are missing.
    """
    completed = _run(["apt-cache", "show", "--no-all-versions", *(f"{n}:{ARCH}" for n in names)])
    found: dict[str, Deb] = {}
    if completed.returncode == 0:
        for record in _apt_records(completed.stdout):
            if record.get("Architecture") != ARCH or record.get("Package") not in names:
                continue
            try:
                deb = Deb(
                    name=record["Package"],
                    version=record["Version"],
                    filename=PurePosixPath(record["Filename"]).name,
                    sha256=record["SHA256"],
                    size=int(record["Size"]),
                )
            except (KeyError, ValueError) as err:
                raise DebianError(
                    f"apt-cache show {record['Package']}:{ARCH}: unreadable record ({err})"
                ) from None
            found.setdefault(deb.name, deb)
    elif "No packages found" not in completed.stderr:
        raise DebianError(f"apt-cache show failed: {_one_line(completed.stderr)}")
    missing = [name for name in names if name not in found]
    if missing:
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        raise DebianError(
            f"no {ARCH} package {shown} in the apt lists: is the {ARCH} architecture enabled? "
            f"{_SETUP}"
        )
    return tuple(found[name] for name in sorted(set(names)))


def fetch_debs(cache: Cache, debs: Sequence[Deb], ui: Ui) -> dict[str, Path]:
    """name -> path of each .deb in the content-addressed cache; apt-get downloads the absent."""
    paths: dict[str, Path] = {}
    missing: list[Deb] = []
    for deb in debs:
        path, problem = cache.lookup(deb.want)
        if problem is not None:
            ui.warn(problem)
        if path is None:
            missing.append(deb)
        else:
            paths[deb.name] = path
    if not missing:
        return paths
    total = sum(deb.size for deb in missing)
    ui.info(
        f"downloading {len(missing)} Debian {ARCH} packages ({total / 1e6:.1f} MB) with apt-get"
    )
    tmp_root = cache.root / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmp_root, prefix="apt-download.") as tmp:
        # As root, apt would hand the download to its `_apt` user, which cannot write into a
        # private directory, and then warn and download as root anyway: ask for that directly.
        # (apt run by another user ignores the option.)
        completed = _run(
            ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root"]
            + [deb.spec for deb in missing],
            cwd=Path(tmp),
        )
        if completed.returncode != 0:
            hint = f"; {_SETUP}" if "Unable to locate" in completed.stderr else ""
            raise DebianError(f"apt-get download failed: {_one_line(completed.stderr)}{hint}")
        by_sha256 = {file_sha256(path)[0]: path for path in Path(tmp).glob("*.deb")}
        for deb in missing:
            source = by_sha256.get(deb.sha256)
            if source is None:
                raise DebianError(
                    f"apt-get download {deb.spec} did not give the .deb the apt lists pin "
                    f"(sha256 {deb.sha256}); {_SETUP}"
                )
            with source.open("rb") as handle:
                stored, _, _ = cache.store(
                    deb.want, f"apt-get download {deb.spec}", functools.partial(handle.read, _CHUNK)
                )
            paths[deb.name] = stored
    return paths


def _extract(deb: Path, name: str, destination: Path) -> None:
    completed = _run(["dpkg-deb", "-x", str(deb), str(destination)])
    if completed.returncode != 0:
        raise DebianError(f"dpkg-deb -x {name} failed: {_one_line(completed.stderr)}")


def _key(kind: str, build_format: int, debs: Sequence[Deb]) -> str:
    lines = [f"{kind} format {build_format}"]
    lines += sorted(f"{deb.name} {deb.version} {deb.sha256}" for deb in debs)
    return hashlib.sha256(("\n".join(lines) + "\n").encode()).hexdigest()


def _manifest(debs: Sequence[Deb]) -> str:
    return "".join(f"{d.name}:{ARCH} {d.version} {d.filename} sha256:{d.sha256}\n" for d in debs)


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


def _tree_size(root: Path) -> int:
    return sum((root / entry).lstat().st_size for entry in tree_entries(root))


# --- reading ELF files (through pybuild.elf.reader, like every other stage) ------------------


def read_dynamic(path: Path) -> ElfFile | None:
    """The ELF file `path` as pybuild.elf.reader reads it, or None if it is not an ELF file."""
    if not looks_like_elf(path):
        return None
    try:
        return read_elf(path)
    except ElfError as err:
        raise DebianError(f"malformed ELF file: {err}") from None


# --- the sysroot ---------------------------------------------------------------------------------


def sysroot_package_names() -> tuple[str, ...]:
    """The packages of ``data/debian12-arm64-packages.txt``, in file order."""
    text = importlib.resources.files("pybuild").joinpath(PACKAGES_RESOURCE).read_text("utf-8")
    names: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.partition("#")[0].strip()
        if not line:
            continue
        if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", line):
            raise DebianError(f"{PACKAGES_RESOURCE}:{number}: not a Debian package name: {line!r}")
        names.append(line)
    return tuple(names)


def _inside(root: Path, path: Path) -> Path | None:
    """Follow `path`'s symlinks as the guest would, with `root` as "/"; None if it leaves root."""
    root = Path(os.path.normpath(root))
    current = Path(os.path.normpath(path))
    for _ in range(40):
        if not current.is_symlink():
            break
        link = current.readlink()
        if link.is_absolute():
            current = Path(os.path.normpath(root / link.relative_to("/")))
        else:
            current = Path(os.path.normpath(current.parent / link))
    else:
        return None
    return current if current == root or root in current.parents else None


def sysroot_sonames(sysroot: Path) -> frozenset[str]:
    """The sonames of the shared libraries the guest's loader finds in `sysroot` by default.

    A name counts when a file (or symlink) of that name in one of `SEARCH_DIRS` is a shared
    library whose DT_SONAME is that name (or that has none): ``libz.so.1``, not ``libz.so.1.2.13``.
    """
    names: set[str] = set()
    for relative in SEARCH_DIRS:
        directory = sysroot / relative
        if not directory.is_dir():
            continue
        for entry in directory.iterdir():
            if ".so" not in entry.name:
                continue
            target = _inside(sysroot, entry)
            if target is None or not target.is_file():
                continue
            dynamic = read_dynamic(target)
            shared = dynamic is not None and dynamic.file_type == ET_DYN
            if dynamic is not None and shared and dynamic.soname in (None, entry.name):
                names.add(entry.name)
    return frozenset(names)


def missing_libraries(root: Path, provided: frozenset[str]) -> tuple[tuple[str, str], ...]:
    """(file, soname) for every DT_NEEDED of an ELF file under `root` that nothing provides.

    A need is met by `provided` or by the file's ``$ORIGIN`` RUNPATH (glibc's gconv modules).
    """
    missing: list[tuple[str, str]] = []
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(directory) / name
            if path.is_symlink() or not path.is_file():
                continue
            dynamic = read_dynamic(path)
            if dynamic is None:
                continue
            origin_dirs = [
                Path(directory) / entry.replace("${ORIGIN}", ".").replace("$ORIGIN", ".")
                for entry in dynamic.runpath or dynamic.rpath
                if "ORIGIN" in entry
            ]
            for soname in dynamic.needed:
                if soname in provided or any((d / soname).exists() for d in origin_dirs):
                    continue
                missing.append((path.relative_to(root).as_posix(), soname))
    return tuple(missing)


def build_sysroot(cache_dir: Path, ui: Ui) -> Path:
    """An arm64 sysroot for ``qemu-aarch64-static -L``; cached under ``sysroot/<key>``."""
    debs = resolve_debs(sysroot_package_names())
    final = cache_dir / "sysroot" / _key("sysroot", SYSROOT_FORMAT, debs)
    if final.is_dir():
        ui.info(f"sysroot: cached ({len(debs)} Debian {ARCH} packages)")
        return final
    paths = fetch_debs(Cache(cache_dir), debs, ui)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name[:16]}.", suffix=".tmp"))
    try:
        ui.info(f"sysroot: unpacking {len(debs)} Debian {ARCH} packages")
        for deb in debs:
            _extract(paths[deb.name], deb.name, tmp)
        _finish_sysroot(tmp, debs)
        published = _publish(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    ui.info(f"sysroot: {published} ({_tree_size(published) / 1e6:.0f} MB)")
    return published


def _finish_sysroot(root: Path, debs: Sequence[Deb]) -> None:
    loader = _inside(root, root / LOADER)
    if loader is None or not loader.is_file():
        raise DebianError(f"the sysroot has no {LOADER}: is libc6 in {PACKAGES_RESOURCE}?")
    # An empty cache: the loader ignores it and searches SEARCH_DIRS, not the host's cache.
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc" / "ld.so.cache").write_bytes(b"")
    (root / MANIFEST).write_text(_manifest(debs), encoding="utf-8")
    missing = missing_libraries(root, sysroot_sonames(root))
    if missing:
        shown = ", ".join(f"{soname} (needed by {file})" for file, soname in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise DebianError(
            f"the sysroot lacks {shown}{more}: add the packages that provide them to "
            f"pybuild/{PACKAGES_RESOURCE}"
        )


# --- the stand-in runtime ------------------------------------------------------------------------

# Debian's site.py puts dist-packages directories on sys.path instead of
# <prefix>/lib/python3.X/site-packages; this restores upstream CPython 3.11's loop verbatim.
_SITE_DEBIAN = """\
            if is_virtual_environment:
                sitepackages.append(os.path.join(prefix, "lib",
                                                 "python%d.%d" % sys.version_info[:2],
                                                 "site-packages"))
            sitepackages.append(os.path.join(prefix, "local/lib",
                                             "python%d.%d" % sys.version_info[:2],
                                             "dist-packages"))
            sitepackages.append(os.path.join(prefix, "lib",
                                             "python3",
                                             "dist-packages"))
            # this one is deprecated for Debian
            for libdir in libdirs:
                path = os.path.join(prefix, libdir,
                                    "python%d.%d" % sys.version_info[:2],
                                    "dist-packages")
                sitepackages.append(path)
"""
_SITE_UPSTREAM = """\
            # pybuild: upstream CPython's site-packages, not Debian's dist-packages
            for libdir in libdirs:
                path = os.path.join(prefix, libdir,
                                    "python%d.%d" % sys.version_info[:2],
                                    "site-packages")
                sitepackages.append(path)
"""
# Debian's sysconfig.py picks its `posix_local` scheme (<prefix>/local/.../dist-packages) outside
# a virtual environment; upstream's default is `posix_prefix`, which pip also installs to.
_SYSCONFIG_DEBIAN = """\
        deb_build = os.environ.get('DEB_PYTHON_INSTALL_LAYOUT', 'posix_local')
        if deb_build in ('deb', 'deb_system'):
            prefix_scheme = 'deb_system'
        else:
            prefix_scheme = 'posix_local'
"""
_SYSCONFIG_UPSTREAM = """\
        # pybuild: upstream CPython's scheme, <prefix>/lib/python3.X/site-packages
        prefix_scheme = 'posix_prefix'
"""
# Python 3.11 runs a *frozen* copy of site.py, compiled into the interpreter, so patching
# lib/python3.11/site.py (done too, for `-X frozen_modules=off` and for readers) changes nothing by
# itself: Debian's frozen site still adds only dist-packages. site imports sitecustomize at
# startup, so the stand-in ships this one (Debian's is a link to its apport hook in /etc).
_SITECUSTOMIZE = '''\
"""pybuild's Debian stand-in for python-build-standalone: upstream CPython's site-packages.

Python 3.11 runs a frozen copy of site.py compiled into the interpreter, and Debian's copy puts
dist-packages directories on sys.path instead of <prefix>/lib/python3.11/site-packages; editing
lib/python3.11/site.py cannot change that. site imports this module at startup, after the user
site (the order upstream adds them in). It installs upstream's getsitepackages, adds what that
names, then runs the next sitecustomize on sys.path (one a layer ships in site-packages, say),
as site would have without this file. Written by pybuild/debian.py.
"""

import os
import site
import sys


def getsitepackages(prefixes=None):
    """Returns a list containing all global site-packages directories.

    For each directory present in ``prefixes`` (or the global ``PREFIXES``),
    this function will find its `site-packages` subdirectory depending on the
    system environment, and will return a list of full paths.
    """
    sitepackages = []
    seen = set()

    if prefixes is None:
        prefixes = site.PREFIXES

    for prefix in prefixes:
        if not prefix or prefix in seen:
            continue
        seen.add(prefix)

        if os.sep == '/':
            libdirs = [sys.platlibdir]
            if sys.platlibdir != "lib":
                libdirs.append("lib")

            for libdir in libdirs:
                path = os.path.join(prefix, libdir,
                                    "python%d.%d" % sys.version_info[:2],
                                    "site-packages")
                sitepackages.append(path)
        else:
            sitepackages.append(prefix)
            sitepackages.append(os.path.join(prefix, "Lib", "site-packages"))
    return sitepackages


def _run_next_sitecustomize():
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    path = [entry for entry in sys.path if entry and os.path.abspath(entry) != here]
    spec = importlib.machinery.PathFinder.find_spec(__name__, path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[__name__] = module
    spec.loader.exec_module(module)


site.getsitepackages = getsitepackages
site.addsitepackages(None)
_run_next_sitecustomize()
'''
_PATCHES = (
    ("site.py", _SITE_DEBIAN, _SITE_UPSTREAM),
    ("sysconfig.py", _SYSCONFIG_DEBIAN, _SYSCONFIG_UPSTREAM),
)


def python_version(debs: Sequence[Deb]) -> str:
    """The upstream CPython version of Debian's python3.11 (``3.11.2`` of ``3.11.2-6+deb12u9``)."""
    (interpreter,) = (deb for deb in debs if deb.name == f"python{PYTHON_MINOR}-minimal")
    upstream = interpreter.version.partition(":")[2] or interpreter.version
    upstream = upstream.rpartition("-")[0] or upstream
    if not re.fullmatch(re.escape(PYTHON_MINOR) + r"\.\d+", upstream):
        raise DebianError(
            f"{interpreter.name} {interpreter.version} is not CPython {PYTHON_MINOR}.N"
        )
    return upstream


def standin_filename(version: str) -> str:
    return f"cpython-{version}+{RELEASE}-{TRIPLE}-install_only.tar.gz"


def build_standin_runtime(cache_dir: Path, ui: Ui) -> Path:
    """A PBS-like ``install_only`` .tar.gz of Debian's arm64 python3.11; cached, deterministic."""
    debs = resolve_debs(PYTHON_PACKAGES)
    name = standin_filename(python_version(debs))
    final_dir = cache_dir / "standin" / _key("standin", STANDIN_FORMAT, debs)
    if (final_dir / name).is_file():
        ui.info(f"stand-in runtime: cached {name}")
        return final_dir / name
    paths = fetch_debs(Cache(cache_dir), debs, ui)
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(
        tempfile.mkdtemp(dir=final_dir.parent, prefix=f".{final_dir.name[:16]}.", suffix=".tmp")
    )
    try:
        ui.info(f"stand-in runtime: building {name}")
        with tempfile.TemporaryDirectory(dir=tmp, prefix="work.") as work_name:
            work = Path(work_name)
            for deb in debs:
                _extract(paths[deb.name], deb.name, work / "debs")
            _standin_tree(work / "debs", work / "tree" / "python")
            write_deterministic_tar_gz(work / "tree", tmp / name)
        (tmp / MANIFEST).write_text(_manifest(debs), encoding="utf-8")
        published = _publish(tmp, final_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    path = published / name
    ui.info(f"stand-in runtime: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return path


def _move(unpacked: Path, source: str, destination: Path) -> None:
    origin = unpacked / source
    if not origin.exists():
        raise DebianError(f"Debian's python{PYTHON_MINOR} packages have no /{source}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    origin.rename(destination)


def _standin_tree(unpacked: Path, python: Path) -> None:
    """Lay Debian's files out as PBS does under `python` (``python/bin``, ``python/lib``)."""
    minor = PYTHON_MINOR
    libpython = f"libpython{minor}.so.1.0"
    _move(unpacked, f"usr/bin/python{minor}", python / "bin" / f"python{minor}")
    _move(unpacked, f"usr/lib/python{minor}", python / "lib" / f"python{minor}")
    _move(unpacked, f"usr/lib/aarch64-linux-gnu/{libpython}", python / "lib" / libpython)
    (python / "bin" / "python3").symlink_to(f"python{minor}")
    (python / "bin" / "python").symlink_to(f"python{minor}")
    (python / "lib" / f"libpython{minor}.so").symlink_to(libpython)
    stdlib = python / "lib" / f"python{minor}"
    # Debian's PEP 668 marker makes pip refuse to install; PBS has none.
    (stdlib / "EXTERNALLY-MANAGED").unlink(missing_ok=True)
    # Debian's is a link to /etc/python3.11/sitecustomize.py (apport's hook).
    (stdlib / "sitecustomize.py").unlink(missing_ok=True)
    (stdlib / "sitecustomize.py").write_text(_SITECUSTOMIZE, encoding="utf-8")
    # Pointed at Debian's /usr/lib/aarch64-linux-gnu; the library is two levels up here.
    config_lib = stdlib / f"config-{minor}-aarch64-linux-gnu" / f"libpython{minor}.so"
    if config_lib.is_symlink():
        config_lib.unlink()
        config_lib.symlink_to(f"../../{libpython}")
    (stdlib / "site-packages").mkdir()
    patch_stdlib(stdlib)
    for link in _symlinks(python):
        target = link.readlink()
        if target.is_absolute() or _inside(python, link) is None:
            raise DebianError(
                f"stand-in runtime: {link.relative_to(python.parent)} -> {target} "
                "points outside python/"
            )


def patch_stdlib(stdlib: Path) -> None:
    """Apply `_PATCHES` to Debian's stdlib; each Debian text must occur exactly once."""
    for filename, debian, upstream in _PATCHES:
        path = stdlib / filename
        text = path.read_text(encoding="utf-8")
        if text.count(debian) != 1:
            raise DebianError(
                f"Debian's {filename} is not the one pybuild/debian.py knows how to patch "
                "(its dist-packages code changed); update the patch there"
            )
        path.write_text(text.replace(debian, upstream), encoding="utf-8")


def _symlinks(root: Path) -> Iterator[Path]:
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            if (Path(directory) / name).is_symlink():
                yield Path(directory) / name


def write_deterministic_tar_gz(root: Path, output: Path) -> None:
    """Everything under `root` as a .tar.gz whose bytes depend only on the files' names, types,
    contents and executable bits: sorted members, fixed mtime, root-owned, modes 0755/0644, gzip
    header without time or name."""
    members = sorted(
        (
            (Path(directory) / name).relative_to(root)
            for directory, dirs, files in os.walk(root)
            for name in dirs + files
        ),
        key=lambda member: member.parts,
    )
    with (
        output.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for member in members:
            path = root / member
            info = tarfile.TarInfo(member.as_posix())
            info.mtime = TAR_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            status = path.lstat()
            if path.is_symlink():
                info.type = tarfile.SYMTYPE
                info.linkname = path.readlink().as_posix()
                info.mode = 0o777
                tar.addfile(info)
            elif path.is_dir():
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            elif path.is_file():
                info.size = status.st_size
                info.mode = 0o755 if status.st_mode & 0o111 else 0o644
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                raise DebianError(f"{member}: neither file, directory nor symlink")
        raw.flush()
        os.fsync(raw.fileno())


# --- command line --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pybuild.runtimes.debian",
        description="Build a Debian 12 arm64 stand-in and print its path.",
    )
    parser.add_argument(
        "what",
        choices=["sysroot", "standin"],
        help="sysroot: a directory for `qemu-aarch64-static -L`; "
        "standin: a PBS-like install_only .tar.gz of Debian's python3.11",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="cache directory (default: $PYBUILD_CACHE_DIR or ~/.cache/pybuild)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the path")
    args = parser.parse_args(argv)
    ui = Ui(quiet=args.quiet)
    cache_dir: Path = args.cache_dir or default_cache_dir()
    try:
        if args.what == "sysroot":
            path = build_sysroot(cache_dir, ui)
        else:
            path = build_standin_runtime(cache_dir, ui)
    except PybuildError as err:
        ui.console.print(f"error: {err}", markup=False, soft_wrap=True, style="red")
        return err.exit_code
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
