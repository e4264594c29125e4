"""The built-in inbox over HTTP: tickets, replies, notes, assignment, solving, scoping."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.conftest import Server
from tests.web.chat import (
    Chat,
    EventReader,
    member_token,
    read_events,
    start_chat,
    ticket_of,
    tickets_of,
    wait_for,
)


def escalated(server: Server, token: str) -> tuple[Chat, dict[str, Any]]:
    chat = start_chat(server, contact={"name": "Jane Roe", "email": "jane@example.com"})
    chat.say("How do I export my data?")
    chat.say("I was charged twice this month and I want a person to look at it")
    ticket = wait_for(lambda: ticket_of(server, token, chat.id))
    return chat, ticket


@pytest.fixture
def team(any_server: Server) -> str:
    return member_token(any_server)


def test_login_rejects_a_wrong_password(any_server: Server) -> None:
    with any_server.client() as client:
        response = client.post(
            "/api/v1/auth/login", json={"email": any_server.member_email, "password": "wrong"}
        )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_me_names_the_member(any_server: Server, team: str) -> None:
    with any_server.client(team) as client:
        me = client.get("/api/v1/me").json()
    assert me["email"] == any_server.member_email


def test_ticket_carries_what_the_team_needs(any_server: Server, team: str) -> None:
    chat, ticket = escalated(any_server, team)
    assert ticket["status"] == "open"
    assert ticket["contact"]["email"] == "jane@example.com"
    assert ticket["channel"] == "widget"
    assert "sensitive_topic" in ticket["reasons"]
    assert ticket["subject"]
    assert "charged twice" in ticket["summary"]

    with any_server.client(team) as client:
        detail = client.get(f"/api/v1/tickets/{ticket['id']}").json()
    texts = [m["text"] for m in detail["messages"]]
    assert "How do I export my data?" in texts
    assert all(m["created_at"] for m in detail["messages"])
    assert {m["role"] for m in detail["messages"]} >= {"user", "assistant"}
    fired = {e["reason"]: e for e in detail["evidence"]}
    assert "charged twice" in fired["sensitive_topic"]["detail"]
    assert 0 < fired["sensitive_topic"]["score"] <= 1
    assert chat.id in detail["conversation_url"]

    state = chat.get()["escalation"]
    assert state["status"] == "open"
    assert state["ticket"]["id"] == ticket["id"]
    assert ticket["id"] in state["ticket"]["url"]


def test_reply_reaches_the_visitor_live_and_notes_never_do(any_server: Server, team: str) -> None:
    chat, ticket = escalated(any_server, team)
    url = f"/api/v1/conversations/{chat.id}/events"
    with (
        chat.client() as visitor,
        visitor.stream("GET", url) as stream,
        any_server.client(team) as agent,
    ):
        note = agent.post(f"/api/v1/tickets/{ticket['id']}/notes", json={"text": "VIP customer"})
        assert note.status_code == 201
        sent = agent.post(f"/api/v1/tickets/{ticket['id']}/replies", json={"text": "Hi Jane!"})
        assert sent.status_code == 201
        events = read_events(
            stream, lambda evs: any(e["data"].get("text") == "Hi Jane!" for e in evs)
        )
    reply = next(e for e in events if e["data"].get("text") == "Hi Jane!")
    assert reply["data"]["role"] == "human_agent"
    assert reply["data"]["author"]["name"] == "Sam Rivera"
    assert all("VIP" not in str(e["data"]) for e in events)
    assert all("VIP" not in m["text"] for m in chat.get()["messages"])

    with any_server.client(team) as client:
        detail = client.get(f"/api/v1/tickets/{ticket['id']}").json()
    assert [n["text"] for n in detail["notes"]] == ["VIP customer"]
    assert detail["waiting"] is False
    assert detail["assignee"]["name"] == "Sam Rivera"  # whoever answers first takes it


def test_solve_hands_back_to_the_ai(any_server: Server, team: str) -> None:
    chat, ticket = escalated(any_server, team)
    with any_server.client(team) as client:
        solved = client.post(f"/api/v1/tickets/{ticket['id']}/solve")
        assert solved.status_code == 200
        assert solved.json()["status"] == "solved"
        assert client.post(f"/api/v1/tickets/{ticket['id']}/solve").status_code == 200
        late = client.post(f"/api/v1/tickets/{ticket['id']}/replies", json={"text": "late"})
        assert late.status_code == 409

    state = chat.get()
    assert state["owner"] == "bot"
    assert state["escalation"]["status"] == "solved"
    assert state["messages"][-1]["role"] == "system"

    # The solved stretch is not held against the AI: the same question gets an answer.
    answer = chat.say("How do I export my data?")
    assert answer["conversation"]["owner"] == "bot"
    assert answer["messages"][-1]["role"] == "assistant"
    assert "Export" in answer["messages"][-1]["text"]

    # A new stretch may escalate again, and gets a ticket of its own.
    again = chat.say("I want to speak to a human again")
    assert again["conversation"]["owner"] == "human"
    assert again["conversation"]["escalation"]["id"] != state["escalation"]["id"]
    with any_server.client(team) as client:
        both = wait_for(
            lambda: len(tickets_of(client, chat.id)) == 2 and tickets_of(client, chat.id)
        )
    assert ticket["id"] in [t["id"] for t in both]


def test_assign_to_a_member_or_nobody(any_server: Server, team: str) -> None:
    _, ticket = escalated(any_server, team)
    with any_server.client(team) as client:
        members = client.get("/api/v1/members").json()
        sam = next(m for m in members if m["email"] == any_server.member_email)
        assigned = client.post(
            f"/api/v1/tickets/{ticket['id']}/assign", json={"member_id": sam["id"]}
        )
        assert assigned.json()["assignee"]["id"] == sam["id"]
        cleared = client.post(f"/api/v1/tickets/{ticket['id']}/assign", json={"member_id": None})
        assert cleared.json()["assignee"] is None
        unknown = client.post(f"/api/v1/tickets/{ticket['id']}/assign", json={"member_id": "x"})
        assert unknown.status_code == 422


def test_ticket_list_filters_by_status(any_server: Server, team: str) -> None:
    _, ticket = escalated(any_server, team)
    with any_server.client(team) as client:
        client.post(f"/api/v1/tickets/{ticket['id']}/solve")
        mine = {"conversation_id": ticket["conversation_id"]}
        open_ids = [t["id"] for t in client.get("/api/v1/tickets", params=mine).json()["tickets"]]
        solved = client.get("/api/v1/tickets", params={**mine, "status": "solved"}).json()
        solved_ids = [t["id"] for t in solved["tickets"]]
        assert client.get("/api/v1/tickets?status=closed").status_code == 422
    assert ticket["id"] not in open_ids
    assert ticket["id"] in solved_ids


def test_inbox_stream_shows_new_tickets_and_visitor_messages(any_server: Server, team: str) -> None:
    with (
        any_server.client(team) as client,
        client.stream("GET", "/api/v1/inbox/events") as stream,
    ):
        chat = start_chat(any_server, contact={"email": "live@example.com"})
        chat.say("let me talk to someone from your team")
        reader = EventReader(stream)
        created = reader.until(lambda evs: any(e["event"] == "ticket" for e in evs))
        ticket = next(e["data"] for e in created if e["event"] == "ticket")
        assert ticket["conversation_id"] == chat.id

        chat.say("are you there?")
        followed = reader.until(
            lambda evs: any(
                e["event"] == "message" and e["data"]["message"]["text"] == "are you there?"
                for e in evs
            ),
        )
    message = next(e for e in followed if e["event"] == "message")
    assert message["data"]["ticket_id"] == ticket["id"]


def test_inbox_needs_a_token(any_server: Server) -> None:
    with any_server.client() as client:
        assert client.get("/api/v1/tickets").status_code == 401
        assert client.get("/api/v1/inbox/events").status_code == 401
        assert client.post("/api/v1/tickets/x/solve").status_code == 401


def test_members_of_another_workspace_see_nothing(any_server: Server, team: str) -> None:
    _, ticket = escalated(any_server, team)
    email = f"outsider-{secrets.token_hex(3)}@example.com"
    with any_server.admin() as admin:
        workspace = admin.post("/api/v1/workspaces", json={"name": "Other Co"}).json()
        created = admin.post(
            f"/api/v1/workspaces/{workspace['id']}/members",
            json={"email": email, "name": "Olga", "role": "agent", "password": "correct horse"},
        )
        assert created.status_code == 201
    with any_server.client() as client:
        token = client.post(
            "/api/v1/auth/login", json={"email": email, "password": "correct horse"}
        ).json()["token"]
    with any_server.client(token) as outsider:
        assert outsider.get(f"/api/v1/tickets/{ticket['id']}").status_code == 404
        assert outsider.post(f"/api/v1/tickets/{ticket['id']}/solve").status_code == 404
        assert outsider.get(f"/api/v1/conversations/{ticket['conversation_id']}").status_code == 404
        assert tickets_of(outsider, ticket["conversation_id"]) == []
        assert outsider.get("/api/v1/agents").status_code == 403


def test_a_solved_ticket_reopens_and_the_visitor_is_told(any_server: Server, team: str) -> None:
    chat, ticket = escalated(any_server, team)
    with any_server.client(team) as client:
        client.post(f"/api/v1/tickets/{ticket['id']}/replies", json={"text": "Looking now"})
        client.post(f"/api/v1/tickets/{ticket['id']}/solve")
        reopened = client.post(f"/api/v1/tickets/{ticket['id']}/reopen")
        assert reopened.status_code == 200 and reopened.json()["status"] == "open"
        assert client.post(f"/api/v1/tickets/{ticket['id']}/reopen").json()["status"] == "open"
        answer = client.post(
            f"/api/v1/tickets/{ticket['id']}/replies", json={"text": "Found it: refunded"}
        )
        assert answer.status_code == 201
    state = chat.get()
    assert state["owner"] == "human" and state["escalation"]["status"] == "open"
    texts = [m["text"] for m in state["messages"]]
    assert any("reopened your request" in text for text in texts)
    assert texts[-1] == "Found it: refunded"
    # The visitor's next message goes to the team, not to the AI.
    after = chat.say("Thanks, and the second charge?")
    assert after["messages"][-1]["role"] == "user"


def test_only_the_latest_ticket_of_a_conversation_reopens(any_server: Server, team: str) -> None:
    chat, first = escalated(any_server, team)
    with any_server.client(team) as client:
        client.post(f"/api/v1/tickets/{first['id']}/solve")
    chat.say("I want to speak to a human again")
    with any_server.client(team) as client:
        wait_for(lambda: len(tickets_of(client, chat.id)) == 2)
        stale = client.post(f"/api/v1/tickets/{first['id']}/reopen")
    assert stale.status_code == 409 and "newer ticket" in stale.json()["detail"]
