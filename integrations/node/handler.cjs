// The same handler as handler.mjs, for a function whose package.json says "type": "commonjs"
// (what `npm init -y` writes). CommonJS has no top-level await, so the init phase cannot wait
// for Python: it starts here, at module scope, runs alongside the runtime's own start, and the
// first invocation waits for the rest within its own deadline. Prefer handler.mjs.
const { APIConnectionTimeoutError, APIError, LitellmClient } = require("pybuild-litellm-node");

const client = new LitellmClient(); // one Python per container, reused by warm invocations
client.warmUp();

exports.handler = async (event, context) => {
  const { model = "gpt-4o-mini", messages = [{ role: "user", content: "Hello" }] } = event;
  try {
    const reply = await client.completion({ model, messages }, { context });
    return { statusCode: 200, body: JSON.stringify({ content: reply.choices[0].message.content }) };
  } catch (err) {
    if (!(err instanceof APIError)) throw err;
    const status = err.status ?? (err instanceof APIConnectionTimeoutError ? 504 : 502);
    const body = { error: err.name, code: err.code, message: err.message };
    return { statusCode: status, body: JSON.stringify(body) };
  }
};
