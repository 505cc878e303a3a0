// An HTTP proxy that is also the only "provider" the real-bridge tests reach: Python is given
// HTTP_PROXY=<this> and OPENAI_BASE_URL=http://openai.test/v1 (a name that does not resolve),
// so a reply proves that both variables got through. The path says how to answer:
//
//   /v1/chat/completions                  an OpenAI chat completion (or stream), "via proxy"
//   /status/<code>/v1/chat/completions    an OpenAI-style error with that status
//   /silent/v1/chat/completions           never answers
//   /drip/v1/chat/completions             streams a chunk every 100 ms, forever
//   /reset/v1/chat/completions            drops the connection
//
// `requests` records each request; `closed(path)` resolves when a request to that path has
// lost its connection (how a test sees that Python cancelled it).
import http from "node:http";

const ERRORS = {
  400: ["invalid_request_error", "invalid_value"],
  401: ["invalid_request_error", "invalid_api_key"],
  403: ["permission_error", "forbidden"],
  404: ["invalid_request_error", "model_not_found"],
  429: ["rate_limit_error", "rate_limit_exceeded"],
  500: ["server_error", "internal_error"],
};

function chunk(content, finish = null) {
  const choices = [{ index: 0, delta: { content }, finish_reason: finish }];
  const body = {
    id: "chatcmpl-1",
    object: "chat.completion.chunk",
    created: 1,
    model: "gpt-4o-mini",
    choices,
  };
  return `data: ${JSON.stringify(body)}\n\n`;
}

export async function fakeProvider() {
  const requests = [];
  const sockets = new Set();
  const closings = new Map();
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (data) => (body += data));
    req.on("end", () => {
      const url = new URL(req.url, "http://unknown");
      requests.push({ url: req.url, authorization: req.headers.authorization, body });
      req.socket.once("close", () => closings.get(url.pathname)?.());
      answer(url.pathname, body, req, res);
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    /** Resolves when a request to `path` loses its connection. */
    closed: (path) => new Promise((resolve) => closings.set(path, resolve)),
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

function answer(pathname, body, req, res) {
  const status = /^\/status\/(\d+)\//.exec(pathname)?.[1];
  if (pathname.startsWith("/silent/")) return;
  if (pathname.startsWith("/reset/")) {
    req.socket.destroy();
    return;
  }
  if (status) {
    const [type, code] = ERRORS[status] ?? ["error", "unknown"];
    res.writeHead(Number(status), { "content-type": "application/json", "retry-after": "7" });
    res.end(JSON.stringify({ error: { message: `fake ${status}`, type, code, param: null } }));
    return;
  }
  const stream = JSON.parse(body || "{}").stream === true;
  if (pathname.startsWith("/drip/") || stream) {
    res.writeHead(200, { "content-type": "text/event-stream" });
    if (pathname.startsWith("/drip/")) {
      let index = 0;
      const timer = setInterval(() => res.write(chunk(`${index++} `)), 100);
      res.on("close", () => clearInterval(timer));
      return;
    }
    for (const word of ["via ", "proxy"]) res.write(chunk(word));
    res.end(chunk("", "stop") + "data: [DONE]\n\n");
    return;
  }
  const message = { role: "assistant", content: "via proxy" };
  const usage = { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 };
  res.writeHead(200, { "content-type": "application/json" });
  res.end(
    JSON.stringify({
      id: "chatcmpl-1",
      object: "chat.completion",
      created: 1,
      model: "gpt-4o-mini",
      choices: [{ index: 0, message, finish_reason: "stop" }],
      usage,
    }),
  );
}
