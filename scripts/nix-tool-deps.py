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
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.tags import Tag, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

from pybuild.support.fsutil import atomic_write_text
from pybuild.support.index import configured_indexes, project_files
from pybuild.support.jsonout import dumps_stable
from pybuild.support.net import RetryPolicy

ROOT = Path(__file__).resolve().parent.parent
PURE_WHEELS = ("installer", "packaging", "auditwheel")
SDISTS = ("deflate",)  # built from source by Nix: its bundled libdeflate, not nixpkgs'
PLATFORM_WHEELS = ("lief",)
NIX_SYSTEMS = {"x86_64-linux": "x86_64", "aarch64-linux": "aarch64"}  # Nix system -> machine
PYTHON = (3, 11)  # nixpkgs' python311, which nix/python.nix builds on
# The glibc a wheel may need at most: nixos-26.05's is newer, and manylinux_2_28 covers every
# wheel of the pinned versions; the tests hold tool-deps.json to this same ceiling.
NIXPKGS_GLIBC = (2, 40)


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


def main() -> int:
    pins = _pins()
    index = configured_indexes().primary
    retry = RetryPolicy()
    out: dict[str, object] = {}
    for name in (*PURE_WHEELS, *SDISTS, *PLATFORM_WHEELS):
        version = pins[name]
        files = {f.filename: f.sha256 for f in project_files(index, name, retry)}
        prefix = f"{name.replace('-', '_')}-{version}"
        if name in PURE_WHEELS:
            filename = next(
                f for f in files if f.startswith(prefix) and f.endswith("-none-any.whl")
            )
            out[name] = {"version": version, "wheel": _entry(filename, files[filename])}
        elif name in SDISTS:
            filename = f"{prefix}.tar.gz"
            out[name] = {"version": version, "sdist": _entry(filename, files[filename])}
        else:
            wheels = {}
            candidates = [f for f in files if f.startswith(f"{prefix}-")]
            for system, machine in NIX_SYSTEMS.items():
                chosen = choose_wheel(candidates, machine)
                if chosen is None:
                    raise SystemExit(f"{name} {version}: no wheel for CPython 3.11 on {system}")
                wheels[system] = _entry(chosen, files[chosen])
            out[name] = {"version": version, "wheels": wheels}
    atomic_write_text(ROOT / "nix" / "tool-deps.json", dumps_stable(out))
    print(f"wrote nix/tool-deps.json ({', '.join(out)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
