// litellm from Node.js, through the pybuild layer's Python (see pythonExec.js).
//
//   import { LitellmClient } from "./litellmClient.js";
//   const client = new LitellmClient();                   // once per container
//   const reply = await client.completion({ model: "gpt-4o-mini", messages });
//   for await (const chunk of client.completionStream({ model: "gpt-4o-mini", messages })) {}

import { PythonBridge } from "./pythonExec.js";

export { BridgeCrashError, BridgeError, BridgeTimeoutError } from "./pythonExec.js";

/**
 * @typedef {{role: "system"|"user"|"assistant"|"tool", content: string|object[]}} Message
 * @typedef {{model: string, messages: Message[], [option: string]: any}} CompletionParams
 *   any other litellm.completion keyword (temperature, api_base, mock_response, ...)
 * @typedef {{index: number, message: {role: string, content: string|null}, finish_reason: string}} Choice
 * @typedef {{id: string, model: string, choices: Choice[], usage?: object}} ModelResponse
 * @typedef {{index: number, delta: {role?: string, content?: string|null}, finish_reason: string|null}} ChunkChoice
 * @typedef {{id: string, model: string, choices: ChunkChoice[]}} ModelResponseChunk
 */

export class LitellmClient {
  /** @param {import("./pythonExec.js").BridgeOptions} [options] */
  constructor(options = {}) {
    this.bridge = new PythonBridge(options);
  }

  /**
   * One completion.
   * @param {CompletionParams} params
   * @param {{timeoutMs?: number}} [options]
   * @returns {Promise<ModelResponse>}
   */
  completion(params, options = {}) {
    return this.bridge.request("completion", { ...params, stream: false }, options);
  }

  /**
   * A streamed completion: chunks as they arrive.
   * @param {CompletionParams} params
   * @param {{timeoutMs?: number}} [options] for the whole stream
   * @returns {AsyncGenerator<ModelResponseChunk>}
   */
  async *completionStream(params, options = {}) {
    const chunks = [];
    let wake = null;
    let finished = false;
    let failure = null;
    const done = this.bridge.request("completion", { ...params, stream: true }, {
      ...options,
      onChunk: (chunk) => { chunks.push(chunk); wake?.(); },
    }).then(
      () => { finished = true; wake?.(); },
      (err) => { failure = err; finished = true; wake?.(); },
    );
    while (true) {
      if (chunks.length) {
        yield chunks.shift();
        continue;
      }
      if (finished) break;
      await new Promise((resolve) => { wake = resolve; });
      wake = null;
    }
    await done;
    if (failure) throw failure;
  }

  /** @returns {Promise<{pid: number, litellm: string}>} */
  ping(options = {}) {
    return this.bridge.request("ping", {}, options);
  }

  /** Stop the Python process (it is restarted by the next request). */
  close() {
    return this.bridge.close();
  }
}
