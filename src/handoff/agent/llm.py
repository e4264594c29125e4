"""Answering with an LLM (any OpenAI-compatible endpoint), grounded on the knowledge base.

The escalate action is offered to the model as a function tool: its name is the action's name
and its description is the admin's `when_to_use`; the model fills in `reason` and `summary`.
What the reply means for the conversation is `handoff.decide.llm.combine`'s business.

Every failure (HTTP status, connection, timeout, a response we cannot read) surfaces as
`LLMUnavailable`, so the caller falls back to the local decider and the knowledge base; the
user never meets silence. The API key is never logged and never shown in a repr.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import structlog
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageParam,
)

from handoff import domain
from handoff.agent.knowledge import KnowledgeEntry
from handoff.decide.llm import ToolCall
from handoff.domain import ActionConfig, HandbackReason, HumanStretch, Reason, Role

log = structlog.get_logger(__name__)

MAX_RETRIES = 1
# Only the latest messages go to the model: enough context, bounded tokens and cost.
HISTORY_MESSAGES = 20
SUPPORT_TEAM_PREFIX = "[Support team] "
SUMMARY_MAX_TOKENS = 200

ESCALATE_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reason": {
            "type": "string",
            "description": "Why a person from the support team is needed, in one sentence.",
        },
        "summary": {
            "type": "string",
            "description": "A short summary of the conversation for the human agent who "
            "takes over: the user's problem and what was tried.",
        },
    },
    "required": ["reason", "summary"],
    "additionalProperties": False,
}

_SYSTEM_PROMPT = (
    "You are {agent_name}, an AI support assistant chatting with a customer. "
    "Answer only from the knowledge base below. If the answer is not there, say that you "
    "don't know; never invent policies, prices, dates or links. Keep answers short and plain."
)
_TOOL_PROMPT = (
    " When the customer needs a person, as the description of the {tool} tool says, call "
    "{tool} instead of answering; the customer is then told they are being connected."
)
_HUMAN_PROMPT = (
    " You are an AI, not a person: never claim to be human, and never claim that a person is "
    "in the chat or reading it."
)
_STRETCH_PROMPT = (
    " A human support agent handled this conversation from {start} until {end}; it ended "
    "because {why}. You are answering again: the support team's messages in the history are "
    "marked {prefix!r}. Never say you are staying silent or waiting for a person."
)
_STRETCH_ENDINGS: dict[HandbackReason, str] = {
    HandbackReason.SOLVED: "the ticket was solved",
    HandbackReason.USER: "the user chose to go back to the AI assistant",
    HandbackReason.INACTIVITY: "nobody wrote for a while",
}
_SUMMARY_PROMPT = (
    "Summarise this support conversation for the human agent who takes it over, in 2 or 3 "
    "plain sentences: what the customer needs, what the assistant already answered, and what "
    "is left to do. Do not greet, do not address the customer, do not invent facts."
)


class LLMUnavailable(Exception):
    """The model could not give a usable reply; fall back to the local decider."""


@dataclass(frozen=True, slots=True)
class LLMSettings:
    """Where the OpenAI-compatible endpoint is and how to call it."""

    base_url: str
    model: str
    api_key: str = field(repr=False)
    timeout_seconds: float = 15.0
    max_tokens: int = 400
    temperature: float = 0.2
    # After a failure, calls fail fast for this long: a down endpoint must not make every user
    # message wait for a timeout before the knowledge-base fallback.
    cooldown_seconds: float = 30.0

    @property
    def deadline_seconds(self) -> float:
        """Return the whole call's budget: every attempt plus a short backoff between them."""
        return self.timeout_seconds * (1 + MAX_RETRIES) + 1.0


@dataclass(frozen=True, slots=True)
class LLMReply:
    """What the model did: an answer for the user, a call of the escalate tool, or both."""

    text: str | None
    tool_call: ToolCall | None


def escalate_tool(action: ActionConfig) -> ChatCompletionFunctionToolParam:
    """Return the action as a function tool: its name, its `when_to_use`, two arguments."""
    return {
        "type": "function",
        "function": {
            "name": action.name,
            "description": action.when_to_use,
            "parameters": ESCALATE_PARAMETERS,
        },
    }


def _knowledge_block(knowledge: Sequence[KnowledgeEntry]) -> str:
    if not knowledge:
        return "Knowledge base: (nothing relevant found for this question)"
    entries = "\n\n".join(f"Q: {e.question}\nA: {e.answer}" for e in knowledge)
    return f"Knowledge base:\n\n{entries}"


def _history_messages(history: Sequence[domain.Message]) -> list[ChatCompletionMessageParam]:
    messages: list[ChatCompletionMessageParam] = []
    for m in history[-HISTORY_MESSAGES:]:
        if not m.text.strip():
            continue
        if m.role == Role.USER:
            messages.append({"role": "user", "content": m.text})
        elif m.role == Role.ASSISTANT:
            messages.append({"role": "assistant", "content": m.text})
        elif m.role == Role.HUMAN_AGENT:
            messages.append({"role": "assistant", "content": SUPPORT_TEAM_PREFIX + m.text})
        # System notices (handback, ...) are for the user, not instructions to the model.
    return messages


def stretch_line(stretch: HumanStretch) -> str:
    """Tell the model a human stretch happened, when, and how it ended."""
    start, end = stretch.started_at, stretch.ended_at
    end_format = "%H:%M UTC" if start.date() == end.date() else "%Y-%m-%d %H:%M UTC"
    return _STRETCH_PROMPT.format(
        start=f"{start:%Y-%m-%d %H:%M} UTC",
        end=end.strftime(end_format),
        why=_STRETCH_ENDINGS[stretch.reason],
        prefix=SUPPORT_TEAM_PREFIX.strip(),
    )


@dataclass(frozen=True, slots=True)
class Prompt:
    """What the model is given for one turn.

    `action` is offered as a tool (None: no tool). `stretch` is the latest human stretch once
    it is over: the model must know it is answering again, or it may copy the silence it sees
    in the history.
    """

    history: Sequence[domain.Message]
    message: str
    knowledge: Sequence[KnowledgeEntry]
    action: ActionConfig | None
    agent_name: str
    stretch: HumanStretch | None = None


def build_messages(prompt: Prompt) -> list[ChatCompletionMessageParam]:
    """Return the chat messages for one turn: instructions and knowledge, history, the message."""
    system = _SYSTEM_PROMPT.format(agent_name=prompt.agent_name)
    if prompt.action is not None:
        system += _TOOL_PROMPT.format(tool=prompt.action.name)
    system += _HUMAN_PROMPT
    if prompt.stretch is not None:
        system += stretch_line(prompt.stretch)
    system += "\n\n" + _knowledge_block(prompt.knowledge)
    return [
        {"role": "system", "content": system},
        *_history_messages(prompt.history),
        {"role": "user", "content": prompt.message},
    ]


def _arguments(raw: str) -> tuple[str, str]:
    try:
        parsed = json.loads(raw)
    except ValueError:
        return "", ""
    if not isinstance(parsed, dict):
        return "", ""
    reason, summary = parsed.get("reason"), parsed.get("summary")
    return (
        reason.strip() if isinstance(reason, str) else "",
        summary.strip() if isinstance(summary, str) else "",
    )


def _parse(completion: ChatCompletion, action: ActionConfig | None) -> LLMReply:
    try:
        message = completion.choices[0].message
        content = message.content
        calls = message.tool_calls or []
    except (AttributeError, IndexError, TypeError) as exc:
        raise LLMUnavailable("the model's response has no message") from exc
    tool_call: ToolCall | None = None
    if action is not None:
        for call in calls:
            function = getattr(call, "function", None)
            if function is not None and getattr(function, "name", None) == action.name:
                reason, summary = _arguments(str(getattr(function, "arguments", "") or ""))
                tool_call = ToolCall(name=action.name, reason=reason, summary=summary)
                break
    text = content.strip() if isinstance(content, str) and content.strip() else None
    if text is None and tool_call is None:
        raise LLMUnavailable("the model returned neither an answer nor the escalate tool call")
    return LLMReply(text=text, tool_call=tool_call)


class LLMAgent:
    """Answer users with an OpenAI-compatible model, offering the escalate action as a tool."""

    def __init__(
        self,
        settings: LLMSettings,
        *,
        client: openai.AsyncOpenAI | None = None,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._down_until = float("-inf")
        if client is None:
            # openai 3.x types `http_client` as httpx2.AsyncClient and accepts httpx's too.
            passthrough: Any = http_client
            client = openai.AsyncOpenAI(
                base_url=settings.base_url,
                api_key=settings.api_key,
                timeout=settings.timeout_seconds,
                max_retries=MAX_RETRIES,
                http_client=passthrough,
            )
        self.client = client

    @property
    def available(self) -> bool:
        """Return False while the endpoint cools down after a failure."""
        return self._clock() >= self._down_until

    async def respond(self, prompt: Prompt) -> LLMReply:
        """Ask the model for the next turn: an answer, a call of the escalate tool, or both."""
        tools = [escalate_tool(prompt.action)] if prompt.action is not None else []
        completion = await self._complete(build_messages(prompt), tools=tools)
        return _parse(completion, prompt.action)

    async def summarize(self, history: Sequence[domain.Message], reasons: Sequence[Reason]) -> str:
        """Return a 2–3 sentence summary of the conversation for the human agent."""
        transcript = "\n".join(
            f"{_speaker(m.role)}: {' '.join(m.text.split())}"
            for m in history[-HISTORY_MESSAGES:]
            if m.role != Role.SYSTEM and m.text.strip()
        )
        why = ", ".join(r.value.replace("_", " ") for r in reasons) or "not given"
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": _SUMMARY_PROMPT},
            {
                "role": "user",
                "content": f"Conversation:\n{transcript or '(empty)'}\n\nEscalated because: {why}",
            },
        ]
        completion = await self._complete(messages, max_tokens=SUMMARY_MAX_TOKENS)
        reply = _parse(completion, None)
        assert reply.text is not None  # _parse raises when there is neither text nor a call
        return reply.text

    async def aclose(self) -> None:
        """Close the HTTP connections of the client."""
        await self.client.close()

    async def _complete(
        self,
        messages: list[ChatCompletionMessageParam],
        *,
        tools: Sequence[ChatCompletionFunctionToolParam] = (),
        max_tokens: int | None = None,
    ) -> ChatCompletion:
        s = self.settings
        if not self.available:
            raise LLMUnavailable("the model endpoint failed recently; waiting before a new try")
        try:
            # The SDK retries once and honours Retry-After (up to minutes); a chat turn cannot
            # wait that long, so the whole call, retries included, has one deadline.
            async with asyncio.timeout(s.deadline_seconds):
                completion = await self.client.chat.completions.create(
                    model=s.model,
                    messages=messages,
                    max_tokens=max_tokens or s.max_tokens,
                    temperature=s.temperature,
                    tools=tools or openai.omit,
                    tool_choice="auto" if tools else openai.omit,
                )
        except TimeoutError as exc:
            failure = LLMUnavailable(f"no reply within {s.deadline_seconds:g} s")
            log.warning("llm deadline exceeded", model=s.model, seconds=s.deadline_seconds)
            raise self._failed(failure) from exc
        except openai.APIStatusError as exc:
            failure = LLMUnavailable(f"the model endpoint answered HTTP {exc.status_code}")
            log.warning("llm error status", model=s.model, status=exc.status_code)
            raise self._failed(failure) from exc
        except openai.APIError as exc:
            # Connection errors, timeouts and responses the SDK cannot read.
            failure = LLMUnavailable(f"the model endpoint failed: {type(exc).__name__}")
            log.warning("llm unavailable", model=s.model, error=type(exc).__name__)
            raise self._failed(failure) from exc
        except (openai.OpenAIError, ValueError) as exc:
            failure = LLMUnavailable(f"the model's response is unusable: {type(exc).__name__}")
            log.warning("llm bad response", model=s.model, error=type(exc).__name__)
            raise self._failed(failure) from exc
        if not isinstance(completion, ChatCompletion):
            raise self._failed(LLMUnavailable("the endpoint did not return a chat completion"))
        return completion

    def _failed(self, failure: LLMUnavailable) -> LLMUnavailable:
        self._down_until = self._clock() + self.settings.cooldown_seconds
        return failure


def _speaker(role: Role) -> str:
    return {
        Role.USER: "Customer",
        Role.ASSISTANT: "AI assistant",
        Role.HUMAN_AGENT: "Support team",
    }.get(role, "System")
