"""`pybuild verify`: every problem of every ELF file, each with what was expected and found;
libraries found exactly where the target's dynamic loader looks, nowhere else."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pybuild.cli import main
from pybuild.elf.policy import profile_for
from pybuild.elf.reader import read_elf
from pybuild.errors import PybuildError
from pybuild.model.target import Arch
from pybuild.model.versions import GlibcVersion
from pybuild.stages.verify import VerifyTarget, search_dirs, verify_path, verify_target
from pybuild.support.extract import UnsafeArchiveError

FIXTURES = Path(__file__).parent / "fixtures" / "elf"
SITE = "python/lib/python3.11/site-packages"
INTERPRETER = "python/bin/python3.11"


def _target(arch: Arch, glibc: str) -> VerifyTarget:
    version = GlibcVersion.parse(glibc)
    return verify_target(arch, version, profile_for(version))


AL2023 = _target(Arch.AARCH64, "2.34")


def _tree(tmp_path: Path, files: dict[str, str], *, interpreter: bool = True) -> Path:
    """A layer root holding fixtures at the given layer paths (and an interpreter)."""
    root = tmp_path / "layer"
    root.mkdir(parents=True, exist_ok=True)
    if interpreter:
        files = {INTERPRETER: "hello-aarch64", **files}
    for rel, fixture in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / fixture, root / rel)
    return root


def _problems(root: Path, target: object = AL2023) -> list[str]:
    return [str(p) for p in verify_path(root, target).problems]  # type: ignore[arg-type]


def test_clean_layer(tmp_path: Path) -> None:
    root = _tree(tmp_path, {f"{SITE}/pkg/_mod.so": "good-aarch64.so"})
    (root / SITE / "pkg" / "__init__.py").write_text("")
    report = verify_path(root, AL2023)
    assert report.ok
    assert report.elf_files == ("python/bin/python3.11", f"{SITE}/pkg/_mod.so")


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("good-x86_64.so", "architecture: expected aarch64 (ELF64 LSB), found x86_64 (ELF64 LSB)"),
        ("good-i686.so", "architecture: expected aarch64 (ELF64 LSB), found i386 (ELF32 LSB)"),
        (
            "needs-glibc-2.38.so",
            "symbol version from libc.so.6: expected at most GLIBC_2.34 "
            "(manylinux_2_34), found GLIBC_2.38",
        ),
        (
            "needs-glibcxx-3.4.30.so",
            "symbol version from libstdc++.so.6: expected at most "
            "GLIBCXX_3.4.29 (manylinux_2_34), found GLIBCXX_3.4.30",
        ),
        ("needs-glibc-private.so", "symbol version from libc.so.6: expected no GLIBC_PRIVATE"),
        (
            "needs-libmissing.so",
            "DT_NEEDED libmissing.so.1: expected where the loader looks in the layer (searched "
            "/opt/lib, /opt/python/lib/python3.11/site-packages/pkg/vendor) ",
        ),
        (
            "abs-runpath.so",
            "RUNPATH /home/build/lib: expected a directory inside the layer "
            "(/opt/... or $ORIGIN/...), found /home/build/lib, outside the layer",
        ),
        (
            "relative-runpath.so",
            "RUNPATH build/lib: expected an absolute or $ORIGIN path, found a relative path",
        ),
        (
            "origin-escape-rpath.so",
            "RPATH $ORIGIN/../../../../../../usr/lib: expected a directory inside the layer",
        ),
    ],
)
def test_each_bad_file(tmp_path: Path, fixture: str, expected: str) -> None:
    name = "needs-libmissing-origin.so" if fixture == "needs-libmissing.so" else fixture
    root = _tree(tmp_path, {f"{SITE}/pkg/_mod.so": name})
    problems = _problems(root)
    assert len(problems) == 1
    assert problems[0].startswith(f"{SITE}/pkg/_mod.so: {expected}")


def test_needed_library_found_where_the_loader_looks(tmp_path: Path) -> None:
    for where in (
        f"{SITE}/pkg/vendor/libmissing.so.1",  # RUNPATH $ORIGIN/vendor
        "lib/libmissing.so.1",  # /opt/lib, on Lambda's LD_LIBRARY_PATH
    ):
        root = _tree(
            tmp_path / where.replace("/", "_"),
            {f"{SITE}/pkg/_mod.so": "needs-libmissing-origin.so", where: "libmissing.so.1"},
        )
        assert _problems(root) == []


def test_a_library_in_an_unrelated_libs_directory_is_not_found(tmp_path: Path) -> None:
    """The loader searches no `*.libs` directory the file's RPATH/RUNPATH does not name: an
    extension whose library sits in some other wheel's `fake.libs/` fails to import on Lambda
    ("cannot open shared object file"), so verify fails it too."""
    root = _tree(
        tmp_path,
        {
            f"{SITE}/pkg/_mod.so": "needs-libmissing-origin.so",
            f"{SITE}/fake.libs/libmissing.so.1": "libmissing.so.1",
        },
    )
    (problem,) = _problems(root)
    assert problem.startswith(f"{SITE}/pkg/_mod.so: DT_NEEDED libmissing.so.1: expected where")


def test_the_loaders_search_order() -> None:
    """DT_RPATH (without DT_RUNPATH), then the interpreter's DT_RPATH, then LD_LIBRARY_PATH's
    /opt/lib, then DT_RUNPATH; a DT_RUNPATH turns off both RPATHs."""
    base = read_elf(FIXTURES / "good-aarch64.so")
    module = dataclasses.replace(base, rpath=("$ORIGIN/rpath",), runpath=())
    loader = dataclasses.replace(base, rpath=("$ORIGIN/../lib/inherited",), runpath=())
    dirs, problems = search_dirs("python/lib/m/x.so", module, ("python/bin/python3.11", loader))
    assert problems == []
    assert dirs == ["python/lib/m/rpath", "python/lib/inherited", "lib"]
    with_runpath = dataclasses.replace(module, runpath=("$ORIGIN/runpath",))
    dirs, _ = search_dirs("python/lib/m/x.so", with_runpath, ("python/bin/python3.11", loader))
    assert dirs == ["lib", "python/lib/m/runpath"]


def test_an_empty_layer_or_one_without_an_interpreter_fails(tmp_path: Path) -> None:
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w"):
        pass
    assert _problems(empty) == ["(layer): contents: expected a runtime and packages, found nothing"]
    root = _tree(tmp_path, {f"{SITE}/pkg/_mod.so": "good-aarch64.so"}, interpreter=False)
    assert _problems(root) == [
        "python/bin/python3.N: interpreter: expected the layer's Python interpreter, found no "
        "such file"
    ]


def test_library_shipped_in_the_layer_is_not_held_to_the_policy(tmp_path: Path) -> None:
    # A layer may bring its own libstdc++ (as lib/libstdc++.so.6): its versions are its own.
    root = _tree(
        tmp_path,
        {f"{SITE}/pkg/_mod.so": "needs-glibcxx-3.4.30.so", "lib/libstdc++.so.6": "libmissing.so.1"},
    )
    assert _problems(root) == []


def test_unreadable_files(tmp_path: Path) -> None:
    root = _tree(tmp_path, {})
    data = (FIXTURES / "good-aarch64.so").read_bytes()
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "cut.so").write_bytes(data[: len(data) // 2])
    (root / "lib" / "x.so").write_text("hello world\n")
    (root / "lib" / "README.txt").write_text("not checked\n")
    problems = _problems(root)
    assert problems == [
        "lib/cut.so: ELF: expected a readable ELF file, found truncated: section headers end "
        f"past the file's {len(data) // 2} bytes",
        "lib/x.so: file type: expected an ELF shared object (named *.so), found not ELF (starts "
        "with b'hello world\\n')",
    ]


@pytest.mark.timeout(20, method="signal")  # opening a FIFO to read it used to wait forever
@pytest.mark.parametrize("name", ["python/lib/f.so", "python/lib/fifo"])
def test_a_special_file_is_never_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    root = _tree(tmp_path, {})
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(root / name)
    assert main(["verify", str(root), "--arch", "aarch64", "--glibc", "2.34"]) == 2
    assert capsys.readouterr().err == f"error: {root / name}: not a regular file (a FIFO)\n"


@pytest.mark.timeout(20, method="signal")  # is_zipfile on a FIFO waited for a writer forever
def test_a_special_file_given_as_the_layer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "layer.zip"
    os.mkfifo(fifo)
    assert main(["verify", str(fifo), "--arch", "aarch64", "--glibc", "2.34"]) == 2
    assert (
        capsys.readouterr().err == f"error: {fifo}: neither a directory nor a zip file (a FIFO)\n"
    )
    assert main(["report", str(fifo)]) == 2
    assert capsys.readouterr().err == f"error: {fifo}: not a regular file (a FIFO)\n"
    assert main(["diff", "/dev/null", str(fifo)]) == 2
    assert capsys.readouterr().err == (
        "error: /dev/null: not a regular file (a character device)\n"
    )


def test_all_problems_at_once_zip_and_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _tree(
        tmp_path,
        {
            "a/x86.so": "good-x86_64.so",
            "b/new.so": "needs-glibc-2.38.so",
            "c/cxx.so": "needs-glibcxx-3.4.30.so",
            "d/ok.so": "good-aarch64.so",
            "e/miss.so": "needs-libmissing.so",
            "f/abs.so": "abs-runpath.so",
        },
    )
    layer_zip = tmp_path / "layer.zip"
    with zipfile.ZipFile(layer_zip, "w") as archive:
        for path in sorted(root.rglob("*")):
            archive.write(path, path.relative_to(root).as_posix())
    assert _problems(layer_zip) == _problems(root)
    assert len(_problems(root)) == 5

    assert main(["verify", str(layer_zip), "--arch", "aarch64", "--glibc", "2.34"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{layer_zip}: 5 problems in 5 of 7 ELF files for aarch64, glibc 2.34")
    for name in ("a/x86.so", "b/new.so", "c/cxx.so", "e/miss.so", "f/abs.so"):
        assert f"\n  {name}: " in out


def test_amazon_linux_2_policy(tmp_path: Path) -> None:
    root = _tree(tmp_path, {})
    al2 = _target(Arch.AARCH64, "2.26")
    assert al2.policy.name == "manylinux_2_26" and al2.profile.name == "al2"
    assert _problems(root, al2) == [
        "python/bin/python3.11: symbol version from libc.so.6: expected at most GLIBC_2.26 "
        "(manylinux_2_26), found GLIBC_2.34"
    ]


def test_x86_64_target(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"a.so": "good-x86_64.so", "b.so": "good-aarch64.so"})
    assert _problems(root, _target(Arch.X86_64, "2.34")) == [
        "b.so: architecture: expected x86_64 (ELF64 LSB), found aarch64 (ELF64 LSB)",
        "python/bin/python3.11: architecture: expected x86_64 (ELF64 LSB), found aarch64 "
        "(ELF64 LSB)",
    ]


def test_unsafe_zip_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../../etc/passwd", "x")
    with pytest.raises(UnsafeArchiveError, match="escapes the extraction root"):
        verify_path(evil, AL2023)
    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as archive:
        info = zipfile.ZipInfo("python/lib/evil")
        info.create_system = 3
        info.external_attr = 0o120777 << 16
        archive.writestr(info, "../../../../etc")
    assert _problems(link) == [
        "python/bin/python3.N: interpreter: expected the layer's Python interpreter, found no "
        "such file",
        "python/lib/evil: symbolic link: expected a target inside the layer, found "
        "../../../../etc, outside it",
    ]


def test_cli_target_options(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pybuild", "verify", *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
        )

    root = _tree(tmp_path, {"ok.so": "good-aarch64.so"})
    assert run(str(root), "--arch", "aarch64").stderr == (
        "error: --arch and --glibc go together (or use --layer)\n"
    )
    assert run(str(root), "--arch", "aarch64", "--glibc", "2.99").returncode == 2
    assert run(str(root), "--arch", "aarch64", "--glibc", "2.34").returncode == 0
    missing = run(str(tmp_path / "nope.zip"), "--arch", "aarch64", "--glibc", "2.34")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    no_layer = run(str(root))
    assert no_layer.returncode == 2 and "layer/layer.toml: no such file" in no_layer.stderr


def test_reference_layer_definition_selects_al2023() -> None:
    target = _target(Arch.AARCH64, "2.34")
    assert target.profile.name == "al2023"
    assert "libX11.so.6" not in target.profile.system_libraries
    with pytest.raises(PybuildError, match=r"no system profile for glibc 2\.30"):
        _target(Arch.AARCH64, "2.30")


def test_verify_of_a_missing_path_loads_no_lief(tmp_path: Path) -> None:
    """`pybuild verify MISSING` answers before the ELF reader (LIEF) or a layer is loaded."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pybuild", "verify", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert completed.returncode == 2
    assert (
        completed.stderr.splitlines()[-1]
        == f"error: {tmp_path / 'nope'}: no such file or directory"
    )
    imported = {
        line.split("|")[-1].strip() for line in completed.stderr.splitlines() if "|" in line
    }
    assert "lief" not in imported and "pybuild.elf.reader" not in imported
    assert "pybuild.stages.verify" not in imported
