"""Our side of a conversation, sent to a user who reads it outside our live stream.

On a live channel (the widget, the help page, API clients) the user reads the message event
posting publishes, and nothing more goes out. On a channel with an outside API (a WhatsApp
number), every message our side posts queues one delivery job, in the message's transaction,
whose kind names the channel (`whatsapp_send`); `DeliverMessage` runs it with no transaction
open, through the channel's adapter (`handoff.channels.SENDERS`). Posting looks the channel up
in the registry, never at its name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.channels import Delivered, Outgoing, SendingChannel, errors
from handoff.dispatch import JobHandler, LeasedJob
from handoff.helpdesks.errors import InvalidCredentials, RateLimited, Rejected, Unavailable
from handoff.service.channels import connection_form, sender_of, senders
from handoff.service.runtime import Handoff
from handoff.service.tickets import add_note
from handoff.store import repositories as repo
from handoff.store.models import Conversation, Message, OutboxJob

log = structlog.get_logger(__name__)


def job_kind(channel: str) -> str:
    """The outbox job kind that sends a message on this channel."""
    return f"{channel}_send"


async def queue(session: AsyncSession, conversation: Conversation, message: Message) -> None:
    """Queue sending one of our messages through the outside API of the conversation's channel.

    Nothing is queued on a live channel, nor for a conversation no channel connection opened:
    nothing goes to an address a public caller typed in.
    """
    if sender_of(conversation.channel) is None or conversation.connection_id is None:
        return
    kind = job_kind(conversation.channel)
    await repo.add(
        session,
        OutboxJob(
            kind=kind,
            # The conversation orders its deliveries: a worker sends them one after another.
            payload={"message_id": message.id, "conversation_id": conversation.id},
            idempotency_key=f"{kind}:{message.id}",
        ),
    )


class DeliverMessage:
    """Send one message of ours to the user through their channel's outside API."""

    def __init__(self, hf: Handoff, sender: type[SendingChannel]) -> None:
        self.hf = hf
        self.sender = sender

    async def perform(self, job: LeasedJob) -> Delivered:
        title = self.sender.title
        async with self.hf.reading() as session:
            message = await session.get(Message, job.payload["message_id"])
            if message is None:
                raise Rejected(404, "the message is gone")
            conversation = await session.get(Conversation, message.conversation_id)
            assert conversation is not None
            connection = await repo.channel_connection(
                session, conversation.agent_id, self.sender.channel.value
            )
            if connection is None:
                raise Rejected(404, f"{title} is no longer connected to this agent")
            if conversation.connection_id != connection.id:
                raise Rejected(403, "this conversation was not opened by the connected account")
            credentials = connection_form(self.hf, connection, self.sender.credentials_model)
            outgoing = Outgoing(
                text=message.text,
                to=conversation.contact_external_id,
                last_heard=await repo.last_user_message_at(session, conversation.id),
            )
        with outbox_errors():
            return await self.sender(credentials, http=self.hf.http).deliver(outgoing)

    async def apply(self, session: AsyncSession, job: LeasedJob, result: Any) -> None:
        if isinstance(result, Delivered) and result.note is not None:
            await _tell_team(session, job.payload["message_id"], result.note)

    async def on_failed(self, session: AsyncSession, job: LeasedJob, error: str) -> None:
        await _tell_team(
            session,
            job.payload["message_id"],
            f"This reply did not reach {self.sender.title}: {error}",
        )


@contextmanager
def outbox_errors() -> Iterator[None]:
    """Turn a channel's errors into the outbox's: retry what is temporary, park the rest."""
    try:
        yield
    except errors.RateLimited as error:
        raise RateLimited(str(error), error.retry_after) from error
    except errors.Unavailable as error:
        raise Unavailable(str(error)) from error
    except errors.InvalidCredentials as error:
        raise InvalidCredentials(str(error)) from error
    except errors.Rejected as error:
        raise Rejected(error.status, str(error)) from error


async def _tell_team(session: AsyncSession, message_id: int, text: str) -> None:
    """Put an internal note on the conversation's latest ticket, which the inbox shows live."""
    message = await session.get(Message, message_id)
    if message is None:
        return
    escalation = await repo.latest_escalation(session, message.conversation_id)
    ticket = await repo.ticket_for_escalation(session, escalation.id) if escalation else None
    if ticket is None:
        log.warning("delivery note without a ticket", message=message_id, note=text)
        return
    await add_note(session, ticket, None, text)


def job_handlers(hf: Handoff) -> dict[str, JobHandler]:
    """Return the delivery handler of every channel that sends through an outside API."""
    return {job_kind(sender.channel.value): DeliverMessage(hf, sender) for sender in senders()}
