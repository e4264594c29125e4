"""Where a stretch's ticket lives, behind one interface: the built-in inbox or a helpdesk.

The inbox's tickets are rows in our database, written in the step's own transaction. An
external helpdesk is reached only through outbox jobs (`jobs.py`), so no network call runs
inside a transaction; `prepare` reads what its call needs and returns the call itself, to be
made once the session is closed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from handoff import domain
from handoff.domain import NATIVE, Channel, Contact, TicketPacket, TicketRef
from handoff.helpdesks import Helpdesk
from handoff.service.inbox import create_native_ticket, open_ticket_note
from handoff.service.integrations import connector_for, integration_for_platform
from handoff.service.lifecycle import transitions as lifecycle
from handoff.service.posting import publish_escalation, to_domain
from handoff.service.runtime import Handoff
from handoff.service.tickets import touch_ticket
from handoff.store import repositories as repo
from handoff.store.models import Conversation, Escalation, Message, OutboxJob

# Makes the ticket, given its summary, with no transaction open; None when `record` makes it.
TicketMaker = Callable[[str], Awaitable[TicketRef | None]]


def contact_of(conversation: Conversation) -> Contact:
    return Contact(
        name=conversation.contact_name,
        email=conversation.contact_email,
        phone=conversation.contact_phone,
        external_id=conversation.contact_external_id,
    )


async def connector_of(hf: Handoff, session: AsyncSession, escalation: Escalation) -> Helpdesk:
    """Build the connector of the helpdesk the escalation went to."""
    conversation = await session.get(Conversation, escalation.conversation_id)
    assert conversation is not None
    integration = await integration_for_platform(
        session, conversation.agent_id, escalation.platform
    )
    if integration is None:
        raise LookupError(f"{escalation.platform} is no longer connected to this agent")
    return connector_for(hf, integration)


async def integration_id_of(
    session: AsyncSession, conversation: Conversation, platform: str
) -> str | None:
    """The integration a stretch's helpdesk jobs call, which paces and caps them; None for
    the built-in inbox (or a helpdesk no longer connected: the job fails on its own)."""
    if platform == NATIVE:
        return None
    integration = await integration_for_platform(session, conversation.agent_id, platform)
    return None if integration is None else integration.id


async def build_packet(hf: Handoff, session: AsyncSession, escalation: Escalation) -> TicketPacket:
    """Gather everything the ticket carries: transcript, user details, reasons, summary."""
    conversation = await session.get(Conversation, escalation.conversation_id)
    assert conversation is not None
    messages = await repo.messages_of(session, conversation.id)
    return TicketPacket(
        idempotency_key=f"handoff-{escalation.id}",
        subject=escalation.subject,
        summary=escalation.summary,
        reasons=tuple(domain.Reason(r) for r in escalation.reasons),
        transcript=to_domain(messages),
        contact=contact_of(conversation),
        channel=Channel(conversation.channel),
        conversation_url=hf.conversation_url(conversation.id),
        tags=("handoff", *escalation.reasons),
    )


class TicketSink(Protocol):
    """What the handoff needs from wherever the team works on the ticket."""

    async def prepare(self, hf: Handoff, session: AsyncSession) -> TicketMaker:
        """Read what making the ticket needs, and return how to make it."""
        ...

    async def record(self, hf: Handoff, session: AsyncSession, made: TicketRef | None) -> None:
        """Store the ticket the maker made, in the job's completing transaction."""
        ...

    async def relay(
        self, session: AsyncSession, conversation: Conversation, message: Message
    ) -> None:
        """Put a user's message onto the ticket."""
        ...

    async def email_left(
        self, session: AsyncSession, conversation: Conversation, email: str
    ) -> None:
        """Tell the team the waiting user left an email address."""
        ...

    async def stretch_ended(
        self, session: AsyncSession, conversation: Conversation, handback: Message, note: str
    ) -> None:
        """Tell the team the stretch ended without them (`note` says how)."""
        ...


def sink_for(escalation: Escalation | None) -> TicketSink:
    """Return the sink of the stretch's ticket; before any escalation, the inbox's (which
    finds no ticket and does nothing)."""
    if escalation is None or escalation.platform == NATIVE:
        return InboxSink(escalation)
    return HelpdeskSink(escalation)


@dataclass(frozen=True, slots=True)
class InboxSink:
    """The built-in inbox: ticket rows and notes, written directly."""

    escalation: Escalation | None

    async def prepare(self, hf: Handoff, session: AsyncSession) -> TicketMaker:
        async def nothing_to_call(summary: str) -> None:
            return None  # the inbox lives in our database: `record` makes the ticket

        return nothing_to_call

    async def record(self, hf: Handoff, session: AsyncSession, made: TicketRef | None) -> None:
        assert self.escalation is not None
        await create_native_ticket(hf, session, self.escalation.id)

    async def relay(
        self, session: AsyncSession, conversation: Conversation, message: Message
    ) -> None:
        ticket = await repo.open_ticket_of(session, conversation.id)
        if ticket is not None:  # before the worker creates it, the transcript carries the message
            await touch_ticket(session, ticket, waiting=True)

    async def email_left(
        self, session: AsyncSession, conversation: Conversation, email: str
    ) -> None:
        await open_ticket_note(
            session, conversation, f"The user left an email address while waiting: {email}"
        )

    async def stretch_ended(
        self, session: AsyncSession, conversation: Conversation, handback: Message, note: str
    ) -> None:
        ticket = await repo.open_ticket_of(session, conversation.id)
        if ticket is None:  # not created yet: the outbox job creates it solved
            return
        await open_ticket_note(session, conversation, note)
        ticket.status = "solved"
        await touch_ticket(session, ticket, waiting=False)


@dataclass(frozen=True, slots=True)
class HelpdeskSink:
    """An external helpdesk: every call travels as an outbox job."""

    escalation: Escalation

    async def prepare(self, hf: Handoff, session: AsyncSession) -> TicketMaker:
        connector = await connector_of(hf, session, self.escalation)
        packet = await build_packet(hf, session, self.escalation)

        async def create(summary: str) -> TicketRef:
            return await connector.create_ticket(replace(packet, summary=summary))

        return create

    async def record(self, hf: Handoff, session: AsyncSession, made: TicketRef | None) -> None:
        assert made is not None
        self.escalation.ticket_id, self.escalation.ticket_url = made.id, made.url
        lifecycle.ticket_opened(self.escalation)
        await publish_escalation(session, self.escalation)

    async def relay(
        self, session: AsyncSession, conversation: Conversation, message: Message
    ) -> None:
        await self._add_message(session, conversation, message)

    async def email_left(
        self, session: AsyncSession, conversation: Conversation, email: str
    ) -> None:
        return None  # the ticket gets it with the relayed message and the contact sent with it

    async def stretch_ended(
        self, session: AsyncSession, conversation: Conversation, handback: Message, note: str
    ) -> None:
        # The ticket exists, or is still being made: the job waits for it.
        await self._add_message(session, conversation, handback, note)

    async def _add_message(
        self,
        session: AsyncSession,
        conversation: Conversation,
        message: Message,
        text: str | None = None,
    ) -> None:
        """Queue an `add_message` job; `text`, a notice for the team, replaces the message's
        own text while its id keeps the call idempotent."""
        payload: dict[str, object] = {"escalation_id": self.escalation.id, "message_id": message.id}
        if text is not None:
            payload["text"] = text
        await repo.add(
            session,
            OutboxJob(
                kind="add_message",
                payload=payload,
                integration_id=await integration_id_of(
                    session, conversation, self.escalation.platform
                ),
                idempotency_key=f"add_message:{message.id}",
            ),
        )
