"use strict";
// One error class per kind, like the openai SDK's: catch by class, read `status` and `code`.
//
// APIError                        everything this package throws
// ├─ BadRequestError 400 ... InternalServerError >=500   litellm's exceptions, mapped by the bridge
// ├─ APIConnectionError           the provider could not be reached
// │  └─ APIConnectionTimeoutError   timeoutMs, the Lambda deadline, or litellm's own timeout
// ├─ APIUserAbortError            an AbortSignal, a stream left early, or close()
// └─ BridgeError                  the Python process and the protocol around it
//    ├─ BridgeStartError            cannot start, or not ready in time
//    ├─ BridgeCrashError            exited while requests were pending
//    ├─ BridgeProtocolError         output that is not the protocol, or another protocol version
//    ├─ RequestTooLargeError        over maxRequestBytes: only this request fails
//    └─ ResponseTooLargeError       a reply or chunk over maxResponseBytes: only this request fails

class APIError extends Error {
  /**
   * @param {string} message
   * @param {{status?: number, code?: string, type?: string, provider?: string, model?: string,
   *   headers?: Record<string, string>, requestId?: string, cause?: unknown}} [details]
   */
  constructor(message, details = {}) {
    super(message, "cause" in details ? { cause: details.cause } : undefined);
    this.name = new.target.name;
    /** The provider's HTTP status, when there was one. */
    this.status = details.status ?? undefined;
    /** The provider's error code, or this package's (BRIDGE_EXITED, LAMBDA_DEADLINE, ...). */
    this.code = details.code ?? undefined;
    /** The Python exception's class (ContextWindowExceededError, ...), for errors from litellm. */
    this.type = details.type ?? undefined;
    this.provider = details.provider ?? undefined;
    this.model = details.model ?? undefined;
    /** The provider's response headers (retry-after, x-ratelimit-*), when litellm kept them. */
    this.headers = details.headers ?? undefined;
    this.requestId = details.requestId ?? undefined;
  }
}

class BadRequestError extends APIError {}
class AuthenticationError extends APIError {}
class PermissionDeniedError extends APIError {}
class NotFoundError extends APIError {}
class ConflictError extends APIError {}
class UnprocessableEntityError extends APIError {}
class RateLimitError extends APIError {}
class InternalServerError extends APIError {}
class APIConnectionError extends APIError {}
class APIConnectionTimeoutError extends APIConnectionError {}
class APIUserAbortError extends APIError {}

class BridgeError extends APIError {
  /** @param {string} message @param {object} [details] @param {string} [stderr] */
  constructor(message, details = {}, stderr = "") {
    super(message, details);
    /** The end of Python's stderr when this happened (all of it went to the console). */
    this.stderr = stderr;
  }
}
class BridgeStartError extends BridgeError {}
class BridgeCrashError extends BridgeError {}
class BridgeProtocolError extends BridgeError {}
class RequestTooLargeError extends BridgeError {}
class ResponseTooLargeError extends BridgeError {}

module.exports = {
  APIError,
  BadRequestError,
  AuthenticationError,
  PermissionDeniedError,
  NotFoundError,
  ConflictError,
  UnprocessableEntityError,
  RateLimitError,
  InternalServerError,
  APIConnectionError,
  APIConnectionTimeoutError,
  APIUserAbortError,
  BridgeError,
  BridgeStartError,
  BridgeCrashError,
  BridgeProtocolError,
  RequestTooLargeError,
  ResponseTooLargeError,
};
