#!/usr/bin/env python3
"""Write nix/tool-deps.json: the pinned dependencies the flake must not take from nixpkgs.

deflate (bundles libdeflate: the compressed bytes), installer (writes console scripts),
packaging (pybuild uses its pylock module), lief (its 1.0 API) and auditwheel (its policy data)
at the versions pyproject.toml pins, each file identified by name and sha256 as the configured
package index lists it. Run after changing a pin: `.venv/bin/python scripts/nix-tool-deps.py`.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from pybuild.support.fsutil import atomic_write_text
from pybuild.support.index import configured_indexes, project_files
from pybuild.support.jsonout import dumps_stable
from pybuild.support.net import RetryPolicy

ROOT = Path(__file__).resolve().parent.parent
PURE_WHEELS = ("installer", "packaging", "auditwheel")
SDISTS = ("deflate",)  # built from source by Nix: its bundled libdeflate, not nixpkgs'
PLATFORM_WHEELS = {"lief": {"x86_64-linux": "x86_64", "aarch64-linux": "aarch64"}}


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
            for system, arch in PLATFORM_WHEELS[name].items():
                filename = next(
                    f
                    for f in files
                    if f.startswith(f"{prefix}-cp311-cp311-") and f.endswith(f"_{arch}.whl")
                )
                wheels[system] = _entry(filename, files[filename])
            out[name] = {"version": version, "wheels": wheels}
    atomic_write_text(ROOT / "nix" / "tool-deps.json", dumps_stable(out))
    print(f"wrote nix/tool-deps.json ({', '.join(out)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
