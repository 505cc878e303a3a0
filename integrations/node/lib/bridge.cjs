"use strict";
// Runs the layer's Python and talks to its litellm bridge over JSON lines (protocol 2, described
// in layer/bridge/litellm_bridge.py).
//
// One process serves many requests, matched by id. Every request has a time limit (its own,
// or the Lambda deadline) and may take an AbortSignal; a request given up on in Node is
// cancelled in Python too. Streams are credit-based: the bridge sends at most `window` chunks
// that the consumer has not taken. Lines are size-limited both ways, and a line over the limit
// fails only its own request. Python's stderr goes to the console line by line. A process that
// dies fails the requests it had; the next request starts a new one.

const { spawn } = require("node:child_process");
const {
  APIConnectionTimeoutError,
  APIUserAbortError,
  BridgeCrashError,
  BridgeProtocolError,
  BridgeStartError,
  RequestTooLargeError,
  ResponseTooLargeError,
} = require("./errors.cjs");
const { errorFromReply } = require("./replies.cjs");
const {
  BASE_ENV,
  DEFAULT_PYTHON,
  envMilliseconds,
  passedEnvironment,
} = require("./environment.cjs");
const { LineSplitter } = require("./lines.cjs");

/** The protocol version this client speaks; the bridge states its own in its ready line. */
const PROTOCOL = 2;
const MIB = 1024 * 1024;
const STDERR_TAIL_CHARS = 8192;
const STDERR_LINE_BYTES = 16 * 1024;
const MAX_TIMER_MS = 2 ** 31 - 1; // setTimeout fires at once beyond this
const LEADING_ID = /^\s*\{\s*"id"\s*:\s*"([^"\\]{1,64})"/;

/** @param {string} line */
function consoleStderr(line) {
  console.error(`[litellm_bridge] ${line}`);
}

class PythonBridge {
  /** @param {import("../index.cjs").BridgeOptions} [options] */
  constructor(options = {}) {
    this.command = options.command ?? [process.env.PYBUILD_PYTHON || DEFAULT_PYTHON];
    this.args = options.args ?? ["-m", "litellm_bridge"];
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.deadlineMarginMs = options.deadlineMarginMs ?? 500;
    this.startTimeoutMs =
      options.startTimeoutMs ?? envMilliseconds("PYBUILD_START_TIMEOUT_MS", 60_000);
    this.maxRequestBytes = options.maxRequestBytes ?? 32 * MIB;
    this.maxResponseBytes = options.maxResponseBytes ?? 32 * MIB;
    this.streamWindow = options.streamWindow ?? 16;
    this.unref = options.unref ?? false;
    const stderr = options.stderr ?? "console";
    this.log = stderr === "console" ? consoleStderr : stderr === "ignore" ? () => {} : stderr;
    this.env = {
      ...BASE_ENV,
      ...passedEnvironment(process.env),
      PYBUILD_BRIDGE_MAX_REQUEST_BYTES: String(this.maxRequestBytes),
      PYBUILD_BRIDGE_MAX_RESPONSE_BYTES: String(this.maxResponseBytes),
      ...(options.env ?? {}),
    };
    /** @type {BridgeProcess | null} */
    this.current = null;
    /** @type {Map<string, Call>} */
    this.calls = new Map();
    this.nextId = 1;
    this.startWaiters = 0;
  }

  /** The running interpreter's process id, or null. */
  get pid() {
    return this.current?.child.pid ?? null;
  }

  /** Start the interpreter if it is not running; resolves with its ready line. */
  async start() {
    const python = this.#process();
    this.startWaiters += 1;
    this.#updateRef(python);
    try {
      return await python.ready;
    } finally {
      this.startWaiters -= 1;
      this.#updateRef(python);
    }
  }

  /**
   * Send one request; resolves with its result.
   * @param {string} method "completion" or "ping"
   * @param {object} [params]
   * @param {import("../index.cjs").RequestOptions} [options]
   */
  request(method, params = {}, options = {}) {
    return this.call(method, params, options).result;
  }

  /**
   * Start one request and return its handle (what a stream needs: credit and cancel).
   * @param {string} method
   * @param {object} params
   * @param {import("../index.cjs").RequestOptions & {onChunk?: (chunk: any) => void}} options
   */
  call(method, params, options) {
    const id = String(this.nextId++);
    const stream = options.onChunk ? { window: options.window ?? this.streamWindow } : null;
    const message = { id, method, params, ...(stream ? { window: stream.window } : {}) };
    const call = new Call(id, `${method} request ${id}`, options.onChunk, stream?.window ?? 0);
    this.calls.set(id, call);
    const limit = this.#timeLimit(options);
    let line = "";
    try {
      line = JSON.stringify(message);
    } catch (err) {
      this.#settle(call, err); // not JSON (a BigInt, a cycle): a TypeError, as fetch gives
    }
    const size = Buffer.byteLength(line);
    if (call.settled) {
      // nothing to send
    } else if (options.signal?.aborted) {
      this.#settle(call, abortError(call, options.signal));
    } else if (size > this.maxRequestBytes) {
      const text = `${call.label} is ${size} bytes, over the ${this.maxRequestBytes}-byte limit (maxRequestBytes)`;
      this.#settle(
        call,
        new RequestTooLargeError(text, { code: "REQUEST_TOO_LARGE", requestId: id }),
      );
    } else if (limit.ms <= 0) {
      this.#settle(call, limit.error(call, 0));
    } else {
      call.line = line;
      call.process = this.#process();
      const started = Date.now();
      const expire = () => this.#cancel(call, limit.error(call, Date.now() - started));
      call.timer = setTimeout(expire, Math.min(limit.ms, MAX_TIMER_MS));
      if (options.signal) {
        const signal = options.signal;
        const onAbort = () => this.#cancel(call, abortError(call, signal));
        signal.addEventListener("abort", onAbort, { once: true });
        call.cleanup = () => signal.removeEventListener("abort", onAbort);
      }
      call.process.submit(call);
      this.#updateRef(call.process);
    }
    return {
      id,
      result: call.promise,
      credit: (chunks) => this.#credit(call, chunks),
      cancel: (error) => this.#cancel(call, error),
    };
  }

  /**
   * End Python promptly: every request still pending rejects with APIUserAbortError (code
   * CLIENT_CLOSED), stdin is closed (the bridge cancels its work and exits at once), then
   * SIGTERM, then SIGKILL, each after `graceMs`. The next request starts a new process.
   * @param {{graceMs?: number}} [options]
   */
  async close({ graceMs = 2_000 } = {}) {
    const python = this.current;
    this.current = null;
    for (const call of [...this.calls.values()]) {
      this.#settle(
        call,
        new APIUserAbortError(`${call.label} was pending when the client was closed`, {
          code: "CLIENT_CLOSED",
          requestId: call.id,
        }),
      );
    }
    if (!python) return;
    if (python.info) python.endInput();
    else python.kill("SIGTERM"); // still importing litellm: nothing to finish
    for (const signal of ["SIGTERM", "SIGKILL"]) {
      if (await python.exitedWithin(graceMs)) return;
      python.kill(signal);
    }
    await python.exited;
  }

  /** @param {BridgeProcess} python @param {string} line */
  onLine(python, line) {
    if (!line.trim()) return;
    let message;
    try {
      message = JSON.parse(line);
    } catch {
      message = undefined;
    }
    if (message === null || typeof message !== "object" || Array.isArray(message)) {
      const text = `malformed output from python: ${JSON.stringify(line.slice(0, 200))}`;
      python.fail(new BridgeProtocolError(text, { code: "BRIDGE_PROTOCOL" }, python.stderrTail));
      return;
    }
    if (message.ready) {
      python.onReady(message);
      return;
    }
    const call = this.calls.get(message.id);
    if (!call || call.process !== python) return; // the reply to a request already given up on
    if (message.chunk !== undefined && call.onChunk) {
      call.received += 1;
      if (call.received > call.granted) {
        const text = `${call.label}: the bridge sent more chunks than the stream's window (${call.window}) allows`;
        this.#cancel(
          call,
          new BridgeProtocolError(text, { code: "BRIDGE_PROTOCOL", requestId: call.id }),
        );
        return;
      }
      call.onChunk(message.chunk);
    } else if (message.ok === true) {
      this.#settle(call, null, message.done ? undefined : message.result);
    } else if (message.ok === false) {
      this.#settle(call, errorFromReply(message.error, call.id));
    } else {
      const text = `${call.label}: unexpected reply ${JSON.stringify(line.slice(0, 200))}`;
      this.#cancel(
        call,
        new BridgeProtocolError(text, { code: "BRIDGE_PROTOCOL", requestId: call.id }),
      );
    }
  }

  /** A line from Python over maxResponseBytes: it fails its own request, found by its id. */
  onSkippedLine(python, head, size) {
    const id = LEADING_ID.exec(head)?.[1];
    const call = id === undefined ? undefined : this.calls.get(id);
    const text = `a reply from python is ${size} bytes, over the ${this.maxResponseBytes}-byte limit (maxResponseBytes)`;
    if (id === undefined) {
      python.fail(new BridgeProtocolError(text, { code: "BRIDGE_PROTOCOL" }, python.stderrTail));
    } else if (call && call.process === python) {
      this.#cancel(
        call,
        new ResponseTooLargeError(`${call.label}: ${text}`, {
          code: "RESPONSE_TOO_LARGE",
          requestId: id,
        }),
      );
    }
  }

  /** The process ended or was given up on: its requests fail, the next request starts anew. */
  onProcessFailed(python, error) {
    if (this.current === python) this.current = null;
    for (const call of [...this.calls.values()]) {
      if (call.process === python) this.#settle(call, error);
    }
  }

  #process() {
    if (!this.current) this.current = new BridgeProcess(this);
    return this.current;
  }

  #timeLimit(options) {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const context = options.context;
    if (context && typeof context.getRemainingTimeInMillis === "function") {
      const margin = options.deadlineMarginMs ?? this.deadlineMarginMs;
      const left = context.getRemainingTimeInMillis() - margin;
      if (left < timeoutMs) {
        return {
          ms: left,
          error: (call, elapsed) =>
            new APIConnectionTimeoutError(
              `${call.label} stopped ${margin} ms before the Lambda deadline (after ${elapsed} ms)`,
              { code: "LAMBDA_DEADLINE", requestId: call.id },
            ),
        };
      }
    }
    return {
      ms: timeoutMs,
      error: (call) =>
        new APIConnectionTimeoutError(`${call.label} timed out after ${timeoutMs} ms`, {
          code: "TIMEOUT",
          requestId: call.id,
        }),
    };
  }

  #credit(call, chunks) {
    if (call.settled || chunks <= 0) return;
    call.granted += chunks;
    call.process.send({ id: call.id, method: "credit", chunks });
  }

  /** Give up on a request in Node, and in Python if it was sent there. */
  #cancel(call, error) {
    if (call.settled) return;
    const sent = call.sent;
    this.#settle(call, error);
    if (sent) call.process.send({ id: call.id, method: "cancel" });
  }

  #settle(call, error, value) {
    if (call.settled) return;
    call.settled = true;
    this.calls.delete(call.id);
    clearTimeout(call.timer);
    call.cleanup?.();
    if (error) call.reject(error);
    else call.resolve(value);
    if (call.process) this.#updateRef(call.process);
  }

  /** With `unref`, an idle process does not keep Node's event loop alive. */
  #updateRef(python) {
    if (!this.unref) return;
    const busy =
      (python === this.current && this.startWaiters > 0) ||
      [...this.calls.values()].some((call) => call.process === python);
    python.setRef(busy);
  }
}

/** One request, from the moment it is made to its result or error. */
class Call {
  constructor(id, label, onChunk, window) {
    this.id = id;
    this.label = label;
    this.onChunk = onChunk;
    this.window = window;
    this.granted = window;
    this.received = 0;
    this.line = "";
    this.process = null;
    this.sent = false;
    this.settled = false;
    this.timer = undefined;
    this.cleanup = undefined;
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}

function abortError(call, signal) {
  return new APIUserAbortError(`${call.label} was aborted`, {
    code: "ABORTED",
    requestId: call.id,
    cause: signal.reason,
  });
}

/** One Python process: its start, its output and its end. */
class BridgeProcess {
  /** @param {PythonBridge} bridge */
  constructor(bridge) {
    this.bridge = bridge;
    this.info = null;
    this.failed = false;
    this.waiting = [];
    this.stderrTail = "";
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => {}); // surfaced through the requests waiting on it
    this.exited = new Promise((resolve) => {
      this.resolveExited = resolve;
    });
    const [file, ...rest] = bridge.command;
    const child = spawn(file, [...rest, ...bridge.args], {
      env: bridge.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.child = child;
    this.startTimer = setTimeout(
      () => {
        const text = `python was not ready within ${bridge.startTimeoutMs} ms (startTimeoutMs, PYBUILD_START_TIMEOUT_MS)`;
        this.fail(new BridgeStartError(text, { code: "BRIDGE_START_TIMEOUT" }, this.stderrTail));
      },
      Math.min(bridge.startTimeoutMs, MAX_TIMER_MS),
    );
    this.startTimer.unref();

    child.stdin.on("error", () => {}); // EPIPE when it dies: the exit reports it
    const stdout = new LineSplitter(
      bridge.maxResponseBytes,
      (line) => bridge.onLine(this, line),
      (head, size) => bridge.onSkippedLine(this, head, size),
    );
    child.stdout.on("data", (data) => stdout.push(data));
    const stderr = new LineSplitter(
      STDERR_LINE_BYTES,
      (line) => this.#stderrLine(line),
      (head, size) => this.#stderrLine(`${head}... (a line of ${size} bytes, cut)`),
    );
    child.stderr.on("data", (data) => stderr.push(data));
    child.stderr.on("end", () => stderr.end());
    child.on("error", (err) => {
      const text = `cannot start ${bridge.command.join(" ")}: ${err.message}`;
      this.fail(
        new BridgeStartError(text, { code: "BRIDGE_START_FAILED", cause: err }, this.stderrTail),
      );
      if (child.pid === undefined) this.resolveExited();
    });
    child.on("close", (code, signal) => {
      const how = signal ? `signal ${signal}` : `exit code ${code}`;
      const last = lastLine(this.stderrTail);
      const detail = last ? `: ${last}` : "";
      this.fail(
        this.info
          ? new BridgeCrashError(
              `python exited (${how})${detail}`,
              { code: "BRIDGE_EXITED" },
              this.stderrTail,
            )
          : new BridgeStartError(
              `python exited before it was ready (${how})${detail}`,
              {
                code: "BRIDGE_START_FAILED",
              },
              this.stderrTail,
            ),
      );
      this.resolveExited();
    });
  }

  /** Write a request once Python is ready. */
  submit(call) {
    if (this.info) this.#write(call);
    else this.waiting.push(call);
  }

  /** Write a control message (credit, cancel) for a request already written. */
  send(message) {
    if (!this.failed) this.child.stdin.write(JSON.stringify(message) + "\n");
  }

  onReady(info) {
    if (this.info) return;
    if (info.protocol !== PROTOCOL) {
      const text = `the layer's litellm_bridge speaks protocol ${info.protocol ?? 1}, this client speaks ${PROTOCOL}: build the layer and the client from the same pybuild version`;
      this.fail(new BridgeProtocolError(text, { code: "BRIDGE_PROTOCOL" }, this.stderrTail));
      return;
    }
    this.info = info;
    clearTimeout(this.startTimer);
    this.resolveReady(info);
    for (const call of this.waiting.splice(0)) {
      if (!call.settled) this.#write(call);
    }
  }

  /** Fail every request on this process and stop it (a no-op once it has failed). */
  fail(error) {
    if (this.failed) return;
    this.failed = true;
    clearTimeout(this.startTimer);
    this.rejectReady(error);
    this.waiting = [];
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    this.bridge.onProcessFailed(this, error);
  }

  endInput() {
    this.child.stdin.end();
  }

  kill(signal) {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  /** @returns {Promise<boolean>} whether the process exited within `ms` */
  exitedWithin(ms) {
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(resolve, ms, false);
    });
    return Promise.race([this.exited.then(() => true), timeout]).finally(() => clearTimeout(timer));
  }

  setRef(busy) {
    for (const handle of [this.child, this.child.stdin, this.child.stdout, this.child.stderr]) {
      if (busy) handle?.ref?.();
      else handle?.unref?.();
    }
  }

  #write(call) {
    call.sent = true;
    this.child.stdin.write(call.line + "\n");
  }

  #stderrLine(line) {
    this.stderrTail = (this.stderrTail + line + "\n").slice(-STDERR_TAIL_CHARS);
    this.bridge.log(line);
  }
}

function lastLine(text) {
  const lines = text.trimEnd().split("\n");
  return lines[lines.length - 1].slice(0, 300);
}

module.exports = { PythonBridge, PROTOCOL };
