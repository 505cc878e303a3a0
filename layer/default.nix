# The layer a pybuild lock describes, built by Nix: every input a fixed-output fetch, then one
# `pybuild build --offline --from <inputs>` with no network.
#
# Type: {
#   stdenvNoCC, fetchurl, fetchPypi,   # from nixpkgs
#   pybuild,                           # the tool (nix/pybuild.nix)
#   python,                            # compiles the bytecode: the runtime's minor version
#   layerDir ? ./.,                    # holds layer.toml, lock.json, smoke/
#   requirements ? ../requirements.txt,
#   sourceDateEpoch ? 315532800,       # 1980-01-01, pybuild's default
# } -> derivation  (out: <name>.zip, <name>.report.json, <name>.report.txt)
#
# Example:
#   pkgs.callPackage ./layer { pybuild = self.packages.${system}.pybuild; python = pkgs.python311; }
#
# The runtime is a fetchurl of the lock's URL with its SRI hash; each wheel a fetchPypi with
# format = "wheel" and the tags of its file name, so no index host is written here (nixpkgs'
# helper knows PyPI's). The build must leave the target's ELF files exactly as pybuild wrote
# them: nixpkgs' fixup (strip, patchelf, shebang patching) is switched off.
{
  stdenvNoCC,
  fetchurl,
  fetchPypi,
  pybuild,
  python,
  layerDir ? ./.,
  requirements ? ../requirements.txt,
  sourceDateEpoch ? 315532800,
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

  runtime = fetchurl {
    url = lock.runtime.url;
    hash = sri lock.runtime.sha256;
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
    ln -s ${runtime} inputs/runtime
    ${builtins.concatStringsSep "\n" (map (w: "ln -s ${w} inputs/") wheels)}
    cp -r ${layerDir}/. work/layer/
    cp ${requirements} work/requirements.txt
    chmod -R u+w work
    pybuild build --offline --from inputs --layer work/layer/layer.toml --out "$out" \
      --python ${python}/bin/python${lock.target.python}
    runHook postBuild
  '';

  dontInstall = true;

  passthru = {
    inherit lock runtime wheels;
  };
}
