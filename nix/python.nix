# nixpkgs' Python 3.11 package set, with the packages pyproject.toml pins in place of nixpkgs' own:
# one consistent set for pybuild and its checks, so that no environment holds two copies of a
# package (nixpkgs' buildEnv refuses two files at one path; its catch-conflicts hook refuses two
# versions of a package in one closure). pytest, for one, depends on `packaging`: in this set it
# gets pybuild's pin.
#
# Type: { lib, stdenv, python311, fetchPypi, autoPatchelfHook, cmake, ninja } -> python package set
# Example:
#   ps = pkgs.callPackage ./nix/python.nix { };
#   ps.python.buildEnv.override { extraLibs = [ ps.pytest ps.packaging ]; }
#
# The override is a scope override of the host packages (`overrideScope`), not of the
# interpreter (`python311.override { packageOverrides }`): the build Python and its own set
# (python.pythonOnBuildForHost.pkgs, where pypaBuildHook takes `build` and pypaInstallHook
# `installer`) stay nixpkgs'. Environments must then be made with
# `ps.python.buildEnv.override { extraLibs }` from packages of this set (`python311.withPackages`
# would take nixpkgs' set).
#
# What it costs: most of the set is rebuilt. Some of nixpkgs' build hooks come from the scope
# itself: pythonRuntimeDepsCheckHook (`callPackage ({ makePythonHook, packaging }: ...)`,
# hooks/default.nix) takes this set's `packaging`, and pypaBuildHook, wheelUnpackHook and
# pythonRelaxDepsHook its `wheel`, which depends on `packaging`. mk-python-derivation.nix gives
# every pyproject package but the bootstrap ones (build, packaging, pyproject-hooks, wheel,
# flit-core, installer) these hooks, so every such package of the set (pytest, mypy, rich,
# hypothesis, ..., and the build backends) is a new derivation: not in nixpkgs' binary cache,
# built from source. tests/test_nix.py records which of the checks' environment are rebuilt.
# A smaller override (pybuild built with nixpkgs' own set, only the packages whose runtime
# closure holds a pin rebuilt) would put nixpkgs' `packaging` beside the pin in those builds'
# environments (through the hooks): not done, see docs/build-guide.md, "Nix".
#
# Pinned (nix/tool-deps.json, written by scripts/nix-tool-deps.py): deflate (bundles libdeflate:
# the DEFLATE bytes), installer (writes console scripts), packaging (pybuild uses its pylock
# module), lief (its 1.0 API), auditwheel (its policy data).
{
  lib,
  stdenv,
  python311,
  fetchPypi,
  autoPatchelfHook,
  cmake,
  ninja,
}:
let
  deps = lib.importJSON ./tool-deps.json;
  sri = import ./sri.nix;

  fetchWheel =
    name: file:
    fetchPypi {
      inherit (file) pname python abi platform;
      inherit (deps.${name}) version;
      format = "wheel";
      dist = file.python;
      hash = sri file.sha256;
    };
in
python311.pkgs.overrideScope (
  final: prev:
  let
    pureWheel =
      name: dependencies:
      final.buildPythonPackage {
        pname = name;
        inherit (deps.${name}) version;
        format = "wheel";
        src = fetchWheel name deps.${name}.wheel;
        inherit dependencies;
      };
  in
  {
    installer = pureWheel "installer" [ ];
    # From its sdist, as nixpkgs builds its own. Not from the wheel: a wheel gets
    # wheelUnpackHook, which propagates this set's `wheel`, and wheel (0.46 and later) depends
    # on `packaging`: a wheel-built packaging would depend on itself (infinite recursion). A
    # bootstrap package: it builds with nixpkgs' bootstrap hooks, not with this set's.
    packaging = final.buildPythonPackage {
      pname = "packaging";
      inherit (deps.packaging) version;
      pyproject = true;
      src = fetchPypi {
        pname = "packaging";
        inherit (deps.packaging) version;
        hash = sri deps.packaging.sdist.sha256;
      };
      build-system = [ final.flit-core ];
    };
    auditwheel = pureWheel "auditwheel" [
      final.packaging
      final.pyelftools
    ];

    # Built from its sdist with the libdeflate it bundles (not nixpkgs' libdeflate): the same
    # DEFLATE bytes as the PyPI wheels pybuild uses outside Nix.
    deflate = final.buildPythonPackage {
      pname = "deflate";
      inherit (deps.deflate) version;
      pyproject = true;
      src = fetchPypi {
        pname = "deflate";
        inherit (deps.deflate) version;
        hash = sri deps.deflate.sdist.sha256;
      };
      build-system = [ final.scikit-build-core ];
      nativeBuildInputs = [
        cmake
        ninja
      ];
      dontUseCmakeConfigure = true;
    };

    # The manylinux wheel for this system (chosen by platform tag, scripts/nix-tool-deps.py);
    # its libstdc++ comes from nixpkgs. These are the tool's own libraries, not a layer's.
    lief = final.buildPythonPackage {
      pname = "lief";
      inherit (deps.lief) version;
      format = "wheel";
      src = fetchWheel "lief" (
        deps.lief.wheels.${stdenv.hostPlatform.system}
          or (throw "nix/python.nix: no lief wheel for ${stdenv.hostPlatform.system}")
      );
      nativeBuildInputs = [ autoPatchelfHook ];
      buildInputs = [ stdenv.cc.cc.lib ];
    };
  }
)
