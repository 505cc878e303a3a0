// An AWS Lambda handler (Node.js 20/22, arm64) using the pybuild litellm layer.
// Deploy with the files `pybuild build` writes beside the zip (see README.md here).
import { BridgeError, LitellmClient } from "./litellmClient.js";

// Outside the handler: one Python process per container, reused by warm invocations.
const client = new LitellmClient({ timeoutMs: 50_000 });

export const handler = async (event) => {
  const { model = "gpt-4o-mini", messages = [{ role: "user", content: "Hello" }] } = event;
  try {
    const reply = await client.completion({ model, messages });
    return { statusCode: 200, body: JSON.stringify({ content: reply.choices[0].message.content }) };
  } catch (err) {
    if (err instanceof BridgeError) {
      return {
        statusCode: err.statusCode ?? 502,
        body: JSON.stringify({ error: err.type, message: err.message, provider: err.provider }),
      };
    }
    throw err;
  }
};
