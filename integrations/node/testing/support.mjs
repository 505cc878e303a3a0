// Shared by the tests in test/: a client on the fake bridge, and small waiting helpers.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

import { LitellmClient } from "../index.mjs";

export const PACKAGE_DIR = fileURLToPath(new URL("..", import.meta.url));
export const FAKE_BRIDGE = fileURLToPath(new URL("./fake_bridge.py", import.meta.url));
export const PYTHON = process.env.PYTHON ?? "python3";
export const messages = [{ role: "user", content: "ping" }];

/**
 * A client whose "Python" is the fake bridge; its stderr lines are collected, not printed.
 * @param {object} [options] client options
 * @param {string[]} [flags] fake_bridge.py options
 */
export function fakeClient(options = {}, flags = []) {
  const stderr = [];
  const client = new LitellmClient({
    command: [PYTHON, FAKE_BRIDGE, ...flags],
    args: [],
    startTimeoutMs: 10_000,
    timeoutMs: 10_000,
    stderr: (line) => stderr.push(line),
    ...options,
  });
  const seen = (pattern) => stderr.some((line) => pattern.test(line));
  return {
    client,
    stderr,
    seen,
    /** Wait until the fake bridge logs a line matching `pattern`. */
    waitForStderr: (pattern, ms = 5_000) =>
      waitFor(() => seen(pattern), ms, `stderr line ${pattern} (got ${JSON.stringify(stderr)})`),
  };
}

/** Poll `predicate` every 10 ms; reject after `ms` naming `what`. */
export async function waitFor(predicate, ms, what) {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A promise's outcome within `ms`: {value}, {error}, or {pending: true}. */
export async function settledWithin(promise, ms) {
  let timer;
  const pending = new Promise((resolve) => {
    timer = setTimeout(resolve, ms, { pending: true });
  });
  try {
    return await Promise.race([
      promise.then(
        (value) => ({ value }),
        (error) => ({ error }),
      ),
      pending,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Run a Node script file; resolves with its exit code, output and duration. Killed after
 * `timeoutMs` (then `code` is null and `killed` true).
 */
export function runNode(args, { cwd, env = process.env, timeoutMs = 20_000 } = {}) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (data) => (stdout += data));
    child.stderr.on("data", (data) => (stderr += data));
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, killed, ms: Date.now() - started });
    });
  });
}
