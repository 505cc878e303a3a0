"""Debian as a runtime provider and as the source of the qemu sysroot.

Without the network: dpkg's version order, a fake archive (signed with a throwaway key, served as
file:// mirrors) for resolution, signatures, the lock and the layout of the packages, and an
archive that dropped a pinned package. With the network: the real sysroot from deb.debian.org,
and Debian's real python3.11 run under qemu.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakedebian import FakeArchive, File, Key, make_key

from pybuild.errors import FetchError, LockError
from pybuild.model.layerfile import DebianRuntime, load_layer
from pybuild.model.target import Arch
from pybuild.model.tree import RUNTIME, Tree
from pybuild.runtimes.debian import SITE_PACKAGES, DebianProvider
from pybuild.runtimes.debian_archive import (
    DebianArchive,
    compare_versions,
    upstream_version,
)
from pybuild.smoke.sysroot import (
    MANIFEST,
    build_sysroot,
    missing_libraries,
    package_names,
    sysroot_sonames,
)
from pybuild.stages.fetch import Artifact, fetch_artifacts
from pybuild.support.cache import Cache
from pybuild.support.index import Indexes
from pybuild.ui import Ui

QUIET = Ui(quiet=True)


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("3.11.2-6+deb12u8", "3.11.2-6+deb12u9"),
        ("3.11.2-6+deb12u9", "3.11.2-6+deb12u10"),
        ("2.36-9+deb12u7", "2.36-9+deb12u14"),
        ("1.0~rc1-1", "1.0-1"),
        ("1.0-1", "1:0.9-1"),
        ("1.0", "1.0-0.1"),
        ("1.2a", "1.2b"),
        ("1.2+b", "1.2.0"),
        ("1:2.0:3-1", "1:2.0:4-1"),  # a colon in the upstream part (the epoch is before the first)
        ("1:9.9-1", "2:0.1:1-1"),
    ],
)
def test_dpkg_version_order(older: str, newer: str) -> None:
    assert compare_versions(older, newer) < 0 < compare_versions(newer, older)
    assert compare_versions(newer, newer) == 0


def test_upstream_version() -> None:
    assert upstream_version("3.11.2-6+deb12u9") == "3.11.2"
    assert upstream_version("1:2.0-3") == "2.0"
    assert upstream_version("5") == "5"


PYTHON: dict[str, dict[str, File]] = {
    "python3.11-minimal": {"usr/bin/python3.11": b"\x7fELF interpreter", "usr/share/doc/x": b"d"},
    "libpython3.11-minimal": {
        "usr/lib/python3.11/os.py": b"SEP = '/'\n",
        "usr/lib/python3.11/sitecustomize.py": ("link", "/etc/python3.11/sitecustomize.py"),
        "etc/python3.11/sitecustomize.py": b"import apport\n",
    },
    "libpython3.11-stdlib": {
        "usr/lib/python3.11/json/__init__.py": b"X = 1\n",
        "usr/lib/python3.11/_sysconfigdata__linux.py": ("link", "_sysconfigdata__x.py"),
        "usr/lib/python3.11/_sysconfigdata__x.py": b"build_time_vars = {}\n",
    },
}


@pytest.fixture(scope="session")
def key(tmp_path_factory: pytest.TempPathFactory) -> Key:
    if shutil.which("gpg") is None:
        pytest.skip("gpg is not installed (Debian: gpg)")
    return make_key(tmp_path_factory.mktemp("key"))


@pytest.fixture
def archive(tmp_path: Path, key: Key) -> FakeArchive:
    """bookworm at u8, a security update to u9 for both architectures."""
    fake = FakeArchive(tmp_path / "mirror", key)
    for arch in ("arm64", "amd64"):
        for name, files in PYTHON.items():
            fake.add("debian", "bookworm", name, "3.11.2-6+deb12u8", arch, files)
            fake.add("debian-security", "bookworm-security", name, "3.11.2-6+deb12u9", arch, files)
        fake.add("debian", "bookworm", "libc6", "2.36-9+deb12u14", arch, {"lib/x": b""})
        fake.add(
            "debian-security", "bookworm-security", "libc6", "2.36-9+deb12u7", arch, {"lib/x": b""}
        )
    fake.publish(
        [
            ("debian", "bookworm"),
            ("debian", "bookworm-updates"),
            ("debian-security", "bookworm-security"),
        ]
    )
    return fake


def _layer_toml(directory: Path, archive: FakeArchive) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "requirements.txt").write_text("six==1.17.0\n")
    mirrors = "".join(f'{name} = "{url}"\n' for name, url in archive.mirrors().items())
    path = directory / "layer.toml"
    path.write_text(
        'name = "deb"\nrequirements = "requirements.txt"\n'
        '[target]\narch = "aarch64"\nglibc = "2.36"\npython = "3.11"\n'
        f'[runtime]\nprovider = "debian"\nsuite = "bookworm"\nkeyring = "{archive.key.keyring}"\n'
        f"[runtime.mirrors]\n{mirrors}"
    )
    return path


def test_newest_version_across_the_suites(archive: FakeArchive, tmp_path: Path) -> None:
    reader = DebianArchive(
        "bookworm", Cache(tmp_path / "cache"), QUIET, archive.mirrors(), keyring=archive.key.keyring
    )
    found = {p.name: p for p in reader.newest(["libc6", "python3.11-minimal"], Arch.AARCH64)}
    assert found["python3.11-minimal"].version == "3.11.2-6+deb12u9"  # security's is newer
    assert found["python3.11-minimal"].archive == "debian-security"
    assert found["libc6"].version == "2.36-9+deb12u14"  # the point release's is newer
    assert found["libc6"].path.startswith("pool/main/l/libc6/")
    with pytest.raises(LockError, match="has no arm64 package nothere"):
        reader.newest(["nothere"], Arch.AARCH64)


def test_a_bad_signature_is_refused(archive: FakeArchive, tmp_path: Path) -> None:
    release = archive.root / "debian" / "dists" / "bookworm" / "InRelease"
    release.write_text(release.read_text().replace("Suite: bookworm", "Suite: tampered"))
    reader = DebianArchive(
        "bookworm", Cache(tmp_path / "cache"), QUIET, archive.mirrors(), keyring=archive.key.keyring
    )
    with pytest.raises(LockError, match="InRelease: bad signature"):
        reader.newest(["libc6"], Arch.AARCH64)


def test_an_index_other_than_inrelease_says_is_refused(
    archive: FakeArchive, tmp_path: Path
) -> None:
    index = archive.root / "debian" / "dists" / "bookworm" / "main" / "binary-arm64" / "Packages.xz"
    index.write_bytes(index.read_bytes() + b"\0")
    reader = DebianArchive(
        "bookworm", Cache(tmp_path / "cache"), QUIET, archive.mirrors(), keyring=archive.key.keyring
    )
    with pytest.raises(LockError, match=r"Packages\.xz"):
        reader.newest(["libc6"], Arch.AARCH64)


def test_lock_and_layout(archive: FakeArchive, tmp_path: Path) -> None:
    layer = load_layer(_layer_toml(tmp_path / "layer", archive))
    assert isinstance(layer.runtime, DebianRuntime)
    provider = DebianProvider()
    cache = Cache(tmp_path / "cache")
    runtime, compilers = provider.lock(layer, cache, QUIET)
    assert runtime.python_version == "3.11.2"
    assert runtime.description == "Debian bookworm python3.11-minimal 3.11.2-6+deb12u9 arm64"
    assert [f.debian.package for f in runtime.files if f.debian] == list(PYTHON)
    assert dict(compilers)[Arch.AARCH64] is runtime
    amd64 = dict(compilers)[Arch.X86_64]
    assert {f.debian.architecture for f in amd64.files if f.debian} == {"amd64"}
    assert {f.debian.version for f in amd64.files if f.debian} == {"3.11.2-6+deb12u9"}

    fetched = fetch_artifacts(
        [Artifact.for_file(f, "runtime", archive.mirrors()) for f in runtime.files],
        cache,
        indexes=Indexes((), "none"),
        ui=QUIET,
    )
    files = {f.artifact.want.sha256: f.path for f in fetched}
    tree = Tree(tmp_path / "opt", provider.layout(layer.target))
    removed = provider.install(runtime, files, tree)
    assert tree.layout.site_packages == SITE_PACKAGES == "python/lib/python3/dist-packages"
    assert sorted(tree.entries) == [
        "python/bin/python3.11",
        "python/lib/python3.11/_sysconfigdata__linux.py",
        "python/lib/python3.11/_sysconfigdata__x.py",
        "python/lib/python3.11/json/__init__.py",
        "python/lib/python3.11/os.py",
    ]
    assert {e.owner for e in tree.entries.values()} == {RUNTIME}
    assert [r.path for r in removed] == ["python/lib/python3.11/sitecustomize.py"]
    assert not (tmp_path / "opt" / "etc").exists()  # nothing of the packages but the layout
    tree.check_disk()
    # build --check's reversed creation order reaches the Debian runtime: other order, same tree
    backwards = Tree(tmp_path / "opt-reversed", provider.layout(layer.target))
    provider.install(runtime, files, backwards, reverse=True)
    assert list(backwards.entries) != list(tree.entries)
    assert sorted(backwards.entries) == sorted(tree.entries)
    for name in tree.entries:
        assert (tree.root / name).read_bytes() == (backwards.root / name).read_bytes()

    interpreter = provider.unpack_compiler(
        amd64, files | _amd64(archive, amd64, cache), tmp_path / "c"
    )
    assert interpreter == tmp_path / "c" / "usr" / "bin" / "python3.11"
    assert interpreter.read_bytes() == b"\x7fELF interpreter"


def _amd64(archive: FakeArchive, compiler: object, cache: Cache) -> dict[str, Path]:
    from pybuild.model.lockfile import LockedRuntime

    assert isinstance(compiler, LockedRuntime)
    fetched = fetch_artifacts(
        [Artifact.for_file(f, "compiler", archive.mirrors()) for f in compiler.files],
        cache,
        indexes=Indexes((), "none"),
        ui=QUIET,
    )
    return {f.artifact.want.sha256: f.path for f in fetched}


def test_a_package_the_archive_dropped(archive: FakeArchive, tmp_path: Path) -> None:
    """Debian keeps only the current version: a pinned .deb can disappear from the mirrors."""
    layer = load_layer(_layer_toml(tmp_path / "layer", archive))
    runtime, _ = DebianProvider().lock(layer, Cache(tmp_path / "cache"), QUIET)
    for file in runtime.files:
        assert file.debian is not None
        (archive.root / file.debian.archive / file.debian.path).unlink()
    with pytest.raises(FetchError) as raised:
        fetch_artifacts(
            [Artifact.for_file(f, "runtime", archive.mirrors()) for f in runtime.files],
            Cache(tmp_path / "empty"),
            indexes=Indexes((), "none"),
            ui=QUIET,
        )
    details = " ".join(raised.value.details)
    assert (
        "python3.11-minimal_3.11.2-6+deb12u9_arm64.deb is no longer in the Debian archive"
        in details
    )
    assert "run `pybuild lock` to pin the current one" in details


def test_the_architectures_must_agree(archive: FakeArchive, tmp_path: Path) -> None:
    archive.add(
        "debian-security",
        "bookworm-security",
        "python3.11-minimal",
        "3.11.2-6+deb12u10",
        "amd64",
        {},
    )
    for name in ("libpython3.11-minimal", "libpython3.11-stdlib"):
        archive.add("debian-security", "bookworm-security", name, "3.11.2-6+deb12u10", "amd64", {})
    archive.publish([("debian-security", "bookworm-security")])
    layer = load_layer(_layer_toml(tmp_path / "layer", archive))
    with pytest.raises(
        LockError, match=r"differs between architectures .*amd64 3\.11\.2-6\+deb12u10"
    ):
        DebianProvider().lock(layer, Cache(tmp_path / "cache"), QUIET)


def test_package_list() -> None:
    names = package_names()
    assert names[0] == "libc6" and "libssl3" in names and len(names) == len(set(names))


# --- Debian's real archive ------------------------------------------------------------------------

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
    "libtinfo.so.6",
    "libreadline.so.8",
    "libcrypt.so.1",
    "libnsl.so.2",
    "libgssapi_krb5.so.2",
}


@pytest.fixture(scope="session")
def sysroot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Built once per session from the real archive, into its own cache: the code really runs."""
    yield build_sysroot(tmp_path_factory.mktemp("sysroot") / "cache", QUIET)


@pytest.mark.slow
@pytest.mark.network
def test_sysroot(sysroot: Path) -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", sysroot.name)
    assert (sysroot / "lib" / "ld-linux-aarch64.so.1").resolve().is_file()
    assert (sysroot / "etc" / "ld.so.cache").read_bytes() == b""
    format_line, *manifest = (sysroot / MANIFEST).read_text().splitlines()
    assert format_line.startswith("# pybuild sysroot format ")
    assert sorted(line.split(":")[0] for line in manifest) == sorted(package_names())
    sonames = sysroot_sonames(sysroot)
    assert sonames >= EXPECTED_SONAMES
    assert "libz.so.1.2.13" not in sonames  # file names that are not sonames do not count
    assert missing_libraries(sysroot, sonames) == ()
    assert not (sysroot / "usr" / "share" / "doc").exists()
    # nothing half-built is left beside it, and a second call reuses it
    assert [p.name for p in sysroot.parent.iterdir()] == [sysroot.name]
    # without Debian's archive, the cached sysroot is used, with a warning
    cache_dir = sysroot.parent.parent
    unreachable = {"debian": "http://127.0.0.1:9/debian", "debian-security": "http://127.0.0.1:9/s"}
    ui = Ui()
    warnings: list[str] = []
    ui.warn = warnings.append  # type: ignore[method-assign,assignment]
    assert build_sysroot(cache_dir, ui, unreachable) == sysroot
    assert len(warnings) == 1 and "using the cached one" in warnings[0], warnings
    # ... but not one of another format or package list
    (sysroot / MANIFEST).write_text((sysroot / MANIFEST).read_text().replace("format", "f0rmat"))
    with pytest.raises(LockError, match=r"cannot read http://127\.0\.0\.1:9/"):
        build_sysroot(cache_dir, ui, unreachable)
    assert build_sysroot(sysroot.parent.parent, QUIET) == sysroot


@pytest.mark.slow
@pytest.mark.network
def test_debian_python_runs_under_qemu_with_an_empty_environment(
    sysroot: Path, tmp_path: Path
) -> None:
    """Debian's real python3.11 laid out by the provider: it finds its stdlib and
    dist-packages from its own path, and needs GLIBC_2.35 (more than Amazon Linux 2023's)."""
    qemu = shutil.which("qemu-aarch64-static")
    if qemu is None:
        pytest.skip("qemu-aarch64-static is not installed (Debian: qemu-user-static)")
    from pybuild.elf.reader import read_elf
    from pybuild.runtimes.debian_archive import DEFAULT_MIRRORS

    repo = Path(__file__).resolve().parent.parent
    layer = load_layer(repo / "examples" / "debian12-arm64" / "layer.toml")
    provider = DebianProvider()
    cache = Cache(sysroot.parent.parent)
    runtime, _ = provider.lock(layer, cache, QUIET)  # the archive's current packages
    fetched = fetch_artifacts(
        [Artifact.for_file(f, "runtime", DEFAULT_MIRRORS) for f in runtime.files],
        cache,
        indexes=Indexes((), "none"),
        ui=QUIET,
    )
    tree = Tree(tmp_path / "opt", provider.layout(layer.target))
    provider.install(runtime, {f.artifact.want.sha256: f.path for f in fetched}, tree)
    site = tmp_path / "opt" / SITE_PACKAGES
    site.mkdir(parents=True)
    (site / "hello.py").write_text("GREETING = 'hello'\n")
    interpreter = tmp_path / "opt" / "python" / "bin" / "python3.11"
    elf = read_elf(interpreter)
    glibc = max(v.version for n in elf.version_needs for v in n.versions if v.prefix == "GLIBC")
    assert glibc == (2, 35)
    code = (
        "import hello, sys, ssl, sqlite3, ctypes, json, decimal, lzma, bz2, zlib, hashlib\n"
        "print(sys.prefix)\nprint(hello.__file__)\n"
        "print(hello.GREETING, ssl.OPENSSL_VERSION.split()[0], sqlite3.sqlite_version_info[0])"
    )
    completed = subprocess.run(
        [qemu, "-L", str(sysroot), str(interpreter), "-c", code],
        env={},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == [
        str(tmp_path / "opt" / "python"),
        str(site / "hello.py"),
        "hello OpenSSL 3",
    ]
