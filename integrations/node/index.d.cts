// Types for pybuild-litellm-node (index.cjs); index.d.mts re-exports them for ES modules.

/** A chat message, as litellm (and the OpenAI API) takes it. */
export interface Message {
  role: "system" | "user" | "assistant" | "tool" | "developer";
  content: string | Array<Record<string, unknown>> | null;
  [field: string]: unknown;
}

/** litellm.completion's keywords: model and messages, and any other (temperature, api_base...). */
export interface CompletionParams {
  model: string;
  messages: Message[];
  [option: string]: unknown;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  [field: string]: unknown;
}

export interface Choice {
  index: number;
  message: { role: string; content: string | null; [field: string]: unknown };
  finish_reason: string | null;
  [field: string]: unknown;
}

/** litellm's ModelResponse, as JSON. */
export interface ModelResponse {
  id: string;
  created: number;
  model: string;
  object: string;
  choices: Choice[];
  usage?: Usage;
  [field: string]: unknown;
}

export interface ChunkChoice {
  index: number;
  delta: { role?: string | null; content?: string | null; [field: string]: unknown };
  finish_reason: string | null;
  [field: string]: unknown;
}

/** One streamed chunk (litellm's ModelResponseStream, as JSON). */
export interface ModelResponseChunk {
  id: string;
  created: number;
  model: string;
  object: string;
  choices: ChunkChoice[];
  [field: string]: unknown;
}

/** The part of a Lambda handler's `context` that the client reads. */
export interface LambdaContext {
  getRemainingTimeInMillis(): number;
}

export interface RequestOptions {
  /** Aborting rejects with APIUserAbortError and cancels the request in Python. */
  signal?: AbortSignal;
  /** Time limit for this request, waiting for Python's start included (default: the client's). */
  timeoutMs?: number;
  /** Stop `deadlineMarginMs` before this invocation's deadline, whichever comes first. */
  context?: LambdaContext;
  deadlineMarginMs?: number;
}

export interface StreamOptions extends RequestOptions {
  /** Chunks the bridge may send ahead of the loop (default: the client's streamWindow, 16). */
  window?: number;
}

export interface BridgeOptions {
  /** How to start the interpreter (default: [PYBUILD_PYTHON or /opt/python/bin/python3.11]). */
  command?: string[];
  /** Arguments after the command (default: ["-m", "litellm_bridge"]). */
  args?: string[];
  /** Added to the process's environment (after BASE_ENV and the passed variables). */
  env?: Record<string, string>;
  /** Default per-request time limit, ms (60000). */
  timeoutMs?: number;
  /** How long before the Lambda deadline a request with `context` stops, ms (500). */
  deadlineMarginMs?: number;
  /** How long Python may take to import litellm, ms (PYBUILD_START_TIMEOUT_MS or 60000). */
  startTimeoutMs?: number;
  /** The largest request line, bytes (32 MiB); a larger request fails alone. */
  maxRequestBytes?: number;
  /** The largest reply or chunk line, bytes (32 MiB); a larger one fails its request alone. */
  maxResponseBytes?: number;
  /** Default stream window, chunks (16). */
  streamWindow?: number;
  /** Let Node exit while the client is idle (default false). */
  unref?: boolean;
  /** Where Python's stderr lines go (default "console": console.error, prefixed). */
  stderr?: "console" | "ignore" | ((line: string) => void);
}

/** The bridge's first line, once litellm is imported. */
export interface ReadyInfo {
  ready: true;
  protocol: number;
  pid: number;
  litellm: string;
}

export interface PingResult {
  pid: number;
  litellm: string;
  protocol: number;
}

export interface CloseOptions {
  /** Wait this long for an exit before SIGTERM, and again before SIGKILL, ms (2000). */
  graceMs?: number;
}

export declare class LitellmClient {
  constructor(options?: BridgeOptions);
  readonly bridge: PythonBridge;
  /** Start Python now; resolves once litellm is imported. */
  start(): Promise<ReadyInfo>;
  /** Start Python and wait at most `waitMs` (PYBUILD_INIT_WAIT_MS or 8000): true when ready. */
  warmUp(options?: { waitMs?: number }): Promise<boolean>;
  completion(params: CompletionParams, options?: RequestOptions): Promise<ModelResponse>;
  completionStream(params: CompletionParams, options?: StreamOptions): CompletionStream;
  ping(options?: RequestOptions): Promise<PingResult>;
  /** Stop Python promptly; pending requests reject with APIUserAbortError (CLIENT_CLOSED). */
  close(options?: CloseOptions): Promise<void>;
}

/** Chunks as they arrive; leaving the `for await` loop early cancels the request in Python. */
export declare class CompletionStream implements AsyncIterable<ModelResponseChunk> {
  private constructor();
  readonly requestId: string;
  /** Chunks received and not yet taken by the loop (at most the window). */
  readonly buffered: number;
  abort(reason?: unknown): void;
  [Symbol.asyncIterator](): AsyncGenerator<ModelResponseChunk, void, undefined>;
}

/** The process and the protocol (LitellmClient's `bridge`). */
export declare class PythonBridge {
  constructor(options?: BridgeOptions);
  /** The running interpreter's process id, or null. */
  readonly pid: number | null;
  start(): Promise<ReadyInfo>;
  request(
    method: "completion" | "ping",
    params?: object,
    options?: RequestOptions,
  ): Promise<unknown>;
  close(options?: CloseOptions): Promise<void>;
}

export interface APIErrorDetails {
  status?: number;
  code?: string;
  type?: string;
  provider?: string;
  model?: string;
  headers?: Record<string, string>;
  requestId?: string;
  cause?: unknown;
}

/** The base of every error this package throws. */
export declare class APIError extends Error {
  constructor(message: string, details?: APIErrorDetails);
  /** The provider's HTTP status, when there was one. */
  readonly status: number | undefined;
  /** The provider's error code, or this package's (BRIDGE_EXITED, LAMBDA_DEADLINE, ...). */
  readonly code: string | undefined;
  /** The Python exception's class (ContextWindowExceededError, ...), for errors from litellm. */
  readonly type: string | undefined;
  readonly provider: string | undefined;
  readonly model: string | undefined;
  readonly headers: Record<string, string> | undefined;
  readonly requestId: string | undefined;
}
export declare class BadRequestError extends APIError {}
export declare class AuthenticationError extends APIError {}
export declare class PermissionDeniedError extends APIError {}
export declare class NotFoundError extends APIError {}
export declare class ConflictError extends APIError {}
export declare class UnprocessableEntityError extends APIError {}
export declare class RateLimitError extends APIError {}
export declare class InternalServerError extends APIError {}
export declare class APIConnectionError extends APIError {}
export declare class APIConnectionTimeoutError extends APIConnectionError {}
export declare class APIUserAbortError extends APIError {}

/** The Python process or the protocol around it failed. */
export declare class BridgeError extends APIError {
  constructor(message: string, details?: APIErrorDetails, stderr?: string);
  /** The end of Python's stderr when this happened (all of it went to the console). */
  readonly stderr: string;
}
export declare class BridgeStartError extends BridgeError {}
export declare class BridgeCrashError extends BridgeError {}
export declare class BridgeProtocolError extends BridgeError {}
export declare class RequestTooLargeError extends BridgeError {}
export declare class ResponseTooLargeError extends BridgeError {}

export declare const DEFAULT_PYTHON: string;
export declare const DEFAULT_INIT_WAIT_MS: number;
export declare const BASE_ENV: Readonly<Record<string, string>>;
export declare const PASSED_ENV: readonly RegExp[];
export declare const PROTOCOL: number;
export declare function passedEnvironment(
  environment: Record<string, string | undefined>,
): Record<string, string>;
