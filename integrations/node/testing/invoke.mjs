// Loads a handler module and invokes it once, the way the Lambda runtime does: init (import,
// top-level await included), then one invocation with a context whose deadline is
// REMAINING_MS away. Prints {initMs, invokeMs, result} as JSON.
//
//   node testing/invoke.mjs handler.mjs '{"messages": [...]}' [REMAINING_MS] [PAUSE_MS]
// PAUSE_MS: time between init and the invocation (a provisioned or pre-warmed container).
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [file, eventJson = "{}", remainingMs = "30000", pauseMs = "0"] = process.argv.slice(2);
const handlerPath = path.resolve(file);

let started = performance.now();
const module = handlerPath.endsWith(".cjs")
  ? createRequire(import.meta.url)(handlerPath)
  : await import(pathToFileURL(handlerPath).href);
const initMs = performance.now() - started;

await new Promise((resolve) => setTimeout(resolve, Number(pauseMs)));
const deadline = Date.now() + Number(remainingMs);
const context = { getRemainingTimeInMillis: () => deadline - Date.now() };
started = performance.now();
const result = await module.handler(JSON.parse(eventJson), context);
const invokeMs = performance.now() - started;

console.log(JSON.stringify({ initMs: Math.round(initMs), invokeMs: Math.round(invokeMs), result }));
process.exit(0); // the runtime freezes the container here; do not wait for Python
