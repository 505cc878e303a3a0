"""litellm's real request/response paths, offline: OpenAI (through the openai SDK) and Anthropic
(litellm's own HTTP handler), plain and streamed, sync and async, embeddings, the Router, token
counting and cost, against servers on loopback that speak those APIs. What this loads is what a
Lambda function calling those providers needs; `pybuild smoke --trace` records it as the
evidence for the layer's prune rules."""

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import litellm

REPLY = "pong"


def _openai_chunk(content: str | None, finish: str | None) -> dict[str, object]:
    delta = {"role": "assistant", "content": content} if content else {}
    return {
        "id": "chatcmpl-smoke",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _anthropic_events() -> list[tuple[str, dict[str, object]]]:
    message: dict[str, object] = {
        "id": "msg_smoke",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-3-5-haiku-20241022",
        "stop_reason": None,
        "usage": {"input_tokens": 1, "output_tokens": 0},
    }
    return [
        ("message_start", {"type": "message_start", "message": message}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": REPLY},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 1},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


class Provider(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        stream = bool(body.get("stream"))
        if self.path.endswith("/embeddings"):
            return self._json(
                {
                    "object": "list",
                    "model": body["model"],
                    "data": [{"object": "embedding", "index": 0, "embedding": [0.25, -0.5, 1.0]}],
                    "usage": {"prompt_tokens": 1, "total_tokens": 1},
                }
            )
        if self.path.endswith("/messages"):  # Anthropic
            if stream:
                lines = [
                    f"event: {name}\ndata: {json.dumps(data)}\n\n"
                    for name, data in _anthropic_events()
                ]
                return self._stream(lines)
            return self._json(
                {
                    "id": "msg_smoke",
                    "type": "message",
                    "role": "assistant",
                    "model": body["model"],
                    "stop_reason": "end_turn",
                    "content": [{"type": "text", "text": REPLY}],
                    "usage": {"input_tokens": 1, "output_tokens": 1},
                }
            )
        if stream:  # OpenAI
            chunks = [_openai_chunk(REPLY, None), _openai_chunk(None, "stop")]
            return self._stream(
                [f"data: {json.dumps(c)}\n\n" for c in chunks] + ["data: [DONE]\n\n"]
            )
        return self._json(
            {
                "id": "chatcmpl-smoke",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": REPLY},
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )

    def _json(self, payload: dict[str, object]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, events: list[str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for event in events:
            self.wfile.write(event.encode())
        self.close_connection = True


server = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
threading.Thread(target=server.serve_forever, daemon=True).start()
base = f"http://127.0.0.1:{server.server_port}"
messages = [{"role": "user", "content": "ping"}]
providers = [
    {"model": "openai/gpt-4o-mini", "api_base": f"{base}/v1"},
    {"model": "anthropic/claude-3-5-haiku-20241022", "api_base": f"{base}/v1/messages"},
]

for provider in providers:
    reply = litellm.completion(messages=messages, api_key="sk-smoke", **provider)
    assert reply.choices[0].message.content == REPLY, (provider, reply)
    streamed = litellm.completion(messages=messages, api_key="sk-smoke", stream=True, **provider)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in streamed)
    assert text == REPLY, (provider, text)


async def stream_async(provider: dict[str, str]) -> str:
    response = await litellm.acompletion(
        messages=messages, api_key="sk-smoke", stream=True, **provider
    )
    return "".join([chunk.choices[0].delta.content or "" async for chunk in response])


for provider in providers:
    assert asyncio.run(stream_async(provider)) == REPLY, provider

embedding = litellm.embedding(
    model="openai/text-embedding-3-small", input=["ping"], api_base=f"{base}/v1", api_key="sk-smoke"
)
assert embedding.data[0]["embedding"] == [0.25, -0.5, 1.0], embedding

router = litellm.Router(
    model_list=[
        {"model_name": "chat", "litellm_params": {**providers[0], "api_key": "sk-smoke"}},
        {"model_name": "chat", "litellm_params": {**providers[1], "api_key": "sk-smoke"}},
    ]
)
routed = router.completion(model="chat", messages=messages)
assert routed.choices[0].message.content == REPLY, routed

assert litellm.token_counter(model="gpt-4o-mini", messages=messages) > 0
assert litellm.token_counter(model="claude-3-5-haiku-20241022", messages=messages) > 0
assert litellm.completion_cost(completion_response=reply) >= 0
print("local providers: ok")
