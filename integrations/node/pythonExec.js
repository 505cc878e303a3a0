// Runs the layer's Python once per container and talks to its litellm bridge over JSON lines.
//
// The interpreter is spawned lazily, on the first request, with a minimal and explicit
// environment: the layer's python-build-standalone interpreter finds its own standard library
// from its path, so no PYTHONHOME or PYTHONPATH is set. Requests are matched to responses by id
// and may overlap. A request that takes too long is rejected (the process keeps running); a
// process that dies rejects every pending request with its stderr, and the next request starts
// a new one; output that is not the protocol is an error, never a hang.

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

/** Where a pybuild layer puts its interpreter (Lambda mounts layers at /opt). */
export const DEFAULT_PYTHON = "/opt/python/bin/python3.11";

/** The variables every bridge process gets. Lambda's /opt is read-only: only /tmp is writable. */
export const BASE_ENV = Object.freeze({
  PATH: "/usr/local/bin:/usr/bin:/bin",
  LANG: "C.UTF-8",
  HOME: "/tmp",
  TMPDIR: "/tmp",
  // litellm otherwise downloads its model price map at every cold start
  LITELLM_LOCAL_MODEL_COST_MAP: "True",
});

/** Variables copied from the function's own environment when set: provider credentials. */
export const PASSED_ENV = [
  /^AWS_(REGION|DEFAULT_REGION|ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN)$/,
  /_API_KEY$/,
  /_API_BASE$/,
  /^LITELLM_/,
];

const STDERR_TAIL = 8192;

/** A failure reported by the bridge or by the process around it. */
export class BridgeError extends Error {
  /**
   * @param {string} message
   * @param {{type?: string, statusCode?: number|null, provider?: string|null,
   *          model?: string|null, stderr?: string}} [details]
   */
  constructor(message, details = {}) {
    super(message);
    this.name = "BridgeError";
    this.type = details.type ?? "BridgeError";
    this.statusCode = details.statusCode ?? null;
    this.provider = details.provider ?? null;
    this.model = details.model ?? null;
    this.stderr = details.stderr ?? "";
  }
}

/** The request did not complete within its timeout; the process keeps running. */
export class BridgeTimeoutError extends BridgeError {
  constructor(message, details) {
    super(message, { type: "Timeout", ...details });
    this.name = "BridgeTimeoutError";
  }
}

/** The Python process could not start or exited while requests were pending. */
export class BridgeCrashError extends BridgeError {
  constructor(message, details) {
    super(message, { type: "Crash", ...details });
    this.name = "BridgeCrashError";
  }
}

/**
 * @typedef {object} BridgeOptions
 * @property {string[]} [command] how to start the interpreter; default [PYBUILD_PYTHON or
 *   /opt/python/bin/python3.11] (tests prepend qemu-aarch64-static -L SYSROOT)
 * @property {string[]} [args] default ["-m", "litellm_bridge"]
 * @property {Record<string, string>} [env] added to BASE_ENV and the passed variables
 * @property {number} [timeoutMs] default per-request timeout (60 s)
 * @property {number} [startTimeoutMs] how long the interpreter may take to import litellm (60 s)
 */

export class PythonBridge {
  /** @param {BridgeOptions} [options] */
  constructor(options = {}) {
    this.command = options.command ?? [process.env.PYBUILD_PYTHON ?? DEFAULT_PYTHON];
    this.args = options.args ?? ["-m", "litellm_bridge"];
    this.env = { ...BASE_ENV, ...passedEnvironment(process.env), ...(options.env ?? {}) };
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.startTimeoutMs = options.startTimeoutMs ?? 60_000;
    this.child = null;
    this.ready = null;
    this.pending = new Map();
    this.nextId = 1;
    this.stderr = "";
  }

  /** The running interpreter's process id, or null. */
  get pid() {
    return this.child?.pid ?? null;
  }

  /** Start the interpreter if it is not running; resolves once litellm is imported. */
  start() {
    if (this.ready) return this.ready;
    this.stderr = "";
    const child = spawn(this.command[0], [...this.command.slice(1), ...this.args], {
      env: this.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.child = child;
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#fail(child, new BridgeCrashError(
          `python did not start within ${this.startTimeoutMs} ms`, { stderr: this.stderr }));
        child.kill("SIGKILL");
      }, this.startTimeoutMs);
      this.readyCallbacks = {
        resolve: (info) => { clearTimeout(timer); resolve(info); },
        reject: (err) => { clearTimeout(timer); reject(err); },
      };
    });
    this.ready.catch(() => {}); // surfaced through the requests waiting on it
    child.stdin.on("error", () => {}); // EPIPE when it dies: the exit handler reports it
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (text) => {
      this.stderr = (this.stderr + text).slice(-STDERR_TAIL);
    });
    createInterface({ input: child.stdout }).on("line", (line) => this.#receive(child, line));
    child.on("error", (err) => {
      this.#fail(child, new BridgeCrashError(
        `cannot start ${this.command.join(" ")}: ${err.message}`, { stderr: this.stderr }));
    });
    child.on("exit", (code, signal) => {
      const how = signal ? `signal ${signal}` : `exit code ${code}`;
      this.#fail(child, new BridgeCrashError(`python exited (${how})`, { stderr: this.stderr }));
    });
    return this.ready;
  }

  /**
   * Send one request; resolves with its result.
   * @param {string} method "completion" or "ping"
   * @param {object} [params]
   * @param {{timeoutMs?: number, onChunk?: (chunk: object) => void}} [options]
   * @returns {Promise<any>}
   */
  async request(method, params = {}, options = {}) {
    await this.start();
    const child = this.child;
    if (!child) throw new BridgeCrashError("python exited before the request", { stderr: this.stderr });
    const id = String(this.nextId++);
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new BridgeTimeoutError(`${method} request ${id} timed out after ${timeoutMs} ms`,
          { stderr: this.stderr }));
      }, timeoutMs);
      this.pending.set(id, {
        child,
        onChunk: options.onChunk,
        resolve: (value) => { clearTimeout(timer); resolve(value); },
        reject: (err) => { clearTimeout(timer); reject(err); },
      });
      child.stdin.write(JSON.stringify({ id, method, params }) + "\n");
    });
  }

  /** Close stdin and wait for the interpreter to finish its work and exit. */
  async close(graceMs = 5_000) {
    const child = this.child;
    if (!child) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.stdin.end();
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  }

  #receive(child, line) {
    if (child !== this.child || !line.trim()) return;
    let message;
    try {
      message = JSON.parse(line);
    } catch {
      message = null;
    }
    if (message === null || typeof message !== "object") {
      this.#fail(child, new BridgeCrashError(
        `malformed output from python: ${JSON.stringify(line.slice(0, 200))}`,
        { stderr: this.stderr }));
      child.kill("SIGKILL");
      return;
    }
    if (message.ready) {
      this.readyCallbacks?.resolve(message);
      return;
    }
    const entry = this.pending.get(message.id);
    if (!entry) return; // a request that already timed out
    if (message.chunk !== undefined) {
      entry.onChunk?.(message.chunk);
    } else if (message.ok) {
      this.pending.delete(message.id);
      entry.resolve(message.done ? undefined : message.result);
    } else {
      this.pending.delete(message.id);
      const error = message.error ?? {};
      entry.reject(new BridgeError(error.message ?? "the bridge reported an error", {
        type: error.type, statusCode: error.status_code, provider: error.llm_provider,
        model: error.model, stderr: this.stderr,
      }));
    }
  }

  #fail(child, error) {
    if (child !== this.child) return;
    this.child = null;
    this.ready = null;
    this.readyCallbacks?.reject(error);
    for (const [id, entry] of this.pending) {
      if (entry.child === child) {
        this.pending.delete(id);
        entry.reject(error);
      }
    }
  }
}

/** The function's variables that the bridge process inherits (see PASSED_ENV). */
export function passedEnvironment(environment) {
  return Object.fromEntries(Object.entries(environment).filter(
    ([name, value]) => value !== undefined && PASSED_ENV.some((pattern) => pattern.test(name))));
}
