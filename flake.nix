{
  description = "pybuild: bit-reproducible AWS Lambda layers; `nix build .#layer`";

  # nixpkgs is the only input: a supported release branch (see flake.lock and the build guide,
  # "Nix", for how its revision and narHash were checked).
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      # Build hosts; the layer's target stays what layer/layer.toml says (aarch64).
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forEach = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      # Only what each derivation reads: editing docs/ rebuilds neither the tool nor the layer.
      fs = lib.fileset;
      # pybuild's package (README.md is its long description: pyproject.toml names it)
      toolSource = fs.toSource {
        root = ./.;
        fileset = fs.unions [
          ./pyproject.toml
          ./README.md
          ./pybuild
        ];
      };
      # what the checks run over: the tool, its tests and everything they read
      checkSource = fs.toSource {
        root = ./.;
        fileset = fs.unions [
          ./pyproject.toml
          ./README.md
          ./requirements.txt
          ./flake.nix
          ./flake.lock
          ./pybuild
          ./tests
          ./layer
          ./examples
          ./integrations
          ./benchmarks
          ./scripts
          ./nix
        ];
      };

      perSystem = pkgs: rec {
        # nixpkgs' Python 3.11 packages with pyproject.toml's pins in place of nixpkgs' own
        pythonPackages = pkgs.callPackage ./nix/python.nix { };
        pybuild = pkgs.callPackage ./nix/pybuild.nix {
          inherit pythonPackages;
          src = toolSource;
        };
        layer = pkgs.callPackage ./layer { inherit pybuild; };
      };
    in
    {
      packages = forEach (
        pkgs:
        let
          inherit (perSystem pkgs) pybuild layer;
        in
        {
          inherit pybuild layer;
          # the lock's pinned bytecode compiler for this build host, its interpreter patched
          pinned-compiler = layer.passthru.compiler;
          default = layer;
        }
      );

      apps = forEach (
        pkgs:
        let
          inherit (self.packages.${pkgs.stdenv.hostPlatform.system}) pybuild;
          app = {
            type = "app";
            program = "${pybuild}/bin/pybuild";
            # `nix flake check` warns about an app without one
            meta.description = pybuild.meta.description;
          };
        in
        {
          pybuild = app;
          default = app;
        }
      );

      checks = forEach (
        pkgs:
        import ./nix/checks.nix {
          inherit pkgs;
          inherit (perSystem pkgs) pythonPackages pybuild layer;
          src = checkSource;
        }
      );

      devShells = forEach (pkgs: {
        default = pkgs.mkShell {
          packages = [
            self.packages.${pkgs.stdenv.hostPlatform.system}.pybuild
            pkgs.uv
            pkgs.ruff
            pkgs.qemu
            pkgs.nixfmt
          ];
        };
      });

      # nixfmt (RFC 166 style; `nixfmt-rfc-style` is an alias that warns since nixpkgs 25.11)
      formatter = forEach (pkgs: pkgs.nixfmt);
    };
}
