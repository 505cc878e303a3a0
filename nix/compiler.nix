# The lock's pinned bytecode compiler for this build host, runnable in the Nix build sandbox: its
# files (as fetched for the lock, named after their file names) unpacked, and the ELF
# interpreter of a copy of its `python3.X` patched by autoPatchelf to nixpkgs' dynamic loader
# (the archive's own /lib/ld-linux-*.so does not exist in the sandbox). Nothing else of it is
# patched, and nothing of the layer: the layer's runtime is another derivation's input, never
# this one. `pybuild build --pinned-compiler` then checks that it runs as exactly the pinned
# CPython version.
#
# Type: { lib, stdenv, autoPatchelfHook, dpkg, zlib, expat, pinned, files } -> derivation
#   pinned: the lock's `compilers.<arch>` entry; files: its fetched files, in lock order
#   passthru.interpreter: the path to pass to --pinned-compiler
# Example:
#   callPackage ../nix/compiler.nix { pinned = lock.compilers.x86_64; files = map fetchLocked ...; }
{
  lib,
  stdenv,
  autoPatchelfHook,
  dpkg,
  zlib,
  expat,
  pinned,
  files,
}:
let
  minor = lib.versions.majorMinor pinned.python_version;
  debian = pinned.provider == "debian";
  layouts = {
    # one install_only(_stripped) archive, everything under python/
    "python-build-standalone" = {
      unpack = map (file: "tar -xzf ${file} -C $out") files;
      interpreter = "python/bin/python${minor}";
    };
    # Debian's python3.X-minimal, libpython3.X-minimal and libpython3.X-stdlib, unpacked whole
    debian = {
      unpack = map (file: "dpkg-deb -x ${file} $out") files;
      interpreter = "usr/bin/python${minor}";
    };
  };
  layout =
    layouts.${pinned.provider}
      or (throw "nix/compiler.nix: no unpacking rule for provider ${pinned.provider}");
in
stdenv.mkDerivation (finalAttrs: {
  pname = "pybuild-pinned-compiler";
  version = pinned.python_version;

  dontUnpack = true;
  dontConfigure = true;
  dontBuild = true;
  nativeBuildInputs = [ autoPatchelfHook ] ++ lib.optional debian dpkg;
  # Debian's interpreter links libz and libexpat; python-build-standalone's only glibc.
  buildInputs = lib.optionals debian [
    zlib
    expat
  ];
  # Patch the interpreter alone (below); the standard library's extension modules stay as
  # shipped (compiling bytecode loads none that glibc does not satisfy).
  dontAutoPatchelf = true;
  # nor does fixup's patchELF (which shrinks the RPATH of every ELF file of the output)
  dontPatchELF = true;
  dontStrip = true;
  dontPatchShebangs = true;

  installPhase = ''
    runHook preInstall
    mkdir -p $out
    ${lib.concatStringsSep "\n" layout.unpack}
    autoPatchelf -- $out/${layout.interpreter}
    runHook postInstall
  '';

  passthru = {
    inherit pinned files;
    interpreter = "${finalAttrs.finalPackage}/${layout.interpreter}";
  };
})
