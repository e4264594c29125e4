"""The admin API: workspaces, agents, members, integrations, actions and the outbox."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from handoff.service import admin, integrations, outbox, team, widget
from handoff.service.views import member_json
from handoff.web.deps import AdminAuth, HandoffDep, Session, TokenDep
from handoff.web.responses import (
    ActionOut,
    AgentOut,
    IntegrationOut,
    JobOut,
    MemberOut,
    MemberWithPasswordOut,
    RetriedOut,
    WidgetOut,
    WorkspaceOut,
)
from handoff.web.schemas import (
    ActionIn,
    AgentIn,
    AgentUpdateIn,
    IntegrationIn,
    KnowledgeEntryIn,
    MemberIn,
    MemberUpdateIn,
    PasswordIn,
    RateLimitIn,
    WidgetIn,
    WorkspaceIn,
    WorkspaceUpdateIn,
)

router = APIRouter(prefix="/api/v1", tags=["admin"])
# The knowledge base upload is larger than other admin bodies: the app includes this router
# with a body limit of its own (HANDOFF_KNOWLEDGE_MAX_BODY_BYTES).
knowledge_router = APIRouter(prefix="/api/v1", tags=["admin"])

# Numeric ids are 64-bit in both databases: a larger one is refused at the edge.
MAX_ID = 2**63 - 1


@router.get("/workspaces", response_model=list[WorkspaceOut])
async def list_workspaces(session: Session, principal: AdminAuth) -> list[dict[str, Any]]:
    """Return the workspaces the caller administers."""
    return await admin.list_workspaces(session, principal)


@router.post("/workspaces", status_code=201, response_model=WorkspaceOut)
async def create_workspace(
    body: WorkspaceIn, session: Session, principal: AdminAuth
) -> dict[str, Any]:
    """Create a workspace (service admin token only)."""
    workspace = await admin.create_workspace(session, principal, body.name)
    return admin.workspace_json(workspace)


@router.post(
    "/workspaces/{workspace_id}/members", status_code=201, response_model=MemberWithPasswordOut
)
async def create_member(
    workspace_id: str, body: MemberIn, session: Session, principal: AdminAuth
) -> dict[str, Any]:
    """Add a human support agent (role `agent`) or an admin to a workspace; without a
    `password`, one is generated and returned this once, for the admin to hand over."""
    member, generated = await team.create_member(
        session,
        principal,
        workspace_id=workspace_id,
        email=str(body.email),
        name=body.name,
        role=body.role,
        password=body.password,
    )
    return member_json(member) | {"password": generated}


@router.patch("/workspaces/{workspace_id}", response_model=WorkspaceOut)
async def update_workspace(
    workspace_id: str, body: WorkspaceUpdateIn, session: Session, principal: AdminAuth
) -> dict[str, Any]:
    """Rename a workspace or set how its inbox assigns new tickets (`assignment`)."""
    changes = body.model_dump(exclude_unset=True)
    workspace = await admin.update_workspace(session, principal, workspace_id, changes)
    return admin.workspace_json(workspace)


@router.patch("/members/{member_id}", response_model=MemberOut)
async def update_member(
    member_id: str, body: MemberUpdateIn, session: Session, principal: AdminAuth
) -> dict[str, Any]:
    """Set a member's avatar, away status, cap on automatically assigned open tickets or
    role, or disable them: they cannot sign in, their sessions end, their open tickets go
    back to Unassigned."""
    changes = body.model_dump(exclude_unset=True)
    member = await team.update_member(session, principal, member_id, changes)
    return member_json(member)


@router.post("/members/{member_id}/password", response_model=MemberWithPasswordOut)
async def reset_password(
    member_id: str, body: PasswordIn, session: Session, principal: AdminAuth
) -> dict[str, Any]:
    """Give a member a new password; without one, it is generated and returned this once.
    Every session the member had ends."""
    member, generated = await team.reset_password(session, principal, member_id, body.password)
    return member_json(member) | {"password": generated}


@router.get("/agents", response_model=list[AgentOut])
async def list_agents(session: Session, principal: AdminAuth) -> list[dict[str, Any]]:
    """Return the AI agents the caller administers."""
    return await admin.list_agents(session, principal)


@router.post("/agents", status_code=201, response_model=AgentOut)
async def create_agent(body: AgentIn, session: Session, principal: AdminAuth) -> dict[str, Any]:
    """Create an AI agent; the built-in inbox is connected to it from the start."""
    agent = await admin.create_agent(
        session,
        principal,
        workspace_id=body.workspace_id,
        name=body.name,
        channels=[c.value for c in body.channels],
        greeting=body.greeting,
        greetings=body.model_dump(mode="json")["greetings"],
    )
    return admin.agent_json(agent)


@router.get("/agents/{agent_id}", response_model=AgentOut)
async def get_agent(agent_id: str, session: Session, principal: AdminAuth) -> dict[str, Any]:
    return admin.agent_json(await admin.get_agent(session, principal, agent_id))


@router.patch("/agents/{agent_id}", response_model=AgentOut)
async def update_agent(
    agent_id: str, body: AgentUpdateIn, session: Session, principal: AdminAuth
) -> dict[str, Any]:
    """Rename the agent or change its greeting, in one language or several."""
    changes = body.model_dump(exclude_unset=True)
    return admin.agent_json(await admin.update_agent(session, principal, agent_id, changes))


@router.get("/agents/{agent_id}/widget", tags=["widget"], response_model=WidgetOut)
async def get_widget(agent_id: str, hf: HandoffDep, response: Response) -> dict[str, Any]:
    """Return the widget's colours and texts; public, the widget reads it on any site."""
    async with hf.reading() as session:
        agent = await admin.public_agent(session, agent_id)
    response.headers["Cache-Control"] = "public, max-age=60"
    return widget.public(agent)


@router.put("/agents/{agent_id}/widget", tags=["widget"], response_model=WidgetOut)
async def put_widget(
    agent_id: str, body: WidgetIn, session: Session, principal: AdminAuth
) -> dict[str, Any]:
    """Replace the widget's colours and texts; omitted ones go back to the defaults."""
    agent = await admin.get_agent(session, principal, agent_id)
    return widget.save(agent, body.model_dump(mode="json", exclude_none=True))


@knowledge_router.get("/agents/{agent_id}/knowledge")
async def get_knowledge(
    agent_id: str, session: Session, principal: AdminAuth
) -> list[dict[str, str]]:
    """Return the agent's knowledge base (question and answer pairs)."""
    return await admin.knowledge(session, await admin.get_agent(session, principal, agent_id))


@knowledge_router.put("/agents/{agent_id}/knowledge")
async def put_knowledge(
    agent_id: str, body: list[KnowledgeEntryIn], hf: HandoffDep, token: TokenDep
) -> list[dict[str, str]]:
    """Replace the agent's knowledge base: at most HANDOFF_KNOWLEDGE_MAX_ENTRIES entries
    (default 1000), each question at most HANDOFF_KNOWLEDGE_MAX_QUESTION_CHARS characters
    (default 1000) and each answer at most HANDOFF_KNOWLEDGE_MAX_ANSWER_CHARS (default 5000);
    more is refused with a 422 naming the field (`knowledge`, `knowledge[3].answer`).

    The new entries are embedded in the background: until they are ready, the previous
    knowledge base keeps answering.
    """
    entries = [(e.question, e.answer) for e in body]
    admin.check_knowledge(entries, hf.settings)
    # Its own transaction, not `Session`: the embedding starts once the new entries are stored.
    async with hf.transaction() as session:
        agent = await admin.agent_for_admin(session, token, agent_id)
        version = await admin.replace_knowledge(session, agent, entries)
        stored = await admin.knowledge(session, agent)
    await hf.knowledge.changed(agent_id, version, [(e["question"], e["answer"]) for e in stored])
    return stored


@router.get(
    "/agents/{agent_id}/integrations",
    response_model=list[IntegrationOut],
    response_model_exclude_unset=True,
)
async def list_integrations(
    agent_id: str, hf: HandoffDep, session: Session, principal: AdminAuth
) -> list[dict[str, Any]]:
    """Return the helpdesks connected to the agent; `native` (the built-in inbox) is always one.

    Each external one carries its webhook URL and the steps to set it up on the platform.
    """
    agent = await admin.get_agent(session, principal, agent_id)
    return await integrations.list_integrations(hf, session, agent)


@router.post(
    "/agents/{agent_id}/integrations",
    status_code=201,
    response_model=IntegrationOut,
    response_model_exclude_unset=True,
)
async def connect_integration(
    agent_id: str, body: IntegrationIn, hf: HandoffDep, token: TokenDep
) -> dict[str, Any]:
    """Connect (or reconnect) a helpdesk after checking its credentials with a real call."""
    integration = await integrations.connect(hf, token, agent_id, body.platform, body.credentials)
    return integrations.integration_json(hf, integration)


@router.post(
    "/agents/{agent_id}/integrations/{integration_id}/retry",
    response_model=RetriedOut,
    responses={404: {"description": "`unknown_integration`: no such helpdesk of this agent."}},
)
async def retry_integration(
    agent_id: str, integration_id: str, session: Session, principal: AdminAuth
) -> dict[str, Any]:
    """Retry all of a helpdesk's stalled jobs now: the parked ones, with a fresh retry
    budget, and those backing off. Asking again retries nothing more."""
    return await integrations.retry_all(session, principal, agent_id, integration_id)


@router.put(
    "/agents/{agent_id}/integrations/{platform}/rate-limit",
    response_model=IntegrationOut,
    response_model_exclude_unset=True,
)
async def set_integration_rate_limit(
    agent_id: str,
    platform: str,
    body: RateLimitIn,
    hf: HandoffDep,
    session: Session,
    principal: AdminAuth,
) -> dict[str, Any]:
    """Keep the outbox's calls to this helpdesk under your plan's API limit.

    Without it the outbox keeps to the platform's documented limit for its lowest plan with
    the API (`rate_limit.source` is `documented`); the generic webhook has none.
    """
    agent = await admin.get_agent(session, principal, agent_id)
    limit = (body.calls, body.per_seconds)
    integration = await integrations.set_rate_limit(session, agent, platform, limit)
    return integrations.integration_json(hf, integration)


@router.delete(
    "/agents/{agent_id}/integrations/{platform}/rate-limit",
    response_model=IntegrationOut,
    response_model_exclude_unset=True,
)
async def reset_integration_rate_limit(
    agent_id: str, platform: str, hf: HandoffDep, session: Session, principal: AdminAuth
) -> dict[str, Any]:
    """Go back to the platform's documented API limit."""
    agent = await admin.get_agent(session, principal, agent_id)
    integration = await integrations.set_rate_limit(session, agent, platform, None)
    return integrations.integration_json(hf, integration)


@router.get("/agents/{agent_id}/integrations/{platform}/options")
async def integration_options(
    agent_id: str, platform: str, hf: HandoffDep, token: TokenDep
) -> dict[str, list[dict[str, str]]]:
    """Return the platform's live lists for its connect form (ticket types, groups, ...).

    Connect first, pick from these, then reconnect with the chosen values.
    """
    return await integrations.platform_options(hf, token, agent_id, platform)


@router.get("/agents/{agent_id}/actions", response_model=list[ActionOut])
async def list_actions(
    agent_id: str, session: Session, principal: AdminAuth
) -> list[dict[str, Any]]:
    """Return the agent's escalate actions."""
    return await admin.list_actions(session, await admin.get_agent(session, principal, agent_id))


@router.post("/agents/{agent_id}/actions", status_code=201, response_model=ActionOut)
async def create_action(
    agent_id: str, body: ActionIn, session: Session, principal: AdminAuth
) -> dict[str, Any]:
    """Create an Escalate to Human action ("Save & enable" is `enabled: true`)."""
    agent = await admin.get_agent(session, principal, agent_id)
    action = await admin.save_action(session, agent, _action_fields(body))
    return admin.action_json(action)


@router.put("/actions/{action_id}", response_model=ActionOut)
async def update_action(
    action_id: str, body: ActionIn, session: Session, principal: AdminAuth
) -> dict[str, Any]:
    """Replace an action's settings."""
    action, agent = await admin.get_action(session, principal, action_id)
    action = await admin.save_action(session, agent, _action_fields(body), existing=action)
    return admin.action_json(action)


@router.delete("/actions/{action_id}", status_code=204)
async def delete_action(action_id: str, session: Session, principal: AdminAuth) -> Response:
    await admin.delete_action(session, principal, action_id)
    return Response(status_code=204)


def _action_fields(body: ActionIn) -> dict[str, Any]:
    fields = body.model_dump()
    fields["channels"] = [c.value for c in body.channels]
    return fields


@router.get("/jobs", response_model=list[JobOut])
async def list_jobs(
    session: Session,
    principal: AdminAuth,
    status: str | None = Query(None, description="pending, running, done or failed"),
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    """Return outbox jobs, newest first (service admin)."""
    return await outbox.list_jobs(session, principal, status, limit)


@router.post("/jobs/{job_id}/retry", response_model=JobOut)
async def retry_job(
    job_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The job's id.")],
    session: Session,
    principal: AdminAuth,
) -> dict[str, Any]:
    """Put a failed job back in the queue with a fresh retry budget."""
    return await outbox.retry_job(session, principal, job_id)
