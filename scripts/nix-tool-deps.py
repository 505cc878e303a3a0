#!/usr/bin/env python3
"""Write nix/tool-deps.json: the pinned dependencies the flake must not take from nixpkgs.

deflate (bundles libdeflate: the compressed bytes), installer (writes console scripts),
packaging (pybuild uses its pylock module), lief (its 1.0 API) and auditwheel (its policy data)
at the versions pyproject.toml pins, each file identified by name and sha256 as the configured
package index lists it. Run after changing a pin: `.venv/bin/python scripts/nix-tool-deps.py`.

A platform wheel is chosen by its tags, as an installer would: the first of packaging's
`cpython_tags` for CPython 3.11 on that Nix system (manylinux, newest glibc first, up to the
glibc of nixpkgs) that one of the files carries; never by how the file name ends (a macOS wheel
ends in `_x86_64.whl` too).

Each file is downloaded (and its sha256 checked) to record what nixpkgs' build hooks read from
it: `requires_dist`, the wheel's METADATA or the sdist's [project].dependencies (PKG-INFO where
they are dynamic), and for an sdist `build_system_requires`, its pyproject.toml's
[build-system].requires, each kept where its marker holds for CPython 3.11 on both Linux systems
without extras. The same record, keyed by each file's SRI hash, is written for the tests'
stand-in nixpkgs (tests/fixtures/nixpkgs-standin/dists.json): it checks them where nixpkgs'
pythonRuntimeDepsCheckHook and `pyproject-build --no-isolation` would read the unpacked file.
"""

from __future__ import annotations

import base64
import hashlib
import io
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Iterable
from email.parser import BytesParser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.tags import Tag, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

from pybuild.support.fsutil import atomic_write_text
from pybuild.support.index import IndexFile, configured_indexes, project_files
from pybuild.support.jsonout import dumps_stable
from pybuild.support.net import RetryPolicy, open_url

ROOT = Path(__file__).resolve().parent.parent
PURE_WHEELS = ("installer", "auditwheel")
# Built from source by Nix: deflate with its bundled libdeflate (not nixpkgs'); packaging as
# nixpkgs builds its own (a wheel would need nixpkgs' `wheel`, which itself depends on packaging).
SDISTS = ("deflate", "packaging")
PLATFORM_WHEELS = ("lief",)
NIX_SYSTEMS = {"x86_64-linux": "x86_64", "aarch64-linux": "aarch64"}  # Nix system -> machine
PYTHON = (3, 11)  # nixpkgs' python311, which nix/python.nix builds on
# The glibc a wheel may need at most: nixos-26.05's is newer, and manylinux_2_28 covers every
# wheel of the pinned versions; the tests hold tool-deps.json to this same ceiling.
NIXPKGS_GLIBC = (2, 40)
# PEP 518: a pyproject.toml without [build-system] builds with setuptools.
DEFAULT_BUILD_SYSTEM = ("setuptools>=40.8.0",)
STANDIN_DISTS = ROOT / "tests" / "fixtures" / "nixpkgs-standin" / "dists.json"


def manylinux_platforms(machine: str, glibc: tuple[int, int] = NIXPKGS_GLIBC) -> list[str]:
    """Platform tags a glibc Linux `machine` accepts, newest first (PEP 600, with the legacy
    aliases manylinux2014/2010/1 where they apply)."""
    major, ceiling = glibc
    legacy = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
    platforms = []
    for minor in range(ceiling, 16 if machine == "aarch64" else 4, -1):
        platforms.append(f"manylinux_{major}_{minor}_{machine}")
        if (major, minor) in legacy:
            platforms.append(f"{legacy[(major, minor)]}_{machine}")
    return platforms


def preferred_tags(machine: str) -> list[Tag]:
    """CPython 3.11 wheel tags on a glibc Linux `machine`, best first (packaging's order)."""
    return list(
        cpython_tags(
            PYTHON, abis=[f"cp{PYTHON[0]}{PYTHON[1]}"], platforms=manylinux_platforms(machine)
        )
    )


def choose_wheel(filenames: list[str], machine: str) -> str | None:
    """The wheel an installer would take on a glibc Linux `machine`, or None."""
    tags_of = {f: parse_wheel_filename(f)[3] for f in filenames if f.endswith(".whl")}
    for tag in preferred_tags(machine):
        for filename, tags in sorted(tags_of.items()):
            if tag in tags:
                return filename
    return None


def marker_environment(machine: str) -> dict[str, str]:
    """PEP 508 marker values of nixpkgs' CPython 3.11 on a Linux `machine`, no extra."""
    version = f"{PYTHON[0]}.{PYTHON[1]}"
    return {
        "implementation_name": "cpython",
        "implementation_version": f"{version}.0",
        "os_name": "posix",
        "platform_machine": machine,
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": f"{version}.0",
        "python_version": version,
        "sys_platform": "linux",
        "extra": "",
    }


def applicable(requirements: Iterable[str]) -> list[str]:
    """The requirements whose markers hold for CPython 3.11 on both Linux systems without
    extras, markers dropped, sorted; SystemExit for one that holds on one system only."""
    kept = []
    for text in requirements:
        requirement = Requirement(text)
        marker = requirement.marker
        holds = {
            marker is None or marker.evaluate(marker_environment(machine))
            for machine in NIX_SYSTEMS.values()
        }
        if len(holds) > 1:
            raise SystemExit(f"{text}: applies on one Linux system only")
        if holds.pop():
            requirement.marker = None
            kept.append(str(requirement))
    return sorted(kept)


def wheel_requirements(data: bytes) -> list[str]:
    """A wheel's Requires-Dist, as in its METADATA."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        (name,) = (
            n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
        )
        metadata = BytesParser().parsebytes(archive.read(name))
    return list(metadata.get_all("Requires-Dist") or [])


def sdist_requirements(data: bytes) -> tuple[list[str], list[str]]:
    """An sdist's (runtime requirements, [build-system].requires)."""
    top: dict[str, bytes] = {}  # the files of the sdist's top directory, by name
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for info in archive.getmembers():
            name = info.name.split("/", 1)[-1]
            if (
                info.isfile()
                and info.name.count("/") == 1
                and name in ("pyproject.toml", "PKG-INFO")
            ):
                handle = archive.extractfile(info)
                if handle is not None:
                    top[name] = handle.read()
    pyproject_bytes, pkg_info = top.get("pyproject.toml"), top.get("PKG-INFO")
    pyproject = tomllib.loads(pyproject_bytes.decode()) if pyproject_bytes else {}
    build = list(pyproject.get("build-system", {}).get("requires", DEFAULT_BUILD_SYSTEM))
    project = pyproject.get("project", {})
    if "dependencies" in project and "dependencies" not in project.get("dynamic", []):
        return list(project["dependencies"]), build
    if pkg_info is not None:
        metadata = BytesParser().parsebytes(pkg_info)
        version = tuple(int(p) for p in str(metadata["Metadata-Version"]).split("."))
        dynamic = {str(d).lower() for d in metadata.get_all("Dynamic") or []}
        if version >= (2, 2) and "requires-dist" not in dynamic:
            return list(metadata.get_all("Requires-Dist") or []), build
    raise SystemExit("an sdist whose requirements are known only by building it")


def _download(file: IndexFile, retry: RetryPolicy) -> bytes:
    def attempt() -> bytes:
        with open_url(file.url) as response:
            return response.read()

    data = retry.run(attempt)
    if hashlib.sha256(data).hexdigest() != file.sha256:
        raise SystemExit(f"{file.filename}: the download does not match the index's sha256")
    return data


def sri(sha256: str) -> str:
    """A hex sha256 in the SRI form Nix's fixed-output fetches take."""
    return "sha256-" + base64.b64encode(bytes.fromhex(sha256)).decode()


def _pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins: dict[str, str] = {}
    for line in project["dependencies"]:
        requirement = Requirement(line)
        pins[canonicalize_name(requirement.name)] = next(iter(requirement.specifier)).version
    return pins


def _entry(filename: str, sha256: str | None) -> dict[str, str]:
    if sha256 is None:
        raise SystemExit(f"{filename}: the index lists no sha256")
    if filename.endswith(".whl"):
        parse_wheel_filename(filename)  # a valid wheel name: the split below is safe
        stem = filename[:-4].split("-")
        return {
            "filename": filename,
            "pname": stem[0],
            "python": stem[-3],
            "abi": stem[-2],
            "platform": stem[-1],
            "sha256": sha256,
        }
    return {"filename": filename, "pname": filename.rsplit("-", 1)[0], "sha256": sha256}


def standin_dists(deps: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    """tool-deps.json's record of each file, keyed by the file's SRI hash (the stand-in nixpkgs
    finds a package's source by its `outputHash`)."""
    dists: dict[str, dict[str, object]] = {}
    for entry in deps.values():
        files: list[object] = [entry.get("wheel"), entry.get("sdist")]
        wheels = entry.get("wheels")
        if isinstance(wheels, dict):
            files += list(wheels.values())
        for file in files:
            if not isinstance(file, dict):
                continue
            record: dict[str, object] = {
                "filename": file["filename"],
                "requires_dist": entry["requires_dist"],
            }
            if "build_system_requires" in entry and file is entry.get("sdist"):
                record["build_system_requires"] = entry["build_system_requires"]
            dists[sri(str(file["sha256"]))] = record
    return dists


def main() -> int:
    pins = _pins()
    index = configured_indexes().primary
    retry = RetryPolicy()
    out: dict[str, dict[str, object]] = {}
    for name in (*PURE_WHEELS, *SDISTS, *PLATFORM_WHEELS):
        version = pins[name]
        listed = {f.filename: f for f in project_files(index, name, retry)}
        prefix = f"{name.replace('-', '_')}-{version}"
        entry: dict[str, object] = {"version": version}
        if name in PURE_WHEELS:
            filename = next(
                f for f in listed if f.startswith(prefix) and f.endswith("-none-any.whl")
            )
            entry["wheel"] = _entry(filename, listed[filename].sha256)
            entry["requires_dist"] = applicable(
                wheel_requirements(_download(listed[filename], retry))
            )
        elif name in SDISTS:
            filename = f"{prefix}.tar.gz"
            entry["sdist"] = _entry(filename, listed[filename].sha256)
            runtime, build = sdist_requirements(_download(listed[filename], retry))
            entry["requires_dist"] = applicable(runtime)
            entry["build_system_requires"] = applicable(build)
        else:
            wheels = {}
            requires: set[tuple[str, ...]] = set()
            candidates = [f for f in listed if f.startswith(f"{prefix}-")]
            for system, machine in NIX_SYSTEMS.items():
                chosen = choose_wheel(candidates, machine)
                if chosen is None:
                    raise SystemExit(f"{name} {version}: no wheel for CPython 3.11 on {system}")
                wheels[system] = _entry(chosen, listed[chosen].sha256)
                data = _download(listed[chosen], retry)
                requires.add(tuple(applicable(wheel_requirements(data))))
            if len(requires) != 1:
                raise SystemExit(f"{name} {version}: its wheels require different packages")
            entry["wheels"] = wheels
            entry["requires_dist"] = list(requires.pop())
        out[name] = entry
    atomic_write_text(ROOT / "nix" / "tool-deps.json", dumps_stable(out))
    atomic_write_text(STANDIN_DISTS, dumps_stable(standin_dists(out)))
    print(f"wrote nix/tool-deps.json ({', '.join(out)}) and {STANDIN_DISTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
