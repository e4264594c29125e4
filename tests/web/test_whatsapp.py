"""WhatsApp end to end: the real app on both databases, Meta played by `tests.fakes.graph_api`."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from handoff.service.i18n import say
from handoff.service.wording import TEXT_ONLY
from handoff.store.db import Database
from handoff.store.models import Conversation, Message, utcnow
from tests.conftest import Server
from tests.fakes.graph_api import FakeGraph, inbound_media, inbound_text, signed, status_update
from tests.web.chat import bare_agent, tickets_of, wait_for

TEMPLATE = "support_follow_up"
RESET_ANSWER = "Open Settings → Security and choose Reset password; the link lasts one hour."


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph() as fake:
        yield fake


@dataclass
class Number:
    """An agent connected to the fake Graph API, and what Meta would know of it."""

    server: Server
    graph: FakeGraph
    agent_id: str
    connection: dict[str, Any]
    app_secret: str
    verify_token: str

    @property
    def hook(self) -> str:
        return f"{self.server.url}/api/v1/channels/whatsapp/{self.connection['id']}"

    def deliver(self, payload: dict[str, Any], secret: str | None = None) -> httpx.Response:
        """POST a notification as Meta does, signed with the app secret (or another)."""
        body, headers = signed(payload, secret or self.app_secret)
        return httpx.post(self.hook, content=body, headers=headers, timeout=30)

    def text(self, wa_id: str, text: str, **extra: Any) -> dict[str, Any]:
        payload = inbound_text(self.graph.phone_number_id, wa_id, text, **extra)
        response = self.deliver(payload)
        assert response.status_code == 200, response.text
        return payload


def new_wa_id() -> str:
    return "55119" + "".join(secrets.choice("0123456789") for _ in range(8))


def connect_form(graph: FakeGraph, **changes: Any) -> dict[str, Any]:
    form = {
        "phone_number_id": graph.phone_number_id,
        "access_token": graph.access_token,
        "app_secret": f"secret-{secrets.token_hex(8)}",
        "verify_token": f"verify-{secrets.token_hex(8)}",
        "template_name": TEMPLATE,
        "base_url": graph.base_url,
    }
    form.update(changes)
    return form


def new_agent(server: Server, *, channels: tuple[str, ...] = ("widget",)) -> str:
    agent_id = bare_agent(server, channels)
    with server.admin() as admin:
        admin.put(
            f"/api/v1/agents/{agent_id}/knowledge",
            json=[{"question": "How do I reset my password?", "answer": RESET_ANSWER}],
        ).raise_for_status()
    return agent_id


def connect(
    server: Server,
    graph: FakeGraph,
    *,
    escalate: bool = True,
    channels: tuple[str, ...] = ("widget",),
) -> Number:
    agent_id = new_agent(server, channels=channels)
    form = connect_form(graph)
    with server.admin() as admin:
        response = admin.put(f"/api/v1/agents/{agent_id}/channels/whatsapp", json=form)
        assert response.status_code == 200, response.text
        if escalate:
            action = admin.post(
                f"/api/v1/agents/{agent_id}/actions",
                json={
                    "name": "Escalate_To_Human",
                    "platform": "native",
                    "when_to_use": "When the user asks for a person.",
                    "channels": ["whatsapp"],
                    "enabled": True,
                },
            )
            assert action.status_code == 201, action.text
    return Number(
        server, graph, agent_id, response.json(), form["app_secret"], form["verify_token"]
    )


# --- the database the server uses: find conversations, age messages ------------------------


async def _conversation_ids(url: str, agent_id: str, wa_id: str) -> list[str]:
    db = Database(url)
    try:
        async with db.unit_of_work() as session:
            query = select(Conversation.id).where(
                Conversation.agent_id == agent_id, Conversation.contact_external_id == wa_id
            )
            return list((await session.scalars(query)).all())
    finally:
        await db.dispose()


def conversation_ids(number: Number, wa_id: str) -> list[str]:
    return asyncio.run(_conversation_ids(number.server.database_url, number.agent_id, wa_id))


async def _age_user_messages(url: str, conversation_id: str, hours: float) -> None:
    db = Database(url)
    try:
        async with db.unit_of_work() as session:
            await session.execute(
                update(Message)
                .where(Message.conversation_id == conversation_id, Message.role == "user")
                .values(created_at=utcnow() - timedelta(hours=hours))
            )
    finally:
        await db.dispose()


def conversation(number: Number, wa_id: str) -> dict[str, Any]:
    [conversation_id] = conversation_ids(number, wa_id)
    with number.server.admin() as admin:
        response = admin.get(f"/api/v1/conversations/{conversation_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ticket(number: Number, conversation_id: str) -> dict[str, Any] | None:
    with number.server.admin() as admin:
        found = tickets_of(admin, conversation_id)
        return admin.get(f"/api/v1/tickets/{found[0]['id']}").json() if found else None


def sends_to(graph: FakeGraph, wa_id: str) -> list[Any]:
    return [r for r in graph.requests if r.method == "POST" and r.body.get("to") == wa_id]


def escalated(number: Number, wa_id: str) -> dict[str, Any]:
    """Ask for a person on WhatsApp; return the inbox ticket once it exists."""
    number.text(wa_id, "I want to talk to a human, please")
    [conversation_id] = wait_for(lambda: conversation_ids(number, wa_id))
    found: dict[str, Any] = wait_for(lambda: ticket(number, conversation_id))
    return found


# --- connecting ------------------------------------------------------------------------------


def test_connect_checks_the_token_and_never_shows_secrets(
    any_server: Server, graph: FakeGraph
) -> None:
    agent_id = new_agent(any_server)
    path = f"/api/v1/agents/{agent_id}/channels/whatsapp"
    with any_server.admin() as admin:
        assert admin.get(path).status_code == 404
        bad_token = admin.put(path, json=connect_form(graph, access_token="EAAG-expired"))
        assert bad_token.status_code == 422, bad_token.text
        assert bad_token.json()["detail"][0]["loc"] == ["body", "access_token"]
        assert "invalid_auth" in bad_token.text and "190" in bad_token.text
        assert bad_token.json()["code"] == "invalid_auth"
        unknown = admin.put(path, json=connect_form(graph, phone_number_id="123456789"))
        assert unknown.status_code == 422
        assert unknown.json()["detail"][0]["loc"] == ["body", "phone_number_id"]
        missing = {k: v for k, v in connect_form(graph).items() if k != "app_secret"}
        refused = admin.put(path, json=missing)
        assert refused.status_code == 422
        assert "app_secret" in str(refused.json()["detail"][0]["loc"])
        assert admin.get(path).status_code == 404  # nothing half-saved
        assert "whatsapp" not in admin.get(f"/api/v1/agents/{agent_id}").json()["channels"]

        form = connect_form(graph)
        connected = admin.put(path, json=form)
        assert connected.status_code == 200, connected.text
        shown = admin.get(path)
        assert shown.status_code == 200
        for secret in (form["access_token"], form["app_secret"], form["verify_token"]):
            assert secret not in connected.text and secret not in shown.text
        data = shown.json()
        assert data["webhook_url"].endswith(f"/api/v1/channels/whatsapp/{data['id']}")
        assert data["webhook_setup"] and data["template_language"] == "en_US"
        assert data["display_phone_number"] == graph.display_phone_number
        # What Settings' connect tab shows and fills the form again with: never a secret.
        assert data["name"] == graph.display_phone_number
        assert graph.phone_number_id in data["summary"]
        assert data["values"] == {
            "phone_number_id": graph.phone_number_id,
            "template_name": TEMPLATE,
            "template_language": "en_US",
            "base_url": graph.base_url,
        }
        assert "whatsapp" in admin.get(f"/api/v1/agents/{agent_id}").json()["channels"]

        assert admin.delete(path).status_code == 204
        assert admin.get(path).status_code == 404
    hook = f"{any_server.url}/api/v1/channels/whatsapp/{data['id']}"
    body, headers = signed(inbound_text(graph.phone_number_id, new_wa_id(), "hi"), "x")
    assert httpx.post(hook, content=body, headers=headers).status_code == 404


def test_handshake_echoes_the_challenge(any_server: Server, graph: FakeGraph) -> None:
    number = connect(any_server, graph, escalate=False)
    params = {"hub.mode": "subscribe", "hub.verify_token": number.verify_token}
    ok = httpx.get(number.hook, params={**params, "hub.challenge": "1158201444"})
    assert ok.status_code == 200
    assert ok.text == "1158201444"
    assert ok.headers["content-type"].startswith("text/plain")
    wrong = httpx.get(
        number.hook, params={**params, "hub.verify_token": "guess", "hub.challenge": "1"}
    )
    assert wrong.status_code == 403
    assert "verify_token" in wrong.text
    unknown = httpx.get(
        f"{any_server.url}/api/v1/channels/whatsapp/nope", params={**params, "hub.challenge": "1"}
    )
    assert unknown.status_code == 404


def test_unsigned_and_forged_posts_are_refused(any_server: Server, graph: FakeGraph) -> None:
    number = connect(any_server, graph, escalate=False)
    wa_id = new_wa_id()
    payload = inbound_text(graph.phone_number_id, wa_id, "How do I reset my password?")
    body, _ = signed(payload, number.app_secret)
    missing = httpx.post(number.hook, content=body, headers={"Content-Type": "application/json"})
    assert missing.status_code == 401
    assert "X-Hub-Signature-256".lower() in missing.text.lower()
    forged = number.deliver(payload, secret="not-the-app-secret")
    assert forged.status_code == 403
    assert "does not match" in forged.text
    time.sleep(1.0)
    assert conversation_ids(number, wa_id) == []
    assert sends_to(graph, wa_id) == []


# --- only the number's own webhook opens its conversations ----------------------------------


async def _plant_conversation(url: str, agent_id: str, wa_id: str) -> str:
    """Write a WhatsApp conversation for this number that its webhook did not open."""
    db = Database(url)
    try:
        async with db.unit_of_work() as session:
            planted = Conversation(
                agent_id=agent_id,
                channel="whatsapp",
                token_hash=secrets.token_hex(32),
                contact_external_id=wa_id,
            )
            session.add(planted)
            await session.flush()
            return planted.id
    finally:
        await db.dispose()


def test_the_public_api_cannot_open_a_whatsapp_conversation(
    any_server: Server, graph: FakeGraph
) -> None:
    number = connect(any_server, graph, channels=("widget", "api"))
    wa_id = new_wa_id()
    start = f"/api/v1/agents/{number.agent_id}/conversations"
    with any_server.client() as public:
        refused = public.post(
            start, json={"channel": "whatsapp", "contact": {"external_id": wa_id}}
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"][0]["loc"][-1] == "channel"
        opened = public.post(
            start,
            json={"channel": "api", "contact": {"external_id": wa_id, "phone": f"+{wa_id}"}},
        )
        assert opened.status_code == 201, opened.text
    chat = opened.json()
    with any_server.client(chat["token"]) as caller:
        for text in ("Hello there", "I want to talk to a human"):
            sent = caller.post(f"/api/v1/conversations/{chat['id']}/messages", json={"text": text})
            assert sent.status_code == 200, sent.text

    number.text(wa_id, "How can I reset my password?")
    [answer] = wait_for(lambda: graph.sent_to(wa_id))
    assert answer.body == RESET_ANSWER  # nothing the API caller did reached the number
    with any_server.client(chat["token"]) as caller:
        seen = caller.get(f"/api/v1/conversations/{chat['id']}").json()
    assert all("reset my password" not in m["text"] for m in seen["messages"])


def test_inbound_messages_skip_conversations_their_webhook_did_not_open(
    any_server: Server, graph: FakeGraph
) -> None:
    number = connect(any_server, graph)
    wa_id = new_wa_id()
    planted = asyncio.run(_plant_conversation(any_server.database_url, number.agent_id, wa_id))
    number.text(wa_id, "How can I reset my password?")
    [answer] = wait_for(lambda: graph.sent_to(wa_id))
    assert answer.body == RESET_ANSWER
    [opened] = [c for c in conversation_ids(number, wa_id) if c != planted]
    with any_server.admin() as admin:
        planted_view = admin.get(f"/api/v1/conversations/{planted}").json()
        opened_view = admin.get(f"/api/v1/conversations/{opened}").json()
    assert planted_view["messages"] == []
    assert [m["role"] for m in opened_view["messages"]] == ["user", "assistant"]


def test_an_action_off_whatsapp_gives_its_alternative_there(
    any_server: Server, graph: FakeGraph
) -> None:
    number = connect(any_server, graph, escalate=False)
    alternative = "A person can help you at help@acme.test, weekdays 9 to 5."
    with any_server.admin() as admin:
        action = admin.post(
            f"/api/v1/agents/{number.agent_id}/actions",
            json={
                "name": "Escalate_To_Human",
                "platform": "native",
                "when_to_use": "When the user asks for a person.",
                "channels": ["widget"],
                "alternative_message": alternative,
                "enabled": True,
            },
        )
        assert action.status_code == 201, action.text
    wa_id = new_wa_id()
    number.text(wa_id, "I want to talk to a human")
    [answer] = wait_for(lambda: graph.sent_to(wa_id))
    assert answer.body == alternative
    [conversation_id] = conversation_ids(number, wa_id)
    time.sleep(1.0)
    assert ticket(number, conversation_id) is None


# --- inbound -------------------------------------------------------------------------------


def test_text_gets_the_ai_answer_on_whatsapp_once(any_server: Server, graph: FakeGraph) -> None:
    number = connect(any_server, graph)
    wa_id = new_wa_id()
    payload = number.text(wa_id, "How can I reset my password?", name="Ana Souza")
    [answer] = wait_for(lambda: graph.sent_to(wa_id))
    assert answer.type == "text" and answer.body == RESET_ANSWER

    again = number.deliver(payload)  # Meta redelivers the same wamid
    assert again.status_code == 200 and again.json() == {"queued": 0}
    time.sleep(1.5)
    assert len(graph.sent_to(wa_id)) == 1
    stored = conversation(number, wa_id)
    assert stored["channel"] == "whatsapp"
    assert stored["contact"]["phone"] == f"+{wa_id}"
    assert stored["contact"]["name"] == "Ana Souza"
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant"]

    number.text(wa_id, "Thanks! And how do I reset my password again?")
    wait_for(lambda: len(graph.sent_to(wa_id)) == 2)
    assert len(conversation_ids(number, wa_id)) == 1  # the same conversation goes on


def test_status_callbacks_are_acknowledged_and_dropped(
    any_server: Server, graph: FakeGraph
) -> None:
    number = connect(any_server, graph)
    wa_id = new_wa_id()
    for status in ("sent", "delivered", "read"):
        response = number.deliver(status_update(graph.phone_number_id, wa_id, status))
        assert response.status_code == 200 and response.json() == {"queued": 0}
    time.sleep(1.0)
    assert conversation_ids(number, wa_id) == []
    assert sends_to(graph, wa_id) == []


def test_an_image_gets_a_polite_text_answer_and_nothing_else(
    any_server: Server, graph: FakeGraph
) -> None:
    number = connect(any_server, graph)
    wa_id = new_wa_id()
    payload = inbound_media(graph.phone_number_id, wa_id, "image")
    assert number.deliver(payload).json() == {"queued": 1}
    [answer] = wait_for(lambda: graph.sent_to(wa_id))
    assert answer.type == "text" and "only read text messages" in answer.body
    assert number.deliver(inbound_media(graph.phone_number_id, wa_id, "audio")).status_code == 200
    wait_for(lambda: len(graph.sent_to(wa_id)) == 2)
    time.sleep(1.0)
    assert len(graph.sent_to(wa_id)) == 2
    assert conversation_ids(number, wa_id) == []  # no AI turn, nothing stored


def test_an_image_is_answered_in_the_language_the_user_writes_in(
    any_server: Server, graph: FakeGraph
) -> None:
    number = connect(any_server, graph)
    wa_id = new_wa_id()
    number.text(wa_id, "Hola, ¿cómo puedo cambiar mi contraseña de la cuenta?")
    wait_for(lambda: graph.sent_to(wa_id))
    assert number.deliver(inbound_media(graph.phone_number_id, wa_id, "image")).status_code == 200
    answer = wait_for(lambda: graph.sent_to(wa_id)[1:])[0]
    assert answer.body == say("es", TEXT_ONLY)


# --- the human team on WhatsApp --------------------------------------------------------------


def test_escalation_carries_the_number_and_inbox_replies_reach_whatsapp(
    any_server: Server, graph: FakeGraph
) -> None:
    number = connect(any_server, graph)
    wa_id = new_wa_id()
    found = escalated(number, wa_id)
    assert found["channel"] == "whatsapp"
    assert found["contact"]["phone"] == f"+{wa_id}"
    assert found["contact"]["name"] == "Ana Souza"
    notice = wait_for(lambda: graph.sent_to(wa_id))
    assert "support team" in notice[0].body  # the handoff message

    with any_server.admin() as admin:
        reply = admin.post(
            f"/api/v1/tickets/{found['id']}/replies", json={"text": "Hi Ana, Sam here."}
        )
        assert reply.status_code == 201, reply.text
    wait_for(lambda: any(m.body == "Hi Ana, Sam here." for m in graph.sent_to(wa_id)))
    number.text(wa_id, "Thanks Sam, my invoice is wrong")
    time.sleep(1.0)
    assert len(graph.sent_to(wa_id)) == 2  # the AI stays silent while a person owns it


def test_a_reply_after_24_hours_goes_as_the_template_and_the_inbox_is_told(
    any_server: Server, graph: FakeGraph
) -> None:
    number = connect(any_server, graph)
    wa_id = new_wa_id()
    found = escalated(number, wa_id)
    wait_for(lambda: graph.sent_to(wa_id))
    asyncio.run(_age_user_messages(any_server.database_url, found["conversation_id"], 25))

    with any_server.admin() as admin:
        admin.post(f"/api/v1/tickets/{found['id']}/replies", json={"text": "Sorry for the wait"})
    template = wait_for(lambda: [m for m in graph.sent_to(wa_id) if m.type == "template"])
    assert (template[0].template, template[0].language) == (TEMPLATE, "en_US")
    assert not any(m.body == "Sorry for the wait" for m in graph.sent_to(wa_id))
    notes = wait_for(lambda: (ticket(number, found["conversation_id"]) or {}).get("notes"))
    assert f"Sent as template '{TEMPLATE}' because the 24-hour window closed" in notes[0]["text"]


def test_graphs_reengagement_error_also_sends_the_template(
    any_server: Server, graph: FakeGraph
) -> None:
    number = connect(any_server, graph)
    wa_id = new_wa_id()
    found = escalated(number, wa_id)
    wait_for(lambda: graph.sent_to(wa_id))
    graph.close_window(wa_id)  # Graph's clock disagrees with ours
    with any_server.admin() as admin:
        admin.post(f"/api/v1/tickets/{found['id']}/replies", json={"text": "Any news?"})
    wait_for(lambda: [m for m in graph.sent_to(wa_id) if m.type == "template"])
    refused = [
        r for r in sends_to(graph, wa_id) if r.body.get("text", {}).get("body") == "Any news?"
    ]
    assert len(refused) == 1  # tried once as text, then the template
    notes = wait_for(lambda: (ticket(number, found["conversation_id"]) or {}).get("notes"))
    assert "24-hour window closed" in notes[0]["text"]


def test_a_rate_limited_send_is_retried_and_arrives_once(
    any_server: Server, graph: FakeGraph
) -> None:
    number = connect(any_server, graph)
    wa_id = new_wa_id()
    graph.rate_limit_next(1)
    number.text(wa_id, "How do I reset my password?")
    [answer] = wait_for(lambda: graph.sent_to(wa_id), timeout=30)
    assert answer.body == RESET_ANSWER
    assert len(sends_to(graph, wa_id)) == 2  # the 429, then the retry


def test_an_expired_token_fails_the_delivery_with_a_readable_reason(
    any_server: Server, graph: FakeGraph
) -> None:
    number = connect(any_server, graph)
    wa_id = new_wa_id()
    found = escalated(number, wa_id)
    wait_for(lambda: graph.sent_to(wa_id))
    graph.expire_token()
    with any_server.admin() as admin:
        admin.post(f"/api/v1/tickets/{found['id']}/replies", json={"text": "Hello?"})
    notes = wait_for(lambda: (ticket(number, found["conversation_id"]) or {}).get("notes"))
    assert "did not reach WhatsApp" in notes[0]["text"]
    assert "access token" in notes[0]["text"] and "190" in notes[0]["text"]
    assert len(sends_to(graph, wa_id)) == 2  # no retries of a permanent failure
