// The process and the protocol, on the fake bridge: round trips, the environment Python gets,
// how it is started, its stderr, and the clear errors of interpreters that do not work.
import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";

import {
  BridgeCrashError,
  BridgeProtocolError,
  BridgeStartError,
  LitellmClient,
} from "../index.mjs";
import {
  FAKE_BRIDGE,
  PACKAGE_DIR,
  PYTHON,
  fakeClient,
  messages,
  runNode,
} from "../testing/support.mjs";

test("completions round-trip, and overlap on one process", async () => {
  const { client } = fakeClient();
  try {
    const replies = await Promise.all(
      ["a", "b", "c"].map((word, index) =>
        client.completion({ model: "m", messages, mock_response: word, delay: 0.1 * (3 - index) }),
      ),
    );
    assert.deepEqual(
      replies.map((reply) => reply.choices[0].message.content),
      ["a", "b", "c"],
    );
    assert.equal(replies[0].params.stream, false);
  } finally {
    await client.close();
  }
});

test("params that are not JSON reject with a TypeError, and leave nothing pending", async () => {
  const { client } = fakeClient();
  const cyclic = {};
  cyclic.self = cyclic;
  await assert.rejects(client.completion({ model: "m", messages, cyclic }), TypeError);
  assert.equal(client.bridge.calls.size, 0);
  assert.equal(client.bridge.pid, null, "nothing was started for it");
});

test("the environment is minimal, and passes proxies and base URLs through", async () => {
  const passed = {
    OPENAI_API_KEY: "sk-from-the-function",
    OPENAI_BASE_URL: "http://openai.internal/v1",
    ANTHROPIC_BASE_URL: "http://anthropic.internal",
    AZURE_API_VERSION: "2024-06-01",
    HTTPS_PROXY: "http://proxy:3128",
    HTTP_PROXY: "http://proxy:3128",
    NO_PROXY: "localhost,169.254.169.254",
    https_proxy: "http://lower:3128",
    http_proxy: "http://lower:3128",
    no_proxy: "localhost",
    SSL_CERT_FILE: "/var/task/ca.pem",
  };
  const kept = { SECRET_THAT_STAYS: "x", PYTHONPATH: "/elsewhere", NODE_OPTIONS: "--x" };
  const saved = { ...process.env };
  Object.assign(process.env, passed, kept);
  let env;
  try {
    const { client } = fakeClient({ env: { EXTRA: "given" } });
    env = await client.completion({ model: "m", messages, fake: "env" });
    await client.close();
  } finally {
    for (const name of Object.keys({ ...passed, ...kept })) {
      if (name in saved) process.env[name] = saved[name];
      else delete process.env[name];
    }
  }
  for (const [name, value] of Object.entries(passed)) assert.equal(env[name], value, name);
  for (const name of Object.keys(kept)) assert.equal(env[name], undefined, name);
  assert.equal(env.HOME, "/tmp");
  assert.equal(env.LITELLM_LOCAL_MODEL_COST_MAP, "True");
  assert.equal(env.EXTRA, "given");
  assert.equal(env.PYBUILD_BRIDGE_MAX_REQUEST_BYTES, String(32 * 1024 * 1024));
});

test("PYBUILD_PYTHON names the interpreter (a wrapper script, as `pybuild invoke` writes)", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "pybuild-node-"));
  const wrapper = path.join(dir, "python3.11");
  await writeFile(wrapper, `#!/bin/sh\nexec ${PYTHON} ${FAKE_BRIDGE} "$@"\n`);
  await chmod(wrapper, 0o755);
  const script = `
    const { LitellmClient } = require(${JSON.stringify(PACKAGE_DIR)});
    const client = new LitellmClient({ args: [], stderr: "ignore" });
    client.ping().then((info) => { console.log(JSON.stringify(client.bridge.command), info.protocol); return client.close(); });`;
  try {
    const run = await runNode(["-e", script], { env: { ...process.env, PYBUILD_PYTHON: wrapper } });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), `${JSON.stringify([wrapper])} 2`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("Python's stderr reaches the console line by line, prefixed (CloudWatch)", async () => {
  const script = `
    const { LitellmClient } = require(${JSON.stringify(PACKAGE_DIR)});
    const client = new LitellmClient({ command: [${JSON.stringify(PYTHON)}, ${JSON.stringify(FAKE_BRIDGE)}, "--stderr", "importing\\n"], args: [] });
    client.completion({ model: "m", messages: [], fake: "stderr", pieces: ["first line\\nsec", "ond half\\n"] })
      .then(() => client.close());`;
  const run = await runNode(["-e", script]);
  assert.equal(run.code, 0, run.stderr);
  const lines = run.stderr.split("\n");
  for (const expected of ["importing", "first line", "second half"]) {
    assert.ok(lines.includes(`[litellm_bridge] ${expected}`), `${expected} in ${run.stderr}`);
  }
});

test("a stderr option receives the lines instead; the error keeps the tail", async () => {
  const { client, stderr } = fakeClient({}, ["--stderr", "warming up\n"]);
  const failure = client.completion({
    model: "m",
    messages,
    fake: "exit",
    code: 7,
    stderr: "Fatal: out of memory\n",
  });
  await assert.rejects(failure, (err) => {
    assert.ok(err instanceof BridgeCrashError);
    assert.equal(err.code, "BRIDGE_EXITED");
    assert.equal(err.message, "python exited (exit code 7): Fatal: out of memory");
    assert.match(err.stderr, /warming up\nfake_bridge: completion 1\nFatal: out of memory\n$/);
    return true;
  });
  assert.ok(stderr.includes("warming up") && stderr.includes("Fatal: out of memory"));
  await client.close();
});

test("a crashed process is replaced by the next request", async () => {
  const { client } = fakeClient();
  const first = await client.ping();
  await assert.rejects(client.completion({ model: "m", messages, fake: "exit" }), BridgeCrashError);
  const second = await client.ping();
  assert.notEqual(second.pid, first.pid);
  await client.close();
});

test("output that is not the protocol", async () => {
  const { client } = fakeClient();
  await assert.rejects(
    client.completion({ model: "m", messages, fake: "garbage" }),
    (err) =>
      err instanceof BridgeProtocolError &&
      err.message === 'malformed output from python: "Traceback (most recent call last)"',
  );
  await client.close();
});

test("a bridge of another protocol version", async () => {
  const { client } = fakeClient({}, ["--protocol", "1"]);
  await assert.rejects(client.ping(), (err) => {
    assert.ok(err instanceof BridgeProtocolError);
    assert.match(err.message, /speaks protocol 1, this client speaks 2/);
    return true;
  });
  await client.close();
});

test("an interpreter that is not there", async () => {
  const client = new LitellmClient({ command: ["/nonexistent/python3.11"], stderr: "ignore" });
  await assert.rejects(client.ping(), (err) => {
    assert.ok(err instanceof BridgeStartError);
    assert.equal(err.code, "BRIDGE_START_FAILED");
    assert.match(err.message, /^cannot start \/nonexistent\/python3.11: spawn .* ENOENT$/);
    assert.equal(err.cause.code, "ENOENT");
    return true;
  });
});

test("an interpreter that dies at start says why in one line", async () => {
  const { client } = fakeClient({}, [
    "--stderr",
    "ModuleNotFoundError: No module named 'litellm'\n",
    "--exit-at-start",
    "1",
  ]);
  await assert.rejects(client.ping(), (err) => {
    assert.ok(err instanceof BridgeStartError);
    assert.equal(
      err.message,
      "python exited before it was ready (exit code 1): ModuleNotFoundError: No module named 'litellm'",
    );
    return true;
  });
});

test("an interpreter that never becomes ready", async () => {
  const { client } = fakeClient({ startTimeoutMs: 300 }, ["--no-ready"]);
  await assert.rejects(client.ping(), (err) => {
    assert.ok(err instanceof BridgeStartError);
    assert.equal(err.code, "BRIDGE_START_TIMEOUT");
    assert.match(err.message, /^python was not ready within 300 ms/);
    return true;
  });
});

test("PYBUILD_START_TIMEOUT_MS sets the start timeout", async () => {
  process.env.PYBUILD_START_TIMEOUT_MS = "250";
  try {
    const client = new LitellmClient({ command: [PYTHON, FAKE_BRIDGE, "--no-ready"], args: [] });
    assert.equal(client.bridge.startTimeoutMs, 250);
    await assert.rejects(client.ping(), /not ready within 250 ms/);
    process.env.PYBUILD_START_TIMEOUT_MS = "soon";
    assert.throws(
      () => new LitellmClient(),
      /PYBUILD_START_TIMEOUT_MS must be a number of milliseconds, not "soon"/,
    );
  } finally {
    delete process.env.PYBUILD_START_TIMEOUT_MS;
  }
});
