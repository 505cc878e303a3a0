"""The Nix side, as far as Nix 2.8 without nixpkgs can take it (nixpkgs is not reachable here):
every file parses; the lock-to-fetch mapping of layer/default.nix, evaluated with stand-ins for
the nixpkgs functions it calls; the SRI hashes, proven against Nix's own fixed-output fetcher;
flake.lock; nix/tool-deps.json against pyproject.toml."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

import pytest

from conftest import REPO
from pybuild.model.lockfile import read_lock
from pybuild.model.target import Arch
from pybuild.stages.fetch import fetch_artifacts, lock_artifacts
from pybuild.support.cache import Cache, file_sha256
from pybuild.support.index import configured_indexes
from pybuild.ui import Ui

# Nix as root on a machine without the `nixbld` group (Debian's nix-bin does not create it) and
# without its binary cache: builds run as the calling user, nothing is asked of cache.nixos.org.
NIX_ENV = {
    **os.environ,
    "NIX_CONFIG": "build-users-group =\nsubstituters =\nsandbox = false\n",
}
NIX_FILES = sorted([REPO / "flake.nix", *REPO.glob("nix/*.nix"), *REPO.glob("layer/*.nix")])


def _nix(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (Debian: nix-bin)")
    return path


def _eval_json(expression: str) -> object:
    result = subprocess.run(
        [_nix("nix-instantiate"), "--eval", "--strict", "--json", "-E", expression],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _sri(hex_digest: str) -> str:
    return "sha256-" + base64.b64encode(bytes.fromhex(hex_digest)).decode()


@pytest.mark.parametrize("path", NIX_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_nix_file_parses(path: Path) -> None:
    result = subprocess.run(
        [_nix("nix-instantiate"), "--parse", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_sri_conversion_matches_python() -> None:
    lock = read_lock(REPO / "layer" / "lock.json")
    runtime = [f.sha256 for f in lock.runtime.files]
    digests = [*runtime, *(w.sha256 for w in lock.wheels), "0" * 64, "f" * 64]
    converted = _eval_json("map (import ./nix/sri.nix) " + json.dumps(digests).replace(",", " "))
    assert converted == [_sri(d) for d in digests]


@pytest.mark.parametrize("bad", ["abc", "G" * 64, "A" * 64])
def test_sri_conversion_refuses_non_hex(bad: str) -> None:
    result = subprocess.run(
        [_nix("nix-instantiate"), "--eval", "--strict", "-E", f'import ./nix/sri.nix "{bad}"'],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and "hexToSri" in result.stderr


# nixpkgs' fetchPypi, wheel branch (pkgs/build-support/fetchpypi): the URL it computes.
STANDINS = """
let
  fake = name: { outPath = "/nix/store/00000000000000000000000000000000-" + name; };
  standins = {
    stdenvNoCC = {
      mkDerivation = attrs: attrs;
      buildPlatform.parsed.cpu.name = "x86_64";
    };
    fetchurl = { name, url, hash }: fake name // { kind = "fetchurl"; inherit name url hash; };
    fetchPypi = { pname, version, format, dist, python, abi, platform, hash }:
      fake pname // {
        kind = "fetchPypi";
        inherit format hash;
        url = "https://files.pythonhosted.org/packages/${dist}/"
          + "${builtins.substring 0 1 pname}/${pname}/${pname}-${version}-${python}-${abi}-"
          + "${platform}.whl";
      };
    pybuild = fake "pybuild";
  };
  drv = import ./layer/default.nix standins;
in {
  inherit (drv) dontStrip dontPatchELF dontPatchShebangs dontFixup SOURCE_DATE_EPOCH buildPhase;
  runtime = map (f: { inherit (f) kind name url hash; }) drv.passthru.runtime;
  compiler = map (f: { inherit (f) kind name url hash; }) drv.passthru.compiler;
  wheels = map (w: { inherit (w) kind url hash format; }) drv.passthru.wheels;
}
"""


def test_layer_nix_maps_the_lock_to_fixed_output_fetches() -> None:
    lock = read_lock(REPO / "layer" / "lock.json")
    result = _eval_json(STANDINS)
    assert isinstance(result, dict)
    (runtime,) = lock.runtime.files
    assert result["runtime"] == [
        {
            "kind": "fetchurl",
            "name": runtime.filename,  # unquoted: "%2B" is no valid store name
            "url": runtime.url,
            "hash": _sri(runtime.sha256),
        }
    ]
    compiler = lock.compiler(Arch.X86_64)
    assert compiler is not None
    assert result["compiler"] == [
        {"kind": "fetchurl", "name": f.filename, "url": f.url, "hash": _sri(f.sha256)}
        for f in compiler.files
    ]
    wheels = sorted(lock.wheels, key=lambda w: w.name)
    assert len(result["wheels"]) == len(wheels)
    by_file = {w["url"].rsplit("/", 1)[1]: w for w in result["wheels"]}
    for wheel in wheels:
        fetched = by_file[wheel.filename]  # the URL ends in exactly the locked file name
        assert fetched["kind"] == "fetchPypi" and fetched["format"] == "wheel"
        assert fetched["hash"] == _sri(wheel.sha256)
        python_tag = wheel.filename.split("-")[-3]
        assert re.fullmatch(
            rf"https://files\.pythonhosted\.org/packages/{re.escape(python_tag)}/"
            rf"./[A-Za-z0-9_.]+/{re.escape(wheel.filename)}",
            fetched["url"],
        )
    # nixpkgs' habits of patching ELF files and shebangs are off; the build is pinned in time
    assert result["dontStrip"] is result["dontPatchELF"] is result["dontFixup"] is True
    assert result["dontPatchShebangs"] is True
    assert result["SOURCE_DATE_EPOCH"] == "315576060"
    assert "pybuild build --offline --from inputs" in result["buildPhase"]
    assert "--python" not in result["buildPhase"]  # the lock's pinned compiler, not nixpkgs'


@pytest.mark.network
def test_sri_hashes_against_nix_fixed_output_fetch(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A real build with Nix's built-in fetchurl: the lock's hashes (converted by sri.nix)
    accept the locked files and a wrong hash is refused."""
    nix_build = _nix("nix-build")
    lock = read_lock(REPO / "layer" / "lock.json")
    wheels = sorted(
        (a for a in lock_artifacts(lock, host=None, mirrors={}) if a.kind == "wheel"),
        key=lambda a: a.want.size,
    )[:3]
    cache = Cache(tmp_path / "cache")
    fetched = fetch_artifacts(wheels, cache, indexes=configured_indexes(), ui=Ui(quiet=True))
    # Nix's fetcher runs as a build user: the files must be readable to it.
    shared = Path(tempfile.mkdtemp(prefix="pybuild-nix-"))
    shared.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(shared, ignore_errors=True))
    for result in fetched:
        want = result.artifact.want
        copy = shared / want.filename
        shutil.copy(result.path, copy)
        copy.chmod(0o644)
        assert file_sha256(copy) == (want.sha256, want.size)
        for digest, ok in ((want.sha256, True), ("0" * 64, False)):
            expression = (
                f'import <nix/fetchurl.nix> {{ url = "{copy.as_uri()}"; '
                f'hash = import {REPO}/nix/sri.nix "{digest}"; }}'
            )
            built = subprocess.run(
                [nix_build, "--no-out-link", "-E", expression],
                env=NIX_ENV,
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            if ok:
                assert built.returncode == 0, built.stderr
                store_path = Path(built.stdout.strip())
                assert store_path.read_bytes() == copy.read_bytes()
            else:
                assert built.returncode != 0
                assert "hash mismatch" in built.stderr


def test_flake_lock_pins_nixpkgs() -> None:
    lock = json.loads((REPO / "flake.lock").read_text())
    assert lock["version"] == 7 and lock["root"] == "root"
    assert lock["nodes"]["root"] == {"inputs": {"nixpkgs": "nixpkgs"}}
    assert set(lock["nodes"]) == {"root", "nixpkgs"}  # nixpkgs is the only input
    node = lock["nodes"]["nixpkgs"]
    locked = node["locked"]
    assert locked["type"] == "github" and (locked["owner"], locked["repo"]) == ("NixOS", "nixpkgs")
    assert re.fullmatch(r"[0-9a-f]{40}", locked["rev"])
    assert locked["narHash"].startswith("sha256-")
    assert len(base64.b64decode(locked["narHash"].removeprefix("sha256-"))) == 32
    assert node["original"]["ref"].startswith("nixos-")  # a release branch
    flake = (REPO / "flake.nix").read_text()
    assert "github:NixOS/nixpkgs/" + node["original"]["ref"] in flake
    assert "lib.genAttrs" in flake and "flake-utils" not in flake


def test_tool_deps_match_pyproject_pins() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = {}
    for dependency in project["dependencies"]:
        name, _, version = dependency.partition("==")
        pins[name.strip()] = version.split()[0]
    deps = json.loads((REPO / "nix" / "tool-deps.json").read_text())
    for name, entry in deps.items():
        assert entry["version"] == pins[name], name
        files = [entry.get("wheel"), entry.get("sdist"), *entry.get("wheels", {}).values()]
        for file in filter(None, files):
            assert f"-{pins[name]}" in file["filename"]
            assert re.fullmatch(r"[0-9a-f]{64}", file["sha256"])
