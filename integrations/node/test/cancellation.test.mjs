// Cancellation: an AbortSignal, a timeout, the Lambda deadline and a stream left early all
// reject in Node *and* tell Python to stop ("cancel"), which the fake bridge logs.
import assert from "node:assert/strict";
import { test } from "node:test";

import { APIConnectionTimeoutError, APIUserAbortError } from "../index.mjs";
import { fakeClient, messages, settledWithin, sleep } from "../testing/support.mjs";

/** A Lambda context whose deadline is `ms` from now. */
function lambdaContext(ms) {
  const deadline = Date.now() + ms;
  return { getRemainingTimeInMillis: () => deadline - Date.now() };
}

test("an AbortSignal rejects the request and cancels it in Python", async () => {
  const { client, waitForStderr } = fakeClient();
  try {
    const controller = new AbortController();
    const pending = client.completion(
      { model: "m", messages, fake: "hang" },
      { signal: controller.signal },
    );
    await waitForStderr(/^fake_bridge: completion 1$/);
    const reason = new Error("the user left");
    controller.abort(reason);
    await assert.rejects(pending, (err) => {
      assert.ok(err instanceof APIUserAbortError);
      assert.equal(err.message, "completion request 1 was aborted");
      assert.equal(err.code, "ABORTED");
      assert.equal(err.cause, reason);
      return true;
    });
    await waitForStderr(/^fake_bridge: cancel 1$/);
  } finally {
    await client.close();
  }
});

test("an already aborted signal rejects at once and sends nothing", async () => {
  const { client, seen } = fakeClient();
  try {
    await client.ping();
    const pending = client.completion({ model: "m", messages }, { signal: AbortSignal.abort() });
    assert.ok((await settledWithin(pending, 0)).error instanceof APIUserAbortError);
    await client.ping();
    assert.equal(seen(/completion/), false);
  } finally {
    await client.close();
  }
});

test("a timeout rejects the request, cancels it in Python and keeps the process", async () => {
  const { client, waitForStderr } = fakeClient();
  try {
    const { pid } = await client.ping();
    const started = Date.now();
    await assert.rejects(
      client.completion({ model: "m", messages, fake: "hang" }, { timeoutMs: 300 }),
      (err) =>
        err instanceof APIConnectionTimeoutError &&
        err.code === "TIMEOUT" &&
        err.message === "completion request 2 timed out after 300 ms",
    );
    assert.ok(Date.now() - started < 1_000);
    await waitForStderr(/^fake_bridge: cancel 2$/);
    assert.equal((await client.ping()).pid, pid);
  } finally {
    await client.close();
  }
});

test("with a Lambda context, a request stops before the deadline and is cancelled", async () => {
  const { client, waitForStderr } = fakeClient({ timeoutMs: 60_000 });
  try {
    await client.ping();
    const started = Date.now();
    await assert.rejects(
      client.completion(
        { model: "m", messages, fake: "hang" },
        { context: lambdaContext(900), deadlineMarginMs: 400 },
      ),
      (err) => {
        assert.ok(err instanceof APIConnectionTimeoutError);
        assert.equal(err.code, "LAMBDA_DEADLINE");
        assert.match(
          err.message,
          /^completion request 2 stopped 400 ms before the Lambda deadline/,
        );
        return true;
      },
    );
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 450 && elapsed < 800, `stopped after ${elapsed} ms`);
    await waitForStderr(/^fake_bridge: cancel 2$/);
  } finally {
    await client.close();
  }
});

test("no time left before the deadline: rejected at once, nothing sent", async () => {
  const { client, seen } = fakeClient();
  try {
    await client.ping();
    const pending = client.completion({ model: "m", messages }, { context: lambdaContext(300) });
    const outcome = await settledWithin(pending, 0);
    assert.equal(outcome.error?.code, "LAMBDA_DEADLINE");
    await client.ping();
    assert.equal(seen(/completion/), false);
  } finally {
    await client.close();
  }
});

test("the deadline also bounds the wait for Python's start", async () => {
  const { client } = fakeClient({}, ["--ready-after", "1.5"]);
  try {
    const started = Date.now();
    await assert.rejects(
      client.completion({ model: "m", messages }, { context: lambdaContext(800) }),
      (err) => err.code === "LAMBDA_DEADLINE",
    );
    assert.ok(Date.now() - started < 1_000);
    // Python goes on starting: the next invocation finds it ready
    assert.equal(
      (await client.completion({ model: "m", messages, mock_response: "late" })).choices[0].message
        .content,
      "late",
    );
  } finally {
    await client.close();
  }
});

test("breaking out of a stream cancels it in Python", async () => {
  const { client, waitForStderr } = fakeClient();
  try {
    const seen = [];
    for await (const chunk of client.completionStream({
      model: "m",
      messages,
      fake: "stream",
      count: 1000,
    })) {
      seen.push(chunk.choices[0].delta.content);
      if (seen.length === 3) break;
    }
    assert.deepEqual(seen, ["0", "1", "2"]);
    await waitForStderr(/^fake_bridge: cancel 1$/);
  } finally {
    await client.close();
  }
});

test("an exception in the loop's body cancels the stream too", async () => {
  const { client, waitForStderr } = fakeClient();
  try {
    await assert.rejects(async () => {
      for await (const chunk of client.completionStream({
        model: "m",
        messages,
        fake: "stream",
        count: 1000,
      })) {
        throw new Error(`stop at ${chunk.choices[0].delta.content}`);
      }
    }, /stop at 0/);
    await waitForStderr(/^fake_bridge: cancel 1$/);
  } finally {
    await client.close();
  }
});

test("a stream's AbortSignal ends the loop with APIUserAbortError and cancels in Python", async () => {
  const { client, waitForStderr } = fakeClient();
  try {
    const controller = new AbortController();
    const stream = client.completionStream(
      { model: "m", messages, fake: "hang" },
      { signal: controller.signal },
    );
    await waitForStderr(/^fake_bridge: completion 1$/);
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(async () => {
      for await (const chunk of stream) assert.fail(`unexpected ${JSON.stringify(chunk)}`);
    }, APIUserAbortError);
    await waitForStderr(/^fake_bridge: cancel 1$/);
  } finally {
    await client.close();
  }
});

test("a stream finishes normally without any cancel", async () => {
  const { client, seen } = fakeClient();
  try {
    const stream = client.completionStream({ model: "m", messages, fake: "stream", count: 40 });
    const text = [];
    for await (const chunk of stream) text.push(chunk.choices[0].delta.content);
    assert.equal(text.length, 40);
    await sleep(50);
    assert.equal(seen(/cancel/), false);
    await assert.rejects(async () => {
      for await (const chunk of stream) assert.fail(chunk);
    }, /can be iterated only once/);
  } finally {
    await client.close();
  }
});
