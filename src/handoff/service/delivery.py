"""Our side of a conversation, sent to a user who reads it outside our live stream.

The widget, the help page and API clients read replies from the conversation's live events.
A conversation that a channel connection opened (a WhatsApp number's webhook) is answered
through that channel's API instead: every message our side posts there queues one delivery
job, in the message's transaction, whose kind names the channel (`whatsapp_send`). The
channel's module registers the handler that sends it (`jobs.py`), so posting a message never
imports a channel.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from handoff.domain import Channel
from handoff.store import repositories as repo
from handoff.store.models import Conversation, Message, OutboxJob


def job_kind(channel: Channel) -> str:
    """The outbox job kind that sends a message on this channel."""
    return f"{channel.value}_send"


async def queue(session: AsyncSession, conversation: Conversation, message: Message) -> None:
    """Queue sending one of our messages through the channel that opened the conversation."""
    kind = job_kind(Channel(conversation.channel))
    await repo.add(
        session,
        OutboxJob(
            kind=kind,
            # The conversation orders its deliveries: a worker sends them one after another.
            payload={"message_id": message.id, "conversation_id": conversation.id},
            idempotency_key=f"{kind}:{message.id}",
        ),
    )
