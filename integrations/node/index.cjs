"use strict";
// pybuild-litellm-node: litellm, in a pybuild Lambda layer's Python, called from Node.js.
// One implementation in CommonJS; index.mjs re-exports it for `import`, so both module systems
// share the same classes (an error thrown to ESM code is an instance of what CommonJS exports).

const { LitellmClient, CompletionStream, DEFAULT_INIT_WAIT_MS } = require("./lib/client.cjs");
const { PythonBridge, PROTOCOL } = require("./lib/bridge.cjs");
const {
  DEFAULT_PYTHON,
  BASE_ENV,
  PASSED_ENV,
  passedEnvironment,
} = require("./lib/environment.cjs");

module.exports = {
  LitellmClient,
  CompletionStream,
  PythonBridge,
  DEFAULT_PYTHON,
  DEFAULT_INIT_WAIT_MS,
  BASE_ENV,
  PASSED_ENV,
  PROTOCOL,
  passedEnvironment,
  ...require("./lib/errors.cjs"), // APIError and the class of each kind
};
