"""An external helpdesk end to end through the public API: the generic webhook platform."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Server
from tests.fakes.webhook_receiver import FakeReceiver
from tests.web.chat import wait_for

SECRET = "e2e-shared-secret-0123456789"


@pytest.fixture
def receiver() -> Iterator[FakeReceiver]:
    with FakeReceiver(SECRET) as fake:
        yield fake


def setup_agent(server: Server, receiver: FakeReceiver) -> tuple[str, dict[str, Any]]:
    with server.admin() as admin:
        workspace = admin.post("/api/v1/workspaces", json={"name": "Ext"}).json()
        agent = admin.post(
            "/api/v1/agents",
            json={"workspace_id": workspace["id"], "name": "Bot", "channels": ["widget"]},
        ).json()
        connected = admin.post(
            f"/api/v1/agents/{agent['id']}/integrations",
            json={
                "platform": "webhook",
                "credentials": {"url": receiver.url, "signing_secret": SECRET},
            },
        )
        assert connected.status_code == 201, connected.text
        integration = connected.json()
        assert SECRET not in connected.text  # never echoed
        action = admin.post(
            f"/api/v1/agents/{agent['id']}/actions",
            json={
                "name": f"Escalate_{secrets.token_hex(2)}",
                "platform": "webhook",
                "when_to_use": "When the user asks for a person.",
                "channels": ["widget"],
                "enabled": True,
                "ask_for_email": False,
            },
        )
        assert action.status_code == 201, action.text
    return agent["id"], integration


def test_connect_refuses_bad_credentials_with_the_field(
    any_server: Server, receiver: FakeReceiver
) -> None:
    with any_server.admin() as admin:
        agent = any_server.demo_agent_id
        missing = admin.post(
            f"/api/v1/agents/{agent}/integrations",
            json={"platform": "webhook", "credentials": {"signing_secret": SECRET}},
        )
        assert missing.status_code == 422
        assert "credentials.url" in missing.text
        wrong = admin.post(
            f"/api/v1/agents/{agent}/integrations",
            json={
                "platform": "webhook",
                "credentials": {"url": receiver.url, "signing_secret": "not-the-right-secret"},
            },
        )
        assert wrong.status_code == 422
        assert "invalid_auth" in wrong.text
        assert wrong.json()["code"] == "invalid_auth"
        platforms = [
            i["platform"] for i in admin.get(f"/api/v1/agents/{agent}/integrations").json()
        ]
    assert platforms == ["native"]  # nothing half-saved


def test_escalation_lands_once_in_the_tool_and_replies_come_back(
    any_server: Server, receiver: FakeReceiver
) -> None:
    agent_id, integration = setup_agent(any_server, receiver)
    assert integration["webhook_url"].endswith(f"/api/v1/webhooks/{integration['id']}")
    assert integration["webhook_setup"]

    with any_server.client() as client:
        chat = client.post(
            f"/api/v1/agents/{agent_id}/conversations",
            json={"channel": "widget", "contact": {"name": "Ann", "email": "ann@example.com"}},
        ).json()
    with any_server.client(chat["token"]) as visitor:
        handed = visitor.post(
            f"/api/v1/conversations/{chat['id']}/messages", json={"text": "I want a human please"}
        ).json()
        assert handed["conversation"]["owner"] == "human"
        state = wait_for(
            lambda: (
                (s := visitor.get(f"/api/v1/conversations/{chat['id']}").json())["escalation"][
                    "status"
                ]
                == "open"
                and s
            )
        )
        assert state["escalation"]["ticket"] == {
            "id": "T-1",
            "url": "https://tool.example/tickets/T-1",
        }
        assert len(receiver.tickets) == 1
        packet = next(iter(receiver.tickets.values())).packet
        assert packet["contact"]["email"] == "ann@example.com"
        assert "I want a human please" in [m["text"] for m in packet["transcript"]]

        visitor.post(f"/api/v1/conversations/{chat['id']}/messages", json={"text": "any news?"})
        wait_for(lambda: next(iter(receiver.tickets.values())).messages)

        hook = f"/api/v1/webhooks/{integration['id']}"
        body, headers = receiver.signed(
            {
                "event_id": "ev-1",
                "ticket_id": "T-1",
                "type": "reply",
                "text": "Hi Ann, on it.",
                "author": {"name": "Kim"},
            }
        )
        assert httpx.post(any_server.url + hook, content=body, headers=headers).json() == {
            "applied": 1,
            "queued": 0,
        }
        again = httpx.post(any_server.url + hook, content=body, headers=headers)
        assert again.json() == {"applied": 0, "queued": 0}  # a redelivery changes nothing
        forged, forged_headers = receiver.signed(
            {"event_id": "ev-x", "ticket_id": "T-1", "type": "reply", "text": "phish"},
            secret="x" * 20,
        )
        assert (
            httpx.post(any_server.url + hook, content=forged, headers=forged_headers).status_code
            == 401
        )
        note, note_headers = receiver.signed(
            {"event_id": "ev-2", "ticket_id": "T-1", "type": "note", "text": "internal only"}
        )
        httpx.post(any_server.url + hook, content=note, headers=note_headers)

        messages = visitor.get(f"/api/v1/conversations/{chat['id']}").json()["messages"]
        replies = [m for m in messages if m["role"] == "human_agent"]
        assert [(m["text"], m["author"]["name"]) for m in replies] == [("Hi Ann, on it.", "Kim")]
        assert all(m["text"] not in ("phish", "internal only") for m in messages)

        solved, solved_headers = receiver.signed(
            {"event_id": "ev-3", "ticket_id": "T-1", "type": "solved"}
        )
        httpx.post(any_server.url + hook, content=solved, headers=solved_headers)
        after = visitor.get(f"/api/v1/conversations/{chat['id']}").json()
        assert after["owner"] == "bot"
        assert after["escalation"]["status"] == "solved"
    assert len(receiver.tickets) == 1


def test_unknown_integration_webhook_is_404(any_server: Server) -> None:
    assert httpx.post(any_server.url + "/api/v1/webhooks/nope", content=b"{}").status_code == 404


def escalate_visitor(server: Server, agent_id: str) -> tuple[str, str]:
    with server.client() as client:
        chat = client.post(
            f"/api/v1/agents/{agent_id}/conversations",
            json={"channel": "widget", "contact": {"email": "v@example.com"}},
        ).json()
    with server.client(chat["token"]) as visitor:
        visitor.post(
            f"/api/v1/conversations/{chat['id']}/messages", json={"text": "a human please"}
        )
    return chat["id"], chat["token"]


def test_same_ticket_number_in_two_accounts_reaches_the_right_visitor(any_server: Server) -> None:
    with FakeReceiver(SECRET) as first, FakeReceiver(SECRET) as second:
        agent_a, _ = setup_agent(any_server, first)
        agent_b, integration_b = setup_agent(any_server, second)
        chat_a, token_a = escalate_visitor(any_server, agent_a)
        chat_b, token_b = escalate_visitor(any_server, agent_b)
        wait_for(lambda: first.tickets and second.tickets)  # both tools number it T-1
        with any_server.client(token_b) as visitor_b:
            wait_for(
                lambda: visitor_b.get(f"/api/v1/conversations/{chat_b}").json()["escalation"][
                    "ticket"
                ]
            )
        body, headers = second.signed(
            {"event_id": "b-1", "ticket_id": "T-1", "type": "reply", "text": "For B only"}
        )
        hook = f"{any_server.url}/api/v1/webhooks/{integration_b['id']}"
        assert httpx.post(hook, content=body, headers=headers).json() == {"applied": 1, "queued": 0}
    with any_server.client(token_b) as visitor_b, any_server.client(token_a) as visitor_a:
        texts_b = [
            m["text"] for m in visitor_b.get(f"/api/v1/conversations/{chat_b}").json()["messages"]
        ]
        texts_a = [
            m["text"] for m in visitor_a.get(f"/api/v1/conversations/{chat_a}").json()["messages"]
        ]
    assert "For B only" in texts_b
    assert "For B only" not in texts_a


def test_a_failed_ticket_is_explained_to_the_team_not_the_visitor(
    any_server: Server, receiver: FakeReceiver
) -> None:
    agent_id, _ = setup_agent(any_server, receiver)
    receiver.reject_next_create = True  # a validation error: parked at once, not retried
    chat_id, token = escalate_visitor(any_server, agent_id)
    with any_server.client(token) as visitor:
        failed = wait_for(
            lambda: (
                (c := visitor.get(f"/api/v1/conversations/{chat_id}").json())["escalation"][
                    "status"
                ]
                == "failed"
                and c
            )
        )
    assert "error" not in failed["escalation"]
    with any_server.admin() as admin:
        seen = admin.get(f"/api/v1/conversations/{chat_id}").json()
        jobs = admin.get("/api/v1/jobs", params={"status": "failed"}).json()
    assert "subject_too_long" in seen["escalation"]["error"]
    assert any("subject_too_long" in (j["last_error"] or "") for j in jobs)


def test_platforms_may_check_the_webhook_url_first(
    any_server: Server, receiver: FakeReceiver
) -> None:
    _, integration = setup_agent(any_server, receiver)
    assert httpx.get(integration["webhook_url"]).status_code == 200
    assert httpx.get(f"{any_server.url}/api/v1/webhooks/nope").status_code == 404
