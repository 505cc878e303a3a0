// The example handlers start Python in the init phase: the first invocation pays only for its
// request, and an init that would outlast Lambda's 10 s limit ends on time instead of failing.
import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { FAKE_BRIDGE, PACKAGE_DIR, PYTHON, runNode } from "../testing/support.mjs";

const INVOKE = path.join(PACKAGE_DIR, "testing", "invoke.mjs");
const event = JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi there" }] });
let dir;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "pybuild-handler-"));
});
after(() => rm(dir, { recursive: true, force: true }));

/** Run a handler with PYBUILD_PYTHON pointing at the fake bridge, ready after `readyAfter` s. */
async function invoke(handler, { readyAfter, env = {}, remainingMs = 30_000, pauseMs = 0 }) {
  const wrapper = path.join(dir, `python-${readyAfter}`);
  await writeFile(
    wrapper,
    `#!/bin/sh\nexec ${PYTHON} ${FAKE_BRIDGE} --ready-after ${readyAfter}\n`,
  );
  await chmod(wrapper, 0o755);
  const run = await runNode(
    [INVOKE, path.join(PACKAGE_DIR, handler), event, String(remainingMs), String(pauseMs)],
    { env: { ...process.env, PYBUILD_PYTHON: wrapper, ...env } },
  );
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout);
}

test("handler.mjs: Python starts during init, the first invocation is fast", async () => {
  const { initMs, invokeMs, result } = await invoke("handler.mjs", { readyAfter: 1 });
  assert.ok(initMs >= 1_000, `init took ${initMs} ms: it did not wait for Python`);
  assert.ok(invokeMs < 500, `first invocation took ${invokeMs} ms`);
  assert.deepEqual(result, { statusCode: 200, body: JSON.stringify({ content: "hi there" }) });
});

test("handler.mjs: a start longer than the init wait ends the init on time, then waits", async () => {
  const { initMs, invokeMs, result } = await invoke("handler.mjs", {
    readyAfter: 2,
    env: { PYBUILD_INIT_WAIT_MS: "300" },
  });
  assert.ok(initMs >= 300 && initMs < 1_500, `init took ${initMs} ms`);
  assert.ok(invokeMs >= 300, `the first invocation did not wait for Python (${invokeMs} ms)`);
  assert.equal(result.statusCode, 200);
});

test("handler.mjs: the first invocation waits within its own deadline, not beyond", async () => {
  const { invokeMs, result } = await invoke("handler.mjs", {
    readyAfter: 5,
    env: { PYBUILD_INIT_WAIT_MS: "100" },
    remainingMs: 1_000,
  });
  assert.ok(invokeMs < 1_000, `invocation took ${invokeMs} ms`);
  assert.equal(result.statusCode, 504);
  assert.equal(JSON.parse(result.body).code, "LAMBDA_DEADLINE");
});

test("handler.cjs: Python starts at module scope, not on the first request", async () => {
  const { initMs, invokeMs, result } = await invoke("handler.cjs", {
    readyAfter: 1,
    pauseMs: 1_500,
  });
  assert.ok(initMs < 500, `init took ${initMs} ms`);
  assert.ok(invokeMs < 500, `Python was not started at init: invocation took ${invokeMs} ms`);
  assert.equal(result.statusCode, 200);
});
