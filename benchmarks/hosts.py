"""One zip from an x86_64 host and from an aarch64 host: the whole build run as arm64 code.

The aarch64 host is emulated: a Debian 12 arm64 root file system (pybuild's smoke sysroot plus
Debian's arm64 python3.11 packages of the example lock and pybuild's dependencies as aarch64
wheels) in which pybuild itself runs under qemu-user, every process it starts too. qemu is
registered for arm64 ELF files in a binfmt_misc instance of a private user namespace (Linux 6.7
and later give each user namespace its own), so nothing changes for the rest of the machine.
On the emulated host `platform.machine()` is aarch64: pybuild takes the lock's aarch64
compiler, the arm64 runtime itself, and runs it as the host's own Python.

Both builds are of `examples/debian12-arm64` from the same inputs (`--offline --from`), each
with an empty cache. The benchmark fails if the two zips differ.

Re-run: `.venv/bin/python benchmarks/hosts.py` (as root, or with unprivileged user namespaces;
network for the aarch64 wheels of pybuild's dependencies).
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from _common import DEBIAN_EXAMPLE, ROOT, write_section
from pybuild.model.layerfile import load_layer
from pybuild.model.lockfile import read_lock
from pybuild.model.target import Arch
from pybuild.pipeline import mirrors_of
from pybuild.smoke.sysroot import build_sysroot
from pybuild.stages.fetch import fetch_artifacts, lock_artifacts
from pybuild.support.cache import Cache, default_cache_dir
from pybuild.support.extract import TreeWriter, extract_deb
from pybuild.support.index import configured_indexes
from pybuild.ui import Ui

QEMU = "/usr/bin/qemu-aarch64-static"
# binfmt_misc's entry for 64-bit little-endian ELF files of machine 183 (AArch64): the
# registration Debian's qemu-user-static ships, with F (the interpreter is opened now, so it is
# found from inside the chroot).
BINFMT = (
    r":qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00"
    r":\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"
    f":{QEMU}:F"
)
WHEEL_PLATFORMS = ("manylinux_2_36_aarch64", "manylinux_2_28_aarch64", "manylinux2014_aarch64")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _inputs(directory: Path) -> None:
    """Every file of the example lock (runtime, compilers of both hosts, wheels) in `directory`."""
    lock = read_lock(DEBIAN_EXAMPLE.parent / "lock.json")
    mirrors = mirrors_of(load_layer(DEBIAN_EXAMPLE), lock)
    cache = Cache(default_cache_dir())
    wanted = {}
    for host in (Arch.X86_64, Arch.AARCH64):
        for artifact in lock_artifacts(lock, host=host, mirrors=mirrors):
            wanted[artifact.want.sha256] = artifact
    fetched = fetch_artifacts(list(wanted.values()), cache, indexes=configured_indexes(), ui=Ui())
    directory.mkdir()
    for artifact, result in zip(wanted.values(), fetched, strict=True):
        shutil.copy(result.path, directory / artifact.want.filename)


def _pybuild_requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return [r for r in project["project"]["dependencies"] if not r.startswith("uv==")]


def _arm64_host(root: Path, inputs: Path) -> None:
    """`root`: a Debian 12 arm64 system with python3.11 and pybuild; the layer files at /src."""
    sysroot = build_sysroot(default_cache_dir(), Ui())
    shutil.copytree(sysroot, root, symlinks=True)
    lock = read_lock(DEBIAN_EXAMPLE.parent / "lock.json")
    for file in lock.runtime.files:
        writer = TreeWriter(root, file.filename, absolute_links="root")
        extract_deb(inputs / file.filename, writer)
    platforms = [arg for p in WHEEL_PLATFORMS for arg in ("--platform", p)]
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--target", str(root / "opt" / "deps"),
         "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
         *platforms, *_pybuild_requirements()],
        check=True,
    )  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
         str(root / "opt" / "deps"), str(ROOT)],
        check=True,
    )  # fmt: skip
    source = root / "src"  # the layer files, as in this checkout
    source.mkdir()
    for name in ("examples", "layer", "requirements.txt"):
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy(ROOT / name, source / name)
    for directory in ("tmp", "dev", "proc", "inputs", "out", "cache"):
        (root / directory).mkdir(exist_ok=True)
    (root / "tmp").chmod(0o1777)


def _emulated_build(root: Path, inputs: Path) -> float:
    """Run `pybuild build` inside `root` as arm64 code; the seconds it took."""
    binfmt = root.parent / "binfmt_misc"  # this user namespace's own instance is mounted here
    binfmt.mkdir()
    inner = (
        f"set -e; mount -t binfmt_misc binfmt_misc {binfmt}; "
        f"printf '%s' '{BINFMT}' > {binfmt}/register; "
        f"mount --rbind /dev {root}/dev; mount -t proc proc {root}/proc; "
        f"mount --bind {inputs} {root}/inputs; "
        "exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "
        "PYTHONPATH=/opt/deps PYBUILD_CACHE_DIR=/cache "
        f"chroot {root} /usr/bin/python3.11 -m pybuild build --layer /src/examples/debian12-arm64/layer.toml "
        "--offline --from /inputs --out /out"
    )
    start = time.monotonic()
    subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork", "sh", "-c", inner],
        check=True,
    )
    return time.monotonic() - start


def _native_build(inputs: Path, work: Path) -> tuple[Path, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYBUILD_")}
    env["PYBUILD_CACHE_DIR"] = str(work / "cache-native")
    out = work / "out-native"
    start = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pybuild", "build", "--layer", str(DEBIAN_EXAMPLE),
         "--offline", "--from", str(inputs), "--out", str(out)],
        check=True,
        env=env,
    )  # fmt: skip
    return out / "litellm-debian12.zip", time.monotonic() - start


def main() -> None:
    if platform.machine() != "x86_64":
        raise SystemExit("benchmarks/hosts.py emulates an aarch64 host from an x86_64 one")
    with tempfile.TemporaryDirectory(prefix="pybuild-hosts.") as tmp:
        work = Path(tmp)
        inputs = work / "inputs"
        _inputs(inputs)
        native_zip, native_seconds = _native_build(inputs, work)
        root = work / "arm64-host"
        _arm64_host(root, inputs)
        emulated_seconds = _emulated_build(root, inputs)
        emulated_zip = root / "out" / native_zip.name
        native, emulated = _sha256(native_zip), _sha256(emulated_zip)
        size = native_zip.stat().st_size
    same = native == emulated
    data: dict[str, object] = {
        "layer": "examples/debian12-arm64",
        "x86_64_host": {"sha256": native, "seconds": round(native_seconds, 1)},
        "aarch64_host_emulated": {"sha256": emulated, "seconds": round(emulated_seconds, 1)},
        "same_zip": same,
        "zip_bytes": size,
    }
    markdown = f"""
## One zip from an x86_64 and an aarch64 host

`examples/debian12-arm64` built from the same inputs with an empty cache, once by pybuild on
this x86_64 machine ({os.cpu_count()} cores) and once by pybuild running as arm64 code under
qemu-user in a Debian 12 arm64 root file system (every process it starts is arm64 too; the
bytecode compiler is the lock's aarch64 one). Re-run: `.venv/bin/python benchmarks/hosts.py`.

| host | sha256 of the zip | build time |
|---|---|---:|
| x86_64 | `{native}` | {native_seconds:.1f} s |
| aarch64 (emulated) | `{emulated}` | {emulated_seconds:.1f} s |

The same zip ({size:,} bytes): **{"yes" if same else "NO"}**.
"""
    write_section("hosts", markdown, data)
    print(markdown)
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
