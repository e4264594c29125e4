"""GET /api/v1/platforms: every helpdesk's connect form, for the settings page to render."""

from __future__ import annotations

import secrets
from typing import Any

from handoff.helpdesks import HELPDESKS
from tests.conftest import Server
from tests.web.chat import member_token

PASSWORD = "a long secret"


def _field(form: dict[str, Any], name: str) -> dict[str, Any]:
    """Return a property's schema, looking inside `anyOf` for optional fields."""
    prop: dict[str, Any] = form["properties"][name]
    for option in prop.get("anyOf", []):
        if option.get("type") != "null":
            return {**prop, **option}
    return prop


def _agent_member_token(server: Server) -> str:
    """Add a member with the `agent` role (no admin rights) and sign them in."""
    email = f"platforms-{secrets.token_hex(3)}@example.com"
    with server.admin() as admin:
        workspace_id = admin.get(f"/api/v1/agents/{server.demo_agent_id}").json()["workspace_id"]
        created = admin.post(
            f"/api/v1/workspaces/{workspace_id}/members",
            json={"email": email, "name": "Alex", "role": "agent", "password": PASSWORD},
        )
        assert created.status_code == 201, created.text
    with server.client() as client:
        login = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    token: str = login.json()["token"]
    return token


def test_an_admin_gets_every_platform_with_its_connect_form(any_server: Server) -> None:
    # The demo member is a workspace admin: the settings page signs in as one.
    with any_server.client(member_token(any_server)) as client:
        response = client.get("/api/v1/platforms")
    assert response.status_code == 200, response.text
    platforms = response.json()
    assert [p["platform"] for p in platforms] == list(HELPDESKS)
    assert "native" not in [p["platform"] for p in platforms]
    for entry in platforms:
        assert set(entry) == {"platform", "title", "description", "form"}
        assert entry["title"] == HELPDESKS[entry["platform"]].title
        assert entry["description"] == HELPDESKS[entry["platform"]].description
        form = entry["form"]
        assert form["type"] == "object"
        assert form["properties"], entry["platform"]
        for prop in form["properties"].values():
            assert prop.get("title"), entry["platform"]

    by_platform = {p["platform"]: p["form"] for p in platforms}
    webhook = by_platform["webhook"]
    assert webhook["required"] == ["url", "signing_secret"]
    assert webhook["properties"]["url"]["title"] == "Endpoint URL"
    assert webhook["properties"]["url"]["description"]
    # Enums and integers come through for the form to render as selects and numbers.
    zendesk = by_platform["zendesk"]
    assert _field(zendesk, "auth")["enum"] == ["api_token", "oauth"]
    assert _field(zendesk, "group_id")["type"] == "integer"
    assert _field(by_platform["hubspot"], "closed_stages")["type"] == "array"


def test_secrets_are_marked_password_and_write_only(any_server: Server) -> None:
    with any_server.admin() as client:
        platforms = client.get("/api/v1/platforms").json()
    by_platform = {p["platform"]: p["form"] for p in platforms}
    secret_fields = {
        "webhook": ["signing_secret"],
        "zendesk": ["api_token", "client_secret", "webhook_signing_secret"],
        "freshdesk": ["api_key"],
        "intercom": ["access_token", "client_secret"],
        "hubspot": ["access_token", "client_secret"],
        "zoho_desk": ["client_secret", "refresh_token"],
        "help_scout": ["app_secret", "webhook_secret"],
        "salesforce": ["client_secret", "private_key", "webhook_token"],
    }
    for platform, names in secret_fields.items():
        for name in names:
            field = _field(by_platform[platform], name)
            assert field.get("format") == "password", (platform, name)
            assert field.get("writeOnly") is True, (platform, name)
    # Plain fields are not marked secret.
    assert "format" not in _field(by_platform["zendesk"], "subdomain")
    assert "writeOnly" not in _field(by_platform["webhook"], "url")


def test_a_member_without_the_admin_role_is_refused(any_server: Server) -> None:
    with any_server.client(_agent_member_token(any_server)) as member:
        response = member.get("/api/v1/platforms")
    assert response.status_code == 403
    assert "admin" in response.json()["detail"]


def test_anonymous_and_wrong_tokens_are_refused(any_server: Server) -> None:
    with any_server.client() as anonymous:
        response = anonymous.get("/api/v1/platforms")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    with any_server.client("hk_not_a_token") as wrong:
        assert wrong.get("/api/v1/platforms").status_code == 401


def test_the_settings_page_is_served_and_linked(any_server: Server) -> None:
    with any_server.client() as client:
        page = client.get("/settings")
        assert page.status_code == 200
        assert 'src="/static/settings.js"' in page.text
        assert 'href="/static/settings.css"' in page.text
        assert client.get("/static/settings.js").status_code == 200
        assert client.get("/static/settings.css").status_code == 200
        assert client.get("/static/settings/knowledge.js").status_code == 200
        assert 'href="/settings"' in client.get("/").text
        # The knowledge base's limits, for the page to check an upload before sending it.
        for attribute in ('max-entries="1000"', 'max-question="1000"', 'max-answer="5000"'):
            assert f"data-knowledge-{attribute}" in page.text
