"use strict";
// litellm from Node.js: completions and streams over the bridge (see bridge.cjs).

const { PythonBridge } = require("./bridge.cjs");
const { APIUserAbortError } = require("./errors.cjs");
const { envMilliseconds } = require("./environment.cjs");

/** Lambda caps an on-demand function's init phase at 10 s; leave room for Node's own start. */
const DEFAULT_INIT_WAIT_MS = 8_000;

class LitellmClient {
  /** @param {import("../index.cjs").BridgeOptions} [options] */
  constructor(options = {}) {
    this.bridge = new PythonBridge(options);
  }

  /** Start Python now; resolves once litellm is imported (rejects if it cannot start). */
  start() {
    return this.bridge.start();
  }

  /**
   * Start Python now and wait for it at most `waitMs` (default PYBUILD_INIT_WAIT_MS or 8000):
   * what a handler does at module scope, within Lambda's init phase. Resolves true when Python
   * is ready, false when it is still starting (it goes on; the first request waits for it) or
   * could not start (logged; the first request tries again and reports why). Never rejects.
   * @param {{waitMs?: number}} [options]
   */
  async warmUp({ waitMs = envMilliseconds("PYBUILD_INIT_WAIT_MS", DEFAULT_INIT_WAIT_MS) } = {}) {
    let timer;
    const waited = new Promise((resolve) => {
      timer = setTimeout(resolve, waitMs, false);
    });
    try {
      return await Promise.race([this.start().then(() => true), waited]);
    } catch (err) {
      this.bridge.log(`python did not start: ${err instanceof Error ? err.message : err}`);
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * One completion.
   * @param {object} params litellm.completion's keywords (model, messages, temperature, ...)
   * @param {import("../index.cjs").RequestOptions} [options]
   */
  completion(params, options = {}) {
    return this.bridge.request("completion", { ...params, stream: false }, options);
  }

  /**
   * A streamed completion: iterate it with `for await`; leaving the loop early (break, return,
   * throw) cancels the request in Python. It starts at once; errors surface in the loop.
   * @param {object} params
   * @param {import("../index.cjs").StreamOptions} [options]
   */
  completionStream(params, options = {}) {
    return new CompletionStream(this.bridge, { ...params, stream: true }, options);
  }

  /** @param {import("../index.cjs").RequestOptions} [options] */
  ping(options = {}) {
    return this.bridge.request("ping", {}, options);
  }

  /**
   * Stop Python promptly; requests still pending reject with APIUserAbortError (code
   * CLIENT_CLOSED). The next request starts a new process.
   * @param {{graceMs?: number}} [options]
   */
  close(options) {
    return this.bridge.close(options);
  }
}

/** A stream of completion chunks, with at most `window` of them buffered here. */
class CompletionStream {
  #call;
  #chunks = [];
  #window;
  #taken = 0;
  #finished = false;
  #failure = null;
  #wake = null;
  #iterated = false;

  constructor(bridge, params, options) {
    this.#window = options.window ?? bridge.streamWindow;
    this.#call = bridge.call("completion", params, {
      ...options,
      window: this.#window,
      onChunk: (chunk) => {
        this.#chunks.push(chunk);
        this.#wake?.();
      },
    });
    this.#call.result.then(
      () => this.#finish(null),
      (err) => this.#finish(err),
    );
  }

  /** The bridge's id for this request. */
  get requestId() {
    return this.#call.id;
  }

  /** Chunks received and not yet taken by the loop (never more than the window). */
  get buffered() {
    return this.#chunks.length;
  }

  /** Stop the stream: the loop ends with APIUserAbortError, Python stops the request. */
  abort(reason) {
    this.#call.cancel(
      new APIUserAbortError(`completion request ${this.#call.id} was aborted`, {
        code: "ABORTED",
        requestId: this.#call.id,
        cause: reason,
      }),
    );
  }

  async *[Symbol.asyncIterator]() {
    if (this.#iterated) throw new TypeError("a CompletionStream can be iterated only once");
    this.#iterated = true;
    try {
      while (true) {
        if (this.#chunks.length > 0) {
          const chunk = this.#chunks.shift();
          this.#took();
          yield chunk;
        } else if (this.#failure) {
          throw this.#failure;
        } else if (this.#finished) {
          return;
        } else {
          await new Promise((resolve) => {
            this.#wake = resolve;
          });
          this.#wake = null;
        }
      }
    } finally {
      // the loop ended before the stream did (break, return, an exception in its body)
      this.#call.cancel(
        new APIUserAbortError(`completion request ${this.#call.id} was left before its end`, {
          code: "STREAM_CLOSED",
          requestId: this.#call.id,
        }),
      );
    }
  }

  /** Credit the bridge for chunks taken, in batches of half a window. */
  #took() {
    this.#taken += 1;
    if (this.#taken * 2 >= this.#window) {
      this.#call.credit(this.#taken);
      this.#taken = 0;
    }
  }

  #finish(failure) {
    this.#finished = true;
    this.#failure = failure;
    this.#wake?.();
  }
}

module.exports = { LitellmClient, CompletionStream, DEFAULT_INIT_WAIT_MS };
