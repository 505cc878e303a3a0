"""Hostile inputs and a careless user, end to end through the command line.

Every case feeds the input to `pybuild` in its own process and checks the exit code, that the
error is one line without a traceback, that nothing outside the build's own directories (the
output directory and the cache) changed, and that a correct run afterwards gives the clean
build's sha256. Full and read-only disks are real: a tmpfs mounted in a private mount namespace
(as root; CI runs as root).
"""

from __future__ import annotations

import hashlib
import io
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import FIXTURES, make_fake_runtime, make_wheel, write_fixture_lock, write_layer

pytestmark = pytest.mark.slow  # every case runs pybuild in processes of its own

ROOT_ONLY = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="a full or read-only disk needs a tmpfs in a mount namespace: root and unshare",
)


@dataclass
class Case:
    """A layer with a current lock, its inputs, and the clean build's sha256."""

    root: Path  # everything of this test lives here
    layer: Path
    runtime: Path
    wheels: list[Path]
    cache: Path
    out: Path
    clean_sha256: str = ""

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PIP_", "UV_", "PYBUILD_"))
        }
        env.update(PIP_CONFIG_FILE=os.devnull, PYBUILD_CACHE_DIR=str(self.cache))
        env.update(extra)
        return env

    def run(
        self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pybuild", *args],
            cwd=cwd or self.root,
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def build(
        self, *args: str, out: Path | None = None, **kwargs: object
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            "build",
            "-q",
            "--layer",
            str(self.layer),
            "--out",
            str(out or self.out),
            "--python",
            sys.executable,
            *args,
            **kwargs,  # type: ignore[arg-type]
        )

    def outside(self) -> dict[str, str]:
        """Everything under `root` but the build's own directories: path -> content digest."""
        found = {}
        for directory, dirs, files in os.walk(self.root):
            base = Path(directory)
            dirs[:] = [d for d in dirs if base / d not in (self.cache, self.out)]
            for name in files + [d for d in dirs if (base / d).is_symlink()]:
                path = base / name
                key = path.relative_to(self.root).as_posix()
                found[key] = (
                    f"-> {path.readlink()}"
                    if path.is_symlink()
                    else hashlib.sha256(path.read_bytes()).hexdigest()
                )
        return found


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line_error(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    """The single `error:` line of a failed run (after any progress or warnings)."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def _wheels(directory: Path) -> list[Path]:
    return [
        make_wheel(
            directory,
            "native",
            "2.0",
            "cp311-cp311-manylinux_2_17_aarch64",
            files={
                "native/__init__.py": b"from native import tokenish  # noqa\n",
                "native/tokenish.py": b"X = {1, 2, 3}\n",
                "native/_n.cpython-311-aarch64-linux-gnu.so": (
                    FIXTURES / "good-aarch64.so"
                ).read_bytes(),
            },
        )
    ]


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Case:
    """The clean build every hostile case is compared with afterwards."""
    root = tmp_path_factory.mktemp("clean")
    case = _case(root)
    result = case.build(*_seed(case))
    assert result.returncode == 0, result.stderr
    case.clean_sha256 = _sha256(case.out / "hostile.zip")
    return case


def _case(root: Path, runtime: Path | None = None) -> Case:
    wheels = _wheels(root / "wheels")
    runtime = runtime or make_fake_runtime(root / "runtime")
    layer = write_layer(root / "layer", "native==2.0\n", runtime=runtime, name="hostile")
    write_fixture_lock(layer, runtime, wheels)
    case = Case(root, layer, runtime, wheels, root / "cache", root / "out")
    seed = root / "seed"
    seed.mkdir(exist_ok=True)
    for source in [*wheels, runtime]:
        shutil.copy(source, seed / source.name)
    return case


@pytest.fixture
def case(tmp_path: Path, clean: Case) -> Iterator[Case]:
    made = _case(tmp_path)
    made.clean_sha256 = clean.clean_sha256
    yield made


def _seed(case: Case) -> list[str]:
    return ["--offline", "--from", str(case.root / "seed")]


def then_a_correct_run_gives_the_clean_zip(case: Case, before: dict[str, str]) -> None:
    assert case.outside() == before
    shutil.rmtree(case.out, ignore_errors=True)
    result = case.build(*_seed(case))
    assert result.returncode == 0, result.stderr
    assert _sha256(case.out / "hostile.zip") == case.clean_sha256


def _runtime_with(directory: Path, members: list[tarfile.TarInfo], base: Path) -> Path:
    """The fixture runtime with extra (hostile) members appended."""
    path = directory / base.name
    directory.mkdir(parents=True, exist_ok=True)
    with tarfile.open(base) as source, tarfile.open(path, "w:gz") as target:
        for member in source.getmembers():
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
        for member in members:
            data = b"x" if member.isfile() else None
            if data:
                member.size = 1
            target.addfile(member, io.BytesIO(data) if data else None)
    return path


def _link(name: str, target: str, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info


def _dir(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info


# The chain: each link stays inside python/ on its own; together they lead out.
CHAIN = [
    _dir("python/a"),
    _link("python/a/b", ".."),
    _link("python/a/c", "b/.."),
    _link("python/a/e", "c/.."),
]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            [*CHAIN, _link("python/stolen", "python/a/e/outside/secret", hard=True)],
            "above the extraction root",
        ),
        (
            [*CHAIN, _link("python/lib/python3.11/site-packages", "../../a/e/outside")],
            "above the extraction root",
        ),
    ],
    ids=["hard link through a chain", "site-packages through a chain"],
)
def test_a_chain_of_links_in_the_runtime(
    case: Case, extra: list[tarfile.TarInfo], expected: str
) -> None:
    (case.root / "outside").mkdir()
    (case.root / "outside" / "secret").write_text("host file\n")
    hostile = _runtime_with(case.root / "hostile-runtime", extra, case.runtime)
    bad = _case(case.root / "bad", runtime=hostile)

    def outside_both() -> dict[str, str]:  # the bad build's own cache and output are its own
        own = ("bad/cache/", "bad/out/")
        return {k: v for k, v in case.outside().items() if not k.startswith(own)}

    before = outside_both()
    one_line_error(bad.build(*_seed(bad)), 2, "runtime archive", expected)
    assert not list(bad.out.glob("*.zip")) if bad.out.exists() else True
    assert outside_both() == before
    assert not list((bad.cache / "tmp").glob("build-*"))  # its work directory is gone too
    then_a_correct_run_gives_the_clean_zip(case, case.outside())


def _zip_with_chain(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, target in (("python/a/b", ".."), ("python/a/c", "b/.."), ("python/a/e", "c/..")):
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = 0o120777 << 16
            archive.writestr(info, target)
        archive.writestr("python/a/e/outside/planted", "written through the chain")
    return path


def test_verify_and_smoke_write_nothing_through_a_chain_in_a_zip(case: Case) -> None:
    evil = _zip_with_chain(case.root / "evil.zip")
    before = case.outside()
    verified = case.run(
        "verify",
        str(evil),
        "--arch",
        "aarch64",
        "--glibc",
        "2.34",
        "--json",
        str(case.out / "v.json"),
    )
    assert verified.returncode in (1, 2), verified.stderr
    assert "Traceback" not in verified.stderr
    smoked = case.run("smoke", str(evil), "--layer", str(case.layer), "--relocate")
    one_line_error(smoked, 2, "evil.zip")
    assert not (case.root / "outside").exists()
    assert case.outside() == before


def test_a_corrupt_compression_cache_entry_is_recomputed(case: Case) -> None:
    assert case.build(*_seed(case)).returncode == 0
    entries = [p for p in (case.cache / "deflate").rglob("*") if p.is_file()]
    assert entries
    for entry in entries:
        data = bytearray(entry.read_bytes())
        data[len(data) // 2] ^= 0x55
        entry.write_bytes(bytes(data))
    result = case.build(*_seed(case))
    assert result.returncode == 0, result.stderr
    assert "compression cache entry" in result.stderr and "corrupt" in result.stderr
    assert _sha256(case.out / "hostile.zip") == case.clean_sha256
    with zipfile.ZipFile(case.out / "hostile.zip") as archive:
        assert archive.testzip() is None


def test_the_compiler_imports_nothing_from_the_working_directory_or_pythonpath(
    case: Case,
) -> None:
    """Modules the bytecode compiler imports, planted where a non-isolated interpreter would find
    them first: the working directory pybuild is started from, and PYTHONPATH (with a name
    pybuild's own process never imports, so that only the compiler could fail on it)."""
    cwd, path = case.root / "poison-cwd", case.root / "poison-path"
    for directory, names in (
        (cwd, ("token.py", "tokenize.py", "py_compile.py", "json.py", "importlib.py")),
        (path, ("py_compile.py",)),
    ):
        directory.mkdir()
        for name in names:
            (directory / name).write_text(f"raise SystemExit('{name} imported from {directory}')\n")
    before = case.outside()
    script = str(Path(sys.executable).parent / "pybuild")  # not `python -m`: no cwd on sys.path
    result = subprocess.run(
        [
            script,
            "build",
            "-q",
            "--layer",
            str(case.layer),
            "--out",
            str(case.out),
            "--python",
            sys.executable,
            *_seed(case),
        ],
        cwd=cwd,
        env=case.env(PYTHONPATH=str(path)),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert _sha256(case.out / "hostile.zip") == case.clean_sha256
    assert case.outside() == before


def test_out_is_a_file(case: Case) -> None:
    blocker = case.root / "not-a-dir"
    blocker.write_text("a file\n")
    before = case.outside()
    one_line_error(case.build(*_seed(case), out=blocker), 2, str(blocker), "not a directory")
    assert case.outside() == before
    then_a_correct_run_gives_the_clean_zip(case, before)


def test_the_cache_is_a_file(case: Case) -> None:
    case.cache.parent.mkdir(parents=True, exist_ok=True)
    case.cache.write_text("not a directory\n")
    one_line_error(case.build(*_seed(case)), 2, str(case.cache))
    case.cache.unlink()
    then_a_correct_run_gives_the_clean_zip(case, case.outside())


def _in_tmpfs(
    case: Case, mount: Path, options: str, args: list[str]
) -> subprocess.CompletedProcess[str]:
    """Run pybuild with `mount` a tmpfs (`options`: size=..., ro) in a private namespace."""
    mount.mkdir(parents=True, exist_ok=True)
    command = shlex.join([sys.executable, "-m", "pybuild", *args])
    script = f"mount -t tmpfs -o {options} tmpfs {shlex.quote(str(mount))} && exec {command}"
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        cwd=case.root,
        env=case.env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _build_args(case: Case, out: Path) -> list[str]:
    return [
        "build",
        "-q",
        "--layer",
        str(case.layer),
        "--out",
        str(out),
        "--python",
        sys.executable,
        *_seed(case),
    ]


@ROOT_ONLY
@pytest.mark.parametrize(
    ("options", "reason"),
    [("size=48k", "No space left on device"), ("ro", "Read-only file system")],
    ids=["full", "read-only"],
)
def test_out_on_a_full_or_read_only_disk(case: Case, options: str, reason: str) -> None:
    out = case.root / "disk"
    before = case.outside()
    started = time.monotonic()
    result = _in_tmpfs(case, out, options, _build_args(case, out))
    one_line_error(result, 2, reason)
    if options == "ro":  # refused before the long work, not after it
        assert "assembling" not in result.stderr and time.monotonic() - started < 60
    assert case.outside() == before
    then_a_correct_run_gives_the_clean_zip(case, before)


@ROOT_ONLY
@pytest.mark.parametrize(
    ("options", "reason"),
    [("size=16k", "No space left on device"), ("ro", "Read-only file system")],
    ids=["full", "read-only"],
)
def test_the_cache_on_a_full_or_read_only_disk(case: Case, options: str, reason: str) -> None:
    before = case.outside()
    one_line_error(_in_tmpfs(case, case.cache, options, _build_args(case, case.out)), 2, reason)
    assert case.outside() == before
    then_a_correct_run_gives_the_clean_zip(case, before)


@ROOT_ONLY
def test_verify_json_to_a_read_only_place(case: Case) -> None:
    assert case.build(*_seed(case)).returncode == 0
    place = case.root / "ro"
    result = _in_tmpfs(
        case,
        place,
        "ro",
        [
            "verify",
            str(case.out / "hostile.zip"),
            "--arch",
            "aarch64",
            "--glibc",
            "2.34",
            "--json",
            str(place / "v.json"),
        ],
    )
    one_line_error(result, 2, str(place), "Read-only file system")


def test_a_closed_pipe_ends_quietly(case: Case, tmp_path: Path) -> None:
    a, b = tmp_path / "a.zip", tmp_path / "b.zip"
    # far more output than a pipe holds (64 KiB), so that pybuild is still writing when head
    # has gone, however the two are scheduled
    for path in (a, b):
        with zipfile.ZipFile(path, "w") as archive:
            for i in range(5000):
                archive.writestr(f"f{i}.txt", f"{path.name} {i}\n")
    command = f"{shlex.quote(sys.executable)} -m pybuild diff {a} {b} | head -n 2"
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command}; echo status ${{PIPESTATUS[0]}} >&2"],
        capture_output=True,
        text=True,
        check=False,
        env=case.env(),
    )
    assert len(result.stdout.splitlines()) == 2
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
    assert "status 141" in result.stderr  # as a process that SIGPIPE ended


def test_ctrl_c_while_compiling_stops_at_once_and_leaves_nothing(case: Case) -> None:
    """A compiler that never finishes: Ctrl-C ends pybuild at once, kills the compiler and
    removes the build's work directory."""
    pidfile = case.root / "compiler.pid"
    slow = case.root / "slow-python"
    slow.write_text(
        "#!/bin/sh\n"
        # answer the version probe as the real interpreter, then hang in the compile job
        f'case "$*" in *py_compile*) ;; *) exec {shlex.quote(sys.executable)} "$@";; esac\n'
        f"echo $$ > {shlex.quote(str(pidfile))}\nexec sleep 600\n"
    )
    slow.chmod(0o755)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pybuild",
            "build",
            "-q",
            "--layer",
            str(case.layer),
            "--out",
            str(case.out),
            "--python",
            str(slow),
            *_seed(case),
        ],
        cwd=case.root,
        env=case.env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not pidfile.exists():
        time.sleep(0.1)
    assert pidfile.exists(), "the compile stage never started"
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert time.monotonic() - started < 5
    assert err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err
    compiler = int(pidfile.read_text())
    time.sleep(0.2)
    assert (
        not Path(f"/proc/{compiler}").exists()
        or "zombie" in Path(f"/proc/{compiler}/status").read_text().lower()
    ), "the compiler outlived pybuild"
    assert not list((case.cache / "tmp").glob("build-*"))
    assert not list(case.out.glob("*.partial")) if case.out.exists() else True


def test_stale_work_directories_of_a_killed_build_are_reclaimed(case: Case) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pybuild",
            "build",
            "-q",
            "--layer",
            str(case.layer),
            "--out",
            str(case.out),
            "--python",
            sys.executable,
            *_seed(case),
        ],
        cwd=case.root,
        env=case.env(),
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((case.cache / "tmp").glob("build-*")):
        time.sleep(0.02)
    process.kill()
    process.wait()
    left = list((case.cache / "tmp").glob("build-*"))
    if not left:
        pytest.fail("the build finished before it could be killed; nothing to reclaim")
    old = time.time() - 60
    for path in left:
        os.utime(path / ".pybuild-lock", (old, old))
    assert case.build(*_seed(case)).returncode == 0
    assert not [p for p in left if p.exists()]
    assert _sha256(case.out / "hostile.zip") == case.clean_sha256
