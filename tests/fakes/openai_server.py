"""A faithful fake of an OpenAI-compatible chat completions endpoint, over real HTTP.

`FakeOpenAI` runs a small Starlette app under uvicorn in a background thread on 127.0.0.1 and
implements `POST /v1/chat/completions` in the OpenAI wire format: bearer-key check (401 with
OpenAI's error body), request validation (400 with an `invalid_request_error`), and chat
completion objects with `tool_calls` whose `arguments` are a JSON string. Tests script what it
answers, one scripted reply per request, and read the requests it received::

    with FakeOpenAI() as fake:
        fake.push(tool_call("Escalate_To_Human", {"reason": "...", "summary": "..."}))
        ...  # point the client at fake.base_url with fake.api_key
        assert fake.requests[0].body["tools"][0]["function"]["name"] == "Escalate_To_Human"

Reference: https://platform.openai.com/docs/api-reference/chat/create and
https://platform.openai.com/docs/guides/error-codes
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import LoopbackServer

ROLES = {"system", "developer", "user", "assistant", "tool"}


@dataclass(frozen=True, slots=True)
class Scripted:
    """One scripted answer: a completion, an error status, a stall, or a broken body."""

    kind: str  # "answer" | "tool_call" | "error" | "malformed"
    content: str | None = None
    tool_name: str | None = None
    arguments: str | None = None
    status: int = 200
    error: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def answer(text: str, *, delay: float = 0.0) -> Scripted:
    """Script a plain assistant answer (`finish_reason: "stop"`)."""
    return Scripted("answer", content=text, delay=delay)


def tool_call(
    name: str, arguments: dict[str, Any] | str, *, content: str | None = None, delay: float = 0.0
) -> Scripted:
    """Script a function tool call; `arguments` is sent as a JSON string, or verbatim if a str."""
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return Scripted("tool_call", content=content, tool_name=name, arguments=raw, delay=delay)


def rate_limited(retry_after: str = "1") -> Scripted:
    """Script a 429 with `retry-after` and OpenAI's rate-limit error body."""
    return Scripted(
        "error",
        status=429,
        error={
            "message": "Rate limit reached for requests. Please try again later.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        },
        headers={"retry-after": retry_after},
    )


def server_error() -> Scripted:
    """Script a 500 with OpenAI's server error body."""
    return Scripted(
        "error",
        status=500,
        error={
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        },
    )


def slow(seconds: float, then: Scripted | None = None) -> Scripted:
    """Script a reply that arrives only after `seconds` (longer than the client's timeout)."""
    base = then or answer("This answer came too late.")
    return Scripted(
        base.kind,
        content=base.content,
        tool_name=base.tool_name,
        arguments=base.arguments,
        status=base.status,
        error=base.error,
        headers=base.headers,
        delay=seconds,
    )


def malformed() -> Scripted:
    """Script a 200 whose body is not JSON."""
    return Scripted("malformed")


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the fake saw it."""

    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON, or the raw text when it was not JSON
    status: int  # what the fake answered


def _error(
    status: int, message: str, type_: str, code: str | None, param: str | None = None
) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


def validate_chat_request(body: Any) -> str | None:
    """Return what is wrong with a chat completions request body, or None if it is valid."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            return f"messages[{i}].role must be one of {sorted(ROLES)}"
        content = m.get("content")
        if m["role"] == "assistant" and content is None and m.get("tool_calls"):
            continue
        if not isinstance(content, (str, list)):
            return f"messages[{i}].content must be a string or an array of content parts"
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            return "'tools' must be an array"
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or tool.get("type") != "function":
                return f"tools[{i}] must be {{'type': 'function', 'function': {{...}}}}"
            function = tool.get("function")
            if not isinstance(function, dict):
                return f"tools[{i}] must be {{'type': 'function', 'function': {{...}}}}"
            name = function.get("name")
            if not isinstance(name, str) or not name or len(name) > 64:
                return f"tools[{i}].function.name must be a string of 1 to 64 characters"
            if not all(c.isalnum() or c in "_-" for c in name):
                return f"tools[{i}].function.name must match ^[a-zA-Z0-9_-]+$"
            params = function.get("parameters")
            if params is not None and (
                not isinstance(params, dict) or params.get("type") != "object"
            ):
                return f"tools[{i}].function.parameters must be a JSON schema of type object"
    choice = body.get("tool_choice")
    if choice is not None and tools is None:
        return "'tool_choice' is only allowed when 'tools' are specified"
    for key in ("max_tokens", "max_completion_tokens"):
        if key in body and (not isinstance(body[key], int) or body[key] < 1):
            return f"'{key}' must be a positive integer"
    temperature = body.get("temperature")
    if temperature is not None and not (
        isinstance(temperature, (int, float)) and 0 <= temperature <= 2
    ):
        return "'temperature' must be a number between 0 and 2"
    return None


def completion_body(scripted: Scripted, model: str) -> dict[str, Any]:
    """Return a chat.completion object for a scripted answer or tool call."""
    message: dict[str, Any] = {"role": "assistant", "content": scripted.content, "refusal": None}
    finish_reason = "stop"
    if scripted.kind == "tool_call":
        message["tool_calls"] = [
            {
                "id": f"call_{secrets.token_hex(12)}",
                "type": "function",
                "function": {"name": scripted.tool_name, "arguments": scripted.arguments},
            }
        ]
        finish_reason = "tool_calls"
    prompt_tokens, completion_tokens = 42, len((scripted.content or "").split()) + 7
    return {
        "id": f"chatcmpl-{secrets.token_hex(12)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "system_fingerprint": "fp_fake",
    }


class FakeOpenAI(LoopbackServer):
    """A fake OpenAI-compatible server on 127.0.0.1; use it as a context manager."""

    def __init__(self, *, api_key: str = "sk-test-fake-key") -> None:
        self.api_key = api_key
        self.default = answer("I'm a fake model; nothing was scripted for this request.")
        self.requests: list[Received] = []
        self._script: deque[Scripted] = deque()
        self._lock = threading.Lock()
        app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])
        super().__init__(app, name="OpenAI")

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def push(self, *replies: Scripted) -> None:
        """Queue replies, one per incoming request, in order; then `default` answers."""
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        """Forget the script and the recorded requests."""
        with self._lock:
            self._script.clear()
            self.requests.clear()

    @property
    def chat_requests(self) -> list[Any]:
        """Return the bodies of the chat completion requests received, oldest first."""
        with self._lock:
            return [r.body for r in self.requests]

    def _record(self, request: Request, body: Any, status: int) -> None:
        with self._lock:
            self.requests.append(Received(request.url.path, dict(request.headers), body, status))

    def _next(self) -> Scripted:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    async def _chat(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        auth = request.headers.get("authorization", "")
        if auth != f"Bearer {self.api_key}":
            self._record(request, body, 401)
            shown = auth.removeprefix("Bearer ")[-4:] if auth else ""
            return _error(
                401,
                f"Incorrect API key provided: ...{shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                "invalid_api_key",
            )
        problem = validate_chat_request(body)
        if problem is not None:
            self._record(request, body, 400)
            return _error(400, problem, "invalid_request_error", None)
        scripted = self._next()
        self._record(request, body, scripted.status)
        if scripted.delay:
            await self.stall(scripted.delay)
        if scripted.kind == "error":
            assert scripted.error is not None
            return JSONResponse(
                {"error": scripted.error}, status_code=scripted.status, headers=scripted.headers
            )
        if scripted.kind == "malformed":
            return Response('{"id": "chatcmpl-broken", "choices": [', media_type="application/json")
        return JSONResponse(completion_body(scripted, body["model"]))
