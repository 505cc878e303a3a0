"""The one safe writer for archives from strangers: tars, Debian packages and layer zips.

Each hostile case checks the one-line error and that nothing was written outside the tree; a
property test generates random member graphs (files, directories, symlinks and hard links with
random relative and absolute targets, duplicate names) and asserts that no write ever lands
outside the extraction root and that every link left in the tree resolves inside it.
"""

from __future__ import annotations

import errno
import gzip
import io
import lzma
import os
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import ZIP_DAMAGE, damage_zip
from pybuild.support.extract import (
    TreeWriter,
    UnsafeArchiveError,
    extract_deb,
    extract_tar,
    extract_zip,
    open_zip,
)


@dataclass(frozen=True)
class Member:
    name: str
    kind: str  # file, dir, symlink, hardlink, fifo
    target: str = ""
    data: bytes = b"x"


def make_tar(path: Path, members: list[Member]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            if m.kind == "file":
                info.size = len(m.data)
                tar.addfile(info, io.BytesIO(m.data))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
                "fifo": tarfile.FIFOTYPE,
                "device": tarfile.CHRTYPE,
            }[m.kind]
            info.linkname = m.target
            tar.addfile(info)
    return path


def make_zip(path: Path, members: list[Member]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for m in members:
            info = zipfile.ZipInfo(m.name + ("/" if m.kind == "dir" else ""))
            info.create_system = 3
            mode = {"file": 0o100644, "dir": 0o40755, "symlink": 0o120777}[m.kind]
            info.external_attr = mode << 16
            archive.writestr(info, _zip_data(m))
    return path


def _zip_data(member: Member) -> bytes:
    """What a zip entry holds: a link's target, a file's data, nothing for a directory."""
    if member.kind == "symlink":
        return member.target.encode()
    return b"" if member.kind == "dir" else member.data


def snapshot(directory: Path, skip: Path) -> dict[str, bytes | str]:
    """Everything under `directory` except the tree `skip`: names -> contents or link targets."""
    found: dict[str, bytes | str] = {}
    for root, dirs, files in os.walk(directory):
        base = Path(root)
        if base == skip:
            dirs[:] = []
            continue
        dirs[:] = [d for d in dirs if base / d != skip]
        for name in files + dirs:
            path = base / name
            key = path.relative_to(directory).as_posix()
            if path.is_symlink():
                found[key] = f"-> {path.readlink()}"
            elif path.is_file():
                found[key] = path.read_bytes()
            else:
                found[key] = "dir"
    return found


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """A sandbox with a secret beside the extraction root (`sandbox/root`)."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_bytes(b"host file\n")
    return tmp_path


# A chain of relative links, each of which stays inside python/ on its own:
#   python/a/b -> ..      (python)
#   python/a/c -> b/..    (textually python/a; really python/.. = the root)
#   python/a/e -> c/..    (textually python/a; really the root's parent: outside)
CHAIN = [
    Member("python/a", "dir"),
    Member("python/a/b", "symlink", ".."),
    Member("python/a/c", "symlink", "b/.."),
    Member("python/a/e", "symlink", "c/.."),
]

HOSTILE_TARS: dict[str, tuple[list[Member], str]] = {
    "chain of links": (CHAIN, "leads outside the tree"),
    "hard link through the chain": (
        [*CHAIN, Member("python/stolen", "hardlink", "python/a/e/outside/secret")],
        "above the extraction root",
    ),
    "file written through the chain": (
        [*CHAIN, Member("python/a/e/outside/planted", "file")],
        "above the extraction root",
    ),
    "site-packages pointed out through the chain": (
        [
            *CHAIN,
            Member("python/lib/python3.11", "dir"),
            Member("python/lib/python3.11/site-packages", "symlink", "../../a/e/outside"),
        ],
        "leads outside the tree",
    ),
    "absolute link": ([Member("python/x", "symlink", "/etc/passwd")], "absolute path"),
    "link above the root": ([Member("python/x", "symlink", "../../outside")], "outside the tree"),
    "absolute name": ([Member("/python/x", "file")], "absolute name"),
    "dot-dot name": ([Member("python/../../outside/x", "file")], "escapes the extraction root"),
    "duplicate file": (
        [Member("python/x", "file"), Member("python/x", "file", data=b"other")],
        "written twice",
    ),
    "file over a link": (
        [Member("python/x", "symlink", "y"), Member("python/x", "file")],
        "written twice",
    ),
    "hard link to a missing file": (
        [Member("python/x", "hardlink", "python/nothing")],
        "not a regular file already extracted",
    ),
    "hard link to a link": (
        [Member("python/y", "symlink", "z"), Member("python/x", "hardlink", "python/y")],
        "not a regular file already extracted",
    ),
    "hard link to a directory": (
        [Member("python/d", "dir"), Member("python/x", "hardlink", "python/d")],
        "not a regular file already extracted",
    ),
    "fifo": ([Member("python/fifo", "fifo")], "device, FIFO"),
    "device": ([Member("python/dev", "device")], "device, FIFO"),
    "link loop": (
        [
            Member("python/l1", "symlink", "l2"),
            Member("python/l2", "symlink", "l1"),
            Member("python/l1/x", "file"),
        ],
        "too many levels of links",
    ),
    "file under a file": (
        [Member("python/f", "file"), Member("python/f/x", "file")],
        "is not a directory",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TARS))
def test_hostile_tar(case: str, sandbox: Path) -> None:
    members, expected = HOSTILE_TARS[case]
    archive = make_tar(sandbox / "archive.tar.gz", members)
    before = snapshot(sandbox, sandbox / "root")
    with pytest.raises(UnsafeArchiveError) as raised:
        extract_tar(archive, TreeWriter(sandbox / "root", "runtime archive"))
    message = str(raised.value)
    assert expected in message and "\n" not in message, message
    assert message.startswith("runtime archive: ")
    assert snapshot(sandbox, sandbox / "root") == before


def test_links_inside_the_tree_are_followed_inside_it(sandbox: Path) -> None:
    archive = make_tar(
        sandbox / "ok.tar.gz",
        [
            Member("python/lib", "dir"),
            Member("python/lib/real", "dir"),
            Member("python/lib/alias", "symlink", "real"),
            Member("python/lib/alias/mod.py", "file", data=b"X = 1\n"),
            Member("python/bin/python3", "symlink", "python3.11"),
            Member("python/bin/python3.11", "file", data=b"\x7fELF"),
            Member("python/copy", "hardlink", "python/lib/alias/mod.py"),
        ],
    )
    writer = TreeWriter(sandbox / "root", "runtime archive")
    written = extract_tar(archive, writer)
    root = sandbox / "root"
    assert (root / "python/lib/real/mod.py").read_bytes() == b"X = 1\n"
    assert (root / "python/copy").read_bytes() == b"X = 1\n"
    assert not (root / "python/copy").is_symlink()
    # what was written is reported where it really is
    assert {w.path for w in written if w.kind == "file"} == {
        "python/lib/real/mod.py",
        "python/bin/python3.11",
        "python/copy",
    }
    assert writer.resolve("python/lib/alias/mod.py") == "python/lib/real/mod.py"
    assert writer.resolve("python/bin/python3") == "python/bin/python3.11"


def test_reversed_order_gives_the_same_tree(sandbox: Path) -> None:
    members = [
        Member("python/a", "dir"),
        Member("python/a/one", "file", data=b"1"),
        Member("python/a/two", "file", data=b"2"),
        Member("python/link", "symlink", "a/one"),
        Member("python/hard", "hardlink", "python/a/two"),
    ]
    archive = make_tar(sandbox / "a.tar.gz", members)
    extract_tar(archive, TreeWriter(sandbox / "forward", "x"))
    extract_tar(archive, TreeWriter(sandbox / "reversed", "x"), reverse=True)
    assert snapshot(sandbox / "forward", sandbox / "none") == snapshot(
        sandbox / "reversed", sandbox / "none"
    )


def test_sysroot_absolute_links_are_taken_from_the_root(sandbox: Path) -> None:
    archive = make_tar(
        sandbox / "s.tar.gz",
        [
            Member("usr/lib/libz.so.1.2", "file", data=b"lib"),
            Member("lib", "symlink", "/usr/lib"),
            Member("usr/lib/libz.so.1", "symlink", "/lib/libz.so.1.2"),
            Member("lib/extra", "file", data=b"through an absolute link"),
        ],
    )
    writer = TreeWriter(sandbox / "root", "sysroot", absolute_links="root")
    extract_tar(archive, writer)
    root = sandbox / "root"
    assert (root / "usr/lib/extra").read_bytes() == b"through an absolute link"
    assert writer.resolve("usr/lib/libz.so.1") == "usr/lib/libz.so.1.2"
    # and a layer refuses the same archive
    with pytest.raises(UnsafeArchiveError, match="absolute path"):
        extract_tar(archive, TreeWriter(sandbox / "layer", "layer"))


def _deb(path: Path, data_tar: bytes, member: str = "data.tar.gz") -> Path:
    def ar_member(name: str, data: bytes) -> bytes:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        return header + data + (b"\n" if len(data) % 2 else b"")

    path.write_bytes(
        b"!<arch>\n"
        + ar_member("debian-binary", b"2.0\n")
        + ar_member("control.tar.gz", b"")
        + ar_member(member, data_tar)
    )
    return path


def test_debian_package(sandbox: Path) -> None:
    tar = make_tar(
        sandbox / "data.tar.gz",
        [Member("./usr/bin/python3.11", "file", data=b"\x7fELF"), Member("./usr/share", "dir")],
    )
    deb = _deb(sandbox / "p.deb", tar.read_bytes())
    extract_deb(deb, TreeWriter(sandbox / "root", "p.deb"))
    assert (sandbox / "root/usr/bin/python3.11").read_bytes() == b"\x7fELF"
    chain = make_tar(sandbox / "evil.tar.gz", [*CHAIN, Member("python/a/e/outside/x", "file")])
    evil = _deb(sandbox / "evil.deb", chain.read_bytes())
    before = snapshot(sandbox, sandbox / "root2")
    with pytest.raises(UnsafeArchiveError, match="above the extraction root"):
        extract_deb(evil, TreeWriter(sandbox / "root2", "evil.deb"))
    assert snapshot(sandbox, sandbox / "root2") == before


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"not an ar archive", "not a Debian package"),
        (b"!<arch>\n" + b"debian-binary   0   ", "truncated or corrupt"),
        (b"!<arch>\n", "no data.tar member"),
    ],
)
def test_corrupt_debian_package(sandbox: Path, data: bytes, expected: str) -> None:
    deb = sandbox / "bad.deb"
    deb.write_bytes(data)
    with pytest.raises(UnsafeArchiveError, match=expected):
        extract_deb(deb, TreeWriter(sandbox / "root", "bad.deb"))


HOSTILE_ZIPS: dict[str, tuple[list[Member], str]] = {
    "chain of links": (
        [
            Member("python", "dir"),
            Member("python/a", "dir"),
            Member("python/a/b", "symlink", ".."),
            Member("python/a/c", "symlink", "b/.."),
            Member("python/a/e", "symlink", "c/.."),
        ],
        "leads outside the tree",
    ),
    "duplicate names": (
        [Member("python/x", "file"), Member("python/x", "file", data=b"2")],
        "appears twice",
    ),
    "absolute link": ([Member("python/x", "symlink", "/etc/passwd")], "absolute path"),
    "dot-dot name": ([Member("../x", "file")], "escapes the extraction root"),
    "absolute name": ([Member("/x", "file")], "absolute name"),
    "backslash name": ([Member("a\\..\\..\\x", "file")], "backslash"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ZIPS))
def test_hostile_zip(case: str, sandbox: Path) -> None:
    members, expected = HOSTILE_ZIPS[case]
    with pytest.warns(UserWarning) if case == "duplicate names" else _nothing():
        archive = make_zip(sandbox / "layer.zip", members)
    before = snapshot(sandbox, sandbox / "root")
    with pytest.raises(UnsafeArchiveError) as raised:
        extract_zip(archive, TreeWriter(sandbox / "root", "layer.zip"))
    assert expected in str(raised.value), raised.value
    assert snapshot(sandbox, sandbox / "root") == before


def test_zip_member_failing_its_crc(sandbox: Path) -> None:
    archive = make_zip(sandbox / "layer.zip", [Member("python/x", "file", data=b"A" * 100)])
    raw = bytearray(archive.read_bytes())
    offset = raw.index(b"A" * 100)
    raw[offset] ^= 0xFF
    archive.write_bytes(bytes(raw))
    with pytest.raises(UnsafeArchiveError, match="CRC"):
        extract_zip(archive, TreeWriter(sandbox / "root", "layer.zip"))


class _nothing:  # noqa: N801 - a null context manager that reads like pytest.warns
    def __enter__(self) -> None:
        return None

    def __exit__(self, *args: object) -> None:
        return None


# --- property: random member graphs never write outside the root --------------------------------

# Few names, so that members meet: links inside links, files under links, chains of "..".
_COMPONENT = st.sampled_from(["a", "b", "c", "e", "..", "..", ".", "outside", "secret", ""])
_PATH = st.lists(_COMPONENT, min_size=1, max_size=4).map("/".join)
_NAME = st.sampled_from(["a", "b", "c", "a/b", "a/c", "a/e", "b/c", "a/e/outside/secret"])
_RELATIVE = st.lists(st.sampled_from(["..", "..", "a", "b", "c", "e", "."]), min_size=1, max_size=3)
_TARGET = st.one_of(_RELATIVE.map("/".join), _PATH, _PATH.map(lambda p: "/" + p))
_MEMBER = st.one_of(
    st.builds(Member, st.one_of(_NAME, _PATH), st.just("file")),
    st.builds(Member, _NAME, st.just("dir")),
    st.builds(Member, _NAME, st.just("symlink"), _TARGET),
    st.builds(Member, _NAME, st.just("symlink"), _TARGET),
    st.builds(Member, _NAME, st.just("symlink"), _TARGET),
    st.builds(Member, st.one_of(_NAME, _PATH), st.just("hardlink"), _TARGET),
)


@st.composite
def _chains(draw: st.DrawFn) -> list[Member]:
    """Chains of relative links in one directory, each step a small hop (``..``, another link,
    another link's parent), then writes and hard links through the last one: the shape of the
    escape that per-link checks miss."""
    count = draw(st.integers(min_value=1, max_value=5))
    members = [Member("python/a", "dir")]
    for i in range(count):
        earlier = [f"l{j}" for j in range(i)]
        steps = [
            "..",
            ".",
            *earlier,
            *(f"{e}/.." for e in earlier),
            *(f"{e}/../.." for e in earlier),
        ]
        members.append(Member(f"python/a/l{i}", "symlink", draw(st.sampled_from(steps))))
    last = f"python/a/l{count - 1}"
    members += draw(
        st.lists(
            st.sampled_from(
                [
                    Member(f"{last}/outside/planted", "file"),
                    Member(f"{last}/x", "file"),
                    Member("python/stolen", "hardlink", f"{last}/outside/secret"),
                    Member("python/site", "symlink", f"a/l{count - 1}/outside"),
                ]
            ),
            max_size=2,
            unique=True,
        )
    )
    return members


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(members=_chains())
def test_chains_of_links_never_escape(
    members: list[Member], tmp_path_factory: pytest.TempPathFactory
) -> None:
    sandbox = tmp_path_factory.mktemp("chain")
    (sandbox / "outside").mkdir()
    (sandbox / "outside" / "secret").write_bytes(b"host file\n")
    archive = make_tar(sandbox / "a.tar", members)
    before = snapshot(sandbox, sandbox / "root")
    try:
        extract_tar(archive, TreeWriter(sandbox / "root", "tar"))
    except UnsafeArchiveError as err:
        assert "\n" not in str(err)
    else:  # a tree that was accepted holds no link leading out (callers delete refused ones)
        _check_inside(sandbox / "root")
    assert snapshot(sandbox, sandbox / "root") == before


def _check_inside(root: Path) -> None:
    real_root = root.resolve()
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory) / name
            if path.is_symlink():
                try:
                    path.resolve(strict=True)
                except RuntimeError:
                    continue  # a loop of links leads nowhere: harmless
                except OSError as err:
                    if err.errno == errno.ELOOP:
                        continue
                resolved = Path(os.path.realpath(path))
                assert resolved == real_root or real_root in resolved.parents, (path, resolved)
            else:
                assert stat.S_ISREG(path.lstat().st_mode) or path.is_dir()


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(members=st.lists(_MEMBER, min_size=1, max_size=8), as_zip=st.booleans())
def test_random_member_graphs_never_escape(
    members: list[Member], as_zip: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    sandbox = tmp_path_factory.mktemp("graph")
    (sandbox / "outside").mkdir()
    (sandbox / "outside" / "secret").write_bytes(b"host file\n")
    before = snapshot(sandbox, sandbox / "root")
    root = sandbox / "root"
    try:
        if as_zip:
            usable = [m for m in members if m.kind != "hardlink"]
            if not usable:
                return
            with zipfile.ZipFile(sandbox / "a.zip", "w") as archive:
                for m in usable:
                    info = zipfile.ZipInfo(m.name)
                    info.create_system = 3
                    mode = {"file": 0o100644, "dir": 0o40755, "symlink": 0o120777}[m.kind]
                    info.external_attr = mode << 16
                    archive.writestr(info, _zip_data(m))
            extract_zip(sandbox / "a.zip", TreeWriter(root, "zip"))
        else:
            extract_tar(make_tar(sandbox / "a.tar", members), TreeWriter(root, "tar"))
    except UnsafeArchiveError as err:
        assert "\n" not in str(err)
    except UserWarning:
        pass  # zipfile's duplicate-name warning while writing the test input
    else:
        _check_inside(root)
    assert snapshot(sandbox, root) == {**before, **_inputs(sandbox)}


def _inputs(sandbox: Path) -> dict[str, bytes | str]:
    return {
        name: (sandbox / name).read_bytes()
        for name in ("a.zip", "a.tar")
        if (sandbox / name).exists()
    }


# --- members whose data cannot be read, tars that end early --------------------------------------


def _layer_zip(path: Path) -> Path:
    """A small layer zip: a directory, a deflated library and a text file."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in [
            ("python/", b""),
            ("python/lib.so", b"\x7fELF" + bytes(range(256)) * 64),
            ("python/notes.txt", b"hello\n" * 100),
        ]:
            info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = (0o40755 if name.endswith("/") else 0o100644) << 16
            info.compress_type = zipfile.ZIP_STORED if name.endswith("/") else zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return path


@pytest.mark.parametrize("how", sorted(ZIP_DAMAGE))
def test_zip_member_that_cannot_be_read(how: str, sandbox: Path) -> None:
    archive = damage_zip(_layer_zip(sandbox / "layer.zip"), "python/lib.so", how)
    before = snapshot(sandbox, sandbox / "root")
    with pytest.raises(UnsafeArchiveError) as raised:
        extract_zip(archive, TreeWriter(sandbox / "root", "layer.zip"))
    message = str(raised.value)
    assert "\n" not in message
    if how == "local header past the central directory":  # refused before reading anything
        assert message.startswith("layer.zip: python/lib.so: its local header"), message
    else:
        assert message.startswith("layer.zip: python/lib.so: "), message
    assert ZIP_DAMAGE[how] in message, message
    assert snapshot(sandbox, sandbox / "root") == before


def test_checked_zip_reads_every_way(sandbox: Path) -> None:
    """read(), open().read(n), seek: the same bytes as zipfile for a sound member; one error
    naming the member for a damaged one, whichever way it is read."""
    archive = _layer_zip(sandbox / "layer.zip")
    with zipfile.ZipFile(archive) as plain, open_zip(archive, "layer.zip") as checked:
        data = plain.read("python/lib.so")
        assert checked.read("python/lib.so") == data
        with checked.open("python/lib.so") as handle:
            assert handle.read(4) == b"\x7fELF"
            handle.seek(0)
            assert handle.read() == data
    damage_zip(archive, "python/lib.so", "corrupt compressed data")
    with open_zip(archive, "layer.zip") as checked:
        with pytest.raises(UnsafeArchiveError, match=r"^layer\.zip: python/lib\.so: "):
            checked.read("python/lib.so")
        with (
            pytest.raises(UnsafeArchiveError, match=r"^layer\.zip: python/lib\.so: "),
            checked.open("python/lib.so") as handle,
        ):
            handle.read()


def test_directory_entry_holding_data(sandbox: Path) -> None:
    path = sandbox / "layer.zip"
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo("python/somedir/")
        info.create_system = 3
        info.external_attr = 0o40755 << 16
        archive.writestr(info, b"\x7fELF hidden in a directory")
    with pytest.raises(UnsafeArchiveError, match="a directory entry holding 26 bytes of data"):
        extract_zip(path, TreeWriter(sandbox / "root", "layer.zip"))


def _tar_bytes(members: list[Member]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.size = len(m.data)
            tar.addfile(info, io.BytesIO(m.data))
    return buffer.getvalue()


_FILES = [Member(f"python/f{i}", "file", data=bytes([65 + i]) * 3000) for i in range(6)]


def _damaged_tars() -> dict[str, tuple[bytes, str]]:
    """Tars whose damage tarfile alone would not notice: name -> (bytes, expected message)."""
    raw = _tar_bytes(_FILES)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        fourth = tar.getmembers()[3].offset
    bad_header = bytearray(raw)
    bad_header[fourth + 148 : fourth + 156] = b"0000000\0"  # a wrong header checksum
    zipped = bytearray(gzip.compress(raw, mtime=0))
    middle = len(zipped) * 3 // 4  # inside the deflate stream, past what the members need
    zipped[middle : middle + 4] = bytes(b ^ 0x55 for b in zipped[middle : middle + 4])
    crc = bytearray(gzip.compress(raw, mtime=0))
    crc[-8] ^= 0xFF  # gzip's CRC-32 of the whole stream, only checked at its end
    return {
        "header checksum mid-archive (tar)": (
            bytes(bad_header),
            "after 3 readable members, are neither a member nor the end-of-archive marker",
        ),
        "header checksum mid-archive (gzip)": (
            gzip.compress(bytes(bad_header), mtime=0),
            "after 3 readable members",
        ),
        "corrupt gzip stream": (bytes(zipped), "is corrupt ("),
        "gzip CRC": (bytes(crc), "is corrupt (gzip: CRC check failed"),
        "trailing garbage": (raw + b"garbage" + bytes(505), "neither a member nor the end"),
    }


@pytest.mark.parametrize("case", sorted(_damaged_tars()))
def test_damaged_tar_is_refused(case: str, sandbox: Path) -> None:
    data, expected = _damaged_tars()[case]
    archive = sandbox / "runtime.tar"
    archive.write_bytes(data)
    with pytest.raises(UnsafeArchiveError) as raised:
        extract_tar(archive, TreeWriter(sandbox / "root", "runtime archive rt.tar.gz"))
    message = str(raised.value)
    assert message.startswith("runtime archive rt.tar.gz is corrupt ("), message
    assert expected in message and "\n" not in message, message
    # the same bytes as a Debian package's data.tar go through the same code
    deb = _deb(sandbox / "p.deb", data, "data.tar.gz" if data[:2] == b"\x1f\x8b" else "data.tar")
    with pytest.raises(UnsafeArchiveError, match=r"^p\.deb is corrupt \("):
        extract_deb(deb, TreeWriter(sandbox / "deb", "p.deb"))


def test_a_sound_tar_is_read_to_its_end(sandbox: Path) -> None:
    for name, data in [
        ("a.tar", _tar_bytes(_FILES)),
        ("a.tar.gz", gzip.compress(_tar_bytes(_FILES), mtime=0)),
        ("a.tar.xz", lzma.compress(_tar_bytes(_FILES))),
    ]:
        (sandbox / name).write_bytes(data)
        written = extract_tar(sandbox / name, TreeWriter(sandbox / name.replace(".", "-"), name))
        assert len(written) == len(_FILES)
        written = extract_tar(sandbox / name, TreeWriter(sandbox / f"r-{name}", name), reverse=True)
        assert len(written) == len(_FILES)


def test_a_name_that_is_not_utf8(sandbox: Path) -> None:
    archive = make_tar(sandbox / "a.tar.gz", [Member("python/caf\udce9.txt", "file")])
    with pytest.raises(UnsafeArchiveError) as raised:
        extract_tar(archive, TreeWriter(sandbox / "root", "runtime archive"))
    assert str(raised.value) == (
        "runtime archive: b'python/caf\\xe9.txt': the name is not UTF-8 (a zip entry's name "
        "must be)"
    )
    assert not (sandbox / "root" / "python").exists() or not any(
        (sandbox / "root" / "python").iterdir()
    )
