"""Assembling: the runtime is laid out by its provider through the safe writer; wheels are
installed only into real directories of the tree and never collide."""

from __future__ import annotations

import io
import re
import tarfile
import zipfile
from pathlib import Path

import pytest

from helpers import make_fake_runtime, make_wheel, sha256_of
from pybuild.model.layerfile import Provider
from pybuild.model.lockfile import LockedFile, LockedRuntime
from pybuild.model.tree import RUNTIME, Layout, Tree, wheel_owner
from pybuild.model.versions import PythonVersion
from pybuild.runtimes.pbs import PbsProvider
from pybuild.stages.assemble import AssembleError, WheelInput, assemble
from pybuild.support.extract import UnsafeArchiveError

PROVIDER = PbsProvider()
SITE = "python/lib/python3.11/site-packages"


def _tree(tmp_path: Path) -> Tree:
    root = tmp_path / "opt"
    root.mkdir()
    return Tree(root.resolve(), Layout(PythonVersion(3, 11), SITE))


def _assemble(runtime: Path, wheels: list[WheelInput], tree: Tree, tmp_path: Path) -> list[object]:
    locked = LockedRuntime(
        provider=Provider.PBS,
        python_version="3.11.15",
        description="fixture",
        files=(
            LockedFile(
                filename=runtime.name,
                sha256=sha256_of(runtime),
                size=runtime.stat().st_size,
                url=runtime.as_uri(),
            ),
        ),
    )
    files = {sha256_of(runtime): runtime}
    return list(assemble(PROVIDER, locked, files, tree, wheels=wheels, work=tmp_path / "work"))


def _tar(path: Path, members: list[tarfile.TarInfo]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for member in members:
            data = b"x" * member.size
            archive.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


def _info(
    name: str,
    kind: bytes = tarfile.REGTYPE,
    link: str = "",
    size: int = 1,
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = size if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (_info("/etc/passwd"), "absolute name"),
        (_info("python/../../evil"), "escapes the extraction root"),
        (_info("other/file"), "is outside python/"),
        (_info("python/lib/evil", tarfile.SYMTYPE, "../../../etc"), "outside the tree"),
        (_info("python/lib/evil", tarfile.SYMTYPE, "/etc/passwd"), "absolute path"),
        (_info("python/lib/hard", tarfile.LNKTYPE, "../outside"), "is outside python/"),
        (_info("python/dev/null", tarfile.CHRTYPE), "device, FIFO or other special file"),
        (_info("python/fifo", tarfile.FIFOTYPE), "device, FIFO or other special file"),
    ],
)
def test_unsafe_runtime_archives_are_refused(
    tmp_path: Path, member: tarfile.TarInfo, message: str
) -> None:
    archive = _tar(tmp_path / "bad.tar.gz", [_info("python/bin/python3.11"), member])
    with pytest.raises(UnsafeArchiveError, match=message):
        _assemble(archive, [], _tree(tmp_path), tmp_path)


def test_corrupt_archive(tmp_path: Path) -> None:
    archive = tmp_path / "broken.tar.gz"
    archive.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(UnsafeArchiveError, match="not a readable tar archive"):
        _assemble(archive, [], _tree(tmp_path), tmp_path)


def test_site_packages_through_a_link_is_refused(tmp_path: Path) -> None:
    """A runtime that made site-packages a link (inside the tree) cannot redirect the wheels."""
    archive = _tar(
        tmp_path / "rt.tar.gz",
        [
            _info("python/bin/python3.11"),
            _info("python/lib/python3.11/elsewhere", tarfile.DIRTYPE),
            _info("python/lib/python3.11/site-packages", tarfile.SYMTYPE, "elsewhere"),
        ],
    )
    wheel = make_wheel(tmp_path / "w", "tool", "1.0")
    with pytest.raises(AssembleError, match="site-packages is a symbolic link"):
        _assemble(archive, [WheelInput("tool", wheel, wheel.name)], _tree(tmp_path), tmp_path)


def test_runtime_and_wheels(tmp_path: Path) -> None:
    runtime = make_fake_runtime(tmp_path / "rt")
    tool = make_wheel(
        tmp_path / "w",
        "tool",
        "1.0",
        files={
            "tool/__init__.py": b"def main():\n    return 0\n",
            "tool-1.0.dist-info/entry_points.txt": b"[console_scripts]\ntool = tool:main\n",
        },
    )
    tree = _tree(tmp_path)
    removed = _assemble(runtime, [WheelInput("tool", tool, tool.name)], tree, tmp_path)
    assert {r.path for r in removed} == {  # type: ignore[attr-defined]
        "python/lib/python3.11/site-packages/pip/__init__.py",
        "python/lib/python3.11/site-packages/pip-24.0.dist-info/METADATA",
        "python/bin/pip3",
    }
    assert tree.owner("python/lib/python3.11/os.py") == RUNTIME
    assert tree.owner(f"{SITE}/tool/__init__.py") == wheel_owner("tool")
    script = tree.root / "python" / "bin" / "tool"
    assert script.read_text().startswith("#!/opt/python/bin/python3.11\n")
    assert tree.owner("python/bin/tool") == wheel_owner("tool")
    assert (tree.root / "python" / "bin" / "python3").is_symlink()
    tree.check_disk()  # the inventory is exactly what is on disk


def test_two_wheels_writing_one_path(tmp_path: Path) -> None:
    runtime = make_fake_runtime(tmp_path / "rt")
    first = make_wheel(tmp_path / "a", "alpha", "1.0", files={"shared/x.py": b"A = 1\n"})
    second = make_wheel(tmp_path / "b", "beta", "1.0", files={"shared/x.py": b"B = 1\n"})
    with pytest.raises(
        AssembleError,
        match=re.escape(
            "beta and alpha both install python/lib/python3.11/site-packages/shared/x.py"
        ),
    ):
        _assemble(
            runtime,
            [WheelInput("beta", second, second.name), WheelInput("alpha", first, first.name)],
            _tree(tmp_path),
            tmp_path,
        )


def test_wheel_whose_record_does_not_match(tmp_path: Path) -> None:
    runtime = make_fake_runtime(tmp_path / "rt")
    wheel = make_wheel(tmp_path / "w", "tool", "1.0")
    with zipfile.ZipFile(wheel) as archive:
        members = {i.filename: archive.read(i) for i in archive.infolist()}
    members["tool/__init__.py"] = b"VALUE = 2\n"  # RECORD still has the old hash
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    tree = _tree(tmp_path)
    with pytest.raises(
        AssembleError,
        match=r"tool-1\.0-py3-none-any\.whl: cannot install it: .*"
        r"tool/__init__\.py",
    ):
        _assemble(runtime, [WheelInput("tool", wheel, wheel.name)], tree, tmp_path)
    assert not (tree.root / "python" / "lib" / "python3.11" / "site-packages" / "tool").exists()


def test_corrupt_wheel(tmp_path: Path) -> None:
    wheel = tmp_path / "tool-1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(AssembleError, match="cannot install it"):
        _assemble(
            make_fake_runtime(tmp_path / "rt"),
            [WheelInput("tool", wheel, wheel.name)],
            _tree(tmp_path),
            tmp_path,
        )


def test_runtime_without_interpreter(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "rt.tar.gz", [_info("python/lib/python3.11/os.py")])
    with pytest.raises(UnsafeArchiveError, match=re.escape("has no python/bin/python3.11")):
        _assemble(archive, [], _tree(tmp_path), tmp_path)
