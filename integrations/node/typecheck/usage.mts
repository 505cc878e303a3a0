// Compiled by `tsc` (never run): what an ES module sees through the package's "import" types.
import {
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
  LitellmClient,
  RateLimitError,
  type CompletionStream,
  type ModelResponse,
} from "pybuild-litellm-node";

const client = new LitellmClient({ timeoutMs: 30_000, unref: true, stderr: (line) => void line });
await client.warmUp({ waitMs: 8_000 });

export async function handler(
  event: { prompt: string },
  context: { getRemainingTimeInMillis(): number },
): Promise<string> {
  const controller = new AbortController();
  try {
    const reply: ModelResponse = await client.completion(
      { model: "gpt-4o-mini", messages: [{ role: "user", content: event.prompt }] },
      { signal: controller.signal, context },
    );
    return reply.choices[0]?.message.content ?? "";
  } catch (err) {
    if (err instanceof RateLimitError) return `retry after ${err.headers?.["retry-after"]}`;
    if (err instanceof APIConnectionTimeoutError || err instanceof APIUserAbortError) return "late";
    if (err instanceof APIError) return `${err.status ?? "-"} ${err.code ?? "-"} ${err.message}`;
    throw err;
  }
}

export async function stream(prompt: string): Promise<string> {
  const chunks: CompletionStream = client.completionStream(
    { model: "gpt-4o-mini", messages: [{ role: "user", content: prompt }] },
    { window: 8, timeoutMs: 10_000 },
  );
  let text = "";
  for await (const chunk of chunks) {
    text += chunk.choices[0]?.delta.content ?? "";
    if (text.length > 100) break;
  }
  return text;
}

await client.close({ graceMs: 1_000 });
