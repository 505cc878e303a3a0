"use strict";
// What the Python process is given: a minimal, explicit environment, and the settings read from
// the function's own environment.

/** Where a pybuild layer puts its interpreter (Lambda mounts layers at /opt). */
const DEFAULT_PYTHON = "/opt/python/bin/python3.11";

/** The variables every bridge process gets. Lambda's /opt is read-only: only /tmp is writable. */
const BASE_ENV = Object.freeze({
  PATH: "/usr/local/bin:/usr/bin:/bin",
  LANG: "C.UTF-8",
  HOME: "/tmp",
  TMPDIR: "/tmp",
  // litellm otherwise downloads its model price map at every cold start
  LITELLM_LOCAL_MODEL_COST_MAP: "True",
});

/** Variables copied from the function's own environment when set. */
const PASSED_ENV = Object.freeze([
  // credentials and region (Bedrock, SageMaker)
  /^AWS_(REGION|DEFAULT_REGION|ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN)$/,
  // providers' keys and endpoints: OPENAI_API_KEY, AZURE_API_BASE, OPENAI_BASE_URL, ...
  /_API_KEY$/,
  /_API_BASE$/,
  /_API_VERSION$/,
  /_BASE_URL$/,
  /^LITELLM_/,
  // proxies, both spellings (HTTPS_PROXY, https_proxy, ...), and the CA bundle a proxy may need
  /^(HTTPS?|NO|ALL)_PROXY$/i,
  /^SSL_CERT_(FILE|DIR)$/,
]);

/**
 * The function's variables that the bridge process inherits (see PASSED_ENV).
 * @param {Record<string, string | undefined>} environment
 * @returns {Record<string, string>}
 */
function passedEnvironment(environment) {
  return Object.fromEntries(
    Object.entries(environment).filter(
      ([name, value]) => value !== undefined && PASSED_ENV.some((pattern) => pattern.test(name)),
    ),
  );
}

/**
 * A duration in milliseconds from the environment, or `fallback` when unset.
 * @param {string} name
 * @param {number} fallback
 */
function envMilliseconds(name, fallback) {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`${name} must be a number of milliseconds, not ${JSON.stringify(text)}`);
  }
  return value;
}

module.exports = { DEFAULT_PYTHON, BASE_ENV, PASSED_ENV, passedEnvironment, envMilliseconds };
