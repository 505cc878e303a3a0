// An AWS Lambda handler (nodejs20.x/22.x, arm64) using the pybuild litellm layer, as an ES
// module. Deploy with the files `pybuild build` writes beside the zip (README.md here).
//
// Python starts at module scope, in Lambda's init phase (top-level await), so the first
// invocation pays only for its own request. The init waits at most PYBUILD_INIT_WAIT_MS (8 s;
// Lambda stops an on-demand init at 10 s): if litellm's import takes longer, the init ends
// anyway and the first invocation waits for Python within its own deadline.
import { APIConnectionTimeoutError, APIError, LitellmClient } from "pybuild-litellm-node";

const client = new LitellmClient(); // one Python per container, reused by warm invocations
await client.warmUp();

export const handler = async (event, context) => {
  const { model = "gpt-4o-mini", messages = [{ role: "user", content: "Hello" }] } = event;
  try {
    // `context`: give up (and stop Python's request) 500 ms before the invocation's deadline
    const reply = await client.completion({ model, messages }, { context });
    return { statusCode: 200, body: JSON.stringify({ content: reply.choices[0].message.content }) };
  } catch (err) {
    if (!(err instanceof APIError)) throw err;
    const status = err.status ?? (err instanceof APIConnectionTimeoutError ? 504 : 502);
    const body = { error: err.name, code: err.code, message: err.message };
    return { statusCode: status, body: JSON.stringify(body) };
  }
};
