"""The demo agent that `handoff serve --demo` creates on first start."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from handoff.domain import ESCALATE_TO_HUMAN, NATIVE
from handoff.service import admin, team
from handoff.service.auth import Principal
from handoff.service.channels import open_to_callers
from handoff.store import repositories as repo

FAQ = Path(__file__).resolve().parent.parent / "demo" / "faq.json"
DEMO_EMAIL = "sam@example.com"
DEMO_AGENT_NAME = "Acme Cloud Assistant"
WHEN_TO_USE = (
    "Use when the user asks for a person, is frustrated, repeats a question the assistant "
    "could not solve, or raises billing, refunds, security or account-access trouble. "
    "Creates a ticket in the inbox with the chat history, the user's details and a summary, "
    "notifies the support team and stops the AI from replying until the ticket is solved."
)
SERVICE_ADMIN = Principal(member=None, workspace_id=None, is_admin=True)


@dataclass(frozen=True, slots=True)
class DemoLogin:
    agent_id: str
    email: str
    password: str


async def ensure_demo(session: AsyncSession, data_dir: Path) -> DemoLogin | None:
    """Create the demo workspace, member, agent and action on a service with no agent yet.

    Returns the demo's login, or None when the service already has agents of its own.
    """
    credentials = data_dir / "demo-login.json"
    existing = await repo.agents(session, None)
    if existing:
        if not credentials.exists():
            return None
        saved = json.loads(credentials.read_text())
        return DemoLogin(
            agent_id=saved["agent_id"], email=saved["email"], password=saved["password"]
        )
    workspace = await admin.create_workspace(session, SERVICE_ADMIN, "Acme Cloud")
    password = secrets.token_urlsafe(9)
    member = await repo.member_by_email(session, DEMO_EMAIL)
    if member is None:
        await team.create_member(
            session,
            SERVICE_ADMIN,
            workspace_id=workspace.id,
            email=DEMO_EMAIL,
            name="Sam Rivera",
            role="admin",
            password=password,
        )
    agent = await admin.create_agent(
        session,
        SERVICE_ADMIN,
        workspace_id=workspace.id,
        name=DEMO_AGENT_NAME,
        channels=open_to_callers(),  # every channel a visitor can open without a connection
        greeting="Hi! I'm the Acme Cloud assistant. Ask me anything about your account.",
    )
    await admin.replace_knowledge(session, agent, demo_faq())
    await admin.save_action(
        session,
        agent,
        {
            "kind": ESCALATE_TO_HUMAN,
            "name": "Escalate_To_Human",
            "platform": NATIVE,
            "when_to_use": WHEN_TO_USE,
            "channels": open_to_callers(),
            "enabled": True,
        },
    )
    login = DemoLogin(agent_id=agent.id, email=DEMO_EMAIL, password=password)
    _save_login(credentials, login)
    return login


def demo_faq() -> list[tuple[str, str]]:
    """The demo agent's FAQ: what it answers from (and what `handoff eval` grounds on)."""
    return [(question, answer) for question, answer in json.loads(FAQ.read_text())]


def _load_login(path: Path) -> DemoLogin | None:
    if not path.exists():
        return None
    return DemoLogin(**json.loads(path.read_text()))


def _save_login(path: Path, login: DemoLogin) -> None:
    # The password is only needed to try the demo inbox; keep it readable by its owner only.
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(login)))
    path.chmod(0o600)
