// A Node.js runtime for `pybuild invoke` where aws-lambda-ric cannot be installed: the loop AWS
// documents for custom runtimes ("Using the Lambda runtime API"), in the shape of Lambda's Node.js
// runtime. It loads _HANDLER ("file.export", file relative to LAMBDA_TASK_ROOT, .js, .mjs or
// .cjs) during init, reporting a failure to /runtime/init/error; then for each event from
// /runtime/invocation/next it calls the handler with the event and a context (request id,
// deadline, function ARN, getRemainingTimeInMillis) and posts the result to .../response, or
// {errorType, errorMessage, trace} to .../error. console.* lines are written as Lambda
// writes them: time, request id, level, message. An error that escapes the handler outside its
// promise fails the invocation and ends the process, as on Lambda.
import { existsSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { format } from "node:util";

const API = process.env.AWS_LAMBDA_RUNTIME_API;
const BASE = "/2018-06-01/runtime";
const ERROR_TYPE = "Lambda-Runtime-Function-Error-Type";
let currentId = null;

for (const [method, level] of [["log", "INFO"], ["info", "INFO"], ["warn", "WARN"],
  ["error", "ERROR"], ["debug", "DEBUG"], ["trace", "TRACE"]]) {
  console[method] = (...args) => {
    const line = format(...args).replace(/\n/g, "\r");
    process.stdout.write(`${new Date().toISOString()}\t${currentId ?? "undefined"}\t${level}\t${line}\n`);
  };
}

function call(method, path, body = null, headers = {}) {
  const [hostname, port] = API.split(":");
  return new Promise((resolve, reject) => {
    const data = body === null ? null : Buffer.from(body);
    const req = request({
      hostname, port, path, method,
      headers: data ? { "Content-Type": "application/json", "Content-Length": data.length, ...headers } : headers,
    }, (res) => {
      const chunks = [];
      res.on("data", (chunk) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("error", reject);
    req.end(data ?? undefined);
  });
}

// The shape aws-lambda-ric posts (its Errors.toRapidResponse): what callers of Lambda receive.
function errorDocument(error) {
  if (error instanceof Error) {
    return { errorType: error.name, errorMessage: error.message, trace: (error.stack ?? "").split("\n") };
  }
  return { errorType: typeof error, errorMessage: String(error), trace: [] };
}

async function postError(path, document) {
  await call("POST", path, JSON.stringify(document), { [ERROR_TYPE]: document.errorType });
}

// Errors as aws-lambda-ric 3.3.0 reports them: a missing file is Runtime.ImportModuleError, a
// syntax error Runtime.UserCodeSyntaxError, anything else thrown while loading is itself.
function runtimeError(name, message) {
  const err = new Error(message);
  err.name = name;
  return err;
}

async function loadHandler() {
  const root = process.env.LAMBDA_TASK_ROOT;
  const spec = process.env._HANDLER ?? "";
  const dot = spec.lastIndexOf(".");
  const [modulePath, exportName] = dot > 0 ? [spec.slice(0, dot), spec.slice(dot + 1)] : [spec, "handler"];
  const file = [".js", ".mjs", ".cjs"].map((ext) => join(root, modulePath + ext)).find(existsSync);
  if (!file) throw runtimeError("Runtime.ImportModuleError", `Error: Cannot find module '${modulePath}'`);
  let module;
  try {
    module = await import(pathToFileURL(file).href);
  } catch (err) {
    if (err instanceof SyntaxError) throw runtimeError("Runtime.UserCodeSyntaxError", `${err.name}: ${err.message}`);
    if (err?.code === "MODULE_NOT_FOUND") throw runtimeError("Runtime.ImportModuleError", `${err.name}: ${err.message}`);
    throw err;
  }
  const handler = module[exportName] ?? module.default?.[exportName];
  if (handler === undefined) throw runtimeError("Runtime.HandlerNotFound", `${spec} is undefined or not exported`);
  if (typeof handler !== "function") throw runtimeError("Runtime.HandlerNotFound", `${spec} is not a function`);
  return handler;
}

function context(headers) {
  const deadline = Number(headers["lambda-runtime-deadline-ms"]);
  return {
    awsRequestId: headers["lambda-runtime-aws-request-id"],
    invokedFunctionArn: headers["lambda-runtime-invoked-function-arn"],
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}

function call_handler(handler, event, ctx) {
  if (handler.length < 3) return Promise.resolve().then(() => handler(event, ctx));
  return new Promise((resolve, reject) => {
    const result = handler(event, ctx, (err, value) => (err ? reject(err) : resolve(value)));
    if (result && typeof result.then === "function") result.then(resolve, reject);
  });
}

async function escaped(err) {
  console.error("Uncaught Exception", err);
  const document = errorDocument(err);
  if (currentId === null) {
    await postError(`${BASE}/init/error`, document).catch(() => {});
  } else {
    await postError(`${BASE}/invocation/${currentId}/error`, document).catch(() => {});
  }
  process.exit(129);
}
process.on("uncaughtException", escaped);
process.on("unhandledRejection", escaped);

let handler;
try {
  handler = await loadHandler();
} catch (err) {
  console.error("Init Error", err);
  await postError(`${BASE}/init/error`, errorDocument(err));
  process.exit(1);
}

for (;;) {
  const next = await call("GET", `${BASE}/invocation/next`);
  if (next.status !== 200) process.exit(1);
  currentId = next.headers["lambda-runtime-aws-request-id"];
  if (next.headers["lambda-runtime-trace-id"]) {
    process.env._X_AMZN_TRACE_ID = next.headers["lambda-runtime-trace-id"];
  } else {
    delete process.env._X_AMZN_TRACE_ID;
  }
  const id = currentId;
  try {
    const result = await call_handler(handler, JSON.parse(next.body), context(next.headers));
    const body = JSON.stringify(result === undefined ? null : result);
    await call("POST", `${BASE}/invocation/${id}/response`, body);
  } catch (err) {
    console.error("Invoke Error", err);
    await postError(`${BASE}/invocation/${id}/error`, errorDocument(err));
  }
}
