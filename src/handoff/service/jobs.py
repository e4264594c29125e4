"""Outbox job handlers: what `create_ticket` and `add_message` do.

The ticket's sink (`sinks.py`) says how its ticket is made: the built-in inbox writes it in
the transaction that completes the job; an external helpdesk is called in `perform`, outside
any transaction, and its connector makes a repeated call idempotent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handoff import domain
from handoff.agent.llm import LLMUnavailable
from handoff.decide.llm import ticket_summary
from handoff.dispatch import JobHandler, LeasedJob, RetryPolicy, Worker
from handoff.domain import TicketRef
from handoff.helpdesks.errors import Unavailable
from handoff.service import delivery, events, inbound, integrations
from handoff.service.lifecycle import transitions as lifecycle
from handoff.service.posting import publish_escalation, to_domain
from handoff.service.runtime import Handoff
from handoff.service.sinks import connector_of, contact_of, sink_for
from handoff.service.timers import sweep
from handoff.store import repositories as repo
from handoff.store.models import Conversation, Escalation, Message, utcnow


@dataclass(frozen=True, slots=True)
class Created:
    """What creating a ticket gave: the platform's ticket (None for the inbox) and the summary."""

    ticket: TicketRef | None
    summary: str


class CreateTicket:
    """Open the ticket for an escalation on its platform."""

    def __init__(self, hf: Handoff) -> None:
        self.hf = hf

    async def perform(self, job: LeasedJob) -> Created:
        # Reading only: on SQLite a write transaction here would queue every writer behind it.
        async with self.hf.reading() as session:
            escalation = await session.get(Escalation, job.payload["escalation_id"])
            if escalation is None:
                raise LookupError(f"escalation {job.payload['escalation_id']} is gone")
            summary = escalation.summary
            asked = await self._summary_request(session, escalation, job)
            make = await sink_for(escalation).prepare(self.hf, session)
        if asked is not None:
            summary = await asked()
        return Created(await make(summary), summary)

    async def _summary_request(
        self, session: AsyncSession, escalation: Escalation, job: LeasedJob
    ) -> Callable[[], Awaitable[str]] | None:
        """Prepare the model's summary the escalation asked for, to run with no transaction."""
        up_to = job.payload.get("summarize_up_to")
        llm = self.hf.llm
        if up_to is None or llm is None:
            return None
        messages = await repo.messages_of(session, escalation.conversation_id)
        transcript = to_domain([m for m in messages if m.id <= int(up_to)])
        reasons = [domain.Reason(r) for r in escalation.reasons]
        extractive = escalation.summary

        async def ask() -> str:
            try:
                abstract = await llm.summarize(transcript, reasons)
            except LLMUnavailable:
                return extractive  # the extractive summary stands on its own
            return ticket_summary(extractive, abstract=abstract)

        return ask

    async def apply(self, session: AsyncSession, job: LeasedJob, result: Created) -> None:
        escalation_id = job.payload["escalation_id"]
        escalation = await session.get(Escalation, escalation_id)
        assert escalation is not None
        escalation.summary = result.summary
        await sink_for(escalation).record(self.hf, session, result.ticket)

    async def on_failed(self, session: AsyncSession, job: LeasedJob, error: str) -> None:
        escalation = await session.get(Escalation, job.payload["escalation_id"])
        if escalation is None:
            return
        lifecycle.ticket_failed(escalation, error)
        await publish_escalation(session, escalation)


class AddMessage:
    """Put a user's follow-up message onto the external ticket, as the customer."""

    def __init__(self, hf: Handoff) -> None:
        self.hf = hf

    async def perform(self, job: LeasedJob) -> None:
        async with self.hf.reading() as session:
            escalation = await session.get(Escalation, job.payload["escalation_id"])
            message = await session.get(Message, job.payload["message_id"])
            if escalation is None or message is None:
                raise LookupError("the escalation or the message is gone")
            if escalation.ticket_id is None or escalation.ticket_url is None:
                # The ticket is still being created: try again after it exists.
                raise Unavailable("the ticket is not created yet")
            conversation = await session.get(Conversation, escalation.conversation_id)
            assert conversation is not None
            connector = await connector_of(self.hf, session, escalation)
            ticket = TicketRef(escalation.ticket_id, escalation.ticket_url)
            text = to_domain([message])[0]
            if "text" in job.payload:
                # A notice for the team (the user went back to the AI) stored beside the
                # user-facing message whose id keeps the call idempotent.
                text = replace(text, text=str(job.payload["text"]))
            contact = contact_of(conversation)
        await connector.add_message(ticket, text, contact)

    async def apply(self, session: AsyncSession, job: LeasedJob, result: Any) -> None:
        return None

    async def on_failed(self, session: AsyncSession, job: LeasedJob, error: str) -> None:
        escalation = await session.get(Escalation, job.payload["escalation_id"])
        if escalation is not None:
            escalation.last_error = f"a follow-up message did not reach the ticket: {error}"


def job_handlers(hf: Handoff) -> dict[str, JobHandler]:
    """Return the handler for every job kind the service enqueues."""
    return {
        "create_ticket": CreateTicket(hf),
        "add_message": AddMessage(hf),
        **delivery.job_handlers(hf),
        **inbound.job_handlers(hf),
        **integrations.job_handlers(hf),
    }


async def housekeeping(hf: Handoff) -> None:
    """What every worker does between jobs: the conversation timers, then old events."""
    await sweep(hf)
    before = utcnow() - timedelta(hours=hf.settings.event_retention_hours)
    async with hf.transaction() as session:
        await events.prune(session, before=before)


def ordering_key(job: LeasedJob) -> str | None:
    """What a job must not overtake: one ticket's creation and follow-ups, one conversation's
    deliveries, what a channel's inbound job names (`inbound.py`: one WhatsApp user's
    messages). Other jobs run in any order."""
    payload = job.payload
    if "escalation_id" in payload:
        return f"ticket:{payload['escalation_id']}"
    if "conversation_id" in payload:
        return f"conversation:{payload['conversation_id']}"
    return inbound.ordering_key(job)


def build_worker(hf: Handoff) -> Worker:
    """Return an outbox worker wired to this runtime's database, handlers and settings."""
    settings = hf.settings
    return Worker(
        hf.db,
        job_handlers(hf),
        lease_seconds=settings.job_lease_seconds,
        poll_seconds=settings.worker_poll_seconds,
        retry=RetryPolicy(settings.retry_base_seconds, settings.retry_max_seconds),
        max_attempts=settings.job_max_attempts,
        concurrency=settings.worker_concurrency,
        ordered_by=ordering_key,
        # A hanging helpdesk holds its share of the slots at most (and at least one).
        per_integration=int(settings.worker_concurrency * settings.worker_integration_share),
        # Every commit in this process wakes it (a job enqueued), and so does every event
        # another process announces (an escalation comes with its ticket's job).
        wait_for_work=hf.bus.wait,
        # Every worker process also runs the conversation timers and prunes old events.
        tick=lambda: housekeeping(hf),
        tick_seconds=settings.timer_interval_seconds,
    )
