// The Node helper against the real bridge in a built layer (run by tests/test_node.py, which
// sets PYBUILD_TEST_COMMAND to the interpreter's command line, qemu included on x86_64 hosts),
// and against broken interpreters. Every case ends with a result or a clear error, never a hang.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";

import {
  BridgeCrashError,
  BridgeError,
  BridgeTimeoutError,
  LitellmClient,
} from "../litellmClient.js";

const command = process.env.PYBUILD_TEST_COMMAND
  ? JSON.parse(process.env.PYBUILD_TEST_COMMAND)
  : null;
const messages = [{ role: "user", content: "ping" }];

/** An HTTP server that accepts requests and never answers them. */
async function silentServer() {
  const sockets = new Set();
  const server = http.createServer(() => {});
  server.on("connection", (socket) => sockets.add(socket));
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/v1`,
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

describe("the litellm bridge in the layer", {
  skip: command ? false : "PYBUILD_TEST_COMMAND is not set (run through tests/test_node.py)",
  timeout: 1_200_000,
}, () => {
  let client;
  let silent;

  before(async () => {
    client = new LitellmClient({ command, startTimeoutMs: 300_000, timeoutMs: 120_000 });
    silent = await silentServer();
    const info = await client.ping();
    assert.match(info.litellm, /^\d+\.\d+\.\d+/);
  });

  after(async () => {
    silent?.close();
    await client?.close(2_000);
  });

  test("a mocked completion", async () => {
    const reply = await client.completion({ model: "gpt-4o-mini", messages, mock_response: "pong" });
    assert.equal(reply.choices[0].message.content, "pong");
    assert.equal(reply.choices[0].finish_reason, "stop");
  });

  test("a streamed completion arrives in chunks", async () => {
    const chunks = [];
    for await (const chunk of client.completionStream({
      model: "gpt-4o-mini", messages, mock_response: "hello from the layer",
    })) {
      chunks.push(chunk);
    }
    assert.ok(chunks.length > 1, `expected several chunks, got ${chunks.length}`);
    const text = chunks.map((c) => c.choices[0].delta.content ?? "").join("");
    assert.equal(text, "hello from the layer");
  });

  test("requests overlap on one process", async () => {
    const replies = await Promise.all(["a", "b", "c"].map((word) =>
      client.completion({ model: "gpt-4o-mini", messages, mock_response: word })));
    assert.deepEqual(replies.map((r) => r.choices[0].message.content), ["a", "b", "c"]);
  });

  test("litellm's exceptions arrive as structured errors", async () => {
    await assert.rejects(
      client.completion({ model: "gpt-4o-mini", messages,
                          mock_response: "litellm.RateLimitError" }),
      (err) => err instanceof BridgeError && err.type === "RateLimitError"
        && err.statusCode === 429 && /rate limit/i.test(err.message),
    );
  });

  test("a timeout rejects the request and keeps the process", async () => {
    const pid = client.bridge.pid;
    await assert.rejects(
      client.completion({ model: "openai/gpt-4o-mini", messages, api_base: silent.url,
                          api_key: "sk-test", num_retries: 0 }, { timeoutMs: 4_000 }),
      (err) => err instanceof BridgeTimeoutError && /timed out after 4000 ms/.test(err.message),
    );
    const reply = await client.completion({ model: "gpt-4o-mini", messages, mock_response: "ok" });
    assert.equal(reply.choices[0].message.content, "ok");
    assert.equal(client.bridge.pid, pid);
  });

  test("a crash mid-request rejects it, and the next request starts a new process", async () => {
    const pid = client.bridge.pid;
    const pending = client.completion({ model: "openai/gpt-4o-mini", messages,
                                        api_base: silent.url, api_key: "sk-test" });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    process.kill(pid, "SIGKILL");
    await assert.rejects(pending, (err) => err instanceof BridgeCrashError
      && /python exited \(signal SIGKILL\)/.test(err.message));
    const reply = await client.completion({ model: "gpt-4o-mini", messages, mock_response: "back" });
    assert.equal(reply.choices[0].message.content, "back");
    assert.notEqual(client.bridge.pid, pid);
  });
});

describe("broken interpreters give clear errors", { timeout: 60_000 }, () => {
  const node = (script, options = {}) => new LitellmClient({
    command: [process.execPath, "-e", script], args: [], startTimeoutMs: 5_000,
    timeoutMs: 5_000, ...options,
  });

  test("output that is not the protocol", async () => {
    const client = node(`
      process.stdout.write(JSON.stringify({ ready: true }) + "\\n");
      process.stdin.once("data", () => process.stdout.write("Traceback (most recent call last)\\n"));
      setInterval(() => {}, 1000);`);
    await assert.rejects(client.ping(), (err) => err instanceof BridgeCrashError
      && /malformed output from python: "Traceback/.test(err.message));
  });

  test("an interpreter that is not there", async () => {
    const client = new LitellmClient({ command: ["/nonexistent/python3.11"], startTimeoutMs: 5_000 });
    await assert.rejects(client.ping(), (err) => err instanceof BridgeCrashError
      && /cannot start \/nonexistent\/python3.11/.test(err.message));
  });

  test("an interpreter that dies at start shows its stderr", async () => {
    const client = node(`process.stderr.write("ImportError: no litellm\\n"); process.exit(3);`);
    await assert.rejects(client.ping(), (err) => err instanceof BridgeCrashError
      && /exit code 3/.test(err.message) && err.stderr.includes("ImportError: no litellm"));
  });

  test("an interpreter that never becomes ready", async () => {
    const client = node("setInterval(() => {}, 1000);", { startTimeoutMs: 500 });
    await assert.rejects(client.ping(), (err) => err instanceof BridgeCrashError
      && /did not start within 500 ms/.test(err.message));
  });

  test("the environment is minimal and explicit", async () => {
    process.env.OPENAI_API_KEY = "sk-from-the-function";
    process.env.SECRET_THAT_STAYS = "x";
    const client = node(`
      process.stdout.write(JSON.stringify({ ready: true }) + "\\n");
      process.stdin.once("data", (data) => {
        const { id } = JSON.parse(data);
        process.stdout.write(JSON.stringify({ id, ok: true, result: process.env }) + "\\n");
      });`);
    const env = await client.ping();
    assert.equal(env.OPENAI_API_KEY, "sk-from-the-function");
    assert.equal(env.SECRET_THAT_STAYS, undefined);
    assert.equal(env.HOME, "/tmp");
    assert.equal(env.LITELLM_LOCAL_MODEL_COST_MAP, "True");
    assert.equal(env.PYTHONHOME, undefined);
    await client.close();
  });
});
