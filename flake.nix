{
  description = "pybuild: bit-reproducible AWS Lambda layers; `nix build .#layer`";

  # nixpkgs is the only input (release branch with Python 3.11, qemu, uv); see flake.lock.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  outputs =
    { self, nixpkgs }:
    let
      lib = nixpkgs.lib;
      # Build hosts; the layer's target stays what layer/layer.toml says (aarch64).
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forEach = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      src = lib.cleanSource ./.;
    in
    {
      packages = forEach (
        pkgs:
        let
          pybuild = pkgs.callPackage ./nix/pybuild.nix { inherit src; };
          # The bytecode compiler is the one the lock pins for this build host.
          layer = pkgs.callPackage ./layer { inherit pybuild; };
        in
        {
          inherit pybuild layer;
          default = layer;
        }
      );

      apps = forEach (
        pkgs:
        let
          app = {
            type = "app";
            program = lib.getExe self.packages.${pkgs.system}.pybuild;
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
          inherit pkgs src;
          inherit (self.packages.${pkgs.system}) pybuild layer;
        }
      );

      devShells = forEach (pkgs: {
        default = pkgs.mkShell {
          packages = [
            self.packages.${pkgs.system}.pybuild
            pkgs.python311
            pkgs.uv
            pkgs.ruff
            pkgs.qemu
            pkgs.nixfmt-rfc-style
          ];
        };
      });

      formatter = forEach (pkgs: pkgs.nixfmt-rfc-style);
    };
}
