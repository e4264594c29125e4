"""The admin API: workspaces, agents, members, integrations, actions and the outbox."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.service import admin
from handoff.service.auth import Principal, authenticate
from handoff.service.errors import Invalid, NotFound
from handoff.service.views import member_json
from handoff.store import repositories as repo
from handoff.store.models import Agent, OutboxJob, utcnow
from handoff.web.deps import HandoffDep, TokenDep
from handoff.web.schemas import (
    ActionIn,
    AgentIn,
    IntegrationIn,
    KnowledgeEntryIn,
    MemberIn,
    WorkspaceIn,
)

router = APIRouter(prefix="/api/v1", tags=["admin"])
JOB_STATUSES = ("pending", "running", "done", "failed")


async def _admin(session: AsyncSession, token: str | None) -> Principal:
    principal = await authenticate(session, token)
    admin.require_admin(principal)
    return principal


def _agent_json(agent: Agent) -> dict[str, Any]:
    return {
        "id": agent.id,
        "workspace_id": agent.workspace_id,
        "name": agent.name,
        "channels": list(agent.channels),
        "greeting": agent.greeting,
    }


@router.get("/workspaces")
async def list_workspaces(hf: HandoffDep, token: TokenDep) -> list[dict[str, Any]]:
    """Return the workspaces the caller administers."""
    async with hf.transaction() as session:
        principal = await _admin(session, token)
        rows = await repo.workspaces(session)
        return [{"id": w.id, "name": w.name} for w in rows if principal.can_see(w.id)]


@router.post("/workspaces", status_code=201)
async def create_workspace(body: WorkspaceIn, hf: HandoffDep, token: TokenDep) -> dict[str, Any]:
    """Create a workspace (service admin token only)."""
    async with hf.transaction() as session:
        workspace = await admin.create_workspace(session, await _admin(session, token), body.name)
        return {"id": workspace.id, "name": workspace.name}


@router.post("/workspaces/{workspace_id}/members", status_code=201)
async def create_member(
    workspace_id: str, body: MemberIn, hf: HandoffDep, token: TokenDep
) -> dict[str, Any]:
    """Add a human support agent (role `agent`) or an admin to a workspace."""
    async with hf.transaction() as session:
        member = await admin.create_member(
            session,
            await _admin(session, token),
            workspace_id=workspace_id,
            email=str(body.email),
            name=body.name,
            role=body.role,
            password=body.password,
        )
        return member_json(member)


@router.get("/agents")
async def list_agents(hf: HandoffDep, token: TokenDep) -> list[dict[str, Any]]:
    """Return the AI agents the caller administers."""
    async with hf.transaction() as session:
        principal = await _admin(session, token)
        return [_agent_json(a) for a in await repo.agents(session, principal.workspace_id)]


@router.post("/agents", status_code=201)
async def create_agent(body: AgentIn, hf: HandoffDep, token: TokenDep) -> dict[str, Any]:
    """Create an AI agent; the built-in inbox is connected to it from the start."""
    async with hf.transaction() as session:
        agent = await admin.create_agent(
            session,
            await _admin(session, token),
            workspace_id=body.workspace_id,
            name=body.name,
            channels=[c.value for c in body.channels],
            greeting=body.greeting,
        )
        return _agent_json(agent)


@router.get("/agents/{agent_id}")
async def get_agent(agent_id: str, hf: HandoffDep, token: TokenDep) -> dict[str, Any]:
    async with hf.transaction() as session:
        return _agent_json(await admin.get_agent(session, await _admin(session, token), agent_id))


@router.get("/agents/{agent_id}/knowledge")
async def get_knowledge(agent_id: str, hf: HandoffDep, token: TokenDep) -> list[dict[str, str]]:
    """Return the agent's knowledge base (question and answer pairs)."""
    async with hf.transaction() as session:
        agent = await admin.get_agent(session, await _admin(session, token), agent_id)
        rows = await repo.knowledge_of(session, agent.id)
        return [{"question": r.question, "answer": r.answer} for r in rows]


@router.put("/agents/{agent_id}/knowledge")
async def put_knowledge(
    agent_id: str, body: list[KnowledgeEntryIn], hf: HandoffDep, token: TokenDep
) -> list[dict[str, str]]:
    """Replace the agent's knowledge base."""
    async with hf.transaction() as session:
        agent = await admin.get_agent(session, await _admin(session, token), agent_id)
        rows = await admin.replace_knowledge(session, agent, [(e.question, e.answer) for e in body])
        return [{"question": r.question, "answer": r.answer} for r in rows]


@router.get("/agents/{agent_id}/integrations")
async def list_integrations(agent_id: str, hf: HandoffDep, token: TokenDep) -> list[dict[str, Any]]:
    """Return the helpdesks connected to the agent; `native` (the built-in inbox) is always one."""
    async with hf.transaction() as session:
        agent = await admin.get_agent(session, await _admin(session, token), agent_id)
        return [admin.integration_json(i) for i in await repo.integrations_of(session, agent.id)]


@router.post("/agents/{agent_id}/integrations", status_code=201)
async def connect_integration(
    agent_id: str, body: IntegrationIn, hf: HandoffDep, token: TokenDep
) -> dict[str, Any]:
    """Connect a helpdesk after checking its credentials with a real call."""
    async with hf.transaction() as session:
        agent = await admin.get_agent(session, await _admin(session, token), agent_id)
        return admin.integration_json(await admin.connect_platform(session, agent, body.platform))


@router.get("/agents/{agent_id}/actions")
async def list_actions(agent_id: str, hf: HandoffDep, token: TokenDep) -> list[dict[str, Any]]:
    """Return the agent's escalate actions."""
    async with hf.transaction() as session:
        agent = await admin.get_agent(session, await _admin(session, token), agent_id)
        return [admin.action_json(a) for a in await repo.actions_of(session, agent.id)]


@router.post("/agents/{agent_id}/actions", status_code=201)
async def create_action(
    agent_id: str, body: ActionIn, hf: HandoffDep, token: TokenDep
) -> dict[str, Any]:
    """Create an Escalate to Human action ("Save & enable" is `enabled: true`)."""
    async with hf.transaction() as session:
        agent = await admin.get_agent(session, await _admin(session, token), agent_id)
        action = await admin.save_action(session, agent, _action_fields(body))
        return admin.action_json(action)


@router.put("/actions/{action_id}")
async def update_action(
    action_id: str, body: ActionIn, hf: HandoffDep, token: TokenDep
) -> dict[str, Any]:
    """Replace an action's settings."""
    async with hf.transaction() as session:
        action, agent = await admin.get_action(session, await _admin(session, token), action_id)
        action = await admin.save_action(session, agent, _action_fields(body), existing=action)
        return admin.action_json(action)


@router.delete("/actions/{action_id}", status_code=204)
async def delete_action(action_id: str, hf: HandoffDep, token: TokenDep) -> Response:
    async with hf.transaction() as session:
        action, _ = await admin.get_action(session, await _admin(session, token), action_id)
        await session.delete(action)
    return Response(status_code=204)


def _action_fields(body: ActionIn) -> dict[str, Any]:
    fields = body.model_dump()
    fields["channels"] = [c.value for c in body.channels]
    return fields


def _job_json(job: OutboxJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "run_after": job.run_after.isoformat(),
        "last_error": job.last_error,
        "payload": job.payload,
        "created_at": job.created_at.isoformat(),
    }


@router.get("/jobs")
async def list_jobs(
    hf: HandoffDep,
    token: TokenDep,
    status: str | None = Query(None, description="pending, running, done or failed"),
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    """Return outbox jobs, newest first (service admin)."""
    async with hf.transaction() as session:
        principal = await _admin(session, token)
        if principal.workspace_id is not None:
            raise NotFound("jobs are visible to the service admin only")
        if status is not None and status not in JOB_STATUSES:
            raise Invalid("status", f"must be one of {', '.join(JOB_STATUSES)}")
        return [_job_json(j) for j in await repo.jobs(session, status, limit)]


@router.post("/jobs/{job_id}/retry")
async def retry_job(job_id: int, hf: HandoffDep, token: TokenDep) -> dict[str, Any]:
    """Put a failed job back in the queue with a fresh retry budget."""
    async with hf.transaction() as session:
        principal = await _admin(session, token)
        job = await session.get(OutboxJob, job_id)
        if job is None or principal.workspace_id is not None:
            raise NotFound("job not found")
        if job.status != "failed":
            raise Invalid("status", f"only failed jobs can be retried; this one is {job.status}")
        job.status, job.attempts, job.run_after, job.updated_at = "pending", 0, utcnow(), utcnow()
        await session.flush()
        return _job_json(job)
