"""LLMAgent against a fake OpenAI-compatible server over real HTTP."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import openai
import pytest

from handoff.agent.knowledge import KnowledgeEntry
from handoff.agent.llm import (
    HISTORY_MESSAGES,
    SUPPORT_TEAM_PREFIX,
    LLMAgent,
    LLMReply,
    LLMSettings,
    LLMUnavailable,
    Prompt,
)
from handoff.decide.llm import ToolCall
from handoff.domain import ActionConfig, Message, Reason
from tests.fakes.openai_server import (
    FakeOpenAI,
    Scripted,
    answer,
    malformed,
    rate_limited,
    server_error,
    slow,
    tool_call,
)

Convo = Callable[..., list[Message]]
KB = [
    KnowledgeEntry("How long does shipping take?", "Standard shipping takes 3-5 business days."),
    KnowledgeEntry("Do you ship internationally?", "Yes, we ship to 40 countries."),
]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(fake: FakeOpenAI) -> None:
    fake.reset()


def settings_for(fake: FakeOpenAI, **overrides: Any) -> LLMSettings:
    values: dict[str, Any] = {
        "base_url": fake.base_url,
        "model": "gpt-fake-mini",
        "api_key": fake.api_key,
        "timeout_seconds": 2.0,
    }
    return LLMSettings(**{**values, **overrides})


@pytest.fixture
async def llm(fake: FakeOpenAI) -> AsyncIterator[LLMAgent]:
    agent = LLMAgent(settings_for(fake))
    yield agent
    await agent.aclose()


async def ask(
    agent: LLMAgent, action: ActionConfig | None, message: str = "Do you ship to Canada?"
) -> LLMReply:
    return await agent.respond(
        Prompt(history=[], message=message, knowledge=KB, action=action, agent_name="Acme Shop")
    )


async def test_plain_answer(fake: FakeOpenAI, llm: LLMAgent, action: ActionConfig) -> None:
    fake.push(answer("Yes, we ship to Canada: we ship to 40 countries."))
    reply = await ask(llm, action)
    assert reply == LLMReply(
        text="Yes, we ship to Canada: we ship to 40 countries.", tool_call=None
    )
    assert [r.status for r in fake.requests] == [200]


async def test_tool_call_carries_reason_and_summary(
    fake: FakeOpenAI, llm: LLMAgent, action: ActionConfig
) -> None:
    fake.push(
        tool_call(
            action.name,
            {"reason": "The user wants a refund for a damaged item.", "summary": "Blender broke."},
        )
    )
    reply = await ask(llm, action, "my blender arrived broken, I want my money back")
    assert reply.text is None
    assert reply.tool_call == ToolCall(
        name="Escalate_To_Human",
        reason="The user wants a refund for a damaged item.",
        summary="Blender broke.",
    )


async def test_request_offers_the_action_as_a_tool_with_knowledge_and_history(
    fake: FakeOpenAI, llm: LLMAgent, action: ActionConfig, make_convo: Convo
) -> None:
    history = make_convo(
        ("user", "hi"),
        ("assistant", "Hi! How can I help you today?"),
        ("human_agent", "I've refunded your order."),
        ("system", "Our support team has marked this conversation as solved."),
    )
    fake.push(answer("3-5 business days."))
    await llm.respond(
        Prompt(
            history=history,
            message="how long is shipping?",
            knowledge=KB,
            action=action,
            agent_name="Acme Shop",
        )
    )
    (body,) = fake.chat_requests
    assert body["model"] == "gpt-fake-mini"
    assert body["max_tokens"] == 400
    assert body["temperature"] == 0.2
    assert body["tool_choice"] == "auto"
    (tool,) = body["tools"]
    assert tool["type"] == "function"
    assert tool["function"]["name"] == action.name
    assert tool["function"]["description"] == action.when_to_use
    params = tool["function"]["parameters"]
    assert set(params["properties"]) == {"reason", "summary"}
    assert all(p["type"] == "string" for p in params["properties"].values())
    assert params["required"] == ["reason", "summary"]

    messages = body["messages"]
    system = messages[0]
    assert system["role"] == "system"
    assert "Acme Shop" in system["content"]
    for entry in KB:
        assert entry.question in system["content"]
        assert entry.answer in system["content"]
    assert action.name in system["content"]
    assert [(m["role"], m["content"]) for m in messages[1:]] == [
        ("user", "hi"),
        ("assistant", "Hi! How can I help you today?"),
        ("assistant", SUPPORT_TEAM_PREFIX + "I've refunded your order."),
        ("user", "how long is shipping?"),
    ]


async def test_no_action_means_no_tool(fake: FakeOpenAI, llm: LLMAgent) -> None:
    fake.push(answer("3-5 business days."))
    reply = await ask(llm, None)
    assert reply.text == "3-5 business days."
    (body,) = fake.chat_requests
    assert "tools" not in body
    assert "tool_choice" not in body
    assert "call " not in body["messages"][0]["content"]


async def test_empty_knowledge_says_so(fake: FakeOpenAI, llm: LLMAgent) -> None:
    fake.push(answer("I don't know, sorry."))
    await llm.respond(Prompt(history=[], message="?", knowledge=[], action=None, agent_name="Acme"))
    assert "nothing relevant" in fake.chat_requests[0]["messages"][0]["content"]


async def test_history_is_capped(fake: FakeOpenAI, llm: LLMAgent, make_convo: Convo) -> None:
    history = make_convo(*[("user", f"message {i}") for i in range(HISTORY_MESSAGES + 5)])
    fake.push(answer("ok"))
    prompt = Prompt(history=history, message="last", knowledge=KB, action=None, agent_name="A")
    await llm.respond(prompt)
    messages = fake.chat_requests[0]["messages"]
    assert len(messages) == 1 + HISTORY_MESSAGES + 1
    assert messages[1]["content"] == "message 5"


async def test_tool_call_with_an_answer_keeps_both(
    fake: FakeOpenAI, llm: LLMAgent, action: ActionConfig
) -> None:
    fake.push(tool_call(action.name, {"reason": "asked", "summary": "s"}, content="One moment."))
    reply = await ask(llm, action)
    assert reply.text == "One moment."
    assert reply.tool_call == ToolCall(action.name, "asked", "s")


@pytest.mark.parametrize(
    "arguments", ["{not json", "[1, 2]", json.dumps({"reason": 3, "summary": None}), ""]
)
async def test_bad_arguments_still_call_the_tool(
    fake: FakeOpenAI, llm: LLMAgent, action: ActionConfig, arguments: str
) -> None:
    fake.push(tool_call(action.name, arguments))
    reply = await ask(llm, action)
    assert reply.tool_call == ToolCall(action.name, reason="", summary="")


async def test_a_call_of_another_tool_is_ignored(
    fake: FakeOpenAI, llm: LLMAgent, action: ActionConfig
) -> None:
    fake.push(tool_call("Refund_Order", {"reason": "x"}, content="Let me check."))
    reply = await ask(llm, action)
    assert reply == LLMReply(text="Let me check.", tool_call=None)


@pytest.mark.parametrize(
    "scripted",
    [
        answer(""),
        answer("   "),
        tool_call("Refund_Order", {"reason": "x", "summary": "y"}),
    ],
    ids=["empty", "blank", "other-tool-only"],
)
async def test_nothing_usable_is_unavailable(
    fake: FakeOpenAI, llm: LLMAgent, action: ActionConfig, scripted: Scripted
) -> None:
    fake.push(scripted)
    with pytest.raises(LLMUnavailable):
        await ask(llm, action)


async def test_wrong_api_key_is_unavailable_without_retry(
    fake: FakeOpenAI, action: ActionConfig
) -> None:
    agent = LLMAgent(settings_for(fake, api_key="sk-wrong-key"))
    try:
        with pytest.raises(LLMUnavailable) as raised:
            await ask(agent, action)
    finally:
        await agent.aclose()
    assert isinstance(raised.value.__cause__, openai.AuthenticationError)
    assert [r.status for r in fake.requests] == [401]


@pytest.mark.parametrize(
    ("scripted", "error"),
    [(rate_limited("0"), openai.RateLimitError), (server_error(), openai.InternalServerError)],
    ids=["429", "500"],
)
async def test_errors_are_unavailable_after_one_retry(
    fake: FakeOpenAI,
    llm: LLMAgent,
    action: ActionConfig,
    scripted: Scripted,
    error: type[Exception],
) -> None:
    fake.push(scripted, scripted, answer("never reached"))
    with pytest.raises(LLMUnavailable) as raised:
        await ask(llm, action)
    assert isinstance(raised.value.__cause__, error)
    assert [r.status for r in fake.requests] == [scripted.status] * 2
    assert fake.requests[1].headers["x-stainless-retry-count"] == "1"


async def test_one_rate_limit_is_retried(
    fake: FakeOpenAI, llm: LLMAgent, action: ActionConfig
) -> None:
    fake.push(rate_limited("0"), answer("3-5 business days."))
    reply = await ask(llm, action)
    assert reply.text == "3-5 business days."
    assert [r.status for r in fake.requests] == [429, 200]


async def test_timeout_is_unavailable_quickly(fake: FakeOpenAI, action: ActionConfig) -> None:
    agent = LLMAgent(settings_for(fake, timeout_seconds=0.5))
    fake.push(slow(5), slow(5))
    started = time.monotonic()
    try:
        with pytest.raises(LLMUnavailable) as raised:
            await ask(agent, action)
    finally:
        await agent.aclose()
    assert isinstance(raised.value.__cause__, openai.APITimeoutError)
    assert time.monotonic() - started < 3
    assert len(fake.requests) == 2


async def test_a_long_retry_after_does_not_stall_the_turn(
    fake: FakeOpenAI, action: ActionConfig
) -> None:
    agent = LLMAgent(settings_for(fake, timeout_seconds=0.5))
    fake.push(rate_limited("60"))
    started = time.monotonic()
    try:
        with pytest.raises(LLMUnavailable, match="no reply within"):
            await ask(agent, action)
    finally:
        await agent.aclose()
    assert time.monotonic() - started < agent.settings.deadline_seconds + 1
    assert len(fake.requests) == 1


async def test_malformed_body_is_unavailable(
    fake: FakeOpenAI, llm: LLMAgent, action: ActionConfig
) -> None:
    fake.push(malformed())
    with pytest.raises(LLMUnavailable):
        await ask(llm, action)


async def test_unreachable_endpoint_is_unavailable(action: ActionConfig) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        agent = LLMAgent(
            LLMSettings(
                base_url=f"http://127.0.0.1:{port}/v1", model="m", api_key="k", timeout_seconds=1
            )
        )
        try:
            with pytest.raises(LLMUnavailable) as raised:
                await ask(agent, action)
        finally:
            await agent.aclose()
    assert isinstance(raised.value.__cause__, openai.APIConnectionError)


async def test_summarize(fake: FakeOpenAI, llm: LLMAgent, make_convo: Convo) -> None:
    history = make_convo(
        ("user", "My blender arrived broken."),
        ("assistant", "I'm sorry to hear that. Returns are free within 30 days.", 0.8),
        ("user", "I want a refund, not a return"),
        ("system", "a notice"),
    )
    fake.push(answer("The customer's blender arrived broken and they want a refund."))
    text = await llm.summarize(history, [Reason.LLM_TOOL_CALL, Reason.FRUSTRATION])
    assert text == "The customer's blender arrived broken and they want a refund."
    (body,) = fake.chat_requests
    assert "tools" not in body
    prompt = body["messages"][-1]["content"]
    assert "Customer: My blender arrived broken." in prompt
    assert "AI assistant: I'm sorry to hear that." in prompt
    assert "a notice" not in prompt
    assert "llm tool call, frustration" in prompt


async def test_summarize_failure_is_unavailable(
    fake: FakeOpenAI, llm: LLMAgent, make_convo: Convo
) -> None:
    fake.push(server_error(), server_error())
    with pytest.raises(LLMUnavailable):
        await llm.summarize(make_convo(("user", "help")), [Reason.EXPLICIT_REQUEST])


async def test_http_client_is_passed_through(fake: FakeOpenAI, action: ActionConfig) -> None:
    seen: list[str] = []

    async def record(request: httpx.Request) -> None:
        seen.append(str(request.url))

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as http:
        agent = LLMAgent(settings_for(fake), http_client=http)
        fake.push(answer("ok"))
        reply = await ask(agent, action)
    assert reply.text == "ok"
    assert seen == [f"{fake.base_url}/chat/completions"]


async def test_injected_client_is_used(fake: FakeOpenAI, action: ActionConfig) -> None:
    client = openai.AsyncOpenAI(base_url=fake.base_url, api_key=fake.api_key, max_retries=0)
    agent = LLMAgent(settings_for(fake, base_url="http://unused.invalid/v1"), client=client)
    fake.push(answer("ok"))
    try:
        assert (await ask(agent, action)).text == "ok"
    finally:
        await agent.aclose()


async def test_api_key_is_never_shown(
    fake: FakeOpenAI, action: ActionConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "sk-this-must-never-be-logged-1234"
    settings = settings_for(fake, api_key=secret)
    assert secret not in repr(settings)
    agent = LLMAgent(settings)
    fake.push(server_error(), server_error())
    try:
        with pytest.raises(LLMUnavailable) as raised:
            await ask(agent, action)
    finally:
        await agent.aclose()
    captured = capsys.readouterr()
    assert secret not in captured.out + captured.err
    assert secret not in str(raised.value)


# The fake itself: the wire format a real endpoint speaks.


async def test_fake_rejects_a_wrong_key_like_openai(fake: FakeOpenAI) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{fake.base_url}/chat/completions",
            headers={"Authorization": "Bearer nope"},
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_api_key"
    assert error["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"messages": [{"role": "user", "content": "hi"}]},
        {"model": "m", "messages": []},
        {"model": "m", "messages": [{"role": "robot", "content": "hi"}]},
        {"model": "m", "messages": [{"role": "user"}]},
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"name": "x"}]},
        {
            "model": "m",
            "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "has space"}}],
        },
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "auto"},
    ],
)
async def test_fake_validates_the_request(fake: FakeOpenAI, body: dict[str, Any]) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{fake.base_url}/chat/completions",
            headers={"Authorization": f"Bearer {fake.api_key}"},
            json=body,
        )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_fake_answers_in_the_chat_completion_shape(fake: FakeOpenAI) -> None:
    fake.push(tool_call("Escalate_To_Human", {"reason": "r", "summary": "s"}))
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{fake.base_url}/chat/completions",
            headers={"Authorization": f"Bearer {fake.api_key}"},
            json={"model": "m", "messages": [{"role": "user", "content": "human please"}]},
        )
    body = response.json()
    assert body["object"] == "chat.completion"
    assert {"id", "created", "model", "choices", "usage"} <= set(body)
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function"
    assert json.loads(call["function"]["arguments"]) == {"reason": "r", "summary": "s"}
    # The SDK's own model accepts it, strictly.
    openai.types.chat.ChatCompletion.model_validate(body, strict=True)


async def test_a_failure_makes_calls_fail_fast_until_the_cooldown_ends(
    fake: FakeOpenAI, action: ActionConfig
) -> None:
    now = [100.0]
    agent = LLMAgent(settings_for(fake, cooldown_seconds=30), clock=lambda: now[0])
    fake.push(server_error(), server_error(), answer("I'm back."))
    try:
        with pytest.raises(LLMUnavailable, match="HTTP 500"):
            await ask(agent, action)
        assert not agent.available
        with pytest.raises(LLMUnavailable, match="recently"):
            await ask(agent, action)
        assert len(fake.requests) == 2  # the fast failure sent nothing
        now[0] += 30
        assert agent.available
        assert (await ask(agent, action)).text == "I'm back."
    finally:
        await agent.aclose()


async def test_an_unusable_reply_does_not_cool_down(
    fake: FakeOpenAI, llm: LLMAgent, action: ActionConfig
) -> None:
    fake.push(answer(""), answer("ok"))
    with pytest.raises(LLMUnavailable):
        await ask(llm, action)
    assert llm.available
    assert (await ask(llm, action)).text == "ok"
