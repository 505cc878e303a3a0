# pybuild, the tool, for the build host, on nixpkgs' Python 3.11.
#
# Type: { lib, stdenv, python311, fetchPypi, autoPatchelfHook, cmake, ninja, uv, src } -> derivation
# Example: pkgs.callPackage ./nix/pybuild.nix { src = ./.; }
#
# The dependencies whose behaviour reaches a layer's bytes (deflate, which bundles libdeflate;
# installer, which writes console scripts) or whose API pybuild uses (packaging's pylock, lief
# 1.0, auditwheel's policy data) are the versions pyproject.toml pins, fetched by sha256 from
# nix/tool-deps.json (written by scripts/nix-tool-deps.py); rich and uv come from nixpkgs.
# Patching ELF files is right here: these are the tool's own libraries, not the layer's.
{
  lib,
  stdenv,
  python311,
  fetchPypi,
  autoPatchelfHook,
  cmake,
  ninja,
  uv,
  src,
}:
let
  deps = lib.importJSON ./tool-deps.json;
  sri = import ./sri.nix;
  py = python311.pkgs;

  fetchWheel =
    name: file:
    fetchPypi {
      inherit (file) pname python abi platform;
      inherit (deps.${name}) version;
      format = "wheel";
      dist = file.python;
      hash = sri file.sha256;
    };

  pureWheel =
    name: dependencies:
    py.buildPythonPackage {
      pname = name;
      inherit (deps.${name}) version;
      format = "wheel";
      src = fetchWheel name deps.${name}.wheel;
      inherit dependencies;
    };

  installer = pureWheel "installer" [ ];
  packaging = pureWheel "packaging" [ ];
  auditwheel = pureWheel "auditwheel" [
    packaging
    py.pyelftools
  ];

  # Built from its sdist with the libdeflate it bundles (not nixpkgs' libdeflate): the same
  # DEFLATE bytes as the PyPI wheels pybuild uses outside Nix.
  deflate = py.buildPythonPackage {
    pname = "deflate";
    inherit (deps.deflate) version;
    pyproject = true;
    src = fetchPypi {
      pname = "deflate";
      inherit (deps.deflate) version;
      hash = sri deps.deflate.sdist.sha256;
    };
    build-system = [ py.scikit-build-core ];
    nativeBuildInputs = [
      cmake
      ninja
    ];
    dontUseCmakeConfigure = true;
  };

  lief = py.buildPythonPackage {
    pname = "lief";
    inherit (deps.lief) version;
    format = "wheel";
    src = fetchWheel "lief" (
      deps.lief.wheels.${stdenv.hostPlatform.system}
        or (throw "nix/pybuild.nix: no lief wheel for ${stdenv.hostPlatform.system}")
    );
    nativeBuildInputs = [ autoPatchelfHook ];
    buildInputs = [ stdenv.cc.cc.lib ];
  };
in
py.buildPythonApplication {
  pname = "pybuild";
  version = (lib.importTOML (src + "/pyproject.toml")).project.version;
  pyproject = true;
  inherit src;

  build-system = [ py.setuptools ];
  dependencies = [
    auditwheel
    deflate
    installer
    lief
    packaging
    py.rich
  ];
  # rich's exact version changes no byte of a layer; uv (only for `pybuild lock`) is nixpkgs'.
  pythonRelaxDeps = [ "rich" ];
  pythonRemoveDeps = [ "uv" ];
  makeWrapperArgs = [
    "--set-default"
    "PYBUILD_UV"
    "${uv}/bin/uv"
  ];

  doCheck = false; # the flake's checks run the test suite
  pythonImportsCheck = [ "pybuild.cli" ];

  meta = {
    description = "Bit-reproducible AWS Lambda layers from pinned Python requirements";
    mainProgram = "pybuild";
    license = lib.licenses.mit;
  };
}
