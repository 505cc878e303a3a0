# The layer a pybuild lock describes, built by Nix: every input a fixed-output fetch, then one
# `pybuild build --offline --from <inputs> --pinned-compiler <the lock's compiler>` with no
# network: the same zip as `pybuild build` outside Nix for the same lock.
#
# Type: {
#   lib, stdenvNoCC, fetchurl, fetchPypi, callPackage,   # from nixpkgs
#   pybuild,                           # the tool (nix/pybuild.nix)
#   layerDir ? ./.,                    # holds layer.toml, lock.json, smoke/
#   requirements ? ../requirements.txt,
#   sourceDateEpoch ? 315576060,       # 1980-01-01T12:01:00Z, pybuild's default
# } -> derivation  (out: <name>.zip, <name>.report.json, <name>.report.txt)
#
# Example:
#   pkgs.callPackage ./layer { pybuild = self.packages.${system}.pybuild; }
#
# Each file of the runtime and of the bytecode compiler the lock pins for this build host is a
# fetchurl named after its unquoted file name (nixpkgs' fetchurl otherwise takes the URL's last
# component, and a store name cannot hold the "%" of "%2B"); each wheel a fetchPypi with
# format = "wheel" and the tags of its file name (named by nixpkgs after that file name), so no
# index host is written here (nixpkgs' helper knows PyPI's). The compiler is unpacked and its
# interpreter patched in its own derivation (nix/compiler.nix). The build must leave the
# target's ELF files exactly as pybuild wrote them: nixpkgs' fixup (strip, patchelf, shebang
# patching) is off.
{
  lib,
  stdenvNoCC,
  fetchurl,
  fetchPypi,
  callPackage,
  pybuild,
  layerDir ? ./.,
  requirements ? ../requirements.txt,
  sourceDateEpoch ? 315576060,
}:
let
  sri = import ../nix/sri.nix;
  lock = builtins.fromJSON (builtins.readFile (layerDir + "/lock.json"));

  # "name-version[-build]-python-abi-platform.whl" -> its parts (PEP 427)
  wheelTags =
    filename:
    let
      stem = builtins.substring 0 (builtins.stringLength filename - 4) filename;
      parts = builtins.filter builtins.isString (builtins.split "-" stem);
      count = builtins.length parts;
      at = builtins.elemAt parts;
    in
    if count == 5 then
      {
        pname = at 0;
        version = at 1;
        python = at 2;
        abi = at 3;
        platform = at 4;
      }
    else
      throw "layer/default.nix: ${filename}: build-tagged or malformed wheel names are not supported";

  # A runtime or compiler file: its URL, or a Debian package's pool path on Debian's mirrors.
  fetchLocked =
    file:
    fetchurl {
      name = file.filename;
      url =
        file.url or (
          if file.debian.archive == "debian" then
            "mirror://debian/${file.debian.path}"
          else
            "https://deb.debian.org/debian-security/${file.debian.path}"
        );
      hash = sri file.sha256;
    };

  # The compiler runs on the machine that builds: the lock's entry for its architecture.
  hostArch = stdenvNoCC.buildPlatform.parsed.cpu.name;
  runtime = map fetchLocked lock.runtime.files;
  pinned =
    lock.compilers.${hostArch}
      or (throw "layer/default.nix: the lock pins no bytecode compiler for ${hostArch} build hosts");
  compiler = callPackage ../nix/compiler.nix {
    inherit pinned;
    files = map fetchLocked pinned.files;
  };

  wheels = map (
    wheel:
    let
      tags = wheelTags wheel.filename;
    in
    fetchPypi {
      inherit (tags) pname version python abi platform;
      format = "wheel";
      dist = tags.python;
      hash = sri wheel.sha256;
    }
  ) lock.wheels;
in
stdenvNoCC.mkDerivation {
  pname = "${lock.name}-lambda-layer";
  version = builtins.substring 0 12 lock.inputs.requirements;

  dontUnpack = true;
  dontConfigure = true;
  # nixpkgs patches ELF files and shebangs in fixup; a Lambda layer must stay as built.
  dontStrip = true;
  dontPatchELF = true;
  dontPatchShebangs = true;
  dontFixup = true;

  nativeBuildInputs = [ pybuild ];
  SOURCE_DATE_EPOCH = toString sourceDateEpoch;

  buildPhase = ''
    runHook preBuild
    export HOME="$TMPDIR" PYBUILD_CACHE_DIR="$TMPDIR/cache"
    mkdir -p inputs work/layer
    ${lib.concatMapStringsSep "\n" (f: "ln -s ${f} inputs/") (runtime ++ wheels)}
    cp -r ${layerDir}/. work/layer/
    cp ${requirements} work/requirements.txt
    chmod -R u+w work
    pybuild build --offline --from inputs --layer work/layer/layer.toml --out "$out" \
      --pinned-compiler ${compiler.interpreter}
    runHook postBuild
  '';

  dontInstall = true;

  passthru = {
    inherit lock runtime compiler wheels;
  };
}
