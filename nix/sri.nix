# hexToSri: a hex sha256 (as in layer/lock.json) to the SRI form fixed-output fetches take.
#
# Type: string -> string
# Example: hexToSri "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
#   => "sha256-WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM="
#
# Pure Nix (builtins only): Nix 2.8, the oldest version pybuild's tests run, has no
# builtins.convertHash.
let
  inherit (builtins) substring stringLength genList elemAt length concatStringsSep;
  hexValues = {
    "0" = 0; "1" = 1; "2" = 2; "3" = 3; "4" = 4; "5" = 5; "6" = 6; "7" = 7; "8" = 8; "9" = 9;
    "a" = 10; "b" = 11; "c" = 12; "d" = 13; "e" = 14; "f" = 15;
  };
  alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  mod = a: b: a - (a / b) * b;
  digit = hex: i:
    let c = substring i 1 hex;
    in if hexValues ? ${c} then hexValues.${c} else throw "hexToSri: '${hex}' is not lowercase hex";
  bytes = hex: genList (i: digit hex (2 * i) * 16 + digit hex (2 * i + 1)) (stringLength hex / 2);
  char = n: substring n 1 alphabet;
  base64 = bs:
    let
      n = length bs;
      at = i: if i < n then elemAt bs i else 0;
      group = g:
        let
          v = at (3 * g) * 65536 + at (3 * g + 1) * 256 + at (3 * g + 2);
          left = n - 3 * g;
        in
        char (v / 262144) + char (mod (v / 4096) 64)
        + (if left > 1 then char (mod (v / 64) 64) else "=")
        + (if left > 2 then char (mod v 64) else "=");
    in
    concatStringsSep "" (genList group ((n + 2) / 3));
in
hex:
if stringLength hex != 64 then
  throw "hexToSri: '${hex}' is not a sha256 (64 hex digits)"
else
  "sha256-" + base64 (bytes hex)
