"""The widget's colours and texts: admin-only writes, a public read, precise 422s, CORS."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.conftest import Server
from tests.web.chat import member_token

KEYS = {
    "primary_color",
    "text_color",
    "title",
    "subtitle",
    "launcher_label",
    "placeholder",
    "back_to_ai_label",
}
# What an agent that never set anything publishes.
DEFAULTS: dict[str, Any] = dict.fromkeys(KEYS) | {"translations": {}}
THEME = {
    "primary_color": "#0F766E",
    "text_color": "#fff",
    "title": "Acme help",
    "subtitle": "We answer in minutes",
    "launcher_label": "Chat with Acme",
    "placeholder": "Ask about your account…",
    "back_to_ai_label": "Talk to the assistant",
}


def new_agent(server: Server) -> str:
    with server.admin() as client:
        workspace = client.post(
            "/api/v1/workspaces", json={"name": f"W {secrets.token_hex(3)}"}
        ).json()
        agent = client.post(
            "/api/v1/agents",
            json={"workspace_id": workspace["id"], "name": "Bot", "channels": ["widget"]},
        ).json()
    agent_id: str = agent["id"]
    return agent_id


def public_settings(server: Server, agent_id: str) -> dict[str, Any]:
    with server.client() as anonymous:
        response = anonymous.get(f"/api/v1/agents/{agent_id}/widget")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_defaults_are_public_and_empty(any_server: Server) -> None:
    agent_id = new_agent(any_server)
    assert public_settings(any_server, agent_id) == DEFAULTS


def test_admin_sets_the_theme_and_anyone_reads_only_the_public_fields(any_server: Server) -> None:
    agent_id = new_agent(any_server)
    with any_server.admin() as client:
        saved = client.put(f"/api/v1/agents/{agent_id}/widget", json=THEME)
        assert saved.status_code == 200, saved.text
        agent = client.get(f"/api/v1/agents/{agent_id}").json()
    expected = THEME | {"primary_color": "#0f766e", "translations": {}}  # colours lower-cased
    assert saved.json() == expected
    assert agent["widget"] == expected
    assert public_settings(any_server, agent_id) == expected

    # A replace: omitted settings go back to their defaults.
    with any_server.admin() as client:
        client.put(f"/api/v1/agents/{agent_id}/widget", json={"title": "  Hi  "})
    assert public_settings(any_server, agent_id) == DEFAULTS | {"title": "Hi"}


@pytest.mark.parametrize(
    ("body", "field_name"),
    [
        ({"primary_color": "red"}, "primary_color"),
        ({"primary_color": "#12345"}, "primary_color"),
        ({"text_color": "#ggg"}, "text_color"),
        ({"text_color": "#fff; background: url(x)"}, "text_color"),
        ({"title": "x" * 61}, "title"),
        ({"subtitle": "x" * 121}, "subtitle"),
        ({"launcher_label": "x" * 41}, "launcher_label"),
        ({"placeholder": "x" * 101}, "placeholder"),
        ({"back_to_ai_label": "two\nlines"}, "back_to_ai_label"),
        ({"title": 5}, "title"),
        ({"font": "Comic Sans"}, "font"),
        ({"translations": {"xx": {"title": "Hola"}}}, "translations"),
        ({"translations": {"es": {"font": "Arial"}}}, "translations.es.font"),
        ({"translations": {"es": {"title": "x" * 61}}}, "translations.es.title"),
        ({"translations": {"es": {"placeholder": "dos\nlíneas"}}}, "translations.es.placeholder"),
    ],
)
def test_bad_values_are_422_naming_the_field_and_change_nothing(
    any_server: Server, body: dict[str, Any], field_name: str
) -> None:
    agent_id = new_agent(any_server)
    with any_server.admin() as client:
        client.put(f"/api/v1/agents/{agent_id}/widget", json={"title": "Kept"})
        response = client.put(f"/api/v1/agents/{agent_id}/widget", json=body)
    assert response.status_code == 422, response.text
    assert field_name in [str(part) for part in response.json()["detail"][0]["loc"]]
    assert public_settings(any_server, agent_id)["title"] == "Kept"


def test_texts_per_language_are_kept_beside_the_default_ones(any_server: Server) -> None:
    agent_id = new_agent(any_server)
    body = {
        "title": "Acme help",
        "translations": {
            "es": {"title": "Ayuda de Acme", "placeholder": "Escribe tu pregunta…"},
            "fr": {"title": "  "},  # nothing but blanks: not stored
        },
    }
    with any_server.admin() as client:
        saved = client.put(f"/api/v1/agents/{agent_id}/widget", json=body)
    assert saved.status_code == 200, saved.text
    assert public_settings(any_server, agent_id)["translations"] == {
        "es": {"title": "Ayuda de Acme", "placeholder": "Escribe tu pregunta…"}
    }
    assert public_settings(any_server, agent_id)["title"] == "Acme help"


def test_only_an_admin_writes_and_unknown_agents_are_404(any_server: Server) -> None:
    agent_id = new_agent(any_server)
    with any_server.client() as anonymous:
        assert anonymous.put(f"/api/v1/agents/{agent_id}/widget", json={}).status_code == 401
        assert anonymous.get("/api/v1/agents/nope/widget").status_code == 404
    with any_server.client(member_token(any_server)) as other_workspace:
        # The demo member administers another workspace: this agent does not exist for them.
        response = other_workspace.put(f"/api/v1/agents/{agent_id}/widget", json={})
        assert response.status_code == 404


def test_the_widget_calls_are_open_to_other_origins(any_server: Server) -> None:
    """The config, the visitor's stream and back-to-bot are called from customers' sites."""
    origin = "http://shop.example.net"
    agent = any_server.demo_agent_id
    with any_server.client() as browser:
        config = browser.get(f"/api/v1/agents/{agent}/widget", headers={"Origin": origin})
        assert config.headers["access-control-allow-origin"] in ("*", origin)
        chat = browser.post(
            f"/api/v1/agents/{agent}/conversations",
            json={"channel": "widget"},
            headers={"Origin": origin},
        ).json()
        for path, method in (
            (f"/api/v1/conversations/{chat['id']}/back-to-bot", "POST"),
            (f"/api/v1/conversations/{chat['id']}/messages", "POST"),
            (f"/api/v1/conversations/{chat['id']}/events", "GET"),
            # An admin tool on another origin may change members and workspaces.
            (f"/api/v1/workspaces/{chat['id']}", "PATCH"),
        ):
            preflight = browser.options(
                path,
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": method,
                    "Access-Control-Request-Headers": "authorization,content-type,last-event-id",
                },
            )
            assert preflight.status_code == 200, (path, preflight.text)
            assert method in preflight.headers["access-control-allow-methods"]
        with browser.stream(
            "GET",
            f"/api/v1/conversations/{chat['id']}/events",
            params={"access_token": chat["token"]},
            headers={"Origin": origin},
        ) as stream:
            assert stream.status_code == 200
            assert stream.headers["access-control-allow-origin"] in ("*", origin)


def start(server: Server, agent_id: str, lang: str | None) -> list[str]:
    """Open a widget conversation in `lang`; return what the assistant said first."""
    body: dict[str, Any] = {"channel": "widget"} | ({"lang": lang} if lang else {})
    with server.client() as anonymous:
        response = anonymous.post(f"/api/v1/agents/{agent_id}/conversations", json=body)
    assert response.status_code == 201, response.text
    return [m["text"] for m in response.json()["messages"]]


def test_the_greeting_speaks_the_visitors_language(any_server: Server) -> None:
    agent_id = new_agent(any_server)
    with any_server.admin() as client:
        updated = client.patch(
            f"/api/v1/agents/{agent_id}",
            json={
                "name": "Acme",
                "greeting": "Hi! How can I help?",
                "greetings": {
                    "es": "¡Hola! ¿En qué te ayudo?",
                    "de": " Hallo! Wie kann ich helfen? ",
                },
            },
        )
    assert updated.status_code == 200, updated.text
    assert updated.json()["name"] == "Acme"
    assert updated.json()["greetings"] == {
        "es": "¡Hola! ¿En qué te ayudo?",
        "de": "Hallo! Wie kann ich helfen?",
    }
    assert start(any_server, agent_id, "es") == ["¡Hola! ¿En qué te ayudo?"]
    assert start(any_server, agent_id, "fr") == ["Hi! How can I help?"]  # none in French
    assert start(any_server, agent_id, None) == ["Hi! How can I help?"]
    with any_server.client() as anonymous:
        public = anonymous.get(f"/api/v1/agents/{agent_id}/public").json()
    assert public["greetings"]["de"] == "Hallo! Wie kann ich helfen?"
    # Only the keys sent change; an empty greeting removes the default one.
    with any_server.admin() as client:
        client.patch(f"/api/v1/agents/{agent_id}", json={"greeting": ""})
    assert start(any_server, agent_id, "it") == []
    assert start(any_server, agent_id, "es") == ["¡Hola! ¿En qué te ayudo?"]


@pytest.mark.parametrize(
    ("body", "field_name"),
    [
        ({"greetings": {"xx": "Hi"}}, "greetings"),
        ({"greetings": {"es": "  "}}, "greetings"),
        ({"greeting": "x" * 1001}, "greeting"),
        ({"name": ""}, "name"),
        ({"channels": ["api"]}, "channels"),
    ],
)
def test_bad_agent_changes_are_422_naming_the_field(
    any_server: Server, body: dict[str, Any], field_name: str
) -> None:
    agent_id = new_agent(any_server)
    with any_server.admin() as client:
        response = client.patch(f"/api/v1/agents/{agent_id}", json=body)
        agent = client.get(f"/api/v1/agents/{agent_id}").json()
    assert response.status_code == 422, response.text
    assert field_name in [str(part) for part in response.json()["detail"][0]["loc"]]
    assert agent["name"] == "Bot" and agent["greetings"] == {}
