"""Every error answer carries a `code` a program can read, next to its message for people."""

from __future__ import annotations

import socket

import httpx

from tests.conftest import Server
from tests.web.chat import member_token


def _code(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["detail"]  # the message stays
    code: str = body["code"]
    return code


def test_each_kind_of_error_has_its_code(any_server: Server) -> None:
    with any_server.client() as anonymous:
        assert _code(anonymous.get("/api/v1/me"), 401) == "unauthorized"
        assert _code(anonymous.get("/api/v1/agents/nope/public"), 404) == "not_found"
        assert _code(anonymous.get("/api/v1/no-such-route"), 404) == "not_found"
        assert _code(anonymous.delete("/api/v1/me"), 405) == "method_not_allowed"
        assert _code(anonymous.post("/api/v1/auth/login", json={}), 422) == "invalid_input"
    with any_server.client(member_token(any_server)) as member:
        assert _code(member.post("/api/v1/workspaces", json={"name": "x"}), 403) == "forbidden"
    with any_server.admin() as admin:
        native = admin.post(
            f"/api/v1/agents/{any_server.demo_agent_id}/integrations",
            json={"platform": "native", "credentials": {}},
        )
        assert _code(native, 409) == "conflict"
        unknown = admin.post(
            f"/api/v1/agents/{any_server.demo_agent_id}/integrations",
            json={"platform": "nowhere", "credentials": {}},
        )
        assert _code(unknown, 422) == "invalid_input"


def _closed_port() -> int:
    """A loopback port nothing listens on: bound for a moment, then let go."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_validation_errors_say_what_is_wrong_in_plain_words(any_server: Server) -> None:
    agent = any_server.demo_agent_id
    with any_server.admin() as admin:
        no_channel = admin.post(
            f"/api/v1/agents/{agent}/actions",
            json={"name": "Human", "platform": "native", "when_to_use": "x", "channels": []},
        )
        short_secret = admin.post(
            f"/api/v1/agents/{agent}/integrations",
            json={
                "platform": "webhook",
                "credentials": {"url": "http://127.0.0.1:9/hook", "signing_secret": "short"},
            },
        )
    assert _code(no_channel, 422) == "invalid_input"
    assert {"loc": ["body", "channels"], "msg": "Choose at least one channel"}.items() <= (
        no_channel.json()["detail"][0].items()
    )
    assert _code(short_secret, 422) == "invalid_input"
    assert short_secret.json()["detail"] == [
        {
            "loc": ["body", "credentials.signing_secret"],
            "msg": "Signing secret must be at least 16 characters",
            "type": "value_error",
        }
    ]


def test_an_unreachable_helpdesk_is_named_by_its_host(any_server: Server) -> None:
    with any_server.admin() as admin:
        response = admin.post(
            f"/api/v1/agents/{any_server.demo_agent_id}/integrations",
            json={
                "platform": "webhook",
                "credentials": {
                    "url": f"http://127.0.0.1:{_closed_port()}/hook",
                    "signing_secret": "s" * 16,
                },
            },
        )
    assert _code(response, 502) == "cannot_connect"
    assert response.json()["detail"] == (
        "cannot_connect: could not reach 127.0.0.1: the connection was refused"
    )
