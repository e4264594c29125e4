"""Canned replies over HTTP: admins write them, members get them filled in for a ticket."""

from __future__ import annotations

import secrets

from tests.conftest import Server
from tests.web.chat import member_token, start_chat, ticket_of, wait_for


def demo_workspace(server: Server) -> str:
    with server.admin() as admin:
        return str(admin.get(f"/api/v1/agents/{server.demo_agent_id}").json()["workspace_id"])


def test_a_canned_reply_is_filled_in_for_the_ticket(any_server: Server) -> None:
    team = member_token(any_server)
    workspace_id = demo_workspace(any_server)
    title = f"Greeting {secrets.token_hex(3)}"
    with any_server.client(team) as client:
        created = client.post(
            f"/api/v1/workspaces/{workspace_id}/canned-replies",
            json={"title": title, "body": "Hi {first_name}, {my_name} here. We wrote to {email}."},
        )
        assert created.status_code == 201, created.text
    chat = start_chat(any_server, contact={"name": "Jane Roe", "email": "jane@example.com"})
    chat.say("I was charged twice and I want a person to look at it")
    ticket = wait_for(lambda: ticket_of(any_server, team, chat.id))
    with any_server.client(team) as client:
        filled = client.get("/api/v1/canned-replies", params={"ticket_id": ticket["id"]}).json()
        plain = client.get("/api/v1/canned-replies").json()
        me = client.get("/api/v1/me").json()
    [reply] = [r for r in filled if r["id"] == created.json()["id"]]
    assert reply["text"] == f"Hi Jane, {me['name']} here. We wrote to jane@example.com."
    assert reply["body"] == "Hi {first_name}, {my_name} here. We wrote to {email}."
    assert [r["text"] for r in plain if r["id"] == reply["id"]] == [None]


def test_a_missing_value_leaves_no_stray_space(any_server: Server) -> None:
    team = member_token(any_server)
    with any_server.client(team) as client:
        created = client.post(
            f"/api/v1/workspaces/{demo_workspace(any_server)}/canned-replies",
            json={"title": f"Hello {secrets.token_hex(3)}", "body": "Hello {first_name}!"},
        ).json()
    chat = start_chat(any_server, contact={"email": "anon@example.com"})
    chat.say("Please connect me with a human agent")
    ticket = wait_for(lambda: ticket_of(any_server, team, chat.id))
    with any_server.client(team) as client:
        filled = client.get("/api/v1/canned-replies", params={"ticket_id": ticket["id"]}).json()
    assert [r["text"] for r in filled if r["id"] == created["id"]] == ["Hello!"]


def test_bad_replies_are_refused_naming_the_field(any_server: Server) -> None:
    workspace_id = demo_workspace(any_server)
    title = f"Refund {secrets.token_hex(3)}"
    with any_server.client(member_token(any_server)) as client:
        url = f"/api/v1/workspaces/{workspace_id}/canned-replies"
        unknown = client.post(url, json={"title": title, "body": "Hi {firstname}"})
        assert unknown.status_code == 422
        [error] = unknown.json()["detail"]
        assert error["loc"] == ["body", "body"] and "{firstname}" in error["msg"]
        empty = client.post(url, json={"title": " ", "body": "x"})
        assert empty.status_code == 422 and empty.json()["detail"][0]["loc"] == ["body", "title"]
        first = client.post(url, json={"title": title, "body": "Your refund is on its way."})
        assert first.status_code == 201
        twice = client.post(url, json={"title": title, "body": "Again"})
        assert twice.status_code == 409 and "title" in twice.json()["detail"]


def test_admins_edit_and_delete_and_agents_only_read(any_server: Server) -> None:
    workspace_id = demo_workspace(any_server)
    with any_server.admin() as admin:
        email = f"agent-{secrets.token_hex(3)}@example.com"
        password = admin.post(
            f"/api/v1/workspaces/{workspace_id}/members", json={"email": email, "name": "Ari"}
        ).json()["password"]
        reply = admin.post(
            f"/api/v1/workspaces/{workspace_id}/canned-replies",
            json={"title": f"Hours {secrets.token_hex(3)}", "body": "We open at nine."},
        ).json()
        edited = admin.put(
            f"/api/v1/canned-replies/{reply['id']}",
            json={"title": reply["title"], "body": "We open at eight."},
        )
        assert edited.status_code == 200 and edited.json()["body"] == "We open at eight."
    with any_server.client() as client:
        token = client.post(
            "/api/v1/auth/login", json={"email": email, "password": password}
        ).json()["token"]
    with any_server.client(token) as agent:
        bodies = {r["id"]: r["body"] for r in agent.get("/api/v1/canned-replies").json()}
        assert bodies[reply["id"]] == "We open at eight."
        assert agent.delete(f"/api/v1/canned-replies/{reply['id']}").status_code == 403
    with any_server.admin() as admin:
        assert admin.delete(f"/api/v1/canned-replies/{reply['id']}").status_code == 204
        assert admin.delete(f"/api/v1/canned-replies/{reply['id']}").status_code == 404
        # The service admin names the workspace; without it the field is named.
        missing = admin.get("/api/v1/canned-replies")
        assert missing.status_code == 422 and "workspace_id" in str(missing.json()["detail"])


def test_another_workspace_sees_none_of_them(any_server: Server) -> None:
    with any_server.admin() as admin:
        other = admin.post("/api/v1/workspaces", json={"name": "Elsewhere"}).json()
        email = f"admin-{secrets.token_hex(3)}@example.com"
        password = admin.post(
            f"/api/v1/workspaces/{other['id']}/members",
            json={"email": email, "name": "Oli", "role": "admin"},
        ).json()["password"]
        ours = admin.post(
            f"/api/v1/workspaces/{demo_workspace(any_server)}/canned-replies",
            json={"title": f"Ours {secrets.token_hex(3)}", "body": "Ours."},
        ).json()
    with any_server.client() as client:
        token = client.post(
            "/api/v1/auth/login", json={"email": email, "password": password}
        ).json()["token"]
    with any_server.client(token) as outsider:
        assert ours["id"] not in [r["id"] for r in outsider.get("/api/v1/canned-replies").json()]
        change = outsider.put(
            f"/api/v1/canned-replies/{ours['id']}", json={"title": "Mine", "body": "Mine."}
        )
        assert change.status_code == 404
        assert outsider.delete(f"/api/v1/canned-replies/{ours['id']}").status_code == 404


def test_renaming_onto_another_reply_is_a_conflict_and_changes_nothing(any_server: Server) -> None:
    url = f"/api/v1/workspaces/{demo_workspace(any_server)}/canned-replies"
    with any_server.admin() as admin:
        first = admin.post(url, json={"title": f"A {secrets.token_hex(3)}", "body": "a"}).json()
        second = admin.post(url, json={"title": f"B {secrets.token_hex(3)}", "body": "b"}).json()
        clash = admin.put(
            f"/api/v1/canned-replies/{second['id']}", json={"title": first["title"], "body": "c"}
        )
        assert clash.status_code == 409 and "title" in clash.json()["detail"]
        listed = {
            r["id"]: r
            for r in admin.get(
                "/api/v1/canned-replies", params={"workspace_id": demo_workspace(any_server)}
            ).json()
        }
    assert listed[second["id"]]["title"] == second["title"] and listed[second["id"]]["body"] == "b"
