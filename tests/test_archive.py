"""The zip writer: same tree, same bytes, whatever the machine did to the files; a compression
cache that is verified on every read; a fixed point of Debian's strip-nondeterminism."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import deflate
import pytest

from pybuild.model.layerfile import SymlinkPolicy
from pybuild.stages.archive import (
    DEFAULT_EPOCH,
    EPOCH_1980,
    ArchiveError,
    ArchiveResult,
    Compressor,
    sources_from_directory,
    write_zip,
    zip_epoch,
)


def _zip(
    root: Path,
    out: Path,
    *,
    epoch: int = DEFAULT_EPOCH,
    level: int = 6,
    symlinks: SymlinkPolicy = SymlinkPolicy.COPY_SMALL,
    cache: Path | None = None,
) -> ArchiveResult:
    compressor = Compressor(level, "test-compressor", cache)
    return write_zip(
        sources_from_directory(root),
        root,
        out,
        epoch=epoch,
        compressor=compressor,
        symlinks=symlinks,
    )


def _tree(root: Path, order: list[str], mode: int = 0o644) -> None:
    files = {
        "b/z.txt": b"zzz\n" * 100,
        "a.txt": b"a\n",
        "b/c/d.py": b"print(1)\n" * 50,
        "bin/tool": b"#!/bin/sh\necho hi\n",
        "lib/x.so": b"\x7fELF" + b"\0" * 200,
    }
    for name in order:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[name])
        path.chmod(mode)
    (root / "bin" / "tool").chmod(0o700)
    (root / "b" / "link").symlink_to("z.txt")


ORDER = ["b/z.txt", "a.txt", "b/c/d.py", "bin/tool", "lib/x.so"]


def test_epoch() -> None:
    assert zip_epoch(None) == DEFAULT_EPOCH == zip_epoch("") == EPOCH_1980 + 43260
    assert zip_epoch("5") == EPOCH_1980
    assert zip_epoch("1700000001") == 1700000000  # even seconds
    assert zip_epoch("99999999999") == 4354819198
    with pytest.raises(ArchiveError, match="not an integer"):
        zip_epoch("yesterday")


def test_same_bytes_whatever_the_file_system_did(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    _tree(first, ORDER)
    old_umask = os.umask(0o077)
    try:
        _tree(second, list(reversed(ORDER)), mode=0o600)
    finally:
        os.umask(old_umask)
    for path in second.rglob("*"):
        if not path.is_symlink():
            os.utime(path, (1_000_000_000, 1_000_000_000))
    a = _zip(first, tmp_path / "a.zip", level=12)
    b = _zip(second, tmp_path / "b.zip", level=12)
    assert a.sha256 == b.sha256
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    assert a.copied_links == (("b/link", "z.txt"),)

    # Control: the same trees through a plain zipfile walk differ (mtimes, modes, order), so the
    # equality above is not vacuous.
    def plain(root: Path, out: Path) -> bytes:
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in root.rglob("*"):
                archive.write(path, path.relative_to(root).as_posix())
        return out.read_bytes()

    assert plain(first, tmp_path / "p1.zip") != plain(second, tmp_path / "p2.zip")


def test_entries_are_explicit(tmp_path: Path) -> None:
    _tree(tmp_path / "t", ORDER)
    result = _zip(tmp_path / "t", tmp_path / "out.zip", epoch=zip_epoch("1700000001"))
    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        assert archive.testzip() is None
        infos = archive.infolist()
        names = [i.filename for i in infos]
        assert names == sorted(names, key=lambda n: n.encode())
        assert names == [
            "a.txt",
            "b/",
            "b/c/",
            "b/c/d.py",
            "b/link",
            "b/z.txt",
            "bin/",
            "bin/tool",
            "lib/",
            "lib/x.so",
        ]
        for info in infos:
            assert info.create_system == 3
            assert info.extra == b""
            assert info.flag_bits & 0x08 == 0  # no data descriptor
            assert info.date_time == (2023, 11, 14, 22, 13, 20)
        modes = {i.filename: i.external_attr >> 16 for i in infos}
        assert modes["b/"] == 0o40755
        assert modes["a.txt"] == 0o100644
        assert modes["bin/tool"] == 0o100755  # executable on disk
        assert modes["lib/x.so"] == 0o100755  # ELF
        deflated = archive.getinfo("b/z.txt")
        assert deflated.compress_type == zipfile.ZIP_DEFLATED
        raw = (tmp_path / "t" / "b" / "z.txt").read_bytes()
        assert deflated.compress_size == len(deflate.deflate_compress(raw, 6))
        assert archive.getinfo("a.txt").compress_type == zipfile.ZIP_STORED  # too small to gain
    assert result.unpacked == sum(e.size for e in result.entries)


def test_store_symlinks(tmp_path: Path) -> None:
    _tree(tmp_path / "t", ORDER)
    _zip(tmp_path / "t", tmp_path / "out.zip", symlinks=SymlinkPolicy.STORE)
    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        info = archive.getinfo("b/link")
        assert info.external_attr >> 16 == 0o120777
        assert archive.read(info) == b"z.txt"


def test_a_failure_while_writing_leaves_the_previous_zip(tmp_path: Path) -> None:
    _tree(tmp_path / "t", ORDER)
    out = tmp_path / "out" / "layer.zip"
    out.parent.mkdir()
    out.write_bytes(b"previous")

    def refuse(_result: ArchiveResult) -> Path:
        raise ArchiveError("too big")

    with pytest.raises(ArchiveError, match="too big"):
        write_zip(
            sources_from_directory(tmp_path / "t"),
            tmp_path / "t",
            out,
            epoch=DEFAULT_EPOCH,
            compressor=Compressor(6, "test"),
            rename=refuse,
        )
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in out.parent.iterdir()) == ["layer.zip"]


def test_a_corrupt_compression_cache_entry_is_replaced(tmp_path: Path) -> None:
    _tree(tmp_path / "t", ORDER)
    cache = tmp_path / "cache"
    clean = _zip(tmp_path / "t", tmp_path / "clean.zip", cache=cache)
    entries = sorted(p for p in cache.rglob("*") if p.is_file())
    assert entries, "the first build fills the cache"
    for entry in entries:  # one byte flipped in every cached member
        data = bytearray(entry.read_bytes())
        data[len(data) // 2] ^= 0xFF
        entry.write_bytes(bytes(data))
    compressor = Compressor(6, "test-compressor", cache)
    again = write_zip(
        sources_from_directory(tmp_path / "t"),
        tmp_path / "t",
        tmp_path / "again.zip",
        epoch=DEFAULT_EPOCH,
        compressor=compressor,
    )
    assert compressor.replaced == len(entries)
    assert again.sha256 == clean.sha256
    with zipfile.ZipFile(tmp_path / "again.zip") as archive:
        assert archive.testzip() is None


def test_the_cache_key_names_the_compressor(tmp_path: Path) -> None:
    _tree(tmp_path / "t", ORDER)
    _zip(tmp_path / "t", tmp_path / "a.zip", cache=tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["test-compressor"]
    assert [p.name for p in (tmp_path / "cache" / "test-compressor").iterdir()] == ["6"]


def test_a_read_only_compression_cache_is_skipped(tmp_path: Path) -> None:
    _tree(tmp_path / "t", ORDER)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "test-compressor").write_text("not a directory")
    clean = _zip(tmp_path / "t", tmp_path / "a.zip")
    assert _zip(tmp_path / "t", tmp_path / "b.zip", cache=cache).sha256 == clean.sha256


@pytest.mark.skipif(
    shutil.which("strip-nondeterminism") is None, reason="needs strip-nondeterminism"
)
def test_the_zip_is_a_fixed_point_of_strip_nondeterminism(tmp_path: Path) -> None:
    """Debian's normaliser (run by distributions on everything) leaves the zip as it is."""
    _tree(tmp_path / "t", ORDER)
    _zip(tmp_path / "t", tmp_path / "a.zip")
    before = (tmp_path / "a.zip").read_bytes()
    subprocess.run(["strip-nondeterminism", str(tmp_path / "a.zip")], check=True)
    assert (tmp_path / "a.zip").read_bytes() == before
    # control: the old default, 1980-01-01 00:00:00, is rewritten
    _zip(tmp_path / "t", tmp_path / "b.zip", epoch=EPOCH_1980)
    old = (tmp_path / "b.zip").read_bytes()
    subprocess.run(["strip-nondeterminism", str(tmp_path / "b.zip")], check=True)
    assert (tmp_path / "b.zip").read_bytes() != old


def test_small_link_targets_are_copied_large_ones_dropped(tmp_path: Path) -> None:
    root = tmp_path / "t"
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "small.py").write_text("X = 1\n")
    (root / "lib" / "big.so").write_bytes(b"\x7fELF" + bytes(70_000))
    (root / "lib" / "alias.py").symlink_to("small.py")
    (root / "lib" / "big-alias.so").symlink_to("big.so")
    (root / "lib" / "outside").symlink_to("/etc/hostname")
    result = _zip(root, tmp_path / "out.zip")
    assert result.copied_links == (("lib/alias.py", "small.py"),)
    assert result.dropped_links == (
        ("lib/big-alias.so", "big.so"),
        ("lib/outside", "/etc/hostname"),
    )
    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        assert archive.read("lib/alias.py") == b"X = 1\n"
        assert "lib/big-alias.so" not in archive.namelist()
    dropped = _zip(root, tmp_path / "d.zip", symlinks=SymlinkPolicy.DROP)
    assert len(dropped.dropped_links) == 3 and dropped.copied_links == ()
