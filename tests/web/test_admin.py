"""The admin API over HTTP: agents, integrations, actions and their validation, the outbox."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest

from handoff.store.db import Database
from handoff.store.models import OutboxJob
from tests.conftest import Server
from tests.web.chat import member_token, start_chat, wait_for

WHEN = "Use when the user asks for a person."


def action_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "escalate_to_human",
        "name": f"Escalate_{secrets.token_hex(3)}",
        "platform": "native",
        "when_to_use": WHEN,
        "channels": ["widget"],
        "enabled": True,
    }
    return body | overrides


def test_agents_list_the_demo_agent(any_server: Server) -> None:
    with any_server.admin() as client:
        agents = client.get("/api/v1/agents").json()
    demo = next(a for a in agents if a["id"] == any_server.demo_agent_id)
    assert demo["name"] == "Acme Cloud Assistant"
    assert demo["channels"] == ["widget", "help_page", "api"]


def test_native_inbox_is_always_connected(any_server: Server) -> None:
    with any_server.admin() as client:
        integrations = client.get(f"/api/v1/agents/{any_server.demo_agent_id}/integrations").json()
    assert [i["platform"] for i in integrations] == ["native"]
    assert all("credentials" not in i for i in integrations)


def test_demo_action_is_the_seed(any_server: Server) -> None:
    with any_server.admin() as client:
        actions = client.get(f"/api/v1/agents/{any_server.demo_agent_id}/actions").json()
    assert len(actions) == 1
    action = actions[0]
    assert {k: action[k] for k in ("kind", "name", "platform", "enabled")} == {
        "kind": "escalate_to_human",
        "name": "Escalate_To_Human",
        "platform": "native",
        "enabled": True,
    }
    assert action["channels"] == ["widget", "help_page", "api"]
    assert action["when_to_use"] and action["handoff_message"]


def test_action_lifecycle(any_server: Server) -> None:
    agent = any_server.demo_agent_id
    with any_server.admin() as client:
        created = client.post(f"/api/v1/agents/{agent}/actions", json=action_body())
        assert created.status_code == 201, created.text
        action = created.json()
        assert action["sensitive_topics"] == ["billing", "refunds", "security", "account access"]
        assert action["ask_for_email"] is True

        changed = client.put(
            f"/api/v1/actions/{action['id']}",
            json=action_body(
                name=action["name"],
                channels=["widget", "api"],
                handoff_message="A person is coming.",
            ),
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["channels"] == ["widget", "api"]
        assert changed.json()["handoff_message"] == "A person is coming."

        assert client.delete(f"/api/v1/actions/{action['id']}").status_code == 204
        assert client.delete(f"/api/v1/actions/{action['id']}").status_code == 404
        names = [a["name"] for a in client.get(f"/api/v1/agents/{agent}/actions").json()]
    assert action["name"] not in names


@pytest.mark.parametrize(
    ("overrides", "field", "needle"),
    [
        ({"name": "Escalate to human"}, "name", "letters, digits and underscores"),
        ({"name": "9lives"}, "name", "start with a letter"),
        ({"name": "Escalate_To_Human"}, "name", "already has an action"),
        ({"platform": "zendesk"}, "platform", "not connected"),
        ({"platform": "jira"}, "platform", "unknown platform"),
        ({"channels": ["whatsapp"]}, "channels", "not one of the agent's channels"),
        ({"channels": ["sms"]}, "channels", "widget"),
        ({"channels": []}, "channels", "Choose at least one channel"),
        ({"kind": "send_email"}, "kind", "escalate_to_human"),
        ({"when_to_use": ""}, "when_to_use", "When to use cannot be empty"),
    ],
)
def test_action_validation_is_precise(
    any_server: Server, overrides: dict[str, Any], field: str, needle: str
) -> None:
    agent = any_server.demo_agent_id
    with any_server.admin() as client:
        before = client.get(f"/api/v1/agents/{agent}/actions").json()
        response = client.post(f"/api/v1/agents/{agent}/actions", json=action_body(**overrides))
        after = client.get(f"/api/v1/agents/{agent}/actions").json()
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(field in e["loc"] and needle in e["msg"] for e in errors), errors
    assert after == before  # nothing half-written


def test_renaming_onto_another_action_is_refused(any_server: Server) -> None:
    agent = any_server.demo_agent_id
    with any_server.admin() as client:
        action = client.post(f"/api/v1/agents/{agent}/actions", json=action_body()).json()
        clash = client.put(
            f"/api/v1/actions/{action['id']}", json=action_body(name="Escalate_To_Human")
        )
        client.delete(f"/api/v1/actions/{action['id']}")
    assert clash.status_code == 422


def test_unknown_ids_are_404(any_server: Server) -> None:
    with any_server.admin() as client:
        assert client.get("/api/v1/agents/nope/actions").status_code == 404
        assert client.get("/api/v1/agents/nope/integrations").status_code == 404
        assert client.put("/api/v1/actions/nope", json=action_body()).status_code == 404
        assert client.delete("/api/v1/actions/nope").status_code == 404


def test_admin_api_needs_an_admin(any_server: Server) -> None:
    with any_server.client() as anonymous:
        assert anonymous.get("/api/v1/agents").status_code == 401
    with any_server.client("hk_wrong") as wrong:
        assert wrong.get("/api/v1/agents").status_code == 401
    email = f"agent-{secrets.token_hex(3)}@example.com"
    with any_server.admin() as admin:
        workspace_id = admin.get(f"/api/v1/agents/{any_server.demo_agent_id}").json()[
            "workspace_id"
        ]
        admin.post(
            f"/api/v1/workspaces/{workspace_id}/members",
            json={"email": email, "name": "Alex", "role": "agent", "password": "a long secret"},
        )
    with any_server.client() as client:
        token = client.post(
            "/api/v1/auth/login", json={"email": email, "password": "a long secret"}
        ).json()["token"]
    with any_server.client(token) as agent_member:
        assert agent_member.get("/api/v1/agents").status_code == 403
        assert agent_member.get("/api/v1/tickets").status_code == 200
    with any_server.client(member_token(any_server)) as workspace_admin:
        agents = workspace_admin.get("/api/v1/agents").json()
        # Only their own workspace's agents (other tests may add agents to it, never elsewhere).
        assert any_server.demo_agent_id in [a["id"] for a in agents]
        assert {a["workspace_id"] for a in agents} == {workspace_id}


def test_new_agent_has_the_inbox_connected_and_checks_channels(any_server: Server) -> None:
    with any_server.admin() as client:
        workspace = client.post("/api/v1/workspaces", json={"name": "Beta"}).json()
        bad = client.post(
            "/api/v1/agents",
            json={"workspace_id": workspace["id"], "name": "Bot", "channels": ["pigeon"]},
        )
        assert bad.status_code == 422
        agent = client.post(
            "/api/v1/agents",
            json={"workspace_id": workspace["id"], "name": "Bot", "channels": ["api"]},
        ).json()
        integrations = client.get(f"/api/v1/agents/{agent['id']}/integrations").json()
        assert [i["platform"] for i in integrations] == ["native"]
        faq = [{"question": "Is there a free plan?", "answer": "Yes, Starter is free."}]
        assert client.put(f"/api/v1/agents/{agent['id']}/knowledge", json=faq).status_code == 200
        created = client.post(
            f"/api/v1/agents/{agent['id']}/conversations", json={"channel": "api"}
        ).json()
    with any_server.client(created["token"]) as visitor:
        reply = visitor.post(
            f"/api/v1/conversations/{created['id']}/messages",
            json={"text": "do you have a free plan"},
        ).json()
    assert reply["messages"][-1]["text"] == "Yes, Starter is free."


def test_connecting_an_unknown_platform_is_422(any_server: Server) -> None:
    with any_server.admin() as client:
        response = client.post(
            f"/api/v1/agents/{any_server.demo_agent_id}/integrations", json={"platform": "jira"}
        )
        native = client.post(
            f"/api/v1/agents/{any_server.demo_agent_id}/integrations", json={"platform": "native"}
        )
    assert response.status_code == 422
    assert native.status_code == 409


async def _insert_job(database_url: str, max_attempts: int) -> None:
    db = Database(database_url)
    async with db.unit_of_work() as session:
        session.add(
            OutboxJob(
                kind="create_ticket",
                payload={"escalation_id": "does-not-exist"},
                idempotency_key=f"test:{secrets.token_hex(8)}",
                max_attempts=max_attempts,
            )
        )
    await db.dispose()


def test_failed_job_stays_visible_and_can_be_retried(any_server: Server) -> None:
    asyncio.run(_insert_job(any_server.database_url, max_attempts=1))

    def failed() -> list[dict[str, Any]]:
        with any_server.admin() as client:
            jobs: list[dict[str, Any]] = client.get("/api/v1/jobs?status=failed").json()
        return [j for j in jobs if j["payload"] == {"escalation_id": "does-not-exist"}]

    job = wait_for(failed)[0]
    assert "does-not-exist" in job["last_error"]
    assert job["attempts"] == 1
    with any_server.admin() as client:
        retried = client.post(f"/api/v1/jobs/{job['id']}/retry")
        assert retried.status_code == 200
        assert retried.json()["status"] == "pending"
        assert retried.json()["attempts"] == 0
        done = client.post("/api/v1/jobs/999999999/retry")
        assert done.status_code == 404
    wait_for(lambda: any(j["id"] == job["id"] and j["attempts"] == 1 for j in failed()))
    with any_server.client(member_token(any_server)) as member:
        assert member.get("/api/v1/jobs").status_code == 404


def test_action_options_and_channels_drive_the_escalation(any_server: Server) -> None:
    with any_server.admin() as client:
        workspace = client.post("/api/v1/workspaces", json={"name": "Gamma"}).json()
        agent = client.post(
            "/api/v1/agents",
            json={"workspace_id": workspace["id"], "name": "Bot", "channels": ["widget", "api"]},
        ).json()
        created = client.post(
            f"/api/v1/agents/{agent['id']}/actions",
            json=action_body(
                channels=["widget"],
                ask_for_email=False,
                handoff_message="Hold on, a person is coming.",
            ),
        )
        assert created.status_code == 201, created.text

        def ask(channel: str) -> dict[str, Any]:
            chat = client.post(
                f"/api/v1/agents/{agent['id']}/conversations", json={"channel": channel}
            ).json()
            with any_server.client(chat["token"]) as visitor:
                reply: dict[str, Any] = visitor.post(
                    f"/api/v1/conversations/{chat['id']}/messages",
                    json={"text": "I want to talk to a human"},
                ).json()
            return reply

        # Covered channel, email prompt switched off: handed over at once, in the admin's words.
        on_widget = ask("widget")
        assert on_widget["conversation"]["owner"] == "human"
        assert on_widget["messages"][-1]["text"] == "Hold on, a person is coming."

        # A channel the action does not cover never escalates.
        on_api = ask("api")
        assert on_api["conversation"]["owner"] == "bot"
        assert on_api["conversation"]["escalation"] is None

        # A disabled action does nothing either.
        client.put(
            f"/api/v1/actions/{created.json()['id']}",
            json=action_body(name=created.json()["name"], channels=["widget"], enabled=False),
        )
        assert ask("widget")["conversation"]["owner"] == "bot"


def test_metrics_count_escalations_for_admins_only(any_server: Server) -> None:
    with any_server.client() as anonymous:
        assert anonymous.get("/metrics").status_code == 401
    chat = start_chat(any_server, contact={"email": "metrics@example.com"})
    chat.say("I want to talk to a human")

    def metrics() -> str:
        with any_server.admin() as client:
            text: str = client.get("/metrics").text
        return text

    text = wait_for(
        lambda: (
            (t := metrics())
            and 'handoff_outbox_jobs_total{kind="create_ticket",outcome="done"}' in t
            and t
        )
    )
    assert "handoff_messages_received_total" in text
    assert "handoff_escalations_created_total" in text


def test_the_admins_words_and_thresholds_drive_the_decision(any_server: Server) -> None:
    with any_server.admin() as client:
        workspace = client.post("/api/v1/workspaces", json={"name": "Delta"}).json()
        agent = client.post(
            "/api/v1/agents",
            json={"workspace_id": workspace["id"], "name": "Shop bot", "channels": ["api"]},
        ).json()
        body = action_body(
            channels=["api"],
            ask_for_email=False,
            sensitive_topics=["warranty claims"],
            trigger_examples=["my parcel arrived damaged"],
        )
        action = client.post(f"/api/v1/agents/{agent['id']}/actions", json=body).json()

        def escalates(text: str) -> bool:
            chat = client.post(
                f"/api/v1/agents/{agent['id']}/conversations", json={"channel": "api"}
            ).json()
            with any_server.client(chat["token"]) as visitor:
                reply = visitor.post(
                    f"/api/v1/conversations/{chat['id']}/messages", json={"text": text}
                ).json()
            return bool(reply["conversation"]["owner"] == "human")

        assert escalates("the parcel was damaged when it got here")
        assert escalates("I'd like to make a claim under the warranty for my kettle")
        assert not escalates("what are your opening hours?")
        # Billing is not among this action's topics, so a double charge stays with the AI.
        assert not escalates("I was charged twice for my order")

        strict = client.put(
            f"/api/v1/actions/{action['id']}",
            json=body | {"name": action["name"], "thresholds": {"trigger": 0.99, "topic": 0.99}},
        )
        assert strict.status_code == 200, strict.text
        assert strict.json()["thresholds"] == {"trigger": 0.99, "topic": 0.99}
        assert not escalates("the parcel was damaged when it got here")

        for bad, needle in [({"nonsense": 0.5}, "unknown threshold"), ({"topic": 2}, "between")]:
            refused = client.put(
                f"/api/v1/actions/{action['id']}",
                json=body | {"name": action["name"], "thresholds": bad},
            )
            assert refused.status_code == 422
            assert needle in refused.text
