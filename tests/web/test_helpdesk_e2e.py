"""Each real helpdesk end to end through the public API, against its faithful fake.

The same story runs for Zendesk, Freshdesk, Intercom, HubSpot, Salesforce, Zoho Desk and Help
Scout, on both databases: the admin connects the platform and saves an escalate action on it; a
visitor asks for a person; exactly one ticket lands in the fake, carrying the transcript and the
requester's email; the visitor's follow-up reaches that ticket as the customer; an agent's reply
comes back through our webhook URL, signed as the platform signs it, and reaches the visitor
once; a forged signature is refused; solving the ticket hands the conversation back to the bot.

Each platform's specifics (its connect form, where the fake keeps tickets, how it signs a
webhook) sit in one small `Harness` subclass (`tests/helpdesks/harness.py`). The generic
webhook platform has its own round trip in `test_external_helpdesk.py`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Server
from tests.helpdesks.harness import (
    HARNESSES,
    Harness,
    HubSpotHarness,
    IntercomHarness,
    SalesforceHarness,
    Signed,
)
from tests.web.chat import wait_for

CONTACT = {"name": "Ann Lee", "email": "ann.lee@example.com"}
ASK = "I want a human please, my parcel 4471 never arrived"
FOLLOW_UP = "any news about parcel 4471?"
REPLY = "Hi Ann, I found parcel 4471; it ships today."


# The generic webhook platform has its own receiver and round trip (test_external_helpdesk.py).
VENDORS = sorted(set(HARNESSES) - {"webhook"})


@pytest.fixture(params=VENDORS)
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    made = HARNESSES[request.param]()
    with made.fake():
        yield made


def connect(server: Server, harness: Harness) -> tuple[str, dict[str, Any]]:
    """Create a workspace, an agent, the integration and an enabled escalate action."""
    with server.admin() as admin:
        workspace = admin.post("/api/v1/workspaces", json={"name": "E2E"}).json()
        agent = admin.post(
            "/api/v1/agents",
            json={"workspace_id": workspace["id"], "name": "Bot", "channels": ["widget"]},
        ).json()
        path = f"/api/v1/agents/{agent['id']}/integrations"
        connected = admin.post(
            path, json={"platform": harness.platform, "credentials": harness.credentials()}
        )
        assert connected.status_code == 201, connected.text
        integration = connected.json()
        assert integration["platform"] == harness.platform
        assert integration["webhook_url"] == f"{server.url}/api/v1/webhooks/{integration['id']}"
        assert integration["webhook_setup"]
        assert all(isinstance(step, str) and step for step in integration["webhook_setup"])
        reconnect = harness.after_connect(integration)
        steps = "\n".join(integration["webhook_setup"])
        assert harness.shows_webhook_url(steps), f"the setup steps hide the webhook URL: {steps}"
        if reconnect is not None:  # the admin comes back with what the platform generated
            again = admin.post(path, json={"platform": harness.platform, "credentials": reconnect})
            assert again.status_code == 201, again.text
            assert again.json()["id"] == integration["id"]
            assert again.json()["webhook_url"] == integration["webhook_url"]
            connected = again
        listed = admin.get(path)
        for text in (connected.text, listed.text):
            for secret in harness.secrets():
                assert secret not in text, f"a secret is echoed: {text}"
        assert sorted(i["platform"] for i in listed.json()) == sorted(["native", harness.platform])
        action = admin.post(
            f"/api/v1/agents/{agent['id']}/actions",
            json={
                "name": f"Escalate_{secrets.token_hex(2)}",
                "platform": harness.platform,
                "when_to_use": "When the user asks for a person.",
                "channels": ["widget"],
                "enabled": True,
                "ask_for_email": False,
            },
        )
        assert action.status_code == 201, action.text
    return agent["id"], integration


def deliver(server: Server, harness: Harness, signed: Signed) -> httpx.Response:
    """POST a webhook to our URL exactly as the platform would."""
    body, headers = signed
    assert harness.webhook_url.startswith(server.url)
    return httpx.post(harness.webhook_url, content=body, headers=headers, timeout=30)


def test_escalation_round_trip_through_the_helpdesk(any_server: Server, harness: Harness) -> None:
    agent_id, _ = connect(any_server, harness)

    with any_server.client() as client:
        started = client.post(
            f"/api/v1/agents/{agent_id}/conversations",
            json={"channel": "widget", "contact": CONTACT},
        )
    assert started.status_code == 201, started.text
    chat = started.json()
    conversation = f"/api/v1/conversations/{chat['id']}"

    with any_server.client(chat["token"]) as visitor:

        def state() -> dict[str, Any]:
            response = visitor.get(conversation)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

        def ticket_open() -> dict[str, Any] | None:
            current = state()
            escalation = current.get("escalation") or {}
            assert escalation.get("status") != "failed", escalation
            return current if escalation.get("status") == "open" else None

        handed = visitor.post(f"{conversation}/messages", json={"text": ASK})
        assert handed.status_code == 200, handed.text
        assert handed.json()["conversation"]["owner"] == "human"

        # The ticket: exactly one, with the transcript and the requester's email.
        opened = wait_for(ticket_open)
        ticket = opened["escalation"]["ticket"]
        assert ticket["id"] and ticket["url"].startswith("https://"), ticket
        assert harness.ticket_ids() == [ticket["id"]]
        assert ASK in harness.ticket_text(ticket["id"])
        assert harness.requester_email(ticket["id"]) == CONTACT["email"]

        # The visitor's follow-up lands on the ticket, as the customer.
        sent = visitor.post(f"{conversation}/messages", json={"text": FOLLOW_UP})
        assert sent.status_code == 200, sent.text
        added = wait_for(lambda: harness.customer_messages(ticket["id"]))
        assert len(added) == 1 and FOLLOW_UP in added[0], added

        # The agent's reply comes back through our webhook, once.
        reply = harness.agent_reply(ticket["id"], REPLY)
        first = deliver(any_server, harness, reply)
        assert first.status_code == 200, first.text
        assert first.json() == {"applied": 1, "queued": 0}
        again = deliver(any_server, harness, reply)
        assert again.status_code == 200, again.text
        assert again.json() == {"applied": 0, "queued": 0}  # a redelivery changes nothing

        forged = deliver(any_server, harness, harness.forged_reply(ticket["id"], "phish"))
        assert forged.status_code == 401, forged.text

        for signed in harness.ignored(ticket["id"]):
            skipped = deliver(any_server, harness, signed)
            assert skipped.status_code == 200, skipped.text
            assert skipped.json() == {"applied": 0, "queued": 0}

        messages = state()["messages"]
        replies = [m for m in messages if m["role"] == "human_agent"]
        assert [(m["text"], (m.get("author") or {}).get("name")) for m in replies] == [
            (REPLY, harness.agent_name)
        ], replies
        assert not [m for m in messages if m["text"] in ("phish", "internal only", "echo")]
        assert state()["owner"] == "human"

        # Solving the ticket hands the conversation back to the bot.
        done = deliver(any_server, harness, harness.solved(ticket["id"]))
        assert done.status_code == 200, done.text
        assert done.json() == {"applied": 1, "queued": 0}
        after = state()
        assert after["owner"] == "bot"
        assert after["escalation"]["status"] == "solved"

    assert len(harness.ticket_ids()) == 1


def test_admin_picks_the_intercom_ticket_type_from_the_live_list(any_server: Server) -> None:
    harness = IntercomHarness()
    with harness.fake(), any_server.admin() as admin:
        workspace = admin.post("/api/v1/workspaces", json={"name": "Options"}).json()
        agent = admin.post(
            "/api/v1/agents",
            json={"workspace_id": workspace["id"], "name": "Bot", "channels": ["widget"]},
        ).json()
        first = {k: v for k, v in harness.credentials().items() if k != "ticket_type_id"}
        path = f"/api/v1/agents/{agent['id']}/integrations"
        assert (
            admin.post(path, json={"platform": "intercom", "credentials": first}).status_code == 201
        )
        offered = admin.get(f"{path}/intercom/options").json()
        values = [c["value"] for c in offered["ticket_type_id"]]
        assert "88" in values
        chosen = {**first, "ticket_type_id": values[0]}
        assert (
            admin.post(path, json={"platform": "intercom", "credentials": chosen}).status_code
            == 201
        )
        assert admin.get(f"{path}/zendesk/options").status_code == 404


def escalate(server: Server, agent_id: str, email: str) -> tuple[str, str, str]:
    """Start a widget chat, ask for a person; return its path, its token and its ticket id."""
    with server.client() as client:
        started = client.post(
            f"/api/v1/agents/{agent_id}/conversations",
            json={"channel": "widget", "contact": {**CONTACT, "email": email}},
        )
    assert started.status_code == 201, started.text
    chat = started.json()
    conversation = f"/api/v1/conversations/{chat['id']}"
    with server.client(chat["token"]) as visitor:
        assert visitor.post(f"{conversation}/messages", json={"text": ASK}).status_code == 200

        def ticket_id() -> str | None:
            escalation = visitor.get(conversation).json().get("escalation") or {}
            assert escalation.get("status") != "failed", escalation
            return (escalation.get("ticket") or {}).get("id")

        return conversation, chat["token"], wait_for(ticket_id)


def test_a_hubspot_batch_with_a_failed_lookup_is_applied_and_the_rest_read_again(
    any_server: Server,
) -> None:
    harness = HubSpotHarness()
    with harness.fake():
        agent_id, integration = connect(any_server, harness)
        path_a, token_a, ticket_a = escalate(any_server, agent_id, "a@example.com")
        path_b, token_b, ticket_b = escalate(any_server, agent_id, "b@example.com")
        hs = harness.hs
        batch = hs.signed_webhook(
            [hs.stage_change(ticket_a, "4"), hs.agent_reply(ticket_b, REPLY)],
            url=harness.webhook_url,
        )

        def state(path: str, token: str) -> dict[str, Any]:
            with any_server.client(token) as visitor:
                body: dict[str, Any] = visitor.get(path).json()
            return body

        def reads() -> list[dict[str, Any]]:
            with any_server.admin() as admin:
                jobs: list[dict[str, Any]] = admin.get("/api/v1/jobs?limit=1000").json()
            return [j for j in jobs if j["payload"].get("integration_id") == integration["id"]]

        def replies() -> list[str]:
            return [m["text"] for m in state(path_b, token_b)["messages"] if m["text"] == REPLY]

        # B's message lookup fails: A is solved at once, B's event is queued to be read
        # again, and HubSpot is answered 200, so nothing hangs on its redelivery.
        hs.fail_message_lookups(1, 500)
        first = deliver(any_server, harness, batch)
        assert first.status_code == 200, first.text
        assert first.json() == {"applied": 1, "queued": 1}
        solved = state(path_a, token_a)
        assert (solved["owner"], solved["escalation"]["status"]) == ("bot", "solved")
        # The outbox reads it now that HubSpot answers, and the reply reaches B.
        assert wait_for(replies) == [REPLY]
        [read] = reads()
        assert (read["kind"], read["status"]) == ("read_webhook", "done")

        # HubSpot redelivers the batch all the same (our answer lost, say): nothing twice.
        again = deliver(any_server, harness, batch)
        assert again.json() == {"applied": 0, "queued": 0}
        assert replies() == [REPLY]
        handbacks = [m for m in state(path_a, token_a)["messages"] if m["role"] == "system"]
        assert len(handbacks) == 1, handbacks

        # A redelivery whose lookup fails again finds the read queued already: no second job.
        hs.fail_message_lookups(1, 500)
        assert deliver(any_server, harness, batch).json() == {"applied": 0, "queued": 1}
        assert [j["kind"] for j in reads()] == ["read_webhook"]


def test_a_verified_callout_with_a_malformed_body_is_a_422(any_server: Server) -> None:
    # A Flow callout carries its token but not JSON: the connector refuses the body, and the
    # endpoint names it instead of answering 500.
    salesforce = SalesforceHarness()
    with salesforce.fake():
        connect(any_server, salesforce)
        headers = {"X-Handoff-Token": salesforce.token, "Content-Type": "application/json"}
        for body in (b"not json", b"[1, 2]", b'{"event_id": "e1"}'):
            answer = httpx.post(salesforce.webhook_url, content=body, headers=headers, timeout=30)
            assert answer.status_code == 422, answer.text
            assert answer.json()["detail"][0]["loc"] == ["body", "body"]
