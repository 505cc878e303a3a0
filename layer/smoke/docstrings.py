"""Docstrings still become descriptions in a layer whose libraries have none of their own.

The reference layer compiles the standard library and most of its distributions without
docstrings (`[bytecode] strip_docstrings` in layer.toml). `pybuild prune-plan --report` lists
every read of ``__doc__`` in the layer: pydantic (JSON schemas of models, enums, dataclasses and
computed fields), openai (`pydantic_function_tool`, the Agents helpers), litellm
(`function_to_dict`) and the standard library's `inspect.getdoc` read the docstrings of objects
their caller passes in: a function's own models and functions, which are never stripped. This
runs each of those paths with objects defined here and checks that their docstrings arrive,
down to the request litellm sends to an OpenAI-compatible server on loopback. (Checks raise
instead of `assert`: under ``-OO``, which strips every docstring including a function's own,
asserts would vanish and the script would pass; with `expect` it fails, as it should.)
"""

import dataclasses
import enum
import inspect
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import litellm
import openai
import pydantic
from litellm.llms.base_llm.base_utils import type_to_response_format_param
from openai.lib._pydantic import to_strict_json_schema
from openai.lib.beta.agents import function_tool


class Weather(enum.Enum):
    """Kinds of weather."""

    SUN = "sun"
    RAIN = "rain"


@pydantic.dataclasses.dataclass
class Place:
    """A place on the map."""

    name: str


class Forecast(pydantic.BaseModel):  # type: ignore[misc]
    """A forecast for one city."""

    city: str = pydantic.Field(description="the city's name")
    weather: Weather
    place: Place

    @pydantic.computed_field  # type: ignore[prop-decorator, untyped-decorator]
    @property
    def headline(self) -> str:
        """One line for a title."""
        return f"{self.city}: {self.weather.value}"


def get_weather(city: str) -> str:
    """Look up today's weather in a city."""
    return f"sun in {city}"


def expect(what: str, found: object, wanted: object) -> None:
    if found != wanted:
        raise AssertionError(f"{what}: {found!r}, expected {wanted!r}")


def check_schemas() -> None:
    forecast = "A forecast for one city."
    schema = Forecast.model_json_schema(mode="serialization")
    expect("model description", schema.get("description"), forecast)
    expect("field description", schema["properties"]["city"].get("description"), "the city's name")
    headline = schema["properties"]["headline"].get("description")
    expect("computed field description", headline, "One line for a title.")
    expect("enum description", schema["$defs"]["Weather"].get("description"), "Kinds of weather.")
    place = schema["$defs"]["Place"].get("description")
    expect("dataclass description", place, "A place on the map.")

    tool = openai.pydantic_function_tool(Forecast)
    expect("openai.pydantic_function_tool", tool["function"].get("description"), forecast)
    expect("to_strict_json_schema", to_strict_json_schema(Forecast).get("description"), forecast)
    response_format = type_to_response_format_param(Forecast) or {}
    found = response_format["json_schema"]["schema"].get("description")
    expect("litellm type_to_response_format_param", found, forecast)

    weather = "Look up today's weather in a city."
    agent_tool = function_tool(get_weather)
    expect("openai Agents function_tool", agent_tool.definition["description"], weather)
    expect("inspect.getdoc", inspect.getdoc(get_weather), weather)

    @dataclasses.dataclass
    class Plain:
        size: int

    expect("dataclasses' default docstring", Plain.__doc__, "Plain(size: int)")


class _OpenAI(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(body)
        reply = {
            "id": "chatcmpl-docstrings",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": '{"city": "Oslo"}'},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def check_request() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        litellm.completion(
            model="openai/gpt-4o-mini",
            api_base=f"http://127.0.0.1:{server.server_port}/v1",
            api_key="sk-smoke",
            messages=[{"role": "user", "content": "weather?"}],
            tools=[openai.pydantic_function_tool(Forecast)],
            response_format=Forecast,
        )
    finally:
        server.shutdown()
    expect("requests sent", len(_OpenAI.requests), 1)
    sent = _OpenAI.requests[0]
    tools = sent["tools"]
    response_format = sent["response_format"]
    if not isinstance(tools, list) or not isinstance(response_format, dict):
        raise TypeError(f"litellm sent no tools or response_format: {sent}")
    forecast = "A forecast for one city."
    expect("the tool litellm sent", tools[0]["function"].get("description"), forecast)
    found = response_format["json_schema"]["schema"].get("description")
    expect("the response_format litellm sent", found, forecast)


check_schemas()
check_request()
print("docstrings: the function's own docstrings reach every schema built from them")
