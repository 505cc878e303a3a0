// Compiled by `tsc` (never run): what a CommonJS module sees through the "require" types.
import pybuild = require("pybuild-litellm-node");

const client = new pybuild.LitellmClient({ command: ["/opt/python/bin/python3.11"] });

export async function ask(prompt: string): Promise<string | null> {
  try {
    const reply = await client.completion({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: prompt }],
    });
    return reply.choices[0]?.message.content ?? null;
  } catch (err) {
    if (err instanceof pybuild.BridgeCrashError) console.error(err.stderr);
    if (err instanceof pybuild.APIError && err.status === 429) return null;
    throw err;
  }
}

export const pid: number | null = client.bridge.pid;
