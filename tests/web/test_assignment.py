"""Inbox assignment over HTTP: manual, round robin, least loaded, caps, away, concurrency;
and what the members' settings show the visitor (avatar, typing)."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from handoff.store.db import Database
from handoff.store.models import OutboxJob, utcnow
from tests.conftest import BACKENDS, Server, start_server, stop_server
from tests.web.chat import EventReader, member_token, wait_for

PASSWORD = "a long secret"
FAQ = [{"question": "Is there a free plan?", "answer": "Yes, Starter is free."}]


@dataclass
class Team:
    """A fresh workspace with its own AI agent, escalate action and members."""

    server: Server
    workspace_id: str
    agent_id: str
    members: list[dict[str, Any]] = field(default_factory=list)
    visitor_tokens: dict[str, str] = field(default_factory=dict)

    def token(self, member: dict[str, Any]) -> str:
        with self.server.client() as client:
            response = client.post(
                "/api/v1/auth/login", json={"email": member["email"], "password": PASSWORD}
            )
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token

    def set_mode(self, mode: str) -> None:
        with self.server.admin() as client:
            response = client.patch(
                f"/api/v1/workspaces/{self.workspace_id}", json={"assignment": mode}
            )
        assert response.status_code == 200, response.text
        assert response.json()["assignment"] == mode

    def update(self, member: dict[str, Any], **fields: Any) -> dict[str, Any]:
        with self.server.admin() as client:
            response = client.patch(f"/api/v1/members/{member['id']}", json=fields)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def escalate(self) -> str:
        """Start a conversation that asks for a person; return its id (the ticket follows)."""
        with self.server.client() as client:
            created = client.post(
                f"/api/v1/agents/{self.agent_id}/conversations",
                json={"channel": "api", "contact": {"email": "visitor@example.com"}},
            ).json()
        with self.server.client(created["token"]) as visitor:
            reply = visitor.post(
                f"/api/v1/conversations/{created['id']}/messages",
                json={"text": "I want to talk to a human, please"},
            ).json()
        assert reply["conversation"]["owner"] == "human", reply
        conversation_id: str = created["id"]
        self.visitor_tokens[conversation_id] = created["token"]
        return conversation_id

    def tickets(self) -> list[dict[str, Any]]:
        with self.server.client(self.token(self.members[0])) as client:
            response = client.get("/api/v1/tickets", params={"status": "all", "limit": 200})
        assert response.status_code == 200, response.text
        tickets: list[dict[str, Any]] = response.json()["tickets"]
        return tickets

    def ticket_for(self, conversation_id: str) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next(
                (t for t in self.tickets() if t["conversation_id"] == conversation_id), None
            )

        ticket: dict[str, Any] = wait_for(found)
        return ticket

    def assignee_of_next_ticket(self) -> str | None:
        """Escalate once and return the name of whoever the new ticket went to."""
        ticket = self.ticket_for(self.escalate())
        return ticket["assignee"]["name"] if ticket["assignee"] else None

    def solve(self, conversation_id: str) -> None:
        ticket = self.ticket_for(conversation_id)
        with self.server.client(self.token(self.members[0])) as client:
            response = client.post(f"/api/v1/tickets/{ticket['id']}/solve")
        assert response.status_code == 200, response.text


def make_team(server: Server, *names: str) -> Team:
    suffix = secrets.token_hex(4)
    with server.admin() as client:
        workspace = client.post("/api/v1/workspaces", json={"name": f"Team {suffix}"}).json()
        assert workspace["assignment"] == "manual"
        agent = client.post(
            "/api/v1/agents",
            json={"workspace_id": workspace["id"], "name": "Bot", "channels": ["api"]},
        ).json()
        assert client.put(f"/api/v1/agents/{agent['id']}/knowledge", json=FAQ).status_code == 200
        action = client.post(
            f"/api/v1/agents/{agent['id']}/actions",
            json={
                "name": "Escalate_To_Human",
                "platform": "native",
                "when_to_use": "Use when the user asks for a person.",
                "channels": ["api"],
                "enabled": True,
            },
        )
        assert action.status_code == 201, action.text
        team = Team(server, workspace["id"], agent["id"])
        for name in names:
            member = client.post(
                f"/api/v1/workspaces/{workspace['id']}/members",
                json={
                    "email": f"{name.lower()}-{suffix}@example.com",
                    "name": name,
                    "role": "agent",
                    "password": PASSWORD,
                },
            )
            assert member.status_code == 201, member.text
            team.members.append(member.json())
    return team


def test_manual_mode_leaves_new_tickets_unassigned(any_server: Server) -> None:
    team = make_team(any_server, "Ada", "Ben")
    assert team.assignee_of_next_ticket() is None


def test_round_robin_takes_turns_starting_with_the_never_assigned(any_server: Server) -> None:
    team = make_team(any_server, "Ada", "Ben", "Cy")
    team.set_mode("round_robin")
    picks = [team.assignee_of_next_ticket() for _ in range(4)]
    assert picks == ["Ada", "Ben", "Cy", "Ada"]
    # A member added later has never been assigned: they are next.
    with any_server.admin() as client:
        dee = client.post(
            f"/api/v1/workspaces/{team.workspace_id}/members",
            json={"email": f"dee-{secrets.token_hex(4)}@example.com", "name": "Dee"},
        )
    assert dee.status_code == 201
    assert [team.assignee_of_next_ticket() for _ in range(2)] == ["Dee", "Ben"]


def test_least_loaded_counts_open_tickets_and_breaks_ties_by_turn(any_server: Server) -> None:
    team = make_team(any_server, "Ada", "Ben")
    team.set_mode("least_loaded")
    first = team.escalate()
    assert team.ticket_for(first)["assignee"]["name"] == "Ada"
    assert team.assignee_of_next_ticket() == "Ben"  # Ada has one open ticket
    third = team.escalate()
    assert team.ticket_for(third)["assignee"]["name"] == "Ada"  # 1-1: Ada's turn is older
    # Ada's two tickets are solved: she holds none, Ben holds one.
    team.solve(first)
    team.solve(third)
    assert team.assignee_of_next_ticket() == "Ada"
    assert team.assignee_of_next_ticket() == "Ben"  # 1-1 again: Ben's turn is older now


def test_caps_and_away_members_are_skipped_and_nobody_left_means_unassigned(
    any_server: Server,
) -> None:
    team = make_team(any_server, "Ada", "Ben", "Cy")
    ada, ben, cy = team.members
    team.set_mode("round_robin")
    assert team.update(ada, max_open_tickets=1)["max_open_tickets"] == 1
    assert team.update(cy, max_open_tickets=0)["max_open_tickets"] == 0
    ben_token = team.token(ben)
    with any_server.client(ben_token) as client:
        away = client.put("/api/v1/inbox/me", json={"away": True})
        assert away.status_code == 200, away.text
        assert away.json()["away"] is True
        assert client.get("/api/v1/me").json()["away"] is True

    assert team.assignee_of_next_ticket() == "Ada"
    left_over = team.escalate()
    assert team.ticket_for(left_over)["assignee"] is None  # Ada full, Ben away, Cy capped at 0

    # Nobody takes the waiting ticket by themselves; a member assigns it by hand.
    ticket_id = team.ticket_for(left_over)["id"]
    with any_server.client(ben_token) as client:
        assigned = client.post(f"/api/v1/tickets/{ticket_id}/assign", json={"member_id": cy["id"]})
        assert assigned.status_code == 200
        assert assigned.json()["assignee"]["name"] == "Cy"
        assert client.put("/api/v1/inbox/me", json={"away": False}).json()["away"] is False
    assert team.assignee_of_next_ticket() == "Ben"
    # Lifting the cap (null) makes Ada available again; Cy is over his cap of 0.
    assert team.update(ada, max_open_tickets=None)["max_open_tickets"] is None
    assert team.assignee_of_next_ticket() == "Ada"
    with any_server.client(ben_token) as client:
        names = {m["name"]: m for m in client.get("/api/v1/members").json()}
    assert names["Cy"]["max_open_tickets"] == 0
    assert names["Ben"]["away"] is False


@pytest.mark.parametrize(
    ("path", "body", "field_name"),
    [
        ("workspace", {"assignment": "random"}, "assignment"),
        ("member", {"avatar_url": "javascript:alert(1)"}, "avatar_url"),
        ("member", {"avatar_url": "ftp://example.com/a.png"}, "avatar_url"),
        ("member", {"avatar_url": "https://"}, "avatar_url"),
        ("member", {"max_open_tickets": -1}, "max_open_tickets"),
        ("member", {"max_open_tickets": "many"}, "max_open_tickets"),
        ("member", {"away": "yes"}, "away"),
        ("member", {"role": "owner"}, "role"),
        ("member", {"disabled": "no"}, "disabled"),
    ],
)
def test_bad_settings_are_422_naming_the_field(
    any_server: Server, path: str, body: dict[str, Any], field_name: str
) -> None:
    team = make_team(any_server, "Ada")
    url = (
        f"/api/v1/workspaces/{team.workspace_id}"
        if path == "workspace"
        else f"/api/v1/members/{team.members[0]['id']}"
    )
    with any_server.admin() as client:
        before = [client.get("/api/v1/workspaces").json(), client.get("/api/v1/members").json()]
        response = client.patch(url, json=body)
        after = [client.get("/api/v1/workspaces").json(), client.get("/api/v1/members").json()]
    assert response.status_code == 422, response.text
    assert field_name in [str(part) for part in response.json()["detail"][0]["loc"]]
    assert before == after


def test_avatar_is_set_cleared_and_shown_as_the_reply_author(any_server: Server) -> None:
    team = make_team(any_server, "Ada")
    ada = team.members[0]
    url = "https://cdn.example.com/ada.png"
    assert team.update(ada, avatar_url=url)["avatar_url"] == url
    conversation_id = team.escalate()
    ticket = team.ticket_for(conversation_id)
    with any_server.client(team.token(ada)) as client:
        reply = client.post(f"/api/v1/tickets/{ticket['id']}/replies", json={"text": "Hi!"})
        assert reply.status_code == 201
        assert reply.json()["author"] == {"id": ada["id"], "name": "Ada", "avatar_url": url}
        view = client.get(f"/api/v1/conversations/{conversation_id}").json()
    assert view["messages"][-1]["author"]["avatar_url"] == url
    assert team.update(ada, avatar_url=None)["avatar_url"] is None
    assert team.update(ada, away=True)["avatar_url"] is None  # untouched keys stay


def test_only_admins_change_members_and_only_members_go_away(any_server: Server) -> None:
    team = make_team(any_server, "Ada", "Ben")
    ada, ben = team.members
    with any_server.client(team.token(ada)) as client:
        assert client.patch(f"/api/v1/members/{ben['id']}", json={"away": True}).status_code == 403
        assert (
            client.patch(
                f"/api/v1/workspaces/{team.workspace_id}", json={"assignment": "round_robin"}
            ).status_code
            == 403
        )
    with any_server.admin() as client:
        assert client.put("/api/v1/inbox/me", json={"away": True}).status_code == 403
        assert client.patch("/api/v1/members/nope", json={"away": True}).status_code == 404
    with any_server.client() as anonymous:
        assert anonymous.put("/api/v1/inbox/me", json={"away": True}).status_code == 401


def test_typing_reaches_the_visitor_while_the_ticket_is_open(any_server: Server) -> None:
    team = make_team(any_server, "Ada")
    ada = team.members[0]
    picture = "https://cdn.example.com/ada.png"
    team.update(ada, avatar_url=picture)
    conversation_id = team.escalate()
    ticket = team.ticket_for(conversation_id)
    visitor = any_server.client(team.visitor_tokens[conversation_id])
    with (
        visitor,
        any_server.client(team.token(ada)) as member,
        visitor.stream(
            "GET", f"/api/v1/conversations/{conversation_id}/events", params={"after": 0}
        ) as stream,
    ):
        assert member.post(f"/api/v1/tickets/{ticket['id']}/typing").status_code == 204
        events = EventReader(stream).until(lambda evs: any(e["event"] == "typing" for e in evs))
        typing = next(e for e in events if e["event"] == "typing")
        assert typing["data"] == {"author": {"name": "Ada", "avatar_url": picture}}
        assert member.post(f"/api/v1/tickets/{ticket['id']}/solve").status_code == 200
        solved = member.post(f"/api/v1/tickets/{ticket['id']}/typing")
        assert solved.status_code == 409
    with any_server.client(member_token(any_server)) as other_workspace:
        response = other_workspace.post(f"/api/v1/tickets/{ticket['id']}/typing")
        assert response.status_code == 404
    with any_server.client() as anonymous:
        response = anonymous.post(f"/api/v1/tickets/{ticket['id']}/typing")
        assert response.status_code == 401


# --- concurrency: several workers create tickets in one workspace at the same moment -------


@pytest.fixture(params=BACKENDS)
def api_only(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    server = start_server(request.param, tmp_path, "--no-worker")
    yield server
    stop_server(server)


def _start_worker(server: Server, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "handoff.cli.main", "worker"],
            # Quick polls: the workers pick up the released jobs at nearly the same moment.
            env={**server.env, "HANDOFF_WORKER_POLL_SECONDS": "0.05"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def _set_due(database_url: str, when: datetime) -> None:
    """Move every pending outbox job's due time (the API queues them; workers run them)."""
    db = Database(database_url)
    async with db.unit_of_work() as session:
        await session.execute(
            update(OutboxJob).where(OutboxJob.status == "pending").values(run_after=when)
        )
    await db.dispose()


def test_tickets_created_at_once_never_exceed_a_cap(api_only: Server, tmp_path: Path) -> None:
    team = make_team(api_only, "Ada", "Ben", "Cy", "Dee")
    team.set_mode("least_loaded")
    for member in team.members:
        team.update(member, max_open_tickets=2)
    conversations = [team.escalate() for _ in range(14)]
    # Hold the jobs back until every worker runs, then make them due at once, so the workers
    # create tickets side by side instead of one after another.
    asyncio.run(_set_due(api_only.database_url, utcnow() + timedelta(hours=1)))
    logs = [tmp_path / f"worker-{n}.log" for n in range(4)]
    workers = [_start_worker(api_only, log) for log in logs]
    try:
        wait_for(lambda: all("worker started" in log.read_text() for log in logs), timeout=60)
        asyncio.run(_set_due(api_only.database_url, utcnow()))
        wait_for(lambda: len(team.tickets()) == len(conversations), timeout=60)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=20)
    tickets = team.tickets()
    assert sorted(t["conversation_id"] for t in tickets) == sorted(conversations)
    load = Counter(t["assignee"]["name"] if t["assignee"] else None for t in tickets)
    assert load == {"Ada": 2, "Ben": 2, "Cy": 2, "Dee": 2, None: 6}
