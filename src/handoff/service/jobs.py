"""Outbox job handlers: what `create_ticket` and `add_message` do for each platform."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handoff.dispatch import JobHandler, LeasedJob, RetryPolicy, Worker
from handoff.domain import NATIVE, EscalationStatus
from handoff.service.conversations import publish_state
from handoff.service.inbox import create_native_ticket
from handoff.service.runtime import Handoff
from handoff.store.models import Agent, Conversation, Escalation


class CreateTicket:
    """Open the ticket for an escalation on its platform."""

    def __init__(self, hf: Handoff) -> None:
        self.hf = hf

    async def perform(self, job: LeasedJob) -> Any:
        async with self.hf.db.unit_of_work() as session:
            escalation = await session.get(Escalation, job.payload["escalation_id"])
            if escalation is None:
                raise LookupError(f"escalation {job.payload['escalation_id']} is gone")
            platform = escalation.platform
        if platform != NATIVE:
            raise LookupError(f"no connector for platform {platform!r}")
        return None  # the built-in inbox lives in our database: `apply` creates the ticket

    async def apply(self, session: AsyncSession, job: LeasedJob, result: Any) -> None:
        await create_native_ticket(self.hf, session, job.payload["escalation_id"])

    async def on_failed(self, session: AsyncSession, job: LeasedJob, error: str) -> None:
        escalation = await session.get(Escalation, job.payload["escalation_id"])
        if escalation is None:
            return
        escalation.status = EscalationStatus.FAILED
        escalation.last_error = error
        conversation = await session.get(Conversation, escalation.conversation_id)
        agent = await session.get(Agent, conversation.agent_id) if conversation else None
        if conversation is not None and agent is not None:
            await publish_state(session, conversation, agent, escalation)


def job_handlers(hf: Handoff) -> dict[str, JobHandler]:
    """Return the handler for every job kind the service enqueues."""
    return {"create_ticket": CreateTicket(hf)}


def build_worker(hf: Handoff) -> Worker:
    """Return an outbox worker wired to this runtime's database, handlers and settings."""
    settings = hf.settings
    return Worker(
        hf.db,
        job_handlers(hf),
        lease_seconds=settings.job_lease_seconds,
        poll_seconds=settings.worker_poll_seconds,
        retry=RetryPolicy(settings.retry_base_seconds, settings.retry_max_seconds),
        wait_for_work=hf.bus.wait,
        on_change=hf.bus.notify,
    )
