"""Assembling: the runtime is laid out by its provider through the safe writer; wheels are
installed only into real directories of the tree and never collide."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile
from pathlib import Path

import pytest

from helpers import ZIP_DAMAGE, damage_zip, make_fake_runtime, make_wheel, sha256_of
from pybuild.model.layerfile import Provider
from pybuild.model.lockfile import LockedFile, LockedRuntime
from pybuild.model.tree import RUNTIME, Layout, Removal, Tree, wheel_owner
from pybuild.model.versions import PythonVersion
from pybuild.runtimes.pbs import PbsProvider
from pybuild.stages.assemble import PYCACHE_IN_WHEEL, AssembleError, WheelInput, assemble
from pybuild.support.extract import UnsafeArchiveError

PROVIDER = PbsProvider()
SITE = "python/lib/python3.11/site-packages"


def _tree(tmp_path: Path) -> Tree:
    root = tmp_path / "opt"
    root.mkdir()
    return Tree(root.resolve(), Layout(PythonVersion(3, 11), SITE))


def _assemble(
    runtime: Path,
    wheels: list[WheelInput],
    tree: Tree,
    tmp_path: Path,
    *,
    include: tuple[Path, ...] = (),
    project: Path | None = None,
) -> list[object]:
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
    return list(
        assemble(
            PROVIDER,
            locked,
            files,
            tree,
            wheels=wheels,
            work=tmp_path / "work",
            include=include,
            project=project,
        )
    )


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


# --- hostile wheels and [include] paths ----------------------------------------------------------


def _install(tmp_path: Path, wheel: Path, name: str = "tool") -> list[object]:
    runtime = make_fake_runtime(tmp_path / "rt")
    return _assemble(runtime, [WheelInput(name, wheel, wheel.name)], _tree(tmp_path), tmp_path)


def _deflated(wheel: Path) -> Path:
    """The wheel with every member deflated (as real wheels are)."""
    with zipfile.ZipFile(wheel) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(wheel, "w") as archive:
        for info, data in members:
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return wheel


@pytest.mark.parametrize(
    "how",
    ["corrupt compressed data", "encryption flag", "unsupported compression method"],
)
def test_wheel_member_that_cannot_be_read(how: str, tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path / "w", "tool", "1.0", files={"tool/__init__.py": b"VALUE = 1\n" * 200}
    )
    damage_zip(_deflated(wheel), "tool/__init__.py", how)
    with pytest.raises(UnsafeArchiveError) as raised:
        _install(tmp_path, wheel)
    message = str(raised.value)
    assert message.startswith("tool-1.0-py3-none-any.whl: tool/__init__.py: "), message
    assert ZIP_DAMAGE[how] in message and "\n" not in message


@pytest.mark.parametrize(
    ("entry_points", "expected"),
    [
        (b"console_scripts = foo\n", "line 1: an entry before any [section]"),
        (
            b"[console_scripts]\na = tool:main\n[console_scripts]\nb = tool:main\n",
            "[console_scripts] appears twice",
        ),
        (
            b"[console_scripts]\nfoo = not a valid ref!!\n",
            "[console_scripts] foo = 'not a valid ref!!': not a module:function reference",
        ),
        (b"[console_scripts]\n\xff = tool:main\n", "not UTF-8"),
    ],
)
def test_bad_entry_points(entry_points: bytes, expected: str, tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path / "w",
        "tool",
        "1.0",
        files={"tool/__init__.py": b"", "tool-1.0.dist-info/entry_points.txt": entry_points},
    )
    with pytest.raises(AssembleError) as raised:
        _install(tmp_path, wheel)
    assert str(raised.value) == (
        f"tool-1.0-py3-none-any.whl: tool-1.0.dist-info/entry_points.txt: {expected}"
    )


def test_installer_errors_name_the_wheel_file(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path / "w", "tool", "1.0", files={"tool/__init__.py": b"", "tool-1.0.data/odd/x": b"x"}
    )
    with pytest.raises(AssembleError) as raised:
        _install(tmp_path, wheel)
    assert str(raised.value) == (
        "tool-1.0-py3-none-any.whl: cannot install it: tool-1.0.data/odd/x is not contained in a "
        "valid .data subdirectory."
    )


def _record_hash(data: bytes) -> bytes:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return b"sha256=" + digest


def test_metadata_naming_another_distribution(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "w", "tool", "1.0")
    metadata = b"Metadata-Version: 2.1\nName: other\nVersion: 9.9\n"
    with zipfile.ZipFile(wheel) as archive:
        members = {i.filename: archive.read(i) for i in archive.infolist()}
    old = members["tool-1.0.dist-info/METADATA"]
    members["tool-1.0.dist-info/METADATA"] = metadata
    members["tool-1.0.dist-info/RECORD"] = (
        members["tool-1.0.dist-info/RECORD"]
        .replace(_record_hash(old), _record_hash(metadata))
        .replace(b",%d\n" % len(old), b",%d\n" % len(metadata))
    )
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(AssembleError) as raised:
        _install(tmp_path, wheel)
    assert str(raised.value) == (
        "tool-1.0-py3-none-any.whl: METADATA says 'other' '9.9', but the file name (and the lock) "
        "says tool 1.0"
    )


def test_pycache_in_a_wheel_is_a_removal_not_a_warning(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path / "w",
        "tool",
        "1.0",
        files={"tool/__init__.py": b"", "tool/__pycache__/__init__.cpython-311.pyc": b"junk"},
    )
    removed = _install(tmp_path, wheel)  # pytest turns any warning into an error
    assert (
        Removal(f"{SITE}/tool/__pycache__/__init__.cpython-311.pyc", 4, PYCACHE_IN_WHEEL) in removed
    )


def _include(tmp_path: Path, source: Path, project: Path) -> None:
    runtime = make_fake_runtime(tmp_path / "rt")
    _assemble(runtime, [], _tree(tmp_path), tmp_path, include=(source,), project=project)


def test_include_name_that_is_not_utf8(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "mypkg").mkdir(parents=True)
    (project / "mypkg" / "__init__.py").write_text("")
    (Path(os.fsdecode(bytes(project / "mypkg") + b"/\xff\xfe.py"))).write_text("X = 1\n")
    with pytest.raises(AssembleError) as raised:
        _include(tmp_path, project / "mypkg", project)
    name = bytes(project) + b"/mypkg/\xff\xfe.py"
    assert str(raised.value) == (
        f"[include] {name!r}: the name is not UTF-8 (a zip entry's name must be)"
    )


def test_include_through_a_link_out_of_the_project(tmp_path: Path) -> None:
    outside = tmp_path / "outside" / "pkg"
    outside.mkdir(parents=True)
    (outside / "__init__.py").write_text("SECRET = 1\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "lnk").symlink_to(tmp_path / "outside")
    with pytest.raises(AssembleError, match="a symbolic link on its path leads to"):
        _include(tmp_path, project / "lnk" / "pkg", project)
    # a real directory beside the project is fine
    (tmp_path / "shared" / "pkg").mkdir(parents=True)
    (tmp_path / "shared" / "pkg" / "__init__.py").write_text("")
    _include(tmp_path / "second", project / ".." / "shared" / "pkg", project)
