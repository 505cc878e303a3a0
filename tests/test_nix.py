"""The Nix side, as far as Nix 2.8 without nixpkgs can take it (nixpkgs is not reachable here):
every file parses; every output of the flake, for both systems, evaluated against a stand-in
nixpkgs that enforces nixpkgs' rules (tests/fixtures/nixpkgs-standin), without an evaluation
warning, and each failure of issue 13 and of the Nix review reintroduced and refused; the smoke
check's sysroot command run against nixpkgs' directory layout for both build hosts; which
packages of the checks' environment the pins rebuild; fetches named like the runtime's built
with Nix's own fetcher; the SRI hashes; flake.lock; nix/tool-deps.json (Linux wheels, chosen by
tag; the requirements the stand-in checks); and `pybuild build --pinned-compiler`, the handover
of the compiler Nix unpacks."""

from __future__ import annotations

import base64
import dataclasses
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import urllib.parse
import zipfile
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import parse_wheel_filename

from conftest import REPO
from helpers import fixture_lock, make_fake_runtime, make_wheel, write_layer
from pybuild.cli import main
from pybuild.model.layerfile import Provider, load_layer
from pybuild.model.lockfile import LockedFile, LockedRuntime, read_lock
from pybuild.model.target import Arch
from pybuild.pipeline import BuildRequest, build
from pybuild.runtimes.compiler import Compiler, host_arch
from pybuild.stages.archive import DEFAULT_EPOCH
from pybuild.stages.fetch import fetch_artifacts, lock_artifacts
from pybuild.stages.resolve import uv_binary
from pybuild.stages.sbom import SBOM_PATH
from pybuild.support.cache import Cache, file_sha256
from pybuild.support.index import configured_indexes
from pybuild.support.tools import check_tools
from pybuild.ui import Ui

# Nix as root on a machine without the `nixbld` group (Debian's nix-bin does not create it) and
# without its binary cache: builds run as the calling user, nothing is asked of cache.nixos.org.
NIX_ENV = {
    **os.environ,
    "NIX_CONFIG": "build-users-group =\nsubstituters =\nsandbox = false\n",
}
NIX_FILES = sorted(
    [
        REPO / "flake.nix",
        *REPO.glob("nix/*.nix"),
        *REPO.glob("layer/*.nix"),
        *REPO.glob("tests/fixtures/nixpkgs-standin/*.nix"),
    ]
)


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


# --- The flake, evaluated against a stand-in nixpkgs -----------------------------------------
#
# tests/fixtures/nixpkgs-standin is passed as `--override-input nixpkgs path:...` (a path input
# needs no network). It enforces the rules of nixpkgs that decide whether the flake evaluates
# and builds (its flake.nix names the nixpkgs source of each): fetchurl's store name and mirror
# names, fetchPypi's URLs, buildPythonPackage's `format`/`pyproject`, the build hooks each
# package gets (and so which packages a scope override rebuilds), the build-system check of
# `pyproject-build --no-isolation` and the runtime-dependency check for every package, the
# refusal of two packages of one name in a closure or an environment, the deprecation warnings
# of `pkgs.system` and `nixfmt-rfc-style`, pkgsCross of the build host being the native set,
# and where gcc and glibc put their libraries. Nix 2.8's
# `flake check --no-build` evaluates in read-only mode, where lib.fileset's filtered sources
# cannot be added to the store; every output is therefore forced with `nix eval` through a
# wrapper flake, which is what `flake check --no-build` does: each derivation's drvPath (so Nix
# validates every store name), each app's program.

STANDIN = REPO / "tests" / "fixtures" / "nixpkgs-standin"
FLAKES = ["--extra-experimental-features", "nix-command flakes"]
SYSTEMS = ("x86_64-linux", "aarch64-linux")
SKIP_COPY = {".git", ".venv", ".venv-aws", ".node-tools", "dist", "build", "node_modules"}

# Forces every output of the flake for both systems, and returns what the tests look at.
WRAPPER = """{
  inputs.pybuild.url = "path:@FLAKE@";
  outputs = { pybuild, ... }:
    let
      drvs = builtins.mapAttrs (_: d: d.drvPath);
      fetch = f: { inherit (f) name url outputHash drvPath; };
      detail = system:
        let
          packages = pybuild.packages.${system};
          layer = packages.layer;
          compiler = layer.passthru.compiler;
          nixpkgs = pybuild.inputs.nixpkgs.legacyPackages.${system};
          cross = nixpkgs.pkgsCross.aarch64-multiplatform;
          python = nixpkgs.python311;
        in {
          runtime = map fetch layer.passthru.runtime;
          wheels = map fetch layer.passthru.wheels;
          compiler = {
            inherit (compiler) installPhase interpreter;
            fetches = map (f: { inherit (f) name url outputHash; }) compiler.passthru.files;
            nativeBuildInputs = map (d: d.name) compiler.nativeBuildInputs;
            dontAutoPatchelf = compiler.dontAutoPatchelf or null;
            dontPatchELF = compiler.dontPatchELF or null;
          };
          layer = {
            inherit (layer) buildPhase SOURCE_DATE_EPOCH dontStrip dontPatchELF
              dontPatchShebangs dontFixup;
          };
          importsCheck = packages.pybuild.pythonImportsCheck;
          pytest = pybuild.checks.${system}.pytest.buildCommand;
          tool = { inherit (packages.pybuild) src; };
          # the smoke check's sysroot, and where the stand-in's glibc and gcc have their files
          sysroot = {
            inherit (pybuild.checks.${system}.smoke.sysroot) buildCommand;
            layouts = builtins.listToAttrs (map (d: {
              name = builtins.unsafeDiscardStringContext d.outPath; value = d.standinLayout; })
              [ nixpkgs.glibc nixpkgs.stdenv.cc.cc.lib cross.glibc cross.stdenv.cc.cc.lib ]);
          };
          # each package of the pytest check's environment, and nixpkgs' own of that name
          environment = map (p: {
            pname = p.pname or p.name;
            inherit (p) drvPath;
            version = p.version or null;
            nixpkgs = if p ? pname && python.pkgs ? ${p.pname}
              then { inherit (python.pkgs.${p.pname}) version drvPath; } else null;
          }) (builtins.head pybuild.checks.${system}.pytest.nativeBuildInputs).paths;
        };
    in {
      all = {
        packages = builtins.mapAttrs (_: drvs) pybuild.packages;
        checks = builtins.mapAttrs (_: drvs) pybuild.checks;
        devShells = builtins.mapAttrs (_: drvs) pybuild.devShells;
        formatter = drvs pybuild.formatter;
        apps = builtins.mapAttrs (_: builtins.mapAttrs (_: a: {
          inherit (a) type program;
          meta = a.meta or null;
        })) pybuild.apps;
        details = builtins.listToAttrs (map (s: { name = s; value = detail s; })
          [ "x86_64-linux" "aarch64-linux" ]);
      };
    };
}
"""


def _copy_flake(destination: Path) -> Path:
    """The work tree as a flake of its own (a `path:` flake sees uncommitted edits)."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        return {n for n in names if n in SKIP_COPY or n.endswith("_cache") or n == "__pycache__"}

    shutil.copytree(REPO, destination, ignore=ignore, symlinks=True)
    return destination


def _eval_flake(flake: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    wrapper = tmp_path / "wrapper"
    wrapper.mkdir(exist_ok=True)
    (wrapper / "flake.nix").write_text(WRAPPER.replace("@FLAKE@", str(flake)))
    return subprocess.run(
        [
            _nix("nix"),
            *FLAKES,
            "eval",
            "--json",
            "--no-write-lock-file",
            "--override-input",
            "pybuild/nixpkgs",
            f"path:{STANDIN}",
            f"path:{wrapper}#all",
        ],
        env=NIX_ENV,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _errors(result: subprocess.CompletedProcess[str]) -> str:
    return "\n".join(line for line in result.stderr.splitlines() if line.startswith("error"))


@pytest.fixture(scope="module")
def flake_eval(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    tmp = tmp_path_factory.mktemp("flake")
    result = _eval_flake(_copy_flake(tmp / "pybuild"), tmp)
    assert result.returncode == 0, _errors(result) or result.stderr
    return result


@pytest.fixture(scope="module")
def flake_outputs(flake_eval: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    outputs = json.loads(flake_eval.stdout)
    assert isinstance(outputs, dict)
    return outputs


def _warnings(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if "evaluation warning" in line]


def test_the_flake_evaluates_without_a_warning(
    flake_eval: subprocess.CompletedProcess[str],
) -> None:
    """The stand-in warns where nixpkgs warns (deprecated aliases: `pkgs.system`,
    `nixfmt-rfc-style`), as an "evaluation warning" on stderr: there must be none."""
    assert _warnings(flake_eval) == []


def test_every_output_evaluates_for_both_systems(flake_outputs: dict[str, Any]) -> None:
    for kind in ("packages", "checks", "devShells", "formatter", "apps"):
        assert sorted(flake_outputs[kind]) == sorted(SYSTEMS), kind
    for system in SYSTEMS:
        assert set(flake_outputs["packages"][system]) == {
            "default",
            "layer",
            "pinned-compiler",
            "pybuild",
        }
        assert set(flake_outputs["checks"][system]) == {
            "mypy",
            "pytest",
            "reproducible",
            "ruff",
            "smoke",
            "verify",
        }
        for app in flake_outputs["apps"][system].values():
            assert app["type"] == "app" and app["program"].endswith("/bin/pybuild")
            # newer Nix's `flake check` warns about an app without a description
            assert isinstance(app["meta"], dict), app
            assert isinstance(app["meta"]["description"], str) and app["meta"]["description"]


@pytest.mark.parametrize("system", SYSTEMS)
def test_every_fetch_is_named_after_its_file(flake_outputs: dict[str, Any], system: str) -> None:
    """nixpkgs' fetchurl names a fetch after the URL's last component unless told otherwise;
    the runtime's and the compiler's URLs hold "%2B", which no store name may."""
    lock = read_lock(REPO / "layer" / "lock.json")
    detail = flake_outputs["details"][system]
    (runtime,) = lock.runtime.files
    assert [(f["name"], f["url"], f["outputHash"]) for f in detail["runtime"]] == [
        (runtime.filename, runtime.url, _sri(runtime.sha256))
    ]
    assert "%2B" in (runtime.url or "") and "+" in runtime.filename
    compiler = lock.compiler(Arch(system.split("-", maxsplit=1)[0]))
    assert compiler is not None
    assert detail["compiler"]["fetches"] == [
        {"name": f.filename, "url": f.url, "outputHash": _sri(f.sha256)} for f in compiler.files
    ]
    wheels = {w.filename: w for w in lock.wheels}
    assert len(detail["wheels"]) == len(wheels)
    for fetched in detail["wheels"]:
        wheel = wheels[fetched["name"]]  # named by nixpkgs after the URL: the wheel's file name
        assert fetched["outputHash"] == _sri(wheel.sha256)
        python_tag = wheel.filename.split("-")[-3]
        assert re.fullmatch(
            rf"https://files\.pythonhosted\.org/packages/{re.escape(python_tag)}/"
            rf"./[A-Za-z0-9_.]+/{re.escape(wheel.filename)}",
            fetched["url"],
        )


@pytest.mark.parametrize("system", SYSTEMS)
def test_the_layer_is_compiled_by_the_locks_pinned_compiler(
    flake_outputs: dict[str, Any], system: str
) -> None:
    detail = flake_outputs["details"][system]
    compiler = detail["compiler"]
    # the archive unpacked, the interpreter of that copy (and nothing else) patched: neither
    # autoPatchelf over the output nor fixup's patchELF (it shrinks every ELF file's RPATH)
    assert compiler["dontAutoPatchelf"] is True
    assert compiler["dontPatchELF"] is True
    assert "auto-patchelf-hook" in " ".join(compiler["nativeBuildInputs"])
    assert "tar -xzf" in compiler["installPhase"]
    assert "autoPatchelf -- $out/python/bin/python3.11" in compiler["installPhase"]
    assert compiler["interpreter"].endswith(
        "-pybuild-pinned-compiler-3.11.15/python/bin/python3.11"
    )
    layer = detail["layer"]
    assert f"--pinned-compiler {compiler['interpreter']}" in layer["buildPhase"]
    assert "pybuild build --offline --from inputs" in layer["buildPhase"]
    assert "--python " not in layer["buildPhase"]
    # nixpkgs' fixup would patch the layer's ELF files and shebangs: off
    assert layer["dontStrip"] is layer["dontPatchELF"] is layer["dontFixup"] is True
    assert layer["dontPatchShebangs"] is True
    assert layer["SOURCE_DATE_EPOCH"] == "315576060"


@pytest.mark.parametrize("system", SYSTEMS)
def test_pybuild_imports_what_the_cli_does_not(flake_outputs: dict[str, Any], system: str) -> None:
    """`import pybuild.cli` loads neither lief nor deflate: a wrong-platform wheel of either
    would pass an import check on the CLI alone."""
    checked = flake_outputs["details"][system]["importsCheck"]
    assert {"pybuild.cli", "lief", "deflate"} <= set(checked)


@pytest.mark.parametrize("system", SYSTEMS)
def test_the_pytest_check_finds_nixpkgs_uv(flake_outputs: dict[str, Any], system: str) -> None:
    script = flake_outputs["details"][system]["pytest"]
    assert re.search(
        r"export HOME=\"\$TMPDIR\" PYBUILD_UV=/nix/store/[a-z0-9]{32}-uv-[^/]+/bin/uv", script
    )


def test_editing_docs_does_not_rebuild_the_layer(
    flake_outputs: dict[str, Any], tmp_path: Path
) -> None:
    """lib.fileset: the tool's source is pyproject.toml, README.md (its long description) and
    pybuild/; the layer's inputs are layer/, requirements.txt and the tool."""
    flake = _copy_flake(tmp_path / "pybuild")
    guide = flake / "docs" / "build-guide.md"
    guide.write_text(guide.read_text() + "\nAn edit.\n")
    result = _eval_flake(flake, tmp_path)
    assert result.returncode == 0, _errors(result)
    edited = json.loads(result.stdout)
    assert edited["packages"] == flake_outputs["packages"]


# Each of the failures of issue 13 and of the Nix review, reintroduced in a copy of the flake: the
# stand-in must refuse it as nixpkgs does (the rule named in the stand-in's flake.nix). Each is
# a list of edits (file, old text, new text) and the message expected.
Edit = tuple[str, str, str]
REINTRODUCED: dict[str, tuple[list[Edit], str]] = {
    "fetch named after its URL": (
        [("layer/default.nix", "      name = file.filename;\n", "")],
        "contains illegal character '%'",
    ),
    "build-system pinned above nixpkgs' setuptools": (
        [
            (
                "pyproject.toml",
                'requires = ["setuptools>=77.0.3"]',
                'requires = ["setuptools==84.2.1"]',
            )
        ],
        "Missing dependencies: setuptools==84.2.1 (nixpkgs provides 80.9.0)",
    ),
    # pybuild takes the pin, pytest nixpkgs' own
    "pinned packaging beside nixpkgs' own": (
        [
            (
                "nix/python.nix",
                "    packaging = final.buildPythonPackage {",
                "    pinnedPackaging = final.buildPythonPackage {",
            ),
            (
                "nix/python.nix",
                "final.packaging\n      final.pyelftools",
                "final.pinnedPackaging\n      final.pyelftools",
            ),
            ("nix/pybuild.nix", "ps.packaging\n", "ps.pinnedPackaging\n"),
        ],
        "collision between two packages of one name, packaging-",
    ),
    # wheelUnpackHook propagates the scope's `wheel`, which depends on the scope's `packaging`
    "pinned packaging built from a wheel": (
        [
            (
                "nix/python.nix",
                '      pyproject = true;\n      src = fetchPypi {\n        pname = "packaging";',
                '      format = "wheel";\n      src = fetchPypi {\n        pname = "packaging";',
            )
        ],
        "infinite recursion encountered",
    ),
    # the checks run for every package, not only for pybuild (review, 5)
    "an sdist built without its build system": (
        [("nix/python.nix", "build-system = [ final.scikit-build-core ];", "build-system = [ ];")],
        "deflate: pyproject-build --no-isolation: ERROR Missing dependencies: "
        "scikit-build-core>=0.9 (nixpkgs provides none)",
    ),
    "a pinned package without its dependencies": (
        [
            (
                "nix/python.nix",
                "      final.packaging\n      final.pyelftools\n",
                "      final.packaging\n",
            )
        ],
        "auditwheel: pythonRuntimeDepsCheck: pyelftools>=0.24 not satisfied",
    ),
    # buildPythonPackage's `format` and `pyproject` (review, 6)
    "both format and pyproject": (
        [
            (
                "nix/python.nix",
                '        format = "wheel";\n',
                '        format = "wheel";\n        pyproject = false;\n',
            )
        ],
        "assertion '((pyproject != null) -> (format == null))' failed",
    ),
    "neither format nor pyproject": (
        [("nix/python.nix", '        format = "wheel";\n', "")],
        "does not configure a `format`. To build with setuptools as before, set `pyproject = true`",
    ),
}

# What nixpkgs evaluates with a warning (aliases.nix), reintroduced: the stand-in warns too.
WARNED: dict[str, tuple[list[Edit], str]] = {
    "pkgs.system": (
        [
            (
                "flake.nix",
                "self.packages.${pkgs.stdenv.hostPlatform.system}.pybuild\n",
                "self.packages.${pkgs.system}.pybuild\n",
            )
        ],
        "evaluation warning: 'system' has been renamed to/replaced by 'stdenv.hostPlatform.system'",
    ),
    "nixfmt-rfc-style": (
        [("flake.nix", "forEach (pkgs: pkgs.nixfmt);", "forEach (pkgs: pkgs.nixfmt-rfc-style);")],
        "evaluation warning: nixfmt-rfc-style is now the same as pkgs.nixfmt",
    ),
}


def _edited_flake(tmp_path: Path, edits: list[Edit]) -> Path:
    flake = _copy_flake(tmp_path / "pybuild")
    for relative, old, new in edits:
        path = flake / relative
        text = path.read_text()
        assert text.count(old) == 1, (relative, old)
        path.write_text(text.replace(old, new))
    return flake


@pytest.mark.parametrize("name", sorted(REINTRODUCED))
def test_the_standin_refuses_what_nixpkgs_refuses(name: str, tmp_path: Path) -> None:
    edits, message = REINTRODUCED[name]
    result = _eval_flake(_edited_flake(tmp_path, edits), tmp_path)
    assert result.returncode != 0
    assert message in result.stderr, _errors(result)


@pytest.mark.parametrize("name", sorted(WARNED))
def test_the_standin_warns_where_nixpkgs_warns(name: str, tmp_path: Path) -> None:
    edits, message = WARNED[name]
    result = _eval_flake(_edited_flake(tmp_path, edits), tmp_path)
    assert result.returncode == 0, _errors(result)
    assert any(message in line for line in _warnings(result)), result.stderr


# --- The smoke check's aarch64 sysroot -------------------------------------------------------

# What `pybuild smoke` needs of it: glibc and gcc's runtime (libgcc_s, libstdc++), no more.
SYSROOT_LIBS = {
    "ld-linux-aarch64.so.1",
    "libc.so.6",
    "libm.so.6",
    "libgcc_s.so",
    "libgcc_s.so.1",
    "libstdc++.so",
    "libstdc++.so.6",
    "libstdc++.so.6.0.34",
}


def _run_sysroot(detail: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The sysroot's build command, run by bash with the options nixpkgs' stdenv sets
    (`set -eu -o pipefail`), each store path it names replaced by a tree of that package's
    files as nixpkgs lays them out (the stand-in's `standinLayout`)."""
    command = detail["sysroot"]["buildCommand"]
    for store_path, files in detail["sysroot"]["layouts"].items():
        tree = tmp_path / "store" / Path(store_path).name
        for file in files:
            (tree / file).parent.mkdir(parents=True, exist_ok=True)
            (tree / file).write_text(f"{store_path}/{file}\n")
        command = command.replace(store_path, str(tree))
    assert "/nix/store/" not in command, command  # each package it copies from has a layout
    return subprocess.run(
        ["bash", "-eu", "-o", "pipefail", "-c", command],
        env={**os.environ, "out": str(tmp_path / "out")},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("system", SYSTEMS)
def test_the_sysroot_is_copied_from_where_nixpkgs_puts_the_libraries(
    flake_outputs: dict[str, Any], system: str, tmp_path: Path
) -> None:
    """From an x86_64 host the libraries are a cross gcc's, under aarch64-unknown-linux-gnu/lib;
    from an aarch64 host pkgsCross.aarch64-multiplatform is the native set, and native gcc has
    them in lib/ (review, 1)."""
    detail = flake_outputs["details"][system]
    gcc = [
        files
        for path, files in detail["sysroot"]["layouts"].items()
        if path in detail["sysroot"]["buildCommand"] and any("libgcc_s" in f for f in files)
    ]
    native = system == "aarch64-linux"
    assert [{f.rsplit("/", 1)[0] for f in files} for files in gcc] == [
        {"lib" if native else "aarch64-unknown-linux-gnu/lib"}
    ]
    result = _run_sysroot(detail, tmp_path)
    assert result.returncode == 0, result.stderr
    assert {p.name for p in (tmp_path / "out" / "lib").iterdir()} == SYSROOT_LIBS


def test_a_cross_gcc_path_fails_on_an_aarch64_host(tmp_path: Path) -> None:
    """The sysroot as it was (gcc's libraries always under aarch64-unknown-linux-gnu/lib/)
    builds from an x86_64 host and fails from an aarch64 one."""
    flake = _edited_flake(
        tmp_path, [("nix/checks.nix", "/${gccLibDir}/", "/aarch64-unknown-linux-gnu/lib/")]
    )
    result = _eval_flake(flake, tmp_path)
    assert result.returncode == 0, _errors(result)
    details = json.loads(result.stdout)["details"]
    assert _run_sysroot(details["x86_64-linux"], tmp_path / "x86_64").returncode == 0
    failed = _run_sysroot(details["aarch64-linux"], tmp_path / "aarch64")
    assert failed.returncode != 0 and "cannot stat" in failed.stderr


# --- What the scope override of nix/python.nix rebuilds ----------------------------------------

# Each package of the pytest check's environment against nixpkgs' own of that name, in the
# stand-in's model of nixpkgs' hooks: "pinned" (pybuild's own, or another version than
# nixpkgs'), "rebuilt" (nixpkgs' version, but another derivation than nixpkgs': not in its binary
# cache, built from source), "nixpkgs" (nixpkgs' own derivation). Overriding `packaging` in the
# scope changes pythonRuntimeDepsCheckHook and (through `wheel`) pypaBuildHook, which every
# pyproject package but the bootstrap ones builds with: nothing of nixpkgs' is left.
CHECK_ENVIRONMENT = {
    "pinned": {"auditwheel", "deflate", "installer", "lief", "packaging", "pybuild"},
    "rebuilt": {
        "attrs",
        "boolean-py",
        "cyclonedx-python-lib",
        "defusedxml",
        "hypothesis",
        "iniconfig",
        "jsonschema",
        "jsonschema-specifications",
        "license-expression",
        "markdown-it-py",
        "mdurl",
        "mypy",
        "mypy-extensions",
        "packageurl-python",
        "pathspec",
        "pluggy",
        "py-serializable",
        "pyelftools",
        "pygments",
        "pytest",
        "pytest-timeout",
        "referencing",
        "rich",
        "rpds-py",
        "sortedcontainers",
        "typing-extensions",
    },
    "nixpkgs": set(),
}


@pytest.mark.parametrize("system", SYSTEMS)
def test_which_packages_of_the_check_environment_are_rebuilt(
    flake_outputs: dict[str, Any], system: str
) -> None:
    kinds: dict[str, set[str]] = {kind: set() for kind in CHECK_ENVIRONMENT}
    for package in flake_outputs["details"][system]["environment"]:
        own = package["nixpkgs"]
        if own is None or own["version"] != package["version"]:
            kinds["pinned"].add(package["pname"])
        elif own["drvPath"] != package["drvPath"]:
            kinds["rebuilt"].add(package["pname"])
        else:
            kinds["nixpkgs"].add(package["pname"])
    assert kinds == CHECK_ENVIRONMENT


def test_a_url_named_fetch_fails_and_a_file_named_one_builds(tmp_path: Path) -> None:
    """The rule itself, on the stand-in's fetchurl (nixpkgs' naming) and Nix's own
    <nix/fetchurl.nix>: a name with "%" is refused; the unquoted file name builds."""
    lock = read_lock(REPO / "layer" / "lock.json")
    (runtime,) = lock.runtime.files
    shared = Path(tempfile.mkdtemp(prefix="pybuild-nix-"))
    try:
        shared.chmod(0o755)
        local = shared / runtime.filename
        local.write_bytes(b"a stand-in for the runtime archive\n")
        local.chmod(0o644)
        digest, _ = file_sha256(local)
        url = local.parent.as_uri() + "/" + urllib.parse.quote(local.name)
        assert "%2B" in url
        standin = (
            f"(import {STANDIN}/pkgs.nix {{ lib = import {STANDIN}/lib.nix; "
            f'system = builtins.currentSystem; }}).fetchurl {{ url = "{url}"; '
            f'hash = "{_sri(digest)}"; }}'
        )
        refused = subprocess.run(
            [_nix("nix-instantiate"), "--eval", "-E", f"({standin}).drvPath"],
            env=NIX_ENV,
            capture_output=True,
            text=True,
            check=False,
        )
        assert refused.returncode != 0
        assert "contains illegal character '%'" in refused.stderr
        for expression in (
            standin.replace(f'url = "{url}";', f'url = "{url}"; name = "{runtime.filename}";'),
            f'import <nix/fetchurl.nix> {{ url = "{url}"; name = "{runtime.filename}"; '
            f'hash = "{_sri(digest)}"; }}',
        ):
            built = subprocess.run(
                [_nix("nix-build"), "--no-out-link", "-E", expression],
                env=NIX_ENV,
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
            assert built.returncode == 0, built.stderr
            store_path = Path(built.stdout.strip())
            assert store_path.name.endswith("-" + runtime.filename)
            assert store_path.read_bytes() == local.read_bytes()
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def _standin_eval(expression: str) -> subprocess.CompletedProcess[str]:
    """`expression` evaluated (strictly, as JSON) with `pkgs`, the stand-in's package set for
    `system` (a free variable of the expression: bind it with a `let`)."""
    prelude = (
        f"let lib = import {STANDIN}/lib.nix; "
        f"standin = system: import {STANDIN}/pkgs.nix {{ inherit lib system; }}; in "
    )
    return subprocess.run(
        [_nix("nix-instantiate"), "--eval", "--strict", "--json", "-E", prelude + expression],
        env=NIX_ENV,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("url", "known"),
    [
        ("mirror://debian/pool/main/p/python3.11/python3.11-minimal_3.11.2-6_arm64.deb", True),
        ("mirror://pypi/p/packaging/packaging-26.3.tar.gz", True),
        ("mirror://debian-security/pool/updates/main/p/python3.11/x.deb", False),
        ("mirror://nosuchsite/x.tar.gz", False),
    ],
)
def test_the_standin_knows_nixpkgs_mirror_sites(url: str, known: bool) -> None:
    """nixpkgs' fetchurl throws "unknown mirror:// site" for a name its mirrors.nix lacks (for
    one like "debian-security", not all letters, its builder fails instead): the stand-in
    refuses both at evaluation (review, 7)."""
    result = _standin_eval(
        f'((standin "x86_64-linux").fetchurl {{ url = "{url}"; '
        f'hash = "{_sri("0" * 64)}"; }}).drvPath'
    )
    if known:
        assert result.returncode == 0, result.stderr
    else:
        site = url.split("/")[2]
        assert result.returncode != 0 and f"unknown mirror:// site {site}" in result.stderr


def _debian_layer_fetches(repo: Path, system: str) -> subprocess.CompletedProcess[str]:
    return _standin_eval(
        f'let pkgs = standin "{system}"; '
        f"layer = pkgs.callPackage {repo}/layer {{ pybuild = pkgs.uv; "
        f"layerDir = {repo}/examples/debian12-arm64; }}; in "
        "map (f: { inherit (f) name url drvPath; }) "
        "(layer.passthru.runtime ++ layer.passthru.compiler.passthru.files)"
    )


@pytest.mark.parametrize("system", SYSTEMS)
def test_a_debian_runtime_lock_is_fetched_by_url(system: str, tmp_path: Path) -> None:
    """layer/default.nix on a Debian runtime's lock (examples/debian12-arm64, all from
    debian-security, a site nixpkgs' mirrors.nix does not name): each file fetched from its
    URL, and refused as `mirror://debian-security/...`."""
    result = _debian_layer_fetches(REPO, system)
    assert result.returncode == 0, result.stderr
    lock = read_lock(REPO / "examples" / "debian12-arm64" / "lock.json")
    compiler = lock.compiler(Arch(system.split("-", maxsplit=1)[0]))
    assert compiler is not None
    files = [*lock.runtime.files, *compiler.files]
    fetches = json.loads(result.stdout)
    assert [f["name"] for f in fetches] == [f.filename for f in files]
    for fetch, file in zip(fetches, files, strict=True):
        assert file.debian is not None
        assert fetch["url"] == f"https://deb.debian.org/debian-security/{file.debian.path}"
    mirrored = _edited_flake(
        tmp_path,
        [
            (
                "layer/default.nix",
                '"https://deb.debian.org/debian-security/',
                '"mirror://debian-security/',
            )
        ],
    )
    refused = _debian_layer_fetches(mirrored, system)
    assert refused.returncode != 0
    assert "unknown mirror:// site debian-security" in refused.stderr


# --- The tool-dependency wheels ---------------------------------------------------------------

NIX_MACHINES = {"x86_64-linux": "x86_64", "aarch64-linux": "aarch64"}
# nixpkgs' glibc on the pinned release is at least this (2.40 since nixos-24.11).
NIXPKGS_GLIBC = (2, 40)


def _tool_deps_script() -> Any:
    spec = importlib.util.spec_from_file_location(
        "nix_tool_deps", REPO / "scripts" / "nix-tool-deps.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _linux_wheel_for(filename: str, machine: str) -> bool:
    """Would pip on CPython 3.11, glibc NIXPKGS_GLIBC Linux `machine`, install this wheel?"""
    _, _, _, tags = parse_wheel_filename(filename)
    for tag in tags:
        if tag.interpreter not in ("cp311", "py3", "py311") or tag.abi not in (
            "cp311",
            "abi3",
            "none",
        ):
            continue
        legacy = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}
        found = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", tag.platform)
        alias = re.fullmatch(r"(manylinux\w+?)_(x86_64|aarch64|i686)", tag.platform)
        if found and found[3] == machine:
            if (int(found[1]), int(found[2])) <= NIXPKGS_GLIBC:
                return True
        elif (alias and alias[1] in legacy and alias[2] == machine) or tag.platform == "any":
            return True
    return False


def test_tool_deps_are_linux_wheels_for_their_system() -> None:
    deps = json.loads((REPO / "nix" / "tool-deps.json").read_text())
    for name, entry in deps.items():
        if "wheel" in entry:
            assert entry["wheel"]["platform"] == "any", name
        for system, wheel in entry.get("wheels", {}).items():
            assert _linux_wheel_for(wheel["filename"], NIX_MACHINES[system]), (
                f"{name}: {wheel['filename']} is not a CPython 3.11 wheel for {system}"
            )
            assert wheel["platform"] == wheel["filename"][:-4].split("-")[-1]
    assert set(deps["lief"]["wheels"]) == set(NIX_MACHINES)


def test_tool_deps_script_chooses_by_tag_not_by_suffix() -> None:
    script = _tool_deps_script()
    files = [
        "lief-1.0.0-cp311-cp311-macosx_11_0_x86_64.whl",  # listed first, as PyPI does
        "lief-1.0.0-cp311-cp311-macosx_11_0_arm64.whl",
        "lief-1.0.0-cp311-cp311-manylinux_2_28_aarch64.whl",
        "lief-1.0.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        "lief-1.0.0-cp311-cp311-musllinux_1_2_x86_64.whl",
        "lief-1.0.0-cp311-cp311-win_amd64.whl",
        "lief-1.0.0-cp312-cp312-manylinux_2_28_x86_64.whl",
    ]
    assert (
        script.choose_wheel(files, "x86_64") == "lief-1.0.0-cp311-cp311-manylinux_2_28_x86_64.whl"
    )
    assert script.choose_wheel(files, "aarch64") == (
        "lief-1.0.0-cp311-cp311-manylinux_2_28_aarch64.whl"
    )
    assert script.choose_wheel(files[:2], "x86_64") is None
    assert script.NIXPKGS_GLIBC == NIXPKGS_GLIBC


def test_the_standin_knows_what_each_pinned_file_holds() -> None:
    """nixpkgs' hooks read a package's requirements from its unpacked wheel or sdist; the
    stand-in, which cannot fetch them, reads tool-deps.json's record of them (its copy,
    dists.json, keyed by each file's hash), so that it checks every pinned package's build
    system and dependencies (review, 5). Both are written by scripts/nix-tool-deps.py."""
    deps = json.loads((REPO / "nix" / "tool-deps.json").read_text())
    for name, entry in deps.items():
        assert isinstance(entry["requires_dist"], list), name
        assert ("sdist" in entry) == ("build_system_requires" in entry), name
    dists = json.loads((STANDIN / "dists.json").read_text())
    assert dists == _tool_deps_script().standin_dists(deps)
    assert deps["auditwheel"]["requires_dist"] == ["packaging>=20.9", "pyelftools>=0.24"]
    assert deps["deflate"]["build_system_requires"] == ["scikit-build-core>=0.9"]


def test_tool_deps_script_keeps_requirements_for_nixpkgs_python() -> None:
    script = _tool_deps_script()
    assert script.applicable(
        [
            "packaging>=20",
            'tomli>=1; python_version < "3.11"',
            'colorama; sys_platform == "win32"',
            'pytest>=7; extra == "test"',
            'typing-extensions>=4.4; python_version < "3.13"',
        ]
    ) == ["packaging>=20", "typing-extensions>=4.4"]
    with pytest.raises(SystemExit, match="applies on one Linux system only"):
        script.applicable(['lief; platform_machine == "x86_64"'])


# --- --pinned-compiler: the lock's compiler, unpacked by other means ----------------------------


def _pinned_layer(tmp_path: Path, version: str) -> Path:
    """A layer whose lock pins, for this host, a compiler of CPython `version`."""
    host = host_arch()
    if host is None:
        pytest.skip(f"{platform.machine()} is no Lambda architecture")
    wheel = make_wheel(tmp_path / "inputs", "app", "1.0", files={"app/__init__.py": b"X = 1\n"})
    runtime = make_fake_runtime(tmp_path / "inputs")
    path = write_layer(tmp_path / "layer", "app==1.0\n", runtime=runtime)
    lock, _ = fixture_lock(load_layer(path), runtime, [wheel])
    stand_in = LockedRuntime(
        provider=Provider.PBS,
        python_version=version,
        description=f"a CPython {version} for {host.value} hosts",
        files=(LockedFile(filename="compiler.tar.gz", sha256="0" * 64, size=1, url="file:///x"),),
    )
    lock = dataclasses.replace(lock, compilers=((host, stand_in),))
    (path.parent / "lock.json").write_text(lock.to_json())
    return path


def test_pinned_compiler_is_a_pinned_build(tmp_path: Path, isolated_env: Path) -> None:
    """`--pinned-compiler` gives the zip and SBOM of a build with the lock's own compiler."""
    path = _pinned_layer(tmp_path, platform.python_version())
    out = tmp_path / "out"
    command = ["build", "-q", "--offline", "--from", str(tmp_path / "inputs"), "--layer"]
    assert main([*command, str(path), "--out", str(out), "--pinned-compiler", sys.executable]) == 0
    report = json.loads((out / "testlayer.report.json").read_text())
    assert report["bytecode"]["compiler_pinned"] is True
    assert report["bytecode"]["compiler"].endswith("(compiler.tar.gz), --pinned-compiler")
    with zipfile.ZipFile(out / "testlayer.zip") as archive:
        sbom = json.loads(archive.read(SBOM_PATH))
    names = {p["name"] for p in sbom["metadata"]["component"].get("properties", [])}
    assert "pybuild:bytecode_compiler_pinned" not in names  # pinned: no "not pinned" mark
    # the same request with the lock's compiler as a native build makes the same bytes
    layer = load_layer(path)
    lock = read_lock(path.parent / "lock.json")
    pinned = lock.compiler(Arch(platform.machine()))
    assert pinned is not None
    files = {file_sha256(f)[0]: f for f in (tmp_path / "inputs").iterdir()}
    native = build(
        BuildRequest(
            layer=layer,
            lock=lock,
            files=files,
            out_dir=tmp_path / "native",
            cache=Cache(isolated_env),
            compiler=Compiler((sys.executable,), pinned.python_version, pinned, "native"),
            tools=check_tools(),
            epoch=DEFAULT_EPOCH,
        ),
        Ui(quiet=True),
    )
    assert native.archive.path.read_bytes() == (out / "testlayer.zip").read_bytes()


def test_pinned_compiler_of_another_version_is_refused(
    tmp_path: Path, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _pinned_layer(tmp_path, "3.11.99")
    command = ["build", "--offline", "--from", str(tmp_path / "inputs"), "--layer", str(path)]
    assert (
        main([*command, "--out", str(tmp_path / "out"), "--pinned-compiler", sys.executable]) == 2
    )
    host = host_arch()
    assert host is not None
    assert capsys.readouterr().err == (
        f"error: --pinned-compiler {sys.executable}: runs as cpython {platform.python_version()}, "
        f"but the lock pins CPython 3.11.99 for {host} hosts (a CPython 3.11.99 for "
        f"{host.value} hosts)\n"
    )


def test_isolated_env_keeps_the_uv_binary(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """The Nix pytest check sets PYBUILD_UV to nixpkgs' uv (its environment has no uv module);
    the fixture that clears pybuild's variables must keep that one."""
    monkeypatch.setenv("PYBUILD_UV", "/nix/store/0-uv/bin/uv")
    monkeypatch.setenv("PYBUILD_INDEX_URL", "http://example.invalid/simple")
    request.getfixturevalue("isolated_env")
    assert "PYBUILD_INDEX_URL" not in os.environ
    assert uv_binary() == "/nix/store/0-uv/bin/uv"


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


# The pinned nixpkgs, as checked against pins other projects publish (docs/build-guide.md, "Nix"):
# nixos-26.05 on 2026-09-18; the NAR hash of that revision's tree.
NIXPKGS_PIN = {
    "rev": "cf9d2fb3e50fa1cd5114c47505ea9177f7ff5f49",
    "narHash": "sha256-cFTsMQz8Hzn8MT49oaeLSHg62tE86NykugCWkeM2ypk=",
    "lastModified": 1789749394,
}
# NixOS releases are supported for seven months: until these dates (nixos.org release notes).
SUPPORTED_UNTIL = {"nixos-26.05": "2026-12-31"}


def test_flake_lock_pins_nixpkgs() -> None:
    lock = json.loads((REPO / "flake.lock").read_text())
    assert lock["version"] == 7 and lock["root"] == "root"
    assert lock["nodes"]["root"] == {"inputs": {"nixpkgs": "nixpkgs"}}
    assert set(lock["nodes"]) == {"root", "nixpkgs"}  # nixpkgs is the only input
    node = lock["nodes"]["nixpkgs"]
    locked = node["locked"]
    assert locked["type"] == "github" and (locked["owner"], locked["repo"]) == ("NixOS", "nixpkgs")
    assert {k: locked[k] for k in NIXPKGS_PIN} == NIXPKGS_PIN
    assert len(base64.b64decode(locked["narHash"].removeprefix("sha256-"))) == 32
    # a release branch still supported when the pin was made (nixos-25.05 ended 2025-12-31)
    assert node["original"]["ref"] in SUPPORTED_UNTIL
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
