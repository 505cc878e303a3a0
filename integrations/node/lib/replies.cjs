"use strict";
// A bridge reply {"ok": false, "error": {"kind": ...}} becomes the error class of its kind.

const errors = require("./errors.cjs");

/** The bridge's error kinds (layer/bridge/litellm_bridge.py) and the class each becomes. */
const CLASS_BY_KIND = {
  bad_request: errors.BadRequestError,
  authentication: errors.AuthenticationError,
  permission_denied: errors.PermissionDeniedError,
  not_found: errors.NotFoundError,
  conflict: errors.ConflictError,
  unprocessable_entity: errors.UnprocessableEntityError,
  rate_limit: errors.RateLimitError,
  internal_server: errors.InternalServerError,
  connection: errors.APIConnectionError,
  timeout: errors.APIConnectionTimeoutError,
  protocol: errors.BridgeProtocolError,
  cancelled: errors.APIUserAbortError,
  request_too_large: errors.RequestTooLargeError,
  response_too_large: errors.ResponseTooLargeError,
};

const CODE_BY_KIND = {
  protocol: "BRIDGE_PROTOCOL",
  cancelled: "CANCELLED",
  request_too_large: "REQUEST_TOO_LARGE",
  response_too_large: "RESPONSE_TOO_LARGE",
};

/**
 * The error for a bridge reply `{"ok": false, "error": {...}}`.
 * @param {any} error the reply's "error" object
 * @param {string} requestId
 */
function errorFromReply(error, requestId) {
  const ErrorClass = CLASS_BY_KIND[error?.kind] ?? errors.APIError;
  const message =
    typeof error?.message === "string" && error.message ? error.message : "the bridge failed";
  return new ErrorClass(message, {
    status: typeof error?.status === "number" ? error.status : undefined,
    code: error?.code != null ? String(error.code) : CODE_BY_KIND[error?.kind],
    type: error?.type ?? undefined,
    provider: error?.provider ?? undefined,
    model: error?.model ?? undefined,
    headers: error?.headers ?? undefined,
    requestId,
  });
}

module.exports = { errorFromReply };
