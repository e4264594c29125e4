"""Connecting helpdesks with OAuth through the public API: approval, callback, refreshes.

Zendesk rotates its refresh tokens, HubSpot keeps them; both must keep working across many
outbox jobs, each of which builds a fresh connector from what the database holds.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Server
from tests.fakes.hubspot import FakeHubSpot
from tests.fakes.zendesk import FakeZendesk
from tests.web.chat import wait_for


@dataclass(frozen=True)
class Platform:
    name: str
    title: str
    fake: type[FakeZendesk] | type[FakeHubSpot]
    create_path: str  # where tickets are created
    later: dict[str, Any]  # what the admin adds when reconnecting


PLATFORMS = [
    Platform(
        "zendesk",
        "Zendesk",
        FakeZendesk,
        "/api/v2/tickets",
        {"webhook_signing_secret": f"zd-{secrets.token_hex(8)}"},
    ),
    Platform("hubspot", "HubSpot", FakeHubSpot, "/crm/v3/objects/tickets", {"stage": "1"}),
]


@pytest.fixture(params=PLATFORMS, ids=lambda p: p.name)
def platform(request: pytest.FixtureRequest) -> Platform:
    spec: Platform = request.param
    return spec


@pytest.fixture
def fake(platform: Platform) -> Iterator[Any]:
    with platform.fake() as server:
        yield server


def oauth_form(fake: Any, **changes: Any) -> dict[str, Any]:
    form = {
        "auth": "oauth",
        "client_id": fake.oauth.client_id,
        "client_secret": fake.oauth.client_secret,
        "base_url": fake.base_url,
        **changes,
    }
    if isinstance(fake, FakeZendesk):
        form["subdomain"] = fake.subdomain
    return form


def new_agent(admin: httpx.Client) -> str:
    workspace = admin.post("/api/v1/workspaces", json={"name": "OAuth"}).json()
    agent = admin.post(
        "/api/v1/agents",
        json={"workspace_id": workspace["id"], "name": "Bot", "channels": ["widget"]},
    ).json()
    return str(agent["id"])


def approve(
    server: Server, admin: httpx.Client, agent_id: str, platform: str, form: dict[str, Any]
) -> httpx.Response:
    """Start the approval, let the fake approve, and follow it back to our callback."""
    started = admin.post(
        f"/api/v1/agents/{agent_id}/integrations/authorize",
        json={"platform": platform, "credentials": form},
    )
    assert started.status_code == 200, started.text
    assert started.json()["redirect_uri"] == f"{server.url}/api/v1/oauth/callback"
    assert form["client_secret"] not in started.text  # sealed inside the state
    return httpx.get(started.json()["authorize_url"], follow_redirects=True, timeout=30)


def escalate(server: Server, agent_id: str) -> dict[str, Any]:
    """Open a chat, ask for a person; return the ticket once the worker created it."""
    with server.client() as client:
        chat = client.post(
            f"/api/v1/agents/{agent_id}/conversations",
            json={"channel": "widget", "contact": {"name": "Ann", "email": "ann@example.com"}},
        ).json()
    with server.client(chat["token"]) as visitor:
        path = f"/api/v1/conversations/{chat['id']}"
        assert visitor.post(f"{path}/messages", json={"text": "a human please"}).status_code == 200

        def opened() -> dict[str, Any] | None:
            escalation = visitor.get(path).json()["escalation"] or {}
            assert escalation.get("status") != "failed", escalation
            return escalation["ticket"] if escalation.get("status") == "open" else None

        ticket: dict[str, Any] = wait_for(opened)
        return ticket


def test_connects_with_oauth_and_keeps_working_across_refreshes(
    any_server: Server, platform: Platform, fake: Any
) -> None:
    with any_server.admin() as admin:
        agent_id = new_agent(admin)
        path = f"/api/v1/agents/{agent_id}/integrations"

        # Without approval, the plain connect says where to go instead of failing vaguely.
        early = admin.post(path, json={"platform": platform.name, "credentials": oauth_form(fake)})
        assert early.status_code == 422, early.text
        problem = early.json()["detail"][0]
        assert problem["loc"] == ["body", "credentials.auth"]
        assert "/integrations/authorize" in problem["msg"]

        page = approve(any_server, admin, agent_id, platform.name, oauth_form(fake))
        assert page.status_code == 200, page.text
        assert f"{platform.title} is connected to Bot" in page.text
        listed = admin.get(path)
        assert sorted(i["platform"] for i in listed.json()) == sorted(["native", platform.name])
        for secret in (
            fake.oauth.client_secret,
            *fake.oauth.refresh_tokens,
            *fake.oauth.access_tokens,
        ):
            assert secret not in listed.text

        # Changing a setting later keeps the approval (same OAuth client).
        later = oauth_form(fake, **platform.later)
        again = admin.post(path, json={"platform": platform.name, "credentials": later})
        assert again.status_code == 201, again.text

        action = admin.post(
            f"/api/v1/agents/{agent_id}/actions",
            json={
                "name": "Escalate_oauth",
                "platform": platform.name,
                "when_to_use": "When the user asks for a person.",
                "channels": ["widget"],
                "enabled": True,
                "ask_for_email": False,
            },
        )
        assert action.status_code == 201, action.text

    first = escalate(any_server, agent_id)
    # Each later ticket needs a refresh; on Zendesk each refresh rotates the refresh token, so
    # the second works only if the first one's new token was written down.
    fake.oauth.expire_access_tokens()
    second = escalate(any_server, agent_id)
    fake.oauth.expire_access_tokens()
    third = escalate(any_server, agent_id)
    assert len({first["id"], second["id"], third["id"]}) == 3
    assert sorted(str(t) for t in fake.tickets) == sorted([first["id"], second["id"], third["id"]])
    assert fake.oauth.refreshes == 2
    creates = [
        r for r in fake.requests if r.method == "POST" and r.path.startswith(platform.create_path)
    ]
    assert creates and all(r.headers["authorization"].startswith("Bearer ") for r in creates)


def test_a_denied_approval_says_so_and_connects_nothing(
    server: Server, platform: Platform, fake: Any
) -> None:
    with server.admin() as admin:
        agent_id = new_agent(admin)
        fake.oauth.deny_next()
        page = approve(server, admin, agent_id, platform.name, oauth_form(fake))
        assert page.status_code == 400
        assert "Access was not granted" in page.text
        listed = admin.get(f"/api/v1/agents/{agent_id}/integrations").json()
        assert [i["platform"] for i in listed] == ["native"]


def test_an_altered_or_foreign_state_is_refused(server: Server) -> None:
    answer = httpx.get(
        f"{server.url}/api/v1/oauth/callback",
        params={"code": "abc", "state": "not-a-sealed-state"},
        timeout=30,
    )
    assert answer.status_code == 422
    assert "expired or was altered" in answer.text


def test_an_api_token_form_has_no_approval_to_start(server: Server) -> None:
    with FakeZendesk() as fake, server.admin() as admin:
        agent_id = new_agent(admin)
        started = admin.post(
            f"/api/v1/agents/{agent_id}/integrations/authorize",
            json={
                "platform": "zendesk",
                "credentials": {
                    "subdomain": "acme",
                    "email": fake.email,
                    "api_token": fake.api_token,
                    "base_url": fake.base_url,
                },
            },
        )
        assert started.status_code == 422
        assert started.json()["detail"][0]["loc"] == ["body", "credentials.auth"]


def test_starting_an_approval_needs_an_admin(server: Server) -> None:
    with server.client() as anonymous:
        answer = anonymous.post(
            "/api/v1/agents/whatever/integrations/authorize",
            json={"platform": "zendesk", "credentials": {"auth": "oauth"}},
        )
    assert answer.status_code == 401


def test_the_callback_page_escapes_what_the_platform_sent(server: Server) -> None:
    answer = httpx.get(
        f"{server.url}/api/v1/oauth/callback",
        params={"error": "access_denied", "error_description": "<script>alert(1)</script>"},
        timeout=30,
    )
    assert answer.status_code == 400
    assert "<script>alert(1)</script>" not in answer.text
    assert "&lt;script&gt;" in answer.text
