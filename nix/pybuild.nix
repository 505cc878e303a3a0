# pybuild, the tool, for the build host, from the package set of nix/python.nix.
#
# Type: { lib, pythonPackages, uv, src } -> derivation
# Example: pkgs.callPackage ./nix/pybuild.nix { pythonPackages = ...; src = ./.; }
#
# Its build system is nixpkgs' setuptools: pyproject.toml's [build-system] asks for a range that
# nixpkgs' satisfies (nixpkgs builds with `pyproject-build --no-isolation`, which checks it).
# uv (only for `pybuild lock`) is nixpkgs' binary, found through PYBUILD_UV; rich's exact
# version changes no byte of a layer.
{
  lib,
  pythonPackages,
  uv,
  src,
}:
let
  ps = pythonPackages;
in
ps.buildPythonApplication {
  pname = "pybuild";
  version = (lib.importTOML (src + "/pyproject.toml")).project.version;
  pyproject = true;
  inherit src;

  build-system = [ ps.setuptools ];
  dependencies = [
    ps.auditwheel
    ps.deflate
    ps.installer
    ps.lief
    ps.packaging
    ps.rich
  ];
  pythonRelaxDeps = [ "rich" ];
  pythonRemoveDeps = [ "uv" ];
  makeWrapperArgs = [
    "--set-default"
    "PYBUILD_UV"
    "${uv}/bin/uv"
  ];

  doCheck = false; # the flake's checks run the test suite
  # pybuild.cli imports neither lief nor deflate: import them here, so that a wheel for the
  # wrong platform (a macOS lief: "invalid ELF header") fails the build, not the first layer.
  pythonImportsCheck = [
    "pybuild.cli"
    "lief"
    "deflate"
  ];

  meta = {
    description = "Bit-reproducible AWS Lambda layers from pinned Python requirements";
    mainProgram = "pybuild";
    license = lib.licenses.mit;
  };
}
