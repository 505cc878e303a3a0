// Bounded memory: size limits that fail only the request concerned, in both directions, and
// streams buffered up to their window (the bridge waits for credit; the client checks it).
import assert from "node:assert/strict";
import { test } from "node:test";

import { BridgeProtocolError, RequestTooLargeError, ResponseTooLargeError } from "../index.mjs";
import { fakeClient, messages, sleep, waitFor } from "../testing/support.mjs";

test("a request over maxRequestBytes fails alone and is never sent", async () => {
  const { client, seen } = fakeClient({ maxRequestBytes: 10_000 });
  try {
    const slow = client.completion({ model: "m", messages, mock_response: "fine", delay: 0.2 });
    const huge = client.completion({
      model: "m",
      messages: [{ role: "user", content: "x".repeat(20_000) }],
    });
    await assert.rejects(huge, (err) => {
      assert.ok(err instanceof RequestTooLargeError);
      assert.equal(err.code, "REQUEST_TOO_LARGE");
      assert.match(
        err.message,
        /^completion request 2 is 20\d\d\d bytes, over the 10000-byte limit \(maxRequestBytes\)$/,
      );
      return true;
    });
    assert.equal((await slow).choices[0].message.content, "fine");
    assert.equal(seen(/completion 2/), false);
  } finally {
    await client.close();
  }
});

test("a reply over maxResponseBytes fails alone; the process and other requests go on", async () => {
  // the fake bridge ignores the limit it is given: the client must hold to it by itself
  const { client } = fakeClient({ maxResponseBytes: 100_000 });
  try {
    const { pid } = await client.ping();
    const slow = client.completion({ model: "m", messages, mock_response: "fine", delay: 0.3 });
    await assert.rejects(
      client.completion({ model: "m", messages, fake: "big", bytes: 5_000_000 }),
      (err) => {
        assert.ok(err instanceof ResponseTooLargeError);
        assert.equal(err.code, "RESPONSE_TOO_LARGE");
        assert.match(
          err.message,
          /^completion request 3: a reply from python is 50000\d\d bytes, over the 100000-byte limit \(maxResponseBytes\)$/,
        );
        return true;
      },
    );
    assert.equal((await slow).choices[0].message.content, "fine");
    assert.equal((await client.ping()).pid, pid);
  } finally {
    await client.close();
  }
});

test("a slow stream consumer holds at most `window` chunks; credit goes back as it reads", async () => {
  const { client, stderr } = fakeClient();
  try {
    const stream = client.completionStream(
      { model: "m", messages, fake: "stream", count: 200 },
      { window: 4 },
    );
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    assert.equal(first.value.choices[0].delta.content, "0");
    await sleep(300); // the fake bridge would send all 200 in this time without credit
    assert.ok(stream.buffered <= 3, `buffered ${stream.buffered}`);
    const rest = [];
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      rest.push(next.value.choices[0].delta.content);
      assert.ok(stream.buffered <= 4);
    }
    assert.equal(rest.length, 199);
    assert.equal(rest.at(-1), "199");
    const credits = stderr.filter((line) => /^fake_bridge: credit 1 /.test(line));
    assert.ok(credits.length >= 49, `${credits.length} credit messages`);
    assert.ok(
      credits.every((line) => line.endsWith(" 2")),
      credits.join(", "),
    );
  } finally {
    await client.close();
  }
});

test("a bridge that sends past the window fails that stream with a protocol error", async () => {
  const { client, waitForStderr } = fakeClient();
  try {
    const stream = client.completionStream(
      { model: "m", messages, fake: "stream_greedy", count: 50 },
      { window: 4 },
    );
    await waitFor(() => stream.buffered === 4, 5_000, "four buffered chunks");
    await assert.rejects(
      async () => {
        for await (const chunk of stream) assert.ok(chunk);
      },
      (err) => {
        assert.ok(err instanceof BridgeProtocolError);
        assert.equal(
          err.message,
          "completion request 1: the bridge sent more chunks than the stream's window (4) allows",
        );
        return true;
      },
    );
    await waitForStderr(/^fake_bridge: cancel 1$/);
  } finally {
    await client.close();
  }
});
