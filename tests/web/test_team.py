"""Running a team over HTTP: invitations, roles, password resets, disabling a member."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.conftest import Server
from tests.web.chat import member_token, start_chat, ticket_of, wait_for


def new_workspace(server: Server) -> str:
    with server.admin() as admin:
        workspace: dict[str, Any] = admin.post(
            "/api/v1/workspaces", json={"name": f"Team {secrets.token_hex(3)}"}
        ).json()
    return str(workspace["id"])


def invite(
    server: Server, workspace_id: str, role: str = "agent", password: str | None = None
) -> dict[str, Any]:
    """Add a member; without a password the answer carries the generated one."""
    body = {"email": f"{role}-{secrets.token_hex(4)}@example.com", "name": f"Robin {role}"}
    body |= {"role": role} | ({"password": password} if password else {})
    with server.admin() as admin:
        response = admin.post(f"/api/v1/workspaces/{workspace_id}/members", json=body)
    assert response.status_code == 201, response.text
    member: dict[str, Any] = response.json()
    return member


def login(server: Server, email: str, password: str) -> httpx.Response:
    with server.client() as client:
        return client.post("/api/v1/auth/login", json={"email": email, "password": password})


def token_of(server: Server, member: dict[str, Any], password: str | None = None) -> str:
    response = login(server, member["email"], password or member["password"])
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def test_an_invited_member_signs_in_with_the_password_shown_once(any_server: Server) -> None:
    workspace_id = new_workspace(any_server)
    member = invite(any_server, workspace_id)
    assert len(member["password"]) >= 16 and member["disabled"] is False
    with any_server.client(token_of(any_server, member)) as client:
        listed = {m["id"]: m for m in client.get("/api/v1/members").json()}
    assert "password" not in listed[member["id"]]
    chosen = invite(any_server, workspace_id, password="a long secret")
    assert chosen["password"] is None  # a password the admin chose is never echoed
    assert login(any_server, chosen["email"], "a long secret").status_code == 200


def test_a_reset_password_ends_every_session(any_server: Server) -> None:
    member = invite(any_server, new_workspace(any_server))
    old_session = token_of(any_server, member)
    with any_server.admin() as admin:
        reset = admin.post(f"/api/v1/members/{member['id']}/password", json={})
        chosen = admin.post(f"/api/v1/members/{member['id']}/password", json={"password": "short"})
    assert reset.status_code == 200 and reset.json()["password"] != member["password"]
    assert chosen.status_code == 422
    assert [error["loc"] for error in chosen.json()["detail"]] == [["body", "password"]]
    with any_server.client(old_session) as client:
        assert client.get("/api/v1/me").status_code == 401
    assert login(any_server, member["email"], member["password"]).status_code == 401
    assert login(any_server, member["email"], reset.json()["password"]).status_code == 200


def test_a_disabled_member_is_signed_out_and_loses_their_open_tickets(
    any_server: Server,
) -> None:
    demo_workspace = workspace_of_demo_agent(any_server)
    member = invite(any_server, demo_workspace)
    session = token_of(any_server, member)
    team = member_token(any_server)
    chat = start_chat(any_server, contact={"name": "Lee Park", "email": "lee@example.com"})
    chat.say("I want to talk to a human about my invoice")
    ticket = wait_for(lambda: ticket_of(any_server, team, chat.id))
    with any_server.client(team) as client:
        assigned = client.post(
            f"/api/v1/tickets/{ticket['id']}/assign", json={"member_id": member["id"]}
        )
        assert assigned.json()["assignee"]["id"] == member["id"]
    with any_server.admin() as admin:
        disabled = admin.patch(f"/api/v1/members/{member['id']}", json={"disabled": True})
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    with any_server.client(session) as client:
        assert client.get("/api/v1/tickets").status_code == 401
    refused = login(any_server, member["email"], member["password"])
    assert refused.status_code == 401 and refused.json()["detail"] == "wrong email or password"
    with any_server.client(team) as client:
        detail = client.get(f"/api/v1/tickets/{ticket['id']}").json()
        assert detail["assignee"] is None
        again = client.post(
            f"/api/v1/tickets/{ticket['id']}/assign", json={"member_id": member["id"]}
        )
        assert again.status_code == 422
        [error] = again.json()["detail"]
        assert error["loc"] == ["body", "member_id"] and "disabled" in error["msg"]
    with any_server.admin() as admin:
        admin.patch(f"/api/v1/members/{member['id']}", json={"disabled": False})
    assert login(any_server, member["email"], member["password"]).status_code == 200


def test_an_admin_keeps_the_workspace_administrable(any_server: Server) -> None:
    workspace_id = new_workspace(any_server)
    only_admin = invite(any_server, workspace_id, role="admin")
    agent = invite(any_server, workspace_id)
    with any_server.admin() as admin:
        demote = admin.patch(f"/api/v1/members/{only_admin['id']}", json={"role": "agent"})
        disable = admin.patch(f"/api/v1/members/{only_admin['id']}", json={"disabled": True})
        bad_role = admin.patch(f"/api/v1/members/{agent['id']}", json={"role": "owner"})
    assert demote.status_code == 409 and "admin" in demote.json()["detail"]
    assert disable.status_code == 409
    assert bad_role.status_code == 422
    assert [error["loc"] for error in bad_role.json()["detail"]] == [["body", "role"]]
    with any_server.client(token_of(any_server, only_admin)) as own:
        promoted = own.patch(f"/api/v1/members/{agent['id']}", json={"role": "admin"})
        assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
        # Now a second admin exists, yet nobody may lock themselves out.
        self_disable = own.patch(f"/api/v1/members/{only_admin['id']}", json={"disabled": True})
        assert self_disable.status_code == 409
    with any_server.client(token_of(any_server, agent)) as promoted_agent:
        demoted = promoted_agent.patch(
            f"/api/v1/members/{only_admin['id']}", json={"role": "agent"}
        )
        assert demoted.status_code == 200
    plain = invite(any_server, workspace_id)
    with any_server.client(token_of(any_server, plain)) as agent_member:
        refused = agent_member.patch(f"/api/v1/members/{agent['id']}", json={"disabled": True})
        assert refused.status_code == 403


def test_members_of_another_workspace_cannot_be_managed(any_server: Server) -> None:
    theirs = invite(any_server, new_workspace(any_server))
    ours = invite(any_server, new_workspace(any_server), role="admin")
    with any_server.client(token_of(any_server, ours)) as client:
        for call in (
            client.patch(f"/api/v1/members/{theirs['id']}", json={"disabled": True}),
            client.post(f"/api/v1/members/{theirs['id']}/password", json={}),
        ):
            assert call.status_code == 404
    assert login(any_server, theirs["email"], theirs["password"]).status_code == 200


def workspace_of_demo_agent(server: Server) -> str:
    with server.admin() as admin:
        agent = admin.get(f"/api/v1/agents/{server.demo_agent_id}").json()
    return str(agent["workspace_id"])
