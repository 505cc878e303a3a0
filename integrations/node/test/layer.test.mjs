// The client against the real bridge in a built layer: tests/test_node.py builds the reference
// layer and sets PYBUILD_TEST_COMMAND (how to start its interpreter, qemu included on x86_64
// hosts) and PYBUILD_TEST_REPORT (where this file writes how many of its cases ran and passed:
// a skipped suite writes nothing, and tests/test_node.py fails on that).
//
// Python reaches no real provider: testing/provider.mjs is its HTTP proxy and its OpenAI.
import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import * as pybuild from "../index.mjs";
import { fakeProvider } from "../testing/provider.mjs";
import { PACKAGE_DIR, runNode, sleep } from "../testing/support.mjs";

const {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIUserAbortError,
  BadRequestError,
  BridgeCrashError,
  LitellmClient,
  RateLimitError,
  RequestTooLargeError,
  ResponseTooLargeError,
} = pybuild;

const command = process.env.PYBUILD_TEST_COMMAND
  ? JSON.parse(process.env.PYBUILD_TEST_COMMAND)
  : null;
const messages = [{ role: "user", content: "ping" }];
const MIB = 1024 * 1024;
const counts = { defined: 0, passed: 0 };

/** A case of this suite, counted for PYBUILD_TEST_REPORT. */
function layerTest(name, fn) {
  counts.defined += 1;
  test(name, async (t) => {
    await fn(t);
    counts.passed += 1;
  });
}

describe(
  "the litellm bridge in the layer",
  {
    skip: command ? false : "PYBUILD_TEST_COMMAND is not set (run through tests/test_node.py)",
    timeout: 1_800_000,
  },
  () => {
    const savedEnv = { ...process.env };
    const stderr = [];
    let client;
    let provider;
    let litellmVersion;

    /** An OpenAI request through the fake provider at `route` (a path prefix). */
    const viaProvider = (route, extra = {}) => ({
      model: "openai/gpt-4o-mini",
      messages,
      api_base: `http://openai.test${route}/v1`,
      max_retries: 0,
      num_retries: 0,
      ...extra,
    });

    before(async () => {
      provider = await fakeProvider();
      // what the function's own environment would say; the client passes these through
      Object.assign(process.env, {
        OPENAI_BASE_URL: "http://openai.test/v1",
        OPENAI_API_KEY: "sk-from-the-function",
        HTTP_PROXY: provider.url,
      });
      client = new LitellmClient({
        command,
        startTimeoutMs: 900_000,
        timeoutMs: 300_000,
        // the bridge stricter than Node (32 MiB each way): its own limits are what is tested
        env: {
          PYBUILD_BRIDGE_MAX_REQUEST_BYTES: String(MIB),
          PYBUILD_BRIDGE_MAX_RESPONSE_BYTES: String(64 * 1024),
        },
        stderr: (line) => stderr.push(line),
      });
      const info = await client.ping();
      assert.match(info.litellm, /^\d+\.\d+\.\d+/);
      assert.equal(info.protocol, pybuild.PROTOCOL);
      litellmVersion = info.litellm;
    });

    after(async () => {
      for (const name of ["OPENAI_BASE_URL", "OPENAI_API_KEY", "HTTP_PROXY"]) {
        if (name in savedEnv) process.env[name] = savedEnv[name];
        else delete process.env[name];
      }
      await client?.close();
      provider?.close();
      if (process.env.PYBUILD_TEST_REPORT) {
        const report = { ...counts, litellm: litellmVersion };
        await writeFile(process.env.PYBUILD_TEST_REPORT, JSON.stringify(report) + "\n");
      }
    });

    layerTest("a mocked completion", async () => {
      const reply = await client.completion({
        model: "gpt-4o-mini",
        messages,
        mock_response: "pong",
      });
      assert.equal(reply.choices[0].message.content, "pong");
      assert.equal(reply.choices[0].finish_reason, "stop");
    });

    layerTest("OPENAI_BASE_URL, the API key and HTTP_PROXY reach litellm", async () => {
      const reply = await client.completion({
        model: "openai/gpt-4o-mini",
        messages,
        max_retries: 0,
      });
      assert.equal(reply.choices[0].message.content, "via proxy");
      const request = provider.requests.at(-1);
      assert.equal(request.url, "http://openai.test/v1/chat/completions");
      assert.equal(request.authorization, "Bearer sk-from-the-function");
    });

    layerTest("a streamed completion arrives in chunks", async () => {
      const chunks = [];
      const stream = client.completionStream({
        model: "gpt-4o-mini",
        messages,
        mock_response: "hello from the layer",
      });
      for await (const chunk of stream) chunks.push(chunk);
      assert.ok(chunks.length > 1, `expected several chunks, got ${chunks.length}`);
      const text = chunks.map((c) => c.choices[0].delta.content ?? "").join("");
      assert.equal(text, "hello from the layer");
    });

    layerTest("requests overlap on one process", async () => {
      const replies = await Promise.all(
        ["a", "b", "c"].map((word) =>
          client.completion({ model: "gpt-4o-mini", messages, mock_response: word }),
        ),
      );
      assert.deepEqual(
        replies.map((r) => r.choices[0].message.content),
        ["a", "b", "c"],
      );
    });

    layerTest("litellm's exceptions become the error classes", async () => {
      const cases = [
        [viaProvider("/status/400"), "BadRequestError", 400],
        [viaProvider("/status/401"), "AuthenticationError", 401],
        [viaProvider("/status/403"), "PermissionDeniedError", 403],
        [viaProvider("/status/404"), "NotFoundError", 404],
        [viaProvider("/status/429"), "RateLimitError", 429],
        [viaProvider("/status/500"), "InternalServerError", 500],
        [viaProvider("/reset"), "APIConnectionError", undefined],
        [
          viaProvider("/silent/litellm-timeout", { timeout: 2 }),
          "APIConnectionTimeoutError",
          undefined,
        ],
      ];
      for (const [params, name, status] of cases) {
        await assert.rejects(client.completion(params), (err) => {
          assert.equal(err.name, name, `${params.api_base}: ${err.name}: ${err.message}`);
          if (status) assert.equal(err.status, status, params.api_base);
          assert.equal(err.provider, "openai");
          assert.ok(err.type, "the Python exception's class");
          return true;
        });
      }
      await assert.rejects(
        client.completion({
          model: "gpt-4o-mini",
          messages,
          mock_response: "litellm.RateLimitError",
        }),
        (err) =>
          err instanceof RateLimitError && err.status === 429 && /rate limit/i.test(err.message),
      );
      await assert.rejects(
        client.completion({
          model: "gpt-4o-mini",
          messages,
          mock_response: "litellm.ContextWindowExceededError",
        }),
        (err) => err instanceof BadRequestError && err.type === "ContextWindowExceededError",
      );
      assert.ok(APIConnectionTimeoutError.prototype instanceof APIConnectionError);
    });

    layerTest("Python's stderr reaches the client line by line", async () => {
      await assert.rejects(client.completion(viaProvider("/status/404")));
      assert.ok(
        stderr.some((line) => /^litellm_bridge: request '\d+' failed: .*NotFoundError/.test(line)),
        stderr.slice(-20).join("\n"),
      );
    });

    layerTest("an AbortSignal stops the request in Python: the provider sees it go", async () => {
      const controller = new AbortController();
      const closed = provider.closed("/silent/abort/v1/chat/completions");
      const pending = client.completion(viaProvider("/silent/abort"), {
        signal: controller.signal,
      });
      await waitForRequest(provider, "/silent/abort/");
      controller.abort();
      await assert.rejects(pending, APIUserAbortError);
      await closed;
    });

    layerTest("a timeout stops the request in Python and keeps the process", async () => {
      const pid = client.bridge.pid;
      const closed = provider.closed("/silent/timeout/v1/chat/completions");
      const pending = client.completion(viaProvider("/silent/timeout"), { timeoutMs: 5_000 });
      await assert.rejects(
        pending,
        (err) => err instanceof APIConnectionTimeoutError && err.code === "TIMEOUT",
      );
      await closed;
      assert.equal(client.bridge.pid, pid);
    });

    layerTest("the Lambda deadline stops the request in Python", async () => {
      const deadline = Date.now() + 6_000;
      const context = { getRemainingTimeInMillis: () => deadline - Date.now() };
      const closed = provider.closed("/silent/deadline/v1/chat/completions");
      await assert.rejects(
        client.completion(viaProvider("/silent/deadline"), { context }),
        (err) => err instanceof APIConnectionTimeoutError && err.code === "LAMBDA_DEADLINE",
      );
      await closed;
    });

    layerTest("breaking out of a stream stops it in Python", async () => {
      const closed = provider.closed("/drip/v1/chat/completions");
      const words = [];
      for await (const chunk of client.completionStream(viaProvider("/drip"))) {
        const content = chunk.choices[0].delta.content;
        if (content) words.push(content);
        if (words.length === 3) break;
      }
      assert.deepEqual(words, ["0 ", "1 ", "2 "]);
      await closed;
    });

    layerTest(
      "a slow consumer: the bridge waits, at most a window of chunks is buffered",
      async () => {
        const text = "0123456789".repeat(30); // 100 chunks of 3 characters
        const stream = client.completionStream(
          { model: "gpt-4o-mini", messages, mock_response: text },
          { window: 2 },
        );
        const iterator = stream[Symbol.asyncIterator]();
        const first = await iterator.next();
        await sleep(2_000); // time enough to send all 100 chunks without backpressure
        assert.ok(stream.buffered <= 2, `${stream.buffered} chunks buffered`);
        let received = first.value.choices[0].delta.content ?? "";
        for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
          received += next.value.choices[0].delta.content ?? "";
        }
        assert.equal(received, text);
      },
    );

    layerTest("a request over the bridge's size limit fails alone", async () => {
      const pid = client.bridge.pid;
      const fine = client.completion({ model: "gpt-4o-mini", messages, mock_response: "fine" });
      const huge = [{ role: "user", content: "x".repeat(2 * MIB) }];
      await assert.rejects(
        client.completion({ model: "gpt-4o-mini", messages: huge, mock_response: "no" }),
        (err) =>
          err instanceof RequestTooLargeError &&
          /^the request is \d+ bytes, over the 1048576-byte limit$/.test(err.message),
      );
      assert.equal((await fine).choices[0].message.content, "fine");
      assert.equal(client.bridge.pid, pid);
    });

    layerTest("a reply over the bridge's size limit fails alone", async () => {
      const pid = client.bridge.pid;
      await assert.rejects(
        client.completion({ model: "gpt-4o-mini", messages, mock_response: "y".repeat(100_000) }),
        (err) =>
          err instanceof ResponseTooLargeError &&
          /^the reply is \d+ bytes, over the 65536-byte limit$/.test(err.message),
      );
      const reply = await client.completion({
        model: "gpt-4o-mini",
        messages,
        mock_response: "ok",
      });
      assert.equal(reply.choices[0].message.content, "ok");
      assert.equal(client.bridge.pid, pid);
    });

    layerTest(
      "a crash mid-request rejects it, and the next request starts a new process",
      async () => {
        const pid = client.bridge.pid;
        const pending = client.completion(viaProvider("/silent/crash"));
        await waitForRequest(provider, "/silent/crash/");
        process.kill(pid, "SIGKILL");
        await assert.rejects(
          pending,
          (err) =>
            err instanceof BridgeCrashError &&
            /^python exited \(signal SIGKILL\)/.test(err.message),
        );
        const reply = await client.completion({
          model: "gpt-4o-mini",
          messages,
          mock_response: "back",
        });
        assert.equal(reply.choices[0].message.content, "back");
        assert.notEqual(client.bridge.pid, pid);
      },
    );

    layerTest(
      "close() with a completion in flight ends Python at once, without a signal",
      async () => {
        const pending = client.completion(viaProvider("/silent/close"));
        await waitForRequest(provider, "/silent/close/");
        const child = client.bridge.current.child;
        const rejected = assert.rejects(pending, (err) => err.code === "CLIENT_CLOSED");
        const started = Date.now();
        await client.close();
        const elapsed = Date.now() - started;
        assert.equal(child.signalCode, null, "the bridge exited by itself");
        assert.equal(child.exitCode, 0);
        assert.ok(elapsed < 2_000, `close took ${elapsed} ms`);
        await rejected;
      },
    );

    layerTest("handler.mjs: Python starts in the init phase, which ends on time", async (t) => {
      const dir = await mkdtemp(path.join(tmpdir(), "pybuild-layer-handler-"));
      try {
        // PYBUILD_PYTHON is one path: a wrapper, like the one `pybuild invoke` writes
        const wrapper = path.join(dir, "python3.11");
        const quoted = command.map((word) => `'${word.replaceAll("'", `'\\''`)}'`).join(" ");
        await writeFile(wrapper, `#!/bin/sh\nexec ${quoted} "$@"\n`);
        await chmod(wrapper, 0o755);
        const env = {
          ...process.env,
          PYBUILD_PYTHON: wrapper,
          PYBUILD_START_TIMEOUT_MS: "900000",
          OPENAI_BASE_URL: "http://openai.test/v1",
          OPENAI_API_KEY: "sk-handler",
          HTTP_PROXY: provider.url,
        };
        const invoke = path.join(PACKAGE_DIR, "testing", "invoke.mjs");
        const handler = path.join(PACKAGE_DIR, "handler.mjs");
        const event = JSON.stringify({ model: "openai/gpt-4o-mini", messages });
        const run = await runNode([invoke, handler, event, "900000"], {
          env,
          timeoutMs: 1_000_000,
        });
        assert.equal(run.code, 0, run.stderr.slice(-3000));
        const { initMs, invokeMs, result } = JSON.parse(run.stdout);
        t.diagnostic(
          `handler.mjs on this layer: init ${initMs} ms, first invocation ${invokeMs} ms`,
        );
        assert.ok(initMs < 10_000, `init took ${initMs} ms: over Lambda's 10 s`);
        assert.deepEqual(result, {
          statusCode: 200,
          body: JSON.stringify({ content: "via proxy" }),
        });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  },
);

/** Wait until the provider has received a request whose URL contains `part`. */
async function waitForRequest(provider, part) {
  const end = Date.now() + 300_000;
  while (!provider.requests.some((request) => request.url.includes(part))) {
    if (Date.now() > end) throw new Error(`no request to ${part} reached the provider`);
    await sleep(20);
  }
}
