"""Small helpers that talk to a running server the way a channel and an agent would."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from tests.conftest import Server


@dataclass
class Chat:
    """A visitor's conversation: its id and the token that opens it."""

    server: Server
    id: str
    token: str
    greeting: list[dict[str, Any]]

    def client(self) -> httpx.Client:
        return self.server.client(self.token)

    def say(self, text: str, **extra: Any) -> dict[str, Any]:
        with self.client() as client:
            response = client.post(
                f"/api/v1/conversations/{self.id}/messages", json={"text": text, **extra}
            )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def get(self) -> dict[str, Any]:
        with self.client() as client:
            response = client.get(f"/api/v1/conversations/{self.id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def escalate(self, email: str | None = "jane@example.com") -> dict[str, Any]:
        """Ask for a person and answer the email question; return the final reply."""
        first = self.say("I want to talk to a human, please")
        if first["conversation"]["owner"] == "human":
            return first
        return self.say(email or "skip")


def start_chat(
    server: Server,
    channel: str = "widget",
    contact: dict[str, Any] | None = None,
    *,
    agent_id: str | None = None,
) -> Chat:
    """Start a conversation through the public API (on the demo agent unless told)."""
    body: dict[str, Any] = {"channel": channel}
    if contact is not None:
        body["contact"] = contact
    agent = agent_id or server.demo_agent_id
    with server.client() as client:
        response = client.post(f"/api/v1/agents/{agent}/conversations", json=body)
    assert response.status_code == 201, response.text
    data = response.json()
    return Chat(server=server, id=data["id"], token=data["token"], greeting=data["messages"])


def bare_agent(server: Server, channels: tuple[str, ...] = ("widget",)) -> str:
    """Create a workspace and an AI agent in it, with no knowledge and no action."""
    with server.admin() as admin:
        workspace = admin.post("/api/v1/workspaces", json={"name": "Test"}).json()
        agent = admin.post(
            "/api/v1/agents",
            json={"workspace_id": workspace["id"], "name": "Bot", "channels": list(channels)},
        )
    assert agent.status_code == 201, agent.text
    return str(agent.json()["id"])


def member_token(server: Server) -> str:
    with server.client() as client:
        response = client.post(
            "/api/v1/auth/login",
            json={"email": server.member_email, "password": server.member_password},
        )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def wait_for(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll until `check` returns something truthy; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"condition not met in {timeout}s (last value: {value!r})")


def tickets_of(client: httpx.Client, conversation_id: str) -> list[dict[str, Any]]:
    """Return every inbox ticket of the conversation, of any status, newest first."""
    response = client.get(
        "/api/v1/tickets", params={"status": "all", "conversation_id": conversation_id}
    )
    assert response.status_code == 200, response.text
    tickets: list[dict[str, Any]] = response.json()["tickets"]
    return tickets


def ticket_of(server: Server, token: str, conversation_id: str) -> dict[str, Any] | None:
    """Return the conversation's inbox ticket once the outbox worker has created it."""
    with server.client(token) as client:
        found = tickets_of(client, conversation_id)
    assert len(found) <= 1, f"more than one ticket for one conversation: {found}"
    return found[0] if found else None


class EventReader:
    """Reads server-sent events from one streaming response, across several waits."""

    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200, response.status_code
        self._lines: Iterator[str] = response.iter_lines()
        self.seen: list[dict[str, Any]] = []

    def until(self, done: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        """Read events until `done(events read by this call)` holds; return them."""
        events: list[dict[str, Any]] = []
        current: dict[str, Any] = {}
        for line in self._lines:
            if line.startswith("id:"):
                current["id"] = int(line[3:].strip())
            elif line.startswith("event:"):
                current["event"] = line[6:].strip()
            elif line.startswith("data:"):
                current["data"] = json.loads(line[5:].strip())
            elif line == "" and "data" in current:
                events.append(current)
                self.seen.append(current)
                current = {}
                if done(events):
                    return events
        raise AssertionError(f"stream ended early after {events}")


def read_events(
    response: httpx.Response, until: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """Read SSE events from a streaming response until `until(events)` holds."""
    return EventReader(response).until(until)
