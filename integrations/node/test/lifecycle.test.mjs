// close() ends Python promptly and never leaves a request hanging; `unref` lets an idle client
// stay out of the way of Node's exit.
import assert from "node:assert/strict";
import { test } from "node:test";

import { APIUserAbortError } from "../index.mjs";
import {
  FAKE_BRIDGE,
  PACKAGE_DIR,
  PYTHON,
  fakeClient,
  messages,
  runNode,
  settledWithin,
} from "../testing/support.mjs";

const closedError = (err) => err instanceof APIUserAbortError && err.code === "CLIENT_CLOSED";

test("close() with a request in flight: Python exits by itself at once", async () => {
  const { client, waitForStderr } = fakeClient();
  const pending = client.completion({ model: "m", messages, fake: "hang" });
  await waitForStderr(/^fake_bridge: completion 1$/);
  const child = client.bridge.current.child;
  const rejected = assert.rejects(pending, (err) => {
    assert.ok(closedError(err));
    assert.equal(err.message, "completion request 1 was pending when the client was closed");
    return true;
  });
  const started = Date.now();
  await client.close();
  const elapsed = Date.now() - started;
  assert.ok(elapsed < 1_000, `close took ${elapsed} ms`);
  assert.equal(child.exitCode, 0);
  assert.equal(child.signalCode, null);
  await rejected;
  await waitForStderr(/^fake_bridge: stdin closed$/);
});

test("a request made in the same tick as close() settles, it is not lost", async () => {
  const { client } = fakeClient();
  await client.ping();
  const pending = client.completion({ model: "m", messages, mock_response: "x" });
  const closed = client.close();
  assert.ok(closedError((await settledWithin(pending, 0)).error));
  await closed;
  // and the next request starts a new process
  const reply = await client.completion({ model: "m", messages, mock_response: "again" });
  assert.equal(reply.choices[0].message.content, "again");
  await client.close();
});

test("close() while Python is still starting stops it at once", async () => {
  const { client } = fakeClient({}, ["--ready-after", "30"]);
  const pending = client.completion({ model: "m", messages });
  const child = client.bridge.current.child;
  const rejected = assert.rejects(pending, closedError);
  const started = Date.now();
  await client.close();
  assert.ok(Date.now() - started < 1_000);
  assert.equal(child.signalCode, "SIGTERM");
  await rejected;
});

test("a bridge that ignores the end of stdin gets SIGTERM, one that ignores SIGTERM SIGKILL", async () => {
  for (const [flags, signal] of [
    [["--ignore-eof"], "SIGTERM"],
    [["--ignore-eof", "--ignore-sigterm"], "SIGKILL"],
  ]) {
    const { client } = fakeClient({}, flags);
    await client.ping();
    const child = client.bridge.current.child;
    const started = Date.now();
    await client.close({ graceMs: 200 });
    const elapsed = Date.now() - started;
    assert.equal(child.signalCode, signal);
    assert.ok(elapsed < (signal === "SIGTERM" ? 1_000 : 1_500), `${signal} after ${elapsed} ms`);
  }
});

/** A script that makes one request and never closes its client. */
const unclosed = (unref) => `
  const { LitellmClient } = require(${JSON.stringify(PACKAGE_DIR)});
  const client = new LitellmClient({
    command: [${JSON.stringify(PYTHON)}, ${JSON.stringify(FAKE_BRIDGE)}], args: [], unref: ${unref},
  });
  client.completion({ model: "m", messages: [], mock_response: "done", delay: 0.3 })
    .then((reply) => console.log(reply.choices[0].message.content));`;

test("with unref, an idle client lets Node exit; without it, Node waits for close()", async () => {
  const [released, held] = await Promise.all([
    runNode(["-e", unclosed(true)], { timeoutMs: 5_000 }),
    runNode(["-e", unclosed(false)], { timeoutMs: 1_500 }),
  ]);
  // the pending request kept Node alive until its reply, then nothing did
  assert.equal(released.code, 0, released.stderr);
  assert.equal(released.stdout, "done\n");
  assert.equal(released.killed, false);
  assert.equal(held.stdout, "done\n");
  assert.equal(held.killed, true, "without unref, an open client keeps Node running");
});
