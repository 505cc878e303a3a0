"""`pybuild diff`, `pybuild report` and `pybuild build --check`."""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from helpers import (
    FIXTURES,
    ZIP_DAMAGE,
    IndexServer,
    damage_zip,
    make_fake_runtime,
    make_wheel,
    python_args,
    write_fixture_lock,
    write_layer,
)
from pybuild.cli import main
from pybuild.elf.reader import read_elf
from pybuild.errors import CheckError
from pybuild.tools.diff import diff_zips


def _zip(path: Path, members: dict[str, bytes], modes: dict[str, int] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = (modes or {}).get(name, 0o100644) << 16
            archive.writestr(info, data)
    return path


ELF = (FIXTURES / "good-aarch64.so").read_bytes()
PYC = b"\xa7\r\r\n" + b"\1\0\0\0" + b"h" * 8 + b"code"


def test_kinds_of_change(tmp_path: Path) -> None:
    base = {
        "same.txt": b"x\n",
        "gone.txt": b"bye\n",
        "text.py": b"a = 1\nb = 2\n",
        "mod.pyc": PYC,
        "lib.so": ELF,
        "mode.txt": b"m\n",
    }
    changed_elf = bytearray(ELF)
    text = next(s for s in read_elf(FIXTURES / "good-aarch64.so").sections if s.name == ".text")
    changed_elf[text.offset] ^= 0xFF
    other = {
        **base,
        "text.py": b"a = 1\nb = 3\n",
        "mod.pyc": PYC[:-4] + b"CODE",
        "lib.so": bytes(changed_elf),
        "new.txt": b"hi\n",
    }
    del other["gone.txt"]
    a = _zip(tmp_path / "a.zip", base)
    b = _zip(tmp_path / "b.zip", other, modes={"mode.txt": 0o100755})
    difference = diff_zips(a, b)
    assert not difference.identical
    assert difference.lines() == [
        "+ new.txt",
        "- gone.txt",
        "~ lib.so: ELF: sections .text",
        "~ mod.pyc: pyc: code object differs",
        "~ mode.txt: mode file 644 -> file 755",
        "~ text.py: text: 2 lines differ (12 -> 12 bytes)",
    ]
    assert diff_zips(a, _zip(tmp_path / "c.zip", base)).identical


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _zip(tmp_path / "a.zip", {"x": b"1"})
    b = _zip(tmp_path / "b.zip", {"x": b"2"})
    assert main(["diff", str(a), str(a)]) == 0
    assert main(["diff", str(a), str(b)]) == 1
    assert "~ x: text: 2 lines differ" in capsys.readouterr().out
    assert main(["diff", str(a), str(tmp_path / "nope.zip")]) == 2
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    assert main(["diff", str(a), str(tmp_path / "bad.zip")]) == 2
    assert "cannot read the zip" in capsys.readouterr().err


def test_report_of_any_zip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = "python/lib/python3.11/site-packages"
    layer = _zip(
        tmp_path / "layer.zip",
        {
            f"{site}/aiohttp/__init__.py": b"x" * 5000,
            f"{site}/aiohttp-3.0.dist-info/METADATA": b"m",
            f"{site}/six.py": b"s" * 100,
            "python/lib/python3.11/os.py": b"o" * 300,
            "python/bin/python3.11": ELF,
        },
    )
    assert main(["report", str(layer)]) == 0
    out = capsys.readouterr().out
    assert "layer.zip:" in out
    for group in ("aiohttp", "six", "python (stdlib)", "python (bin)"):
        assert group in out
    assert out.index("python (bin)") < out.index("six")  # largest (zipped) first


def test_build_check(
    index: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wheels = [
        make_wheel(
            tmp_path / "d",
            "native",
            "2.0",
            "cp311-cp311-manylinux_2_17_aarch64",
            files={
                "native/__init__.py": b"X = {1, 2}\n",
                "native/_n.cpython-311-aarch64-linux-gnu.so": ELF,
            },
        ),
        make_wheel(tmp_path / "d", "pure", "1.0"),
    ]
    index.add(*wheels)
    runtime = make_fake_runtime(tmp_path / "rt")
    layer = write_layer(tmp_path / "layer", "native==2.0\npure==1.0\n", runtime=runtime)
    write_fixture_lock(layer, runtime, wheels)
    out = tmp_path / "out"
    command = ["build", "--check", "--layer", str(layer), "--out", str(out), *python_args()]
    assert main(command) == 0
    err = capsys.readouterr().err
    assert "--check: building again: a separate process with a fresh cache" in err
    for variation in ("umask 027", "TZ=Pacific/Chatham", "locale tr_TR.UTF-8", "reverse order"):
        assert variation in err
    assert "--check: both builds are " in err

    # A first build that differs from what the inputs give is caught, naming the entry.
    from pybuild.model.layerfile import load_layer
    from pybuild.pipeline import BuildRequest, Sources, build, prepare
    from pybuild.stages.archive import DEFAULT_EPOCH
    from pybuild.support.cache import Cache, default_cache_dir
    from pybuild.support.index import configured_indexes
    from pybuild.tools.repro import check_reproducible
    from pybuild.ui import Ui

    quiet = Ui(quiet=True)
    sources = Sources(indexes=configured_indexes(), python=sys.executable)
    cache = Cache(default_cache_dir())
    layer_def = load_layer(layer)
    lock, files, compiler, tools = prepare(layer_def, sources, cache, quiet)
    request = BuildRequest(
        layer=layer_def,
        lock=lock,
        files=files,
        out_dir=tmp_path / "out2",
        cache=cache,
        compiler=compiler,
        tools=tools,
        epoch=DEFAULT_EPOCH,
    )
    first = build(request, quiet)
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(first.archive.path) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data + b"# edited\n" if info.filename.endswith(".py") else data)
    shutil.copy(tampered, first.archive.path)
    with pytest.raises(CheckError, match=r"--check: the two builds differ") as raised:
        check_reproducible(layer_def, request, first, sources, quiet)
    assert any(line.startswith("~ python/") for line in raised.value.details)


def _layer_zip(path: Path) -> Path:
    """A deflated library and text file."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in [("python/lib.so", ELF), ("python/notes.txt", b"hello\n" * 100)]:
            info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return path


@pytest.mark.parametrize("how", sorted(ZIP_DAMAGE))
def test_a_member_that_cannot_be_read(
    how: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """verify and diff: one line naming the zip and the member, exit 2 (no traceback)."""
    good = _layer_zip(tmp_path / "good.zip")
    bad = damage_zip(_layer_zip(tmp_path / "bad.zip"), "python/lib.so", how)
    for command in (
        ["verify", str(bad), "--arch", "aarch64", "--glibc", "2.34"],
        ["diff", str(good), str(bad)],
    ):
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert err.startswith(f"error: {bad}: python/lib.so: "), err
        assert ZIP_DAMAGE[how] in err and err.count("\n") == 1, err


def test_diff_reads_entries_when_only_their_bytes_differ(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The central directory says nothing changed (same CRC, sizes), the bytes differ: the entries
    are read, so a damaged one is an error naming it, not "outside the entries"."""
    good = _layer_zip(tmp_path / "good.zip")
    bad = damage_zip(_layer_zip(tmp_path / "bad.zip"), "python/lib.so", "corrupt compressed data")
    assert main(["diff", str(good), str(bad)]) == 2
    assert "python/lib.so: its compressed data is corrupt" in capsys.readouterr().err
    # the same content, another local header: said of that entry
    other = tmp_path / "other.zip"
    raw = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as archive:
        offset = archive.getinfo("python/notes.txt").header_offset
    raw[offset + 10] ^= 0x01  # the local header's time; the central record's is unchanged
    other.write_bytes(bytes(raw))
    diff = diff_zips(good, other)
    assert diff.lines() == [
        "~ python/notes.txt: local header or compressed bytes differ (the same content)"
    ]
