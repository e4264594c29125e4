"""Admin use cases: workspaces, agents, members, integrations and escalate actions."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.decide import THRESHOLD_NAMES
from handoff.domain import (
    DEFAULT_HANDOFF_MESSAGE,
    DEFAULT_SENSITIVE_TOPICS,
    DEFAULT_WAIT_TIMEOUT_SECONDS,
    ESCALATE_TO_HUMAN,
    MAX_INACTIVITY_TIMEOUT_SECONDS,
    MAX_WAIT_TIMEOUT_SECONDS,
    NATIVE,
    PLATFORMS,
    BusinessHours,
    Channel,
    HoursError,
    Language,
)
from handoff.service import widget
from handoff.service.assignment import MODES as ASSIGNMENT_MODES
from handoff.service.auth import Principal, authenticate, visible_row
from handoff.service.errors import Forbidden, Invalid, NotFound
from handoff.settings import Settings
from handoff.store import repositories as repo
from handoff.store.models import (
    Action,
    Agent,
    Integration,
    KnowledgeEntry,
    Workspace,
    utcnow,
)

ACTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
CHANNELS = tuple(c.value for c in Channel)


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("this needs an admin token")


async def authenticate_admin(session: AsyncSession, token: str | None) -> Principal:
    """Return the caller, who must hold an admin token (the service's or a workspace admin's)."""
    principal = await authenticate(session, token)
    require_admin(principal)
    return principal


def _check_channels(field: str, channels: Sequence[str], allowed: Sequence[str]) -> list[str]:
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        raise Invalid(field, f"unknown channel {unknown[0]!r}; known: {', '.join(CHANNELS)}")
    outside = [c for c in channels if c not in allowed]
    if outside:
        raise Invalid(
            field,
            f"channel {outside[0]!r} is not one of the agent's channels ({', '.join(allowed)})",
        )
    return list(dict.fromkeys(channels))


# --- workspaces and members -----------------------------------------------------------


async def create_workspace(session: AsyncSession, principal: Principal, name: str) -> Workspace:
    if principal.workspace_id is not None:
        raise Forbidden("only the service admin token creates workspaces")
    workspace = Workspace(name=name)
    await repo.add(session, workspace)
    return workspace


async def get_workspace(
    session: AsyncSession, principal: Principal, workspace_id: str
) -> Workspace:
    workspace = await session.get(Workspace, workspace_id)
    if workspace is None or not principal.can_see(workspace.id):
        raise NotFound("workspace not found")
    return workspace


def workspace_json(workspace: Workspace) -> dict[str, Any]:
    return {"id": workspace.id, "name": workspace.name, "assignment": workspace.assignment}


async def update_workspace(
    session: AsyncSession, principal: Principal, workspace_id: str, fields: dict[str, Any]
) -> Workspace:
    """Rename a workspace or change how its inbox assigns new tickets."""
    require_admin(principal)
    workspace = await get_workspace(session, principal, workspace_id)
    if "assignment" in fields:
        mode = fields["assignment"]
        if mode not in ASSIGNMENT_MODES:
            raise Invalid("assignment", f"must be one of {', '.join(ASSIGNMENT_MODES)}")
        workspace.assignment = mode
    if fields.get("name") is not None:
        workspace.name = fields["name"]
    await session.flush()
    return workspace


# --- agents and knowledge --------------------------------------------------------------


async def public_agent(session: AsyncSession, agent_id: str) -> Agent:
    """Load an agent for anyone who knows its id (the widget and the help page do)."""
    agent = await session.get(Agent, agent_id)
    if agent is None:
        raise NotFound("agent not found")
    return agent


def agent_json(agent: Agent) -> dict[str, Any]:
    return {
        "id": agent.id,
        "workspace_id": agent.workspace_id,
        "name": agent.name,
        "channels": list(agent.channels),
        "greeting": agent.greeting,
        "greetings": dict(agent.greetings),
        "widget": widget.public(agent),
    }


async def list_workspaces(session: AsyncSession, principal: Principal) -> list[dict[str, Any]]:
    """Return the workspaces the caller may see."""
    rows = await repo.workspaces(session)
    return [workspace_json(w) for w in rows if principal.can_see(w.id)]


async def list_agents(session: AsyncSession, principal: Principal) -> list[dict[str, Any]]:
    """Return the AI agents the caller may see."""
    return [agent_json(a) for a in await repo.agents(session, principal.workspace_id)]


async def knowledge(session: AsyncSession, agent: Agent) -> list[dict[str, str]]:
    """Return the agent's knowledge base as question and answer pairs."""
    rows = await repo.knowledge_of(session, agent.id)
    return [{"question": r.question, "answer": r.answer} for r in rows]


async def list_actions(session: AsyncSession, agent: Agent) -> list[dict[str, Any]]:
    return [action_json(a) for a in await repo.actions_of(session, agent.id)]


async def get_agent(session: AsyncSession, principal: Principal, agent_id: str) -> Agent:
    """Load an agent the caller may see."""
    return await visible_row(session, principal, Agent, agent_id, "agent")


async def agent_for_admin(session: AsyncSession, token: str | None, agent_id: str) -> Agent:
    """Return the agent for an admin token that may manage it."""
    return await get_agent(session, await authenticate_admin(session, token), agent_id)


async def create_agent(
    session: AsyncSession,
    principal: Principal,
    *,
    workspace_id: str,
    name: str,
    channels: Sequence[str],
    greeting: str | None,
    greetings: Mapping[str, str] | None = None,
) -> Agent:
    """Create an AI agent; the built-in inbox is connected from the start."""
    require_admin(principal)
    await get_workspace(session, principal, workspace_id)
    agent = Agent(
        workspace_id=workspace_id,
        name=name,
        channels=_check_channels("channels", channels, CHANNELS),
        greeting=greeting,
        greetings=_check_texts("greetings", greetings),
    )
    await repo.add(session, agent)
    await repo.add(session, Integration(agent_id=agent.id, platform=NATIVE, status="connected"))
    return agent


async def update_agent(
    session: AsyncSession, principal: Principal, agent_id: str, fields: dict[str, Any]
) -> Agent:
    """Rename an agent or change its greeting; only the keys present change. An empty
    `greeting` (or null) removes it; `greetings` replaces the per-language ones."""
    agent = await get_agent(session, principal, agent_id)
    require_admin(principal)
    if fields.get("name") is not None:
        agent.name = fields["name"]
    if "greeting" in fields:
        agent.greeting = (fields["greeting"] or "").strip() or None
    if "greetings" in fields:
        agent.greetings = _check_texts("greetings", fields["greetings"])
    await session.flush()
    return agent


def check_knowledge(entries: Sequence[tuple[str, str]], settings: Settings) -> None:
    """Refuse a knowledge base over the configured limits, naming the entry and field."""
    if len(entries) > settings.knowledge_max_entries:
        raise Invalid(
            "knowledge",
            f"at most {settings.knowledge_max_entries} entries (HANDOFF_KNOWLEDGE_MAX_ENTRIES); "
            f"got {len(entries)}",
        )
    for index, (question, answer) in enumerate(entries):
        for field, text, most in (
            ("question", question, settings.knowledge_max_question_chars),
            ("answer", answer, settings.knowledge_max_answer_chars),
        ):
            if len(text) > most:
                raise Invalid(
                    f"knowledge[{index}].{field}",
                    f"at most {most} characters (HANDOFF_KNOWLEDGE_MAX_{field.upper()}_CHARS); "
                    f"got {len(text)}",
                )


async def replace_knowledge(
    session: AsyncSession, agent: Agent, entries: Sequence[tuple[str, str]]
) -> str:
    """Replace the agent's entries; return the new version (see `repo.knowledge_version`)."""
    await repo.delete_knowledge(session, agent.id)
    rows = [KnowledgeEntry(agent_id=agent.id, question=q, answer=a) for q, a in entries]
    await repo.add(session, *rows)
    return await repo.knowledge_version(session, agent.id)


# --- integrations ----------------------------------------------------------------------


async def connected_platforms(session: AsyncSession, agent_id: str) -> list[str]:
    rows = await repo.integrations_of(session, agent_id)
    return [row.platform for row in rows if row.status == "connected"]


# --- actions ---------------------------------------------------------------------------


def action_json(action: Action) -> dict[str, Any]:
    return {
        "id": action.id,
        "agent_id": action.agent_id,
        "kind": action.kind,
        "name": action.name,
        "platform": action.platform,
        "when_to_use": action.when_to_use,
        "channels": list(action.channels),
        "enabled": action.enabled,
        "handoff_message": action.handoff_message,
        "ask_for_email": action.ask_for_email,
        "sensitive_topics": list(action.sensitive_topics),
        "trigger_examples": list(action.trigger_examples),
        "thresholds": dict(action.thresholds),
        "alternative_message": action.alternative_message,
        "handoff_messages": dict(action.handoff_messages),
        "alternative_messages": dict(action.alternative_messages),
        "business_hours": action.business_hours,
        "wait_timeout_seconds": action.wait_timeout_seconds,
        "inactivity_timeout_seconds": action.inactivity_timeout_seconds,
        "created_at": action.created_at.isoformat(),
        "updated_at": action.updated_at.isoformat(),
    }


LANGUAGES = frozenset(language.value for language in Language)


def _check_texts(field: str, texts: Mapping[str, str] | None) -> dict[str, str]:
    """Return an admin's texts by language, or raise Invalid naming the first bad one."""
    checked: dict[str, str] = {}
    for language, text in (texts or {}).items():
        if language not in LANGUAGES:
            known = ", ".join(Language)
            raise Invalid(f"{field}.{language}", f"unknown language; known: {known}")
        if not isinstance(text, str) or not text.strip():
            raise Invalid(f"{field}.{language}", "must be a non-empty text")
        checked[str(language)] = text.strip()
    return checked


async def save_action(
    session: AsyncSession,
    agent: Agent,
    fields: dict[str, Any],
    existing: Action | None = None,
) -> Action:
    """Validate and store an escalate action (create, or replace `existing`)."""
    kind = fields.get("kind", ESCALATE_TO_HUMAN)
    if kind != ESCALATE_TO_HUMAN:
        raise Invalid("kind", f"only {ESCALATE_TO_HUMAN!r} is supported")
    name = fields["name"]
    if not ACTION_NAME.match(name):
        raise Invalid(
            "name",
            "must start with a letter and use only letters, digits and underscores "
            "(at most 64), like Escalate_To_Human",
        )
    same_name = await repo.action_named(session, agent.id, name)
    if same_name is not None and same_name is not existing:
        raise Invalid("name", f"this agent already has an action named {name!r}")
    platform = fields["platform"]
    if platform not in PLATFORMS:
        raise Invalid("platform", f"unknown platform {platform!r}; known: {', '.join(PLATFORMS)}")
    connected = await connected_platforms(session, agent.id)
    if platform not in connected:
        raise Invalid(
            "platform",
            f"{platform!r} is not connected to this agent; connected: {', '.join(connected)}",
        )
    channels = _check_channels("channels", fields["channels"], agent.channels)
    if not channels:
        raise Invalid("channels", "select at least one channel")
    action = existing or Action(agent_id=agent.id, kind=kind)
    action.name = name
    action.platform = platform
    action.when_to_use = fields["when_to_use"]
    action.channels = channels
    action.enabled = fields.get("enabled", False)
    action.handoff_message = fields.get("handoff_message") or DEFAULT_HANDOFF_MESSAGE
    action.ask_for_email = fields.get("ask_for_email", True)
    topics = fields.get("sensitive_topics")
    action.sensitive_topics = list(DEFAULT_SENSITIVE_TOPICS if topics is None else topics)
    action.trigger_examples = list(fields.get("trigger_examples") or [])
    action.thresholds = _check_thresholds(fields.get("thresholds") or {})
    action.alternative_message = fields.get("alternative_message") or None
    action.handoff_messages = _check_texts("handoff_messages", fields.get("handoff_messages"))
    action.alternative_messages = _check_texts(
        "alternative_messages", fields.get("alternative_messages")
    )
    action.business_hours = _check_business_hours(fields.get("business_hours"))
    action.wait_timeout_seconds = _check_timeout(
        "wait_timeout_seconds",
        fields.get("wait_timeout_seconds", DEFAULT_WAIT_TIMEOUT_SECONDS),
        MAX_WAIT_TIMEOUT_SECONDS,
    )
    action.inactivity_timeout_seconds = _check_timeout(
        "inactivity_timeout_seconds",
        fields.get("inactivity_timeout_seconds"),
        MAX_INACTIVITY_TIMEOUT_SECONDS,
    )
    action.updated_at = utcnow()
    try:
        await repo.add(session, action)
    except IntegrityError as error:  # a concurrent save took the name first
        raise Invalid("name", f"this agent already has an action named {name!r}") from error
    return action


def _check_business_hours(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """Validate business hours and return their canonical form; None means always open."""
    if data is None:
        return None
    try:
        return BusinessHours.parse(data).to_json()
    except HoursError as error:
        where = "" if error.where == "business_hours" else f"{error.where}: "
        raise Invalid("business_hours", f"{where}{error.problem}") from None


def _check_timeout(field: str, value: object, ceiling: int) -> int | None:
    """Accept whole seconds from 0 (off) to `ceiling`; None is off too."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(field, "must be a whole number of seconds, or null to turn it off")
    if not 0 <= value <= ceiling:
        raise Invalid(field, f"must be between 0 (off) and {ceiling} seconds")
    return value


def _check_thresholds(overrides: dict[str, float]) -> dict[str, float]:
    unknown = sorted(set(overrides) - set(THRESHOLD_NAMES))
    if unknown:
        raise Invalid(
            "thresholds", f"unknown threshold {unknown[0]!r}; known: {', '.join(THRESHOLD_NAMES)}"
        )
    for name, value in overrides.items():
        if name == "low_confidence_run":
            if value != int(value) or not 1 <= value <= 10:
                raise Invalid("thresholds", "low_confidence_run must be a whole number, 1 to 10")
        elif not 0.0 <= value <= 1.0:
            raise Invalid("thresholds", f"{name} must be between 0 and 1")
    return dict(overrides)


async def get_action(
    session: AsyncSession, principal: Principal, action_id: str
) -> tuple[Action, Agent]:
    action = await session.get(Action, action_id)
    if action is None:
        raise NotFound("action not found")
    agent = await get_agent(session, principal, action.agent_id)
    return action, agent


async def delete_action(session: AsyncSession, principal: Principal, action_id: str) -> None:
    action, _ = await get_action(session, principal, action_id)
    await session.delete(action)
