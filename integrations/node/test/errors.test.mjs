// Error classes per kind, like the openai SDK's: the bridge's error kinds become classes with
// status, code and the provider's details (litellm's exception types are mapped to kinds by the
// bridge itself: test/layer.test.mjs checks that on the real one).
import assert from "node:assert/strict";
import { test } from "node:test";

import * as pybuild from "../index.mjs";
import { fakeClient, messages } from "../testing/support.mjs";

const {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
  BridgeError,
  BridgeProtocolError,
  RequestTooLargeError,
  ResponseTooLargeError,
} = pybuild;

const KINDS = [
  ["bad_request", "BadRequestError", 400],
  ["authentication", "AuthenticationError", 401],
  ["permission_denied", "PermissionDeniedError", 403],
  ["not_found", "NotFoundError", 404],
  ["conflict", "ConflictError", 409],
  ["unprocessable_entity", "UnprocessableEntityError", 422],
  ["rate_limit", "RateLimitError", 429],
  ["internal_server", "InternalServerError", 503],
  ["connection", "APIConnectionError", undefined],
  ["timeout", "APIConnectionTimeoutError", 408],
  ["protocol", "BridgeProtocolError", undefined],
  ["request_too_large", "RequestTooLargeError", undefined],
  ["response_too_large", "ResponseTooLargeError", undefined],
  ["cancelled", "APIUserAbortError", undefined],
  ["api", "APIError", undefined],
  ["something_new", "APIError", undefined],
];

test("each error kind from the bridge becomes its class, with status and details", async () => {
  const { client } = fakeClient();
  try {
    for (const [kind, name, status] of KINDS) {
      const error = {
        kind,
        type: "SomePythonError",
        status: status ?? null,
        code: kind === "rate_limit" ? "rate_limit_exceeded" : null,
        message: `${kind} happened`,
        provider: "openai",
        model: "gpt-4o-mini",
        headers: kind === "rate_limit" ? { "retry-after": "7" } : null,
      };
      await assert.rejects(
        client.completion({ model: "m", messages, fake: "error", error }),
        (err) => {
          assert.equal(err.constructor, pybuild[name], kind);
          assert.equal(err.name, name);
          assert.ok(err instanceof APIError && err instanceof Error);
          assert.equal(err.message, `${kind} happened`);
          assert.equal(err.status, status);
          assert.equal(err.type, "SomePythonError");
          assert.equal(err.provider, "openai");
          assert.equal(err.model, "gpt-4o-mini");
          assert.match(err.requestId, /^\d+$/);
          if (kind === "rate_limit") {
            assert.equal(err.code, "rate_limit_exceeded");
            assert.deepEqual(err.headers, { "retry-after": "7" });
          }
          return true;
        },
      );
    }
  } finally {
    await client.close();
  }
});

test("the class hierarchy follows the openai SDK's", () => {
  assert.ok(APIConnectionTimeoutError.prototype instanceof APIConnectionError);
  for (const name of [
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "RateLimitError",
    "InternalServerError",
    "APIConnectionError",
    "APIUserAbortError",
    "BridgeError",
  ]) {
    assert.ok(pybuild[name].prototype instanceof APIError, name);
  }
  for (const ErrorClass of [BridgeProtocolError, RequestTooLargeError, ResponseTooLargeError]) {
    assert.ok(ErrorClass.prototype instanceof BridgeError);
  }
  const cause = new Error("the reason");
  const err = new APIUserAbortError("stopped", { code: "ABORTED", cause });
  assert.equal(err.cause, cause);
  assert.equal(err.code, "ABORTED");
  assert.equal(err.status, undefined);
  assert.equal(Object.hasOwn(new APIError("no cause"), "cause"), false);
});
