"""The Debian 12 arm64 stand-ins: the qemu sysroot and the PBS-like runtime built from Debian.

The sysroot and the stand-in are built once per session into a cache under tmp_path, so every
session really runs the build code. The .deb files are shared with the user's real cache
(`default_cache_dir()`, content-addressed, verified on every use): only the first session on a
machine downloads them (about 14 MB from deb.debian.org).
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from pybuild.runtimes import debian
from pybuild.runtimes.debian import (
    PYTHON_PACKAGES,
    Deb,
    DebianError,
    build_standin_runtime,
    build_sysroot,
    missing_libraries,
    read_dynamic,
    sysroot_sonames,
)
from pybuild.support.cache import Cache, default_cache_dir
from pybuild.ui import Ui

QUIET = Ui(quiet=True)
QEMU = "qemu-aarch64-static"
STANDIN_NAME = re.compile(
    r"cpython-3\.11\.\d+\+debian12-aarch64-unknown-linux-gnu-install_only\.tar\.gz"
)
# What Debian's python3.11 and its lib-dynload need, and what the brief names.
EXPECTED_SONAMES = {
    "ld-linux-aarch64.so.1",
    "libc.so.6",
    "libm.so.6",
    "libgcc_s.so.1",
    "libstdc++.so.6",
    "libz.so.1",
    "libexpat.so.1",
    "libssl.so.3",
    "libcrypto.so.3",
    "libffi.so.8",
    "libbz2.so.1.0",
    "liblzma.so.5",
    "libsqlite3.so.0",
    "libuuid.so.1",
    "libncursesw.so.6",
    "libpanelw.so.6",
    "libtinfo.so.6",
    "libreadline.so.8",
    "libdb-5.3.so",
    "libcrypt.so.1",
    "libnsl.so.2",
    "libtirpc.so.3",
    "libgssapi_krb5.so.2",
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _copy_debs(source: Cache, destination: Cache, debs: tuple[Deb, ...]) -> None:
    """Best effort: put each .deb `source` holds intact into `destination` too."""
    for deb in debs:
        path, _ = source.lookup(deb.want)
        if path is None or destination.lookup(deb.want)[0] is not None:
            continue
        with contextlib.suppress(OSError), path.open("rb") as handle:
            destination.store(deb.want, str(path), functools.partial(handle.read, 1 << 20))


@dataclass(frozen=True)
class Built:
    cache_dir: Path
    sysroot: Path
    standin: Path
    debs: tuple[Deb, ...]


def _build(cache_dir: Path, debs: tuple[Deb, ...]) -> Built:
    shared = Cache(default_cache_dir())
    _copy_debs(shared, Cache(cache_dir), debs)
    built = Built(
        cache_dir, build_sysroot(cache_dir, QUIET), build_standin_runtime(cache_dir, QUIET), debs
    )
    _copy_debs(Cache(cache_dir), shared, debs)
    return built


@pytest.fixture(scope="session")
def all_debs() -> tuple[Deb, ...]:
    return debian.resolve_debs(debian.sysroot_package_names() + PYTHON_PACKAGES)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, all_debs: tuple[Deb, ...]) -> Built:
    return _build(tmp_path_factory.mktemp("debian") / "cache", all_debs)


@pytest.fixture(scope="session")
def unpacked(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in, unpacked: the directory holding ``python/``."""
    root = tmp_path_factory.mktemp("standin")
    with tarfile.open(built.standin) as tar:
        tar.extractall(root, filter="tar")
    return root


# --- without the network ------------------------------------------------------------------------


def test_package_list() -> None:
    names = debian.sysroot_package_names()
    assert len(names) == len(set(names))
    assert {"libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libssl3", "libtirpc3"} <= set(names)
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", name) for name in names)


def test_python_version_from_debian_version() -> None:
    def deb(version: str) -> Deb:
        return Deb("python3.11-minimal", version, "x.deb", "0" * 64, 1)

    assert debian.python_version([deb("3.11.2-6+deb12u9")]) == "3.11.2"
    assert debian.python_version([deb("1:3.11.14-1")]) == "3.11.14"
    with pytest.raises(DebianError, match=r"is not CPython 3\.11\.N"):
        debian.python_version([deb("3.12.1-1")])
    assert debian.standin_filename("3.11.2") == (
        "cpython-3.11.2+debian12-aarch64-unknown-linux-gnu-install_only.tar.gz"
    )


def test_unknown_package_names_the_setup_command() -> None:
    with pytest.raises(DebianError) as caught:
        debian.resolve_debs(["libc6", "pybuild-no-such-package"])
    message = str(caught.value)
    assert "pybuild-no-such-package" in message
    assert "dpkg --add-architecture arm64 && apt-get update" in message
    assert "\n" not in message


def test_no_apt_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(DebianError, match=r"^cannot run apt-cache: .*Debian host"):
        debian.resolve_debs(["libc6"])


def test_deterministic_tar_gz(tmp_path: Path) -> None:
    trees = []
    for n, umask_mode in enumerate((0o600, 0o664)):
        root = tmp_path / f"tree{n}"
        (root / "python" / "bin").mkdir(parents=True)
        (root / "python" / "lib" / "empty").mkdir(parents=True)
        tool = root / "python" / "bin" / "tool"
        tool.write_bytes(b"#!/bin/sh\n")
        tool.chmod(0o700 if n == 0 else 0o775)
        data = root / "python" / "lib" / "data.txt"
        data.write_bytes(b"data\n")
        data.chmod(umask_mode)
        (root / "python" / "bin" / "alias").symlink_to("tool")
        os.utime(data, (1_000_000 * (n + 1), 1_000_000 * (n + 1)))
        output = tmp_path / f"out{n}.tar.gz"
        debian.write_deterministic_tar_gz(root, output)
        trees.append(output)
    assert trees[0].read_bytes() == trees[1].read_bytes()
    header = trees[0].read_bytes()[:10]
    assert header[3] == 0  # FLG: no file name, no comment, no extra field
    assert header[4:8] == b"\0\0\0\0"  # MTIME
    with tarfile.open(trees[0]) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        "python",
        "python/bin",
        "python/bin/alias",
        "python/bin/tool",
        "python/lib",
        "python/lib/data.txt",
        "python/lib/empty",
    ]
    modes = {m.name: m.mode for m in members}
    assert modes["python/bin/tool"] == 0o755
    assert modes["python/lib/data.txt"] == 0o644
    assert modes["python/lib/empty"] == 0o755
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {
        (debian.TAR_MTIME, 0, 0, "root", "root")
    }


def test_missing_libraries(tmp_path: Path) -> None:
    fixtures = Path(__file__).parent / "fixtures" / "elf"
    shutil.copy(fixtures / "needs-libmissing-origin.so", tmp_path / "mod.so")
    dynamic = read_dynamic(tmp_path / "mod.so")
    assert dynamic is not None
    assert dynamic.needed == ("libmissing.so.1",)
    assert dynamic.runpath == ("$ORIGIN/vendor",)
    assert missing_libraries(tmp_path, frozenset()) == (("mod.so", "libmissing.so.1"),)
    (tmp_path / "vendor").mkdir()
    shutil.copy(fixtures / "libmissing.so.1", tmp_path / "vendor" / "libmissing.so.1")
    assert missing_libraries(tmp_path, frozenset()) == ()  # found through $ORIGIN/vendor


def test_read_dynamic_of_other_files(tmp_path: Path) -> None:
    text = tmp_path / "text"
    text.write_text("hello")
    assert read_dynamic(text) is None
    truncated = tmp_path / "truncated.so"
    truncated.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(20))
    with pytest.raises(DebianError, match=r"malformed ELF file: .*truncated\.so"):
        read_dynamic(truncated)


def test_patch_refuses_an_unknown_site_py(tmp_path: Path) -> None:
    (tmp_path / "site.py").write_text("# not Debian's\n")
    (tmp_path / "sysconfig.py").write_text(debian._SYSCONFIG_DEBIAN)
    with pytest.raises(DebianError, match=r"^Debian's site\.py is not the one"):
        debian.patch_stdlib(tmp_path)


def test_publish_keeps_the_winner(tmp_path: Path) -> None:
    final = tmp_path / "final"
    final.mkdir()
    (final / "theirs").write_text("winner")
    loser = tmp_path / ".final.tmp"
    loser.mkdir()
    (loser / "mine").write_text("loser")
    assert debian._publish(loser, final) == final
    assert not loser.exists()
    assert [p.name for p in final.iterdir()] == ["theirs"]


# --- built from Debian's archive ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.network
def test_sysroot(built: Built) -> None:
    sysroot = built.sysroot
    assert sysroot.parent == built.cache_dir / "sysroot"
    assert re.fullmatch(r"[0-9a-f]{64}", sysroot.name)
    assert (sysroot / "lib" / "ld-linux-aarch64.so.1").resolve().is_file()
    assert (sysroot / "etc" / "ld.so.cache").read_bytes() == b""
    manifest = (sysroot / debian.MANIFEST).read_text().splitlines()
    assert [line.split(":")[0] for line in manifest] == sorted(debian.sysroot_package_names())
    sonames = sysroot_sonames(sysroot)
    assert sonames >= EXPECTED_SONAMES
    assert "libz.so.1.2.13" not in sonames  # file names that are not sonames do not count
    assert missing_libraries(sysroot, sonames) == ()
    # Nothing half-built is left beside it.
    assert [p.name for p in sysroot.parent.iterdir()] == [sysroot.name]


@pytest.mark.slow
@pytest.mark.network
def test_sysroot_serves_every_library_the_standin_needs(built: Built, unpacked: Path) -> None:
    assert missing_libraries(unpacked, sysroot_sonames(built.sysroot)) == ()


@pytest.mark.slow
@pytest.mark.network
def test_standin_layout(built: Built) -> None:
    assert STANDIN_NAME.fullmatch(built.standin.name)
    assert built.standin.parent.parent == built.cache_dir / "standin"
    with tarfile.open(built.standin) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert all(name == "python" or name.startswith("python/") for name in members)
    assert list(members) == sorted(members, key=lambda name: name.split("/"))
    assert members["python/bin/python3.11"].isfile()
    assert members["python/bin/python3.11"].mode == 0o755
    assert members["python/lib/libpython3.11.so.1.0"].isfile()
    for link, target in [
        ("python/bin/python3", "python3.11"),
        ("python/bin/python", "python3.11"),
        ("python/lib/libpython3.11.so", "libpython3.11.so.1.0"),
    ]:
        assert members[link].issym()
        assert members[link].linkname == target
    assert members["python/lib/python3.11/site-packages"].isdir()
    assert not [n for n in members if n.startswith("python/lib/python3.11/site-packages/")]
    assert "python/lib/python3.11/lib-dynload/_ssl.cpython-311-aarch64-linux-gnu.so" in members
    assert "python/lib/python3.11/EXTERNALLY-MANAGED" not in members
    assert members["python/lib/python3.11/sitecustomize.py"].isfile()
    assert not [m.name for m in members.values() if m.issym() and m.linkname.startswith("/")]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members.values()} == {
        (debian.TAR_MTIME, 0, 0, "root", "root")
    }
    assert {m.mode for m in members.values() if not m.issym()} == {0o644, 0o755}
    with gzip.open(built.standin) as handle:
        handle.read(1)
    assert built.standin.read_bytes()[3:8] == b"\0\0\0\0\0"  # no name, mtime 0


@pytest.mark.slow
@pytest.mark.network
def test_standin_is_deterministic(built: Built, tmp_path: Path, all_debs: tuple[Deb, ...]) -> None:
    again = tmp_path / "cache"
    _copy_debs(Cache(built.cache_dir), Cache(again), all_debs)
    rebuilt = build_standin_runtime(again, QUIET)
    assert rebuilt.name == built.standin.name
    assert rebuilt.relative_to(again) == built.standin.relative_to(built.cache_dir)
    assert _sha256(rebuilt) == _sha256(built.standin)


@pytest.mark.slow
@pytest.mark.network
def test_builds_are_cached(built: Built) -> None:
    before = built.standin.stat()
    assert build_sysroot(built.cache_dir, QUIET) == built.sysroot
    assert build_standin_runtime(built.cache_dir, QUIET) == built.standin
    after = built.standin.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


@pytest.mark.slow
@pytest.mark.network
def test_cli_prints_the_path(built: Built, capsys: pytest.CaptureFixture[str]) -> None:
    assert debian.main(["sysroot", "--cache-dir", str(built.cache_dir), "-q"]) == 0
    assert debian.main(["standin", "--cache-dir", str(built.cache_dir), "-q"]) == 0
    assert capsys.readouterr().out.splitlines() == [str(built.sysroot), str(built.standin)]


@pytest.mark.slow
@pytest.mark.network
def test_interpreter_needs_glibc_2_35(unpacked: Path) -> None:
    """Debian's python3.11 (and libpython3.11) need GLIBC_2.35 (libm's hypot): more than
    Amazon Linux 2023's glibc 2.34, so the stand-in runs only on this sysroot (glibc 2.36)."""
    for relative in ("bin/python3.11", "lib/libpython3.11.so.1.0"):
        dynamic = read_dynamic(unpacked / "python" / relative)
        assert dynamic is not None
        glibc = {
            (version.version, need.library)
            for need in dynamic.version_needs
            for version in need.versions
            if version.prefix == "GLIBC" and version.version
        }
        assert max(glibc) == ((2, 35), "libm.so.6")
        assert max(version for version, library in glibc if library == "libc.so.6") == (2, 34)


@pytest.mark.slow
@pytest.mark.network
def test_standin_runs_under_qemu_with_an_empty_environment(
    built: Built, unpacked: Path, tmp_path: Path
) -> None:
    qemu = shutil.which(QEMU)
    if qemu is None:
        pytest.skip(f"{QEMU} is not installed (apt-get install qemu-user-static)")
    prefix = unpacked / "python"
    site_packages = prefix / "lib" / "python3.11" / "site-packages"
    (site_packages / "hello.py").write_text("GREETING = 'hello'\n")
    try:
        code = (
            "import hello, sys, ssl, sqlite3, ctypes, json, decimal, lzma, bz2, zlib, hashlib, "
            "uuid, readline, site, sysconfig\n"
            "print(sys.prefix)\n"
            "print(sysconfig.get_paths()['purelib'])\n"
            "print(site.getsitepackages()[0])\n"
            "print(sys.path[-1])\n"
            "print(hello.GREETING, ssl.OPENSSL_VERSION.split()[0], sqlite3.sqlite_version_info[0])"
        )
        completed = subprocess.run(
            [qemu, "-L", str(built.sysroot), str(prefix / "bin" / "python3.11"), "-c", code],
            env={},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        (site_packages / "hello.py").unlink()
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert completed.stdout.splitlines() == [
        str(prefix),
        str(site_packages),
        str(site_packages),
        str(site_packages),
        "hello OpenSSL 3",
    ]
