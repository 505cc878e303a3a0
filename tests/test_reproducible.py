"""One zip whichever host builds it: the bytecode comes from the lock's pinned compiler only.

A small real layer with Debian's Python (the Debian provider pins python3.11 for arm64 and amd64,
the same Debian version, as python-build-standalone pins one release per architecture) is built
with the amd64 compiler running natively, with the arm64 runtime compiling under qemu, and by
pybuild running on another CPython than this one: the same sha256 every time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.network]

REQUIREMENTS = "pyyaml==6.0.4\nsix==1.17.0\n"
LAYER = """
name = "repro"
requirements = "requirements.txt"
[target]
arch = "aarch64"
glibc = "2.36"
python = "3.11"
profile = "debian12"
[runtime]
provider = "debian"
suite = "bookworm"
[bytecode]
mode = "sourceless"
debug_ranges = false
"""


@dataclass(frozen=True)
class Built:
    layer: Path
    zip: Path
    cache: Path

    def sha256(self) -> str:
        return hashlib.sha256(self.zip.read_bytes()).hexdigest()


def _pybuild(python: str, *args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYBUILD_CACHE_DIR": str(cache)}
    return subprocess.run(
        [python, "-m", "pybuild", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    root = tmp_path_factory.mktemp("repro")
    (root / "requirements.txt").write_text(REQUIREMENTS)
    (root / "layer.toml").write_text(LAYER)
    cache = root / "cache"
    assert (
        _pybuild(
            sys.executable, "lock", "-q", "--layer", str(root / "layer.toml"), cache=cache
        ).returncode
        == 0
    )
    result = _pybuild(
        sys.executable,
        "build",
        "-q",
        "--layer",
        str(root / "layer.toml"),
        "--out",
        str(root / "native"),
        cache=cache,
    )
    assert result.returncode == 0, result.stderr
    yield Built(root / "layer.toml", root / "native" / "repro.zip", cache)


def test_native_and_emulated_compilers_give_one_zip(built: Built) -> None:
    if shutil.which("qemu-aarch64-static") is None:
        pytest.skip("qemu-aarch64-static is not installed (Debian: qemu-user-static)")
    out = built.layer.parent / "emulated"
    result = _pybuild(
        sys.executable,
        "build",
        "--layer",
        str(built.layer),
        "--out",
        str(out),
        "--emulate-compiler",
        "--offline",
        cache=built.cache,
    )
    assert result.returncode == 0, result.stderr
    assert "qemu-aarch64-static (the target runtime, emulated)" in result.stderr
    assert hashlib.sha256((out / "repro.zip").read_bytes()).hexdigest() == built.sha256()


def _other_cpythons() -> list[str]:
    """CPython interpreters other than this one (another micro or minor version)."""
    candidates = [shutil.which(f"python3.{minor}") for minor in (11, 12, 13, 14)]
    pyenv = Path.home() / ".pyenv" / "versions"
    if pyenv.is_dir():
        candidates += [str(p / "bin" / "python3") for p in sorted(pyenv.iterdir())]
    candidates = [c for c in candidates if c and Path(c).is_file()]
    found = []
    this = (sys.version_info[:3], sys.implementation.name)
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.implementation.name, *sys.version_info[:3])"],
            capture_output=True,
            text=True,
            check=False,
        )
        words = probe.stdout.split()
        if probe.returncode != 0 or len(words) != 4 or words[0] != "cpython":
            continue
        version = tuple(int(w) for w in words[1:])
        if version >= (3, 11) and (version, "cpython") != this and candidate not in found:
            found.append(candidate)
    return found


def test_pybuild_on_another_cpython_gives_the_same_zip(built: Built, tmp_path: Path) -> None:
    """The Python that runs pybuild decides no byte: pybuild installed on another CPython
    (another minor version where the machine has one) builds the same zip."""
    others = _other_cpythons()
    if not others:
        pytest.skip("no CPython >= 3.11 other than this one on this machine (pyenv, python3.X)")
    python = others[-1]  # the newest: the furthest from this one
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(REPO)],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    out = tmp_path / "out"
    result = _pybuild(
        str(venv / "bin" / "python"),
        "build",
        "-q",
        "--layer",
        str(built.layer),
        "--out",
        str(out),
        "--offline",
        cache=built.cache,
    )
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256((out / "repro.zip").read_bytes()).hexdigest() == built.sha256()


def test_build_check_on_a_real_layer(built: Built) -> None:
    result = _pybuild(
        sys.executable,
        "build",
        "--check",
        "--layer",
        str(built.layer),
        "--out",
        str(built.layer.parent / "checked"),
        "--offline",
        cache=built.cache,
    )
    assert result.returncode == 0, result.stderr
    assert f"--check: both builds are {built.sha256()}" in result.stderr
