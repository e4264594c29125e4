"""The channel API end to end over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Server
from tests.web.chat import member_token, read_events, start_chat, ticket_of, wait_for

FAQ_ANSWER_START = "Go to the sign-in page"


def test_health(any_server: Server) -> None:
    assert httpx.get(f"{any_server.url}/healthz").status_code == 200


def test_new_conversation_greets_and_answers_from_the_knowledge_base(any_server: Server) -> None:
    chat = start_chat(any_server)
    assert chat.greeting and chat.greeting[0]["role"] == "assistant"

    reply = chat.say("how can I reset my password")

    roles = [m["role"] for m in reply["messages"]]
    assert roles == ["user", "assistant"]
    assert reply["messages"][1]["text"].startswith(FAQ_ANSWER_START)
    assert reply["conversation"] == {
        "id": chat.id,
        "owner": "bot",
        "escalation": None,
        "waiting": False,
        "language": "en",
    }


def test_unknown_question_gets_an_honest_i_dont_know(any_server: Server) -> None:
    chat = start_chat(any_server)
    reply = chat.say("Can your product water my garden plants while I'm on holiday?")
    answer = reply["messages"][-1]
    assert answer["role"] == "assistant"
    assert "not sure" in answer["text"].lower()
    assert reply["conversation"]["owner"] == "bot"


def test_anonymous_visitor_is_asked_for_an_email_then_handed_over(any_server: Server) -> None:
    chat = start_chat(any_server)
    asked = chat.say("I want to talk to a human")
    assert asked["conversation"]["owner"] == "bot"
    assert "email" in asked["messages"][-1]["text"].lower()

    not_an_email = chat.say("why do you need that")
    assert not_an_email["conversation"]["owner"] == "bot"
    assert "name@example.com" in not_an_email["messages"][-1]["text"]

    handed = chat.say("sure, it's jane.doe@example.com")
    assert handed["conversation"]["owner"] == "human"
    escalation = handed["conversation"]["escalation"]
    assert escalation["reasons"] == ["explicit_request"]
    assert escalation["platform"] == "native"
    assert escalation["status"] in ("pending", "open")
    assert "support team" in handed["messages"][-1]["text"]
    assert chat.get()["contact"]["email"] == "jane.doe@example.com"

    # The summary is about the problem, not about the email exchange that followed it.
    ticket = wait_for(lambda: ticket_of(any_server, member_token(any_server), chat.id))
    assert "talk to a human" in ticket["summary"]
    assert "jane.doe" not in ticket["summary"]
    assert "email address" not in ticket["summary"]


def test_visitor_may_decline_to_give_an_email(any_server: Server) -> None:
    chat = start_chat(any_server)
    chat.say("Can I speak to a real person?")
    handed = chat.say("no thanks")
    assert handed["conversation"]["owner"] == "human"
    assert chat.get()["contact"]["email"] is None


def test_known_contact_is_handed_over_at_once(any_server: Server) -> None:
    chat = start_chat(any_server, contact={"name": "Ana", "email": "ana@example.com"})
    handed = chat.say("Please connect me with an agent")
    assert handed["conversation"]["owner"] == "human"
    assert [m["role"] for m in handed["messages"]] == ["user", "assistant"]


def test_one_ticket_per_stretch_and_the_ai_stays_silent(any_server: Server) -> None:
    chat = start_chat(any_server, contact={"email": "repeat@example.com"})
    first = chat.say("I want a human")
    escalation_id = first["conversation"]["escalation"]["id"]

    for text in ("hello? I want a human!!", "How do I reset my password?"):
        reply = chat.say(text)
        assert [m["role"] for m in reply["messages"]] == ["user"]  # the AI stays silent
        assert reply["conversation"]["owner"] == "human"
        assert reply["conversation"]["escalation"]["id"] == escalation_id

    token = member_token(any_server)
    ticket = wait_for(lambda: ticket_of(any_server, token, chat.id))
    assert ticket["waiting"] is True
    assert ticket["last_message"]["text"] == "How do I reset my password?"


def test_retried_send_with_the_same_client_id_is_stored_once(any_server: Server) -> None:
    chat = start_chat(any_server)
    first = chat.say("Which browsers do you support?", client_id="m-1")
    again = chat.say("Which browsers do you support?", client_id="m-1")
    assert len(first["messages"]) == 2
    assert again["messages"] == []
    texts = [m["text"] for m in chat.get()["messages"] if m["role"] == "user"]
    assert texts == ["Which browsers do you support?"]


def test_visitor_stream_delivers_messages_and_owner_changes(any_server: Server) -> None:
    chat = start_chat(any_server, contact={"email": "stream@example.com"})
    url = f"/api/v1/conversations/{chat.id}/events"
    with (
        chat.client() as client,
        client.stream("GET", url, params={"access_token": chat.token}) as response,
    ):
        assert response.status_code == 200
        chat.say("I need to talk to a person")
        events = read_events(response, lambda evs: any(e["event"] == "conversation" for e in evs))
    kinds = [e["event"] for e in events]
    assert "message" in kinds
    owner_change = next(e for e in events if e["event"] == "conversation")
    assert owner_change["data"]["owner"] == "human"
    ids = [e["id"] for e in events]
    assert ids == sorted(ids)

    # Resuming after the last seen event replays nothing already delivered.
    with (
        chat.client() as client,
        client.stream("GET", url, headers={"Last-Event-ID": str(ids[-1])}) as response,
    ):
        chat.say("still there?")
        resumed = read_events(response, lambda evs: evs[-1]["data"].get("text") == "still there?")
    assert min(e["id"] for e in resumed) > ids[-1]


@pytest.mark.parametrize("after", ["²", "٣", "9" * 5000, "99999999999999999999"])
def test_a_resume_point_that_is_no_event_id_starts_from_the_beginning(
    any_server: Server, after: str
) -> None:
    """Unicode digits and numbers past any event id are no resume point: never a 5xx."""
    chat = start_chat(any_server)
    url = f"/api/v1/conversations/{chat.id}/events"
    with (
        chat.client() as client,
        client.stream("GET", url, params={"after": after}) as response,
    ):
        assert response.status_code == 200
        chat.say("hello?")
        events = read_events(response, lambda evs: evs[-1]["data"].get("text") == "hello?")
    assert events


def test_widget_api_answers_cross_origin_preflight(any_server: Server) -> None:
    with any_server.client() as client:
        response = client.options(
            f"/api/v1/agents/{any_server.demo_agent_id}/conversations",
            headers={
                "Origin": "https://shop.example.com",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


class TestVisitorTokens:
    def test_token_opens_only_its_own_conversation(self, any_server: Server) -> None:
        mine, theirs = start_chat(any_server), start_chat(any_server)
        with mine.client() as client:
            assert client.get(f"/api/v1/conversations/{theirs.id}").status_code == 404
            posted = client.post(f"/api/v1/conversations/{theirs.id}/messages", json={"text": "hi"})
            assert posted.status_code == 404
            stream = client.get(f"/api/v1/conversations/{theirs.id}/events")
            assert stream.status_code == 404
        assert all(m["role"] != "user" for m in theirs.get()["messages"])

    @pytest.mark.parametrize("token", [None, "hv_not-a-real-token"])
    def test_missing_or_wrong_token_is_401(self, any_server: Server, token: str | None) -> None:
        chat = start_chat(any_server)
        with any_server.client(token) as client:
            assert client.get(f"/api/v1/conversations/{chat.id}").status_code == 401
            posted = client.post(f"/api/v1/conversations/{chat.id}/messages", json={"text": "x"})
            assert posted.status_code == 401

    def test_visitor_token_cannot_use_the_admin_or_inbox_api(self, any_server: Server) -> None:
        chat = start_chat(any_server)
        with chat.client() as client:
            assert client.get("/api/v1/agents").status_code == 401
            assert client.get("/api/v1/tickets").status_code == 401

    def test_team_can_read_a_conversation(self, any_server: Server) -> None:
        chat = start_chat(any_server)
        chat.say("hello")
        with any_server.client(member_token(any_server)) as client:
            response = client.get(f"/api/v1/conversations/{chat.id}")
        assert response.status_code == 200
        assert response.json()["id"] == chat.id


class TestBadInput:
    def test_unknown_agent_is_404(self, any_server: Server) -> None:
        with any_server.client() as client:
            response = client.post("/api/v1/agents/nope/conversations", json={"channel": "widget"})
        assert response.status_code == 404

    @pytest.mark.parametrize("channel", ["sms", "whatsapp"])
    def test_unknown_or_unserved_channel_is_422(self, any_server: Server, channel: str) -> None:
        with any_server.client() as client:
            response = client.post(
                f"/api/v1/agents/{any_server.demo_agent_id}/conversations",
                json={"channel": channel},
            )
        assert response.status_code == 422
        assert "channel" in response.text

    def test_bad_contact_email_is_422(self, any_server: Server) -> None:
        with any_server.client() as client:
            response = client.post(
                f"/api/v1/agents/{any_server.demo_agent_id}/conversations",
                json={"channel": "widget", "contact": {"email": "not-an-email"}},
            )
        assert response.status_code == 422

    @pytest.mark.parametrize(
        ("body", "needle"),
        [
            ({"text": ""}, "Text cannot be empty"),
            ({"text": "   "}, "Text cannot be empty"),
            ({"text": "x" * 10_001}, "10000"),
            ({}, "text"),
            ({"text": "hi", "extra": 1}, "extra"),
        ],
    )
    def test_bad_message_is_422_and_stores_nothing(
        self, any_server: Server, body: dict[str, object], needle: str
    ) -> None:
        chat = start_chat(any_server)
        with chat.client() as client:
            response = client.post(f"/api/v1/conversations/{chat.id}/messages", json=body)
        assert response.status_code == 422
        assert needle in response.text
        assert [m["role"] for m in chat.get()["messages"]] == ["assistant"]

    def test_message_of_exactly_the_limit_is_accepted(self, any_server: Server) -> None:
        chat = start_chat(any_server)
        reply = chat.say("a" * 10_000)
        assert reply["messages"][0]["text"] == "a" * 10_000

    def test_malformed_json_is_422(self, any_server: Server) -> None:
        chat = start_chat(any_server)
        with chat.client() as client:
            response = client.post(
                f"/api/v1/conversations/{chat.id}/messages",
                content=b'{"text": "hi"',
                headers={"Content-Type": "application/json"},
            )
        assert response.status_code == 422

    def test_unknown_conversation_is_404_for_the_team(self, any_server: Server) -> None:
        with any_server.admin() as client:
            assert client.get("/api/v1/conversations/missing").status_code == 404
