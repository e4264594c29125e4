"""One admin's knowledge base cannot freeze the service for everyone else.

A server with a small knowledge-base limit keeps the test quick while the point holds:
embedding the entries takes seconds, far longer than the bound the other requests must meet.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, start_server, stop_server
from tests.web.chat import start_chat, wait_for

LIMIT = 300  # entries: embedding them takes several seconds even on a fast machine
QUICK = 2.0  # seconds: what "answers at once" means here, with a wide margin
HOURS = "What are your opening hours?"


def filler(count: int) -> list[dict[str, str]]:
    """FAQ entries about other things, long enough that embedding them takes a while."""
    return [
        {
            "question": f"How do I set up connector number {i} for the billing export?",
            "answer": f"Open Settings, then Connectors, pick connector {i} from the list, paste "
            "the key your provider gave you, choose which workspaces may use it and save. "
            "The first export runs within the hour and you get an email when it is done.",
        }
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(
        "sqlite",
        tmp_path_factory.mktemp("isolation"),
        env={"HANDOFF_KNOWLEDGE_MAX_ENTRIES": str(LIMIT)},
    )
    yield server
    stop_server(server)


def new_agent(server: Server, workspace: str) -> str:
    """Create a workspace (a tenant) with one widget agent and no action; return the agent."""
    with server.admin() as client:
        space = client.post("/api/v1/workspaces", json={"name": workspace}).json()
        agent = client.post(
            "/api/v1/agents",
            json={"workspace_id": space["id"], "name": workspace, "channels": ["widget"]},
        )
    assert agent.status_code == 201, agent.text
    agent_id: str = agent.json()["id"]
    return agent_id


def put_knowledge(server: Server, agent_id: str, entries: list[dict[str, str]]) -> httpx.Response:
    with server.admin() as client:
        return client.put(f"/api/v1/agents/{agent_id}/knowledge", json=entries)


def ask(server: Server, agent_id: str, text: str) -> tuple[str, float]:
    """Ask in a new conversation (no history to escalate on); return the answer and its time."""
    chat = start_chat(server, agent_id=agent_id)
    started = time.monotonic()
    reply = chat.say(text)
    return reply["messages"][-1]["text"], time.monotonic() - started


def timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_a_knowledge_base_at_the_limit_stalls_nobody(limited: Server) -> None:
    big = new_agent(limited, "Big FAQ")
    other = new_agent(limited, "Other tenant")
    assert put_knowledge(limited, other, [{"question": HOURS, "answer": "9 to 5."}]).is_success
    other_chat = start_chat(limited, agent_id=other)
    assert other_chat.say(HOURS)["messages"][-1]["text"] == "9 to 5."

    assert put_knowledge(limited, big, filler(LIMIT)).status_code == 200
    # The big agent's first message waits for its knowledge base to be embedded.
    answered: list[Any] = []
    chat = threading.Thread(target=lambda: answered.append(ask(limited, big, "hello there")))
    chat.start()
    probes: list[tuple[str, int, float]] = []
    with limited.client() as anyone, other_chat.client() as visitor, limited.admin() as admin:
        while chat.is_alive():
            for name, call in (
                ("healthz", lambda: anyone.get("/healthz")),
                ("conversation", lambda: visitor.get(f"/api/v1/conversations/{other_chat.id}")),
                ("agents", lambda: admin.get("/api/v1/agents")),
                (
                    "new conversation",
                    lambda: anyone.post(
                        f"/api/v1/agents/{other}/conversations", json={"channel": "widget"}
                    ),
                ),
            ):
                response, seconds = timed(call)
                probes.append((name, response.status_code, seconds))
                assert response.is_success, (name, response.text)
            time.sleep(0.1)
    chat.join()
    assert answered, "the chat message failed"
    slow = [(name, round(seconds, 2)) for name, _, seconds in probes if seconds > QUICK]
    assert slow == [], f"stalled while the knowledge base was embedded: {slow}"
    # Another tenant's chat goes on too.
    assert other_chat.say(HOURS)["messages"][-1]["text"] == "9 to 5."
    assert "database is locked" not in Path(limited.log_path).read_text()


def test_a_knowledge_base_over_the_limits_is_refused_naming_the_field(limited: Server) -> None:
    agent = new_agent(limited, "Limits")
    kept = [{"question": HOURS, "answer": "9 to 5."}]
    assert put_knowledge(limited, agent, kept).status_code == 200

    too_many = put_knowledge(limited, agent, filler(LIMIT + 1))
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["loc"] == ["body", "knowledge"]
    assert f"at most {LIMIT} entries" in too_many.json()["detail"][0]["msg"]

    too_long = put_knowledge(limited, agent, [*kept, {"question": "Why?", "answer": "x" * 5001}])
    assert too_long.status_code == 422
    assert too_long.json()["detail"][0]["loc"] == ["body", "knowledge[1].answer"]
    long_question = put_knowledge(limited, agent, [{"question": "q" * 1001, "answer": "a"}])
    assert long_question.json()["detail"][0]["loc"] == ["body", "knowledge[0].question"]

    with limited.admin() as client:
        assert client.get(f"/api/v1/agents/{agent}/knowledge").json() == kept


def test_the_old_knowledge_answers_while_the_new_one_is_embedded(limited: Server) -> None:
    agent = new_agent(limited, "Rebuild")
    assert put_knowledge(limited, agent, [{"question": HOURS, "answer": "9 to 5."}]).is_success
    assert ask(limited, agent, HOURS)[0] == "9 to 5."

    changed = [{"question": HOURS, "answer": "Day and night."}, *filler(LIMIT - 1)]
    assert put_knowledge(limited, agent, changed).status_code == 200
    text, seconds = ask(limited, agent, HOURS)
    assert text == "9 to 5.", "the message waited for the new knowledge base"
    assert seconds < QUICK
    # The new version takes over once it is embedded.
    wait_for(lambda: ask(limited, agent, HOURS)[0] == "Day and night.", timeout=300)


def test_reads_answer_while_another_process_holds_the_write_lock(limited: Server) -> None:
    agent = new_agent(limited, "Readers")
    assert put_knowledge(limited, agent, [{"question": HOURS, "answer": "9 to 5."}]).is_success
    chat = start_chat(limited, agent_id=agent)
    database = limited.database_url.removeprefix("sqlite+aiosqlite:///")
    writer = sqlite3.connect(database, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a long write elsewhere (another process, a migration)
    try:
        with chat.client() as visitor, limited.admin() as admin:
            for call in (
                lambda: visitor.get(f"/api/v1/conversations/{chat.id}"),
                lambda: admin.get("/api/v1/agents"),
                lambda: admin.get(f"/api/v1/agents/{agent}/knowledge"),
                lambda: admin.get(f"/api/v1/agents/{agent}/actions"),
            ):
                response, seconds = timed(call)
                assert response.status_code == 200, response.text
                assert seconds < QUICK, f"{response.url} waited {seconds:.1f} s for the lock"
    finally:
        writer.execute("ROLLBACK")
        writer.close()
