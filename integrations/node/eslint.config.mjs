// ESLint's recommended rules, Node's globals; .cjs files are CommonJS, .mjs files ES modules.
import js from "@eslint/js";
import globals from "globals";

export default [
  js.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2023, globals: globals.node },
    rules: {
      eqeqeq: ["error", "always", { null: "ignore" }],
      "no-shadow": ["error", { builtinGlobals: false }],
      "prefer-const": "error",
      "no-var": "error",
    },
  },
  { files: ["**/*.cjs"], languageOptions: { sourceType: "commonjs" } },
  { files: ["**/*.mjs"], languageOptions: { sourceType: "module" } },
];
