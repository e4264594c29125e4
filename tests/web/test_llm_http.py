"""A server whose AI answers with a model (the fake OpenAI-compatible server), over HTTP.

The model is asked before the message's transaction: while it thinks, the rest of the service
keeps writing (on SQLite a transaction held through the call would block every other write).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKENDS, Server, start_server, stop_server
from tests.fakes.openai_server import FakeOpenAI, answer, tool_call
from tests.web.chat import start_chat, wait_for


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="module", params=BACKENDS)
def llm_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, fake: FakeOpenAI
) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp(f"llm-{request.param}")
    settings = {
        "HANDOFF_LLM_BASE_URL": fake.base_url,
        "HANDOFF_LLM_MODEL": "fake-model",
        "HANDOFF_LLM_API_KEY": fake.api_key,
        "HANDOFF_LLM_TIMEOUT_SECONDS": "10",
    }
    server = start_server(request.param, tmp, env=settings)
    try:
        yield server
    finally:
        stop_server(server)


def test_the_model_answers_and_others_write_while_it_thinks(
    llm_server: Server, fake: FakeOpenAI
) -> None:
    fake.reset()
    chat = start_chat(llm_server)
    fake.push(answer("We support Chrome and Firefox.", delay=1.5))
    answered: dict[str, httpx.Response] = {}

    def ask() -> None:
        with chat.client() as visitor:
            answered["reply"] = visitor.post(
                f"/api/v1/conversations/{chat.id}/messages",
                json={"text": "Which browsers do you support?"},
            )

    asking = threading.Thread(target=ask)
    asking.start()
    try:
        wait_for(lambda: fake.chat_requests)  # the model has the question and is thinking
        # Meanwhile another visitor starts a chat (a write), and it goes through at once.
        other = start_chat(llm_server)
        assert other.id and asking.is_alive()
    finally:
        asking.join(30)
    reply = answered["reply"]
    assert reply.status_code == 200, reply.text
    assert reply.json()["messages"][1]["text"] == "We support Chrome and Firefox."
    assert len(fake.chat_requests) == 1


def test_the_models_tool_call_escalates_over_http(llm_server: Server, fake: FakeOpenAI) -> None:
    fake.reset()
    chat = start_chat(llm_server, contact={"email": "kim@example.com"})
    fake.push(
        tool_call("Escalate_To_Human", {"reason": "billing dispute", "summary": "Charged twice."}),
        answer("unused"),
    )
    with chat.client() as visitor:
        reply = visitor.post(
            f"/api/v1/conversations/{chat.id}/messages",
            json={"text": "I was charged twice this month"},
        )
    assert reply.status_code == 200, reply.text
    assert reply.json()["conversation"]["owner"] == "human"
