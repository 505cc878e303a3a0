# The flake's checks: the test suite, lint, types, and the layer verified, smoke-tested and
# built twice.
#
# Type: { pkgs, pythonPackages, pybuild, layer, src } -> { <name> = derivation; }
# Example: import ./nix/checks.nix { inherit pkgs pythonPackages pybuild layer; src = ./.; }
{
  pkgs,
  pythonPackages,
  pybuild,
  layer,
  src,
}:
let
  ps = pythonPackages;
  # One environment from one package set (nix/python.nix): pytest and pybuild share pybuild's
  # pinned `packaging`, so the environment holds one copy of each package.
  env = ps.python.buildEnv.override {
    extraLibs = [
      (ps.toPythonModule pybuild)
      ps.pytest
      ps.pytest-timeout
      ps.hypothesis
      ps.cyclonedx-python-lib
      ps.jsonschema
      ps.mypy
    ];
  };
  # pybuild finds uv through PYBUILD_UV (its `uv` module is not in this environment); the test
  # fixtures keep that variable (tests/conftest.py, isolated_env).
  uvBinary = "${pkgs.uv}/bin/uv";
  inTree = name: inputs: inTreeWith name { nativeBuildInputs = inputs; };
  inTreeWith =
    name: env: script:
    pkgs.runCommand "pybuild-${name}" env ''
      cp -r ${src} src
      chmod -R u+w src
      cd src
      export HOME="$TMPDIR" PYBUILD_UV=${uvBinary}
      ${script}
      touch "$out"
    '';

  # An aarch64 glibc + GCC runtime for qemu-aarch64 -L: what a Lambda image gives a layer.
  sysroot =
    let
      cross = pkgs.pkgsCross.aarch64-multiplatform;
      inherit (cross.stdenv) buildPlatform hostPlatform;
      # gcc's builder puts the target's runtime libraries in "${targetConfig+$targetConfig/}lib",
      # targetConfig being set only for a cross compiler (target != host). On an aarch64-linux
      # build host pkgsCross.aarch64-multiplatform is the native set (pkgs/top-level/default.nix
      # replaces a crossSystem equal to the localSystem), whose gcc is native: lib/.
      gccLibDir =
        if hostPlatform.config == buildPlatform.config then "lib" else "${hostPlatform.config}/lib";
    in
    pkgs.runCommand "aarch64-sysroot" { } ''
      mkdir -p "$out/lib"
      cp -L ${cross.glibc}/lib/*.so* "$out/lib/"
      cp -L ${cross.stdenv.cc.cc.lib}/${gccLibDir}/lib{gcc_s,stdc++}.so* "$out/lib/"
    '';
  zip = "${layer}/${layer.passthru.lock.name}.zip";
  secondBuild = layer.overrideAttrs (_: {
    PYBUILD_SECOND_BUILD = "1"; # another derivation: built again, independently
  });
  linted = "pybuild tests benchmarks scripts layer";
in
{
  pytest = inTree "pytest" [ env ] ''
    python -m pytest -p no:cacheprovider -m "not network"
  '';
  ruff = inTree "ruff" [ pkgs.ruff ] ''
    ruff check --no-cache ${linted}
    ruff format --no-cache --check ${linted}
  '';
  mypy = inTree "mypy" [ env ] ''
    mypy --cache-dir "$TMPDIR/mypy"
  '';
  verify = inTree "verify" [ pybuild ] ''
    pybuild verify ${zip} --layer layer/layer.toml
  '';
  # qemu user mode with the sysroot on every host (on aarch64 it isolates the same way).
  smoke =
    inTreeWith "smoke"
      {
        nativeBuildInputs = [
          pybuild
          pkgs.qemu
        ];
        passthru = { inherit sysroot; }; # nix build .#checks.<system>.smoke.sysroot
      }
      ''
        pybuild smoke ${zip} --layer layer/layer.toml --sysroot ${sysroot}
      '';
  reproducible = pkgs.runCommand "pybuild-reproducible" { } ''
    cmp ${zip} ${secondBuild}/${layer.passthru.lock.name}.zip
    cmp ${layer}/${layer.passthru.lock.name}.report.json \
      ${secondBuild}/${layer.passthru.lock.name}.report.json
    touch "$out"
  '';
}
