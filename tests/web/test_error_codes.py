"""Every error answer carries a `code` a program can read, next to its message for people."""

from __future__ import annotations

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
