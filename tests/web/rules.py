"""Helpers for the conversation-rule tests: agents with their own action, chats on any of
their channels, and servers whose timers tick fast."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from handoff.domain import Channel
from handoff.service.channels import open_to_callers
from tests.conftest import Server, start_server, stop_server
from tests.web.chat import Chat, start_chat

ALL_CHANNELS = [channel.value for channel in Channel]
# The channels a caller may open through the public API; WhatsApp opens from its webhook.
PUBLIC_CHANNELS = open_to_callers()
TIMER_INTERVAL_SECONDS = "0.2"


@contextmanager
def timed_server(backend: str, tmp: Path, *args: str) -> Iterator[Server]:
    """Start a `handoff serve --demo` whose workers sweep the timers every 0.2 s."""
    server = start_server(
        backend, tmp, *args, env={"HANDOFF_TIMER_INTERVAL_SECONDS": TIMER_INTERVAL_SECONDS}
    )
    try:
        yield server
    finally:
        stop_server(server)


def action_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"Escalate_{secrets.token_hex(3)}",
        "platform": "native",
        "when_to_use": "Use when the user asks for a person.",
        "channels": ["widget"],
        "enabled": True,
        "ask_for_email": False,
    }
    return body | overrides


def new_agent(
    server: Server, agent_channels: list[str] | None = None, **action: Any
) -> tuple[str, dict[str, Any]]:
    """Create a workspace, an agent on `agent_channels` (all four by default) and one enabled
    action with the given fields; return the agent's id and the action."""
    with server.admin() as admin:
        workspace = admin.post("/api/v1/workspaces", json={"name": "Rules"}).json()
        agent = admin.post(
            "/api/v1/agents",
            json={
                "workspace_id": workspace["id"],
                "name": "Rules Bot",
                "channels": agent_channels or ALL_CHANNELS,
            },
        )
        assert agent.status_code == 201, agent.text
        agent_id: str = agent.json()["id"]
        created = admin.post(f"/api/v1/agents/{agent_id}/actions", json=action_body(**action))
        assert created.status_code == 201, created.text
    return agent_id, created.json()


def update_action(server: Server, action: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Replace an action's settings, keeping what is not given."""
    keep = {
        k: action[k]
        for k in (
            "name",
            "platform",
            "when_to_use",
            "channels",
            "enabled",
            "ask_for_email",
            "handoff_message",
            "alternative_message",
            "business_hours",
            "wait_timeout_seconds",
            "inactivity_timeout_seconds",
        )
    }
    with server.admin() as admin:
        response = admin.put(f"/api/v1/actions/{action['id']}", json=keep | fields)
    assert response.status_code == 200, response.text
    updated: dict[str, Any] = response.json()
    return updated


def demo_action(server: Server) -> dict[str, Any]:
    with server.admin() as admin:
        actions = admin.get(f"/api/v1/agents/{server.demo_agent_id}/actions").json()
    found: dict[str, Any] = actions[0]
    return found


def open_chat(
    server: Server, agent_id: str, channel: str = "widget", contact: dict[str, Any] | None = None
) -> Chat:
    """Start a conversation on any channel the agent answers on, through the public API."""
    return start_chat(server, channel, contact, agent_id=agent_id)


def back_to_bot(chat: Chat) -> dict[str, Any]:
    with chat.client() as client:
        response = client.post(f"/api/v1/conversations/{chat.id}/back-to-bot")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
