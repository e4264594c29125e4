"""A busy inbox written straight into a server's database: hundreds of tickets in seconds,
where escalating each through the chat API would take minutes."""

from __future__ import annotations

import asyncio
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from handoff.domain import EscalationStatus, Owner, Role
from handoff.store import repositories as repo
from handoff.store.db import Database
from handoff.store.models import Conversation, Escalation, Message, Ticket, new_id, utcnow
from tests.conftest import Server

CHANNELS = ("widget", "help_page", "api", "whatsapp")


@dataclass(frozen=True)
class Seeded:
    """Ticket `i` of the seed: solved when i % 5 == 4; otherwise waiting (nobody answered)
    when i is even, answered when odd. Assigned to the member when i % 3 == 0. Its messages
    mention a refund when i % 3 == 0; ticket 0, the oldest, alone names Zanzibar."""

    i: int
    id: str

    @property
    def solved(self) -> bool:
        return self.i % 5 == 4

    @property
    def waiting(self) -> bool:
        return not self.solved and self.i % 2 == 0

    @property
    def mine(self) -> bool:
        return self.i % 3 == 0

    @property
    def channel(self) -> str:
        return CHANNELS[self.i % len(CHANNELS)]

    @property
    def reason(self) -> str:
        return "sensitive_topic" if self.i % 7 == 0 else "explicit_request"


@dataclass
class Busy:
    """A workspace of its own, so that counts and pages hold its tickets alone; its member
    signs in with `email` and `password`, or uses `token`."""

    server: Server
    workspace_id: str
    agent_id: str
    member_id: str
    email: str
    password: str
    token: str
    tickets: list[Seeded]

    def client(self) -> httpx.Client:
        return self.server.client(self.token)

    def ids(self, keep: Any = lambda t: True) -> list[str]:
        return [t.id for t in self.tickets if keep(t)]


def _user_text(i: int) -> str:
    if i == 0:
        return "My parcel to Zanzibar never came, I want a refund"
    if i == 1:
        return "Je voudrais un remboursement rapide, s'il vous plaît"
    return f"Where is order {i}?" + (" I want a refund." if i % 3 == 0 else "")


async def _write_tickets(
    url: str, workspace_id: str, agent_id: str, member_id: str, numbers: range, start: datetime
) -> list[str]:
    """Write one ticket per number, a minute apart from `start`, as the seed describes."""
    rows: list[object] = []
    ids = []
    for i in numbers:
        seed = Seeded(i, "")
        at = start + timedelta(minutes=i)
        # Ids chosen here rather than at flush: one flush writes every row at once.
        conversation_id, escalation_id, ticket_id = new_id(), new_id(), new_id()
        rows.append(
            Conversation(
                id=conversation_id,
                agent_id=agent_id,
                channel=seed.channel,
                owner=Owner.BOT if seed.solved else Owner.HUMAN,
                token_hash=secrets.token_hex(32),
                contact_name=f"Customer {i}",
                contact_email=f"customer{i}@example.com",
                stretch=1,
                created_at=at,
            )
        )
        rows.append(
            Escalation(
                id=escalation_id,
                conversation_id=conversation_id,
                stretch=1,
                platform="native",
                status=EscalationStatus.SOLVED if seed.solved else EscalationStatus.OPEN,
                reasons=[seed.reason],
                subject=f"Order question {i}",
                summary="The user asked for a person.",
                first_reply_at=None if seed.waiting or seed.solved else at,
                created_at=at,
            )
        )
        rows.append(Message(conversation_id=conversation_id, role=Role.USER, text=_user_text(i)))
        if not seed.waiting and not seed.solved:
            rows.append(
                Message(conversation_id=conversation_id, role=Role.HUMAN_AGENT, text="On it.")
            )
        rows.append(
            Ticket(
                id=ticket_id,
                escalation_id=escalation_id,
                workspace_id=workspace_id,
                conversation_id=conversation_id,
                status="solved" if seed.solved else "open",
                waiting=seed.waiting,
                assignee_id=member_id if seed.mine else None,
                created_at=at + timedelta(seconds=2),
                updated_at=at + timedelta(seconds=2),
            )
        )
        ids.append(ticket_id)
    db = Database(url)
    try:
        async with db.unit_of_work() as session:
            await repo.add(session, *rows)
    finally:
        await db.dispose()
    return ids


def busy_inbox(server: Server, count: int) -> Busy:
    """Make a workspace with a member and an agent, and write `count` tickets into it, a
    minute apart, the oldest three days ago."""
    email, password = f"lister-{secrets.token_hex(4)}@example.com", "a long password"
    with server.admin() as admin:
        workspace = admin.post("/api/v1/workspaces", json={"name": "Busy"}).json()
        member = admin.post(
            f"/api/v1/workspaces/{workspace['id']}/members",
            json={"email": email, "name": "Lee Lister", "password": password},
        ).json()
        agent = admin.post(
            "/api/v1/agents",
            json={"workspace_id": workspace["id"], "name": "Bot", "channels": list(CHANNELS)},
        ).json()
    with server.client() as client:
        login = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    busy = Busy(
        server,
        workspace["id"],
        agent["id"],
        member["id"],
        email,
        password,
        login.json()["token"],
        [],
    )
    ids = add_tickets(busy, range(count), utcnow() - timedelta(days=3))
    busy.tickets = [Seeded(i, id) for i, id in enumerate(ids)]
    return busy


def add_tickets(busy: Busy, numbers: range, start: datetime | None = None) -> list[str]:
    """Write the tickets of these seed numbers; by default newer than every other, about now."""
    at = start or utcnow() - timedelta(minutes=numbers.start)
    write = _write_tickets(
        busy.server.database_url, busy.workspace_id, busy.agent_id, busy.member_id, numbers, at
    )
    # A thread of its own: a browser test's thread already runs Playwright's event loop.
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, write).result()
