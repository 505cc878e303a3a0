"""pybuild's stripper against GNU strip, over every ELF file of two closures, and an import check.

The reference closure (layer/lock.json: litellm and 51 wheels) and a closure of wheels repaired by
auditwheel (patchelf rewrote their headers and bundled libraries into ``*.libs``), pinned below.
Each closure's wheels are unpacked into a site-packages; every ELF file is stripped by
`pybuild strip` and by `aarch64-linux-gnu-strip --strip-unneeded`, same run, median of RUNS. Then
every extension module (and its top-level package) is imported under qemu with the Debian 12
Debian python3.11 and sysroot, unstripped and stripped by pybuild: whatever imports unstripped
must import stripped.

Run: .venv/bin/python benchmarks/strip.py   (needs binutils-aarch64-linux-gnu, qemu-user-static;
the wheels, the sysroot and Debian's python come from pybuild's cache or the network)
Goal: on every ELF file, pybuild's result <= 1.001 x GNU strip's; every module imports.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from _common import DEBIAN_EXAMPLE, reference_wheels, write_section
from pybuild.elf.reader import read_elf
from pybuild.elf.types import ELF_MAGIC
from pybuild.model.lockfile import read_lock
from pybuild.model.tree import Tree
from pybuild.runtimes.debian import DebianProvider
from pybuild.runtimes.debian_archive import DEFAULT_MIRRORS
from pybuild.smoke.sysroot import build_sysroot
from pybuild.stages.fetch import Artifact, fetch_artifacts
from pybuild.stages.strip import StripResult, strip_paths
from pybuild.support.cache import Cache, Want, default_cache_dir
from pybuild.support.index import Indexes, configured_indexes
from pybuild.ui import Ui

RUNS = 5
GOAL = 1.001
QEMU = "qemu-aarch64-static"

# cp311 manylinux aarch64 wheels repaired by auditwheel, and numpy (shapely needs it; its wheel
# bundles OpenBLAS and libgfortran the same way): (project, file, sha256, size), from PyPI.
AUDITWHEEL_CLOSURE = (
    (
        "pillow",
        "pillow-13.0.0-cp311-cp311-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl",
        "7c88c10dd432f3b39ccdafc9ed81d0c21b8fd634502574da76d1bfa4fe2c76d0",
        6517304,
    ),
    (
        "lxml",
        "lxml-6.1.3-cp311-cp311-manylinux_2_26_aarch64.manylinux_2_28_aarch64.whl",
        "ea2c01cdb16dc12156e455007c406dfaaece0c89aa4ba0e3b47586779f951d41",
        5012298,
    ),
    (
        "psycopg2-binary",
        "psycopg2_binary-2.9.13-cp311-cp311-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl",
        "3aea95340825f5ff236e7b40f0b5602c2c77a1e95943f71fae34909834043d29",
        5900973,
    ),
    (
        "shapely",
        "shapely-2.2.0-cp311-cp311-manylinux_2_24_aarch64.manylinux_2_28_aarch64.whl",
        "7765e0e5d51d63eae0a911861cbda87165a01677bc9bce6ed20d06858ccde99f",
        2184352,
    ),
    (
        "numpy",
        "numpy-2.4.6-cp311-cp311-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl",
        "0ab0a9c4ffb1a6d95ef519fe4247dba8eb6b18ad93999f76b7f657039acabd47",
        15966692,
    ),
)

# Imports each module named on the command line; prints {module: error} for those that fail.
_IMPORTER = """
import importlib, json, sys
failed = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except BaseException as err:
        failed[name] = f"{type(err).__name__}: {err}"
print(json.dumps(failed))
"""
_EXTENSION = re.compile(r"(?P<name>[A-Za-z_]\w*)(\.[\w-]+)?\.so")


@dataclasses.dataclass(frozen=True)
class Row:
    file: str
    original: int
    pybuild: int
    gnu_strip: int
    status: str
    reason: str
    layout_changed: bool  # a segment moved or lost a stale tail


@dataclasses.dataclass(frozen=True)
class Closure:
    name: str
    title: str
    wheels: list[Path]


def auditwheel_wheels() -> list[Path]:
    wanted = [
        Artifact("wheel", Want(filename, sha256, size), project=project)
        for project, filename, sha256, size in AUDITWHEEL_CLOSURE
    ]
    cache = Cache(default_cache_dir())
    return [r.path for r in fetch_artifacts(wanted, cache, indexes=configured_indexes(), ui=Ui())]


def unpack(wheels: Sequence[Path], site: Path) -> list[str]:
    """Every wheel's files into `site`; returns the ELF files, relative, sorted."""
    elf = []
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                target = site / info.filename
                target.parent.mkdir(parents=True, exist_ok=True)
                data = archive.read(info)
                target.write_bytes(data)
                if data[:4] == ELF_MAGIC:
                    elf.append(info.filename)
    return sorted(elf)


def copy_files(source: Path, files: Sequence[str], destination: Path) -> None:
    shutil.rmtree(destination, ignore_errors=True)
    for name in files:
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, destination / name)


def extension_modules(files: Sequence[str]) -> list[str]:
    """Dotted names of the extension modules among `files` (bundled libraries are not)."""
    modules = []
    for name in files:
        *packages, filename = name.split("/")
        match = _EXTENSION.fullmatch(filename)
        if match and all(p.isidentifier() for p in packages):
            modules.append(".".join([*packages, match["name"]]))
    return modules


def timed(action: Callable[[], object], setup: Callable[[], None]) -> list[float]:
    times = []
    for _ in range(RUNS):
        setup()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return times


def import_failures(
    python: Path, sysroot: Path, site: Path, modules: Sequence[str]
) -> dict[str, str]:
    """Import each top-level package and its extension modules, one process per package."""
    qemu = shutil.which(QEMU)
    assert qemu is not None, f"needs {QEMU} (apt-get install qemu-user-static)"
    env = {"PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
    failed: dict[str, str] = {}
    for top in sorted({m.split(".")[0] for m in modules}):
        names = [top, *(m for m in modules if m.split(".")[0] == top)]
        done = subprocess.run(
            [qemu, "-L", str(sysroot), str(python), "-c", _IMPORTER, *names],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=600,
        )
        lines = done.stdout.strip().splitlines()
        if done.returncode or not lines:
            tail = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
            failed.update(dict.fromkeys(names, f"the interpreter died: {tail}"))
        else:
            failed.update(json.loads(lines[-1]))
    return failed


def measure(
    closure: Closure, gnu_strip: str, python: Path, sysroot: Path, tmp: Path
) -> dict[str, object]:
    work = tmp / closure.name
    pristine = work / "site"
    files = unpack(closure.wheels, pristine)
    ours_dir, gnu_dir = work / "ours", work / "gnu"
    results: list[StripResult] = []

    def ours() -> None:
        results[:] = strip_paths([ours_dir])

    ours_times = timed(ours, lambda: copy_files(pristine, files, ours_dir))
    gnu_times = timed(
        lambda: subprocess.run(
            [gnu_strip, "--strip-unneeded", *(str(gnu_dir / f) for f in files)], check=True
        ),
        lambda: copy_files(pristine, files, gnu_dir),
    )
    by_path = {r.path.relative_to(ours_dir).as_posix(): r for r in results}
    assert sorted(by_path) == files
    again = strip_paths([ours_dir])  # stripped once: must say so and change nothing
    assert all(r.status == "already-stripped" for r in again), [r for r in again if r.reason]

    rows = []
    for name in files:
        result = by_path[name]
        before, after = read_elf(pristine / name), read_elf(ours_dir / name)
        rows.append(
            Row(
                name,
                result.size_before,
                result.size_after,
                (gnu_dir / name).stat().st_size,
                result.status,
                result.reason,
                [(s.offset, s.filesz) for s in before.segments]
                != [(s.offset, s.filesz) for s in after.segments],
            )
        )

    modules = extension_modules(files)
    unstripped = import_failures(python, sysroot, pristine, modules)
    stripped_site = work / "site-stripped"
    shutil.copytree(pristine, stripped_site)
    for name in files:
        shutil.copyfile(ours_dir / name, stripped_site / name)
    stripped = import_failures(python, sysroot, stripped_site, modules)
    shutil.rmtree(work)

    original = sum(r.original for r in rows)
    ours_bytes = sum(r.pybuild for r in rows)
    gnu = sum(r.gnu_strip for r in rows)
    ours_median, gnu_median = statistics.median(ours_times), statistics.median(gnu_times)
    worst = max(rows, key=lambda r: r.pybuild / r.gnu_strip)
    return {
        "title": closure.title,
        "wheels": len(closure.wheels),
        "files": [dataclasses.asdict(r) for r in rows],
        "original_bytes": original,
        "pybuild_bytes": ours_bytes,
        "gnu_strip_bytes": gnu,
        "ratio": round(ours_bytes / gnu, 6),
        "worst_file_ratio": round(worst.pybuild / worst.gnu_strip, 6),
        "worst_file": worst.file,
        "left_as_they_were": {r.file: r.reason for r in rows if r.status != "stripped"},
        "layout_changed": sum(r.layout_changed for r in rows),
        "pybuild_seconds_median": round(ours_median, 4),
        "gnu_strip_seconds_median": round(gnu_median, 4),
        "modules_imported": len(modules),
        "import_failures_unstripped": unstripped,
        "import_failures_stripped": stripped,
        "goal_met": max(r.pybuild / r.gnu_strip for r in rows) <= GOAL
        and stripped.keys() <= unstripped.keys(),
    }


def _section(data: dict[str, object]) -> str:
    original, ours, gnu = (data[k] for k in ("original_bytes", "pybuild_bytes", "gnu_strip_bytes"))
    assert isinstance(original, int) and isinstance(ours, int) and isinstance(gnu, int)
    left = data["left_as_they_were"]
    assert isinstance(left, dict)
    unstripped, stripped = data["import_failures_unstripped"], data["import_failures_stripped"]
    assert isinstance(unstripped, dict) and isinstance(stripped, dict)
    files = data["files"]
    assert isinstance(files, list)
    left_text = "; ".join(f"`{f}`: {why}" for f, why in sorted(left.items())) if left else "none"
    also = (
        "; ".join(f"`{m}` ({why})" for m, why in sorted(unstripped.items()))
        if unstripped
        else "none"
    )
    broken = ", ".join(f"`{m}`: {stripped[m]}" for m in sorted(stripped.keys() - unstripped.keys()))
    return f"""
### {data["title"]}

| | bytes | vs original | time (median of {RUNS}) |
|---|---:|---:|---:|
| original ({len(files)} ELF files, {data["wheels"]} wheels) | {original:,} | 100.0% | |
| pybuild strip | {ours:,} | {ours / original:.1%} | {data["pybuild_seconds_median"]:.3f} s |
| GNU strip --strip-unneeded | {gnu:,} | {gnu / original:.1%} | {data["gnu_strip_seconds_median"]:.3f} s |

- Ratio pybuild / GNU strip: **{data["ratio"]:.6f}**; worst file {data["worst_file_ratio"]:.6f}
  (`{data["worst_file"]}`).
- Files left as they were: {left_text}.
- Files whose segments moved or lost a stale tail: {data["layout_changed"]} of {len(files)}.
- Imports under qemu (Debian's arm64 python 3.11, Debian 12 sysroot), {data["modules_imported"]}
  extension modules and their top-level packages: {"all that import unstripped import stripped" if not broken else "BROKEN: " + broken}.
  Failing unstripped too: {also}.
"""


def debian_python(directory: Path, ui: Ui) -> Path:
    """Debian's arm64 python3.11 as the Debian example pins it, laid out in `directory`."""
    lock = read_lock(DEBIAN_EXAMPLE.parent / "lock.json")
    fetched = fetch_artifacts(
        [Artifact.for_file(f, "runtime", DEFAULT_MIRRORS) for f in lock.runtime.files],
        Cache(default_cache_dir()),
        indexes=Indexes((), "none"),
        ui=ui,
    )
    provider = DebianProvider()
    tree = Tree(directory, provider.layout(lock.target))
    provider.install(lock.runtime, {f.artifact.want.sha256: f.path for f in fetched}, tree)
    return directory / "python" / "bin" / "python3.11"


def main() -> int:
    gnu_strip = shutil.which("aarch64-linux-gnu-strip")
    if gnu_strip is None or shutil.which(QEMU) is None:
        print("needs aarch64-linux-gnu-strip and qemu-aarch64-static")
        print("(apt-get install binutils-aarch64-linux-gnu qemu-user-static)")
        return 2
    version = subprocess.run(
        [gnu_strip, "--version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    ui = Ui()
    sysroot = build_sysroot(default_cache_dir(), ui)
    closures = [
        Closure(
            "reference",
            "Reference closure: litellm 1.78.7 (layer/lock.json)",
            reference_wheels(),
        ),
        Closure(
            "auditwheel",
            "auditwheel-repaired: Pillow 13.0.0, lxml 6.1.3, psycopg2-binary 2.9.13, "
            "shapely 2.2.0, numpy 2.4.6",
            auditwheel_wheels(),
        ),
    ]
    with tempfile.TemporaryDirectory(prefix="pybuild-bench-strip-") as tmp_name:
        tmp = Path(tmp_name)
        python = debian_python(tmp / "runtime", ui)
        measured = {c.name: measure(c, gnu_strip, python, sysroot, tmp) for c in closures}

    goal_met = all(m["goal_met"] for m in measured.values())
    data: dict[str, object] = {
        **measured,
        "goal_ratio_per_file": GOAL,
        "goal_met": goal_met,
        "runs": RUNS,
        "gnu_strip_version": version,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    markdown = (
        f"""
## Strip: pybuild vs GNU strip

Every ELF file of two closures' wheels, unpacked into a site-packages, stripped by
`pybuild strip` and by `{version}` with `--strip-unneeded`, same run, on this machine
({platform.machine()}, {os.cpu_count()} cores). Goal: on every file, pybuild's result
<= {GOAL} x GNU strip's, and every module that imports unstripped imports stripped:
**{"met" if goal_met else "NOT met"}**. Re-run: `.venv/bin/python benchmarks/strip.py`.
"""
        + "".join(_section(m) for m in measured.values())
        + """
pybuild drops every non-allocated section (GNU strip keeps `.comment`, `.gnu_debuglink`,
`.gnu.build.attributes`) and puts the section header table in a gap between segments when one
holds it; in files patchelf rewrote, later segments move down by whole multiples of `p_align`
(64 KiB here) and a writable segment's stale tail (old copies patchelf left behind) is cut from
its file content, as GNU strip does. pybuild's time includes parsing each file and re-parsing
and comparing each result.
"""
    )
    write_section("strip", markdown, data)
    print(markdown)
    return 0 if goal_met else 1


if __name__ == "__main__":
    sys.exit(main())
