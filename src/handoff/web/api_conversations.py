"""The channel API: conversations, messages and the visitor's live stream."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, status
from sse_starlette.sse import EventSourceResponse

from handoff import domain
from handoff.service import channels, conversations, events, stretch
from handoff.service.admin import public_agent
from handoff.service.auth import Visitor, readable_conversation
from handoff.service.metrics import MESSAGES_RECEIVED
from handoff.service.ratelimit import (
    CONVERSATIONS_PER_AGENT,
    CONVERSATIONS_PER_IP,
    MESSAGES_PER_AGENT,
    MESSAGES_PER_CONVERSATION,
    MESSAGES_PER_IP,
)
from handoff.service.runtime import Handoff
from handoff.service.wording import widget_labels
from handoff.web.deps import HandoffDep, Session, StreamVisitorAuth, TokenDep, VisitorAuth
from handoff.web.ratelimit import per_address
from handoff.web.responses import ConversationOut, NewConversationOut, PublicAgentOut, ReplyOut
from handoff.web.schemas import ConversationIn, MessageIn
from handoff.web.streams import event_stream, resume_point

router = APIRouter(prefix="/api/v1", tags=["conversations"])


@router.get("/agents/{agent_id}/public", response_model=PublicAgentOut)
async def get_public_agent(agent_id: str, session: Session, hf: HandoffDep) -> dict[str, Any]:
    """Return what a chat widget shows about an agent: its name and greeting; and which
    channel each of the widget's modes opens when its page names none."""
    agent = await public_agent(session, agent_id)
    return {
        "id": agent.id,
        "name": agent.name,
        "greeting": agent.greeting,
        "greetings": dict(agent.greetings),
        "channels": agent.channels,
        "modes": channels.widget_modes(),
        "language": hf.settings.default_language,
        "labels": widget_labels(),
    }


@router.post(
    "/agents/{agent_id}/conversations",
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(per_address(CONVERSATIONS_PER_IP))],
    response_model=NewConversationOut,
)
async def create_conversation(
    agent_id: str, body: ConversationIn, hf: HandoffDep
) -> dict[str, Any]:
    """Start a conversation on a channel; the token returned opens this conversation only."""
    # Counted before its transaction opens: a flood is refused without taking the write lock.
    await hf.limits.hit(CONVERSATIONS_PER_AGENT, agent_id)
    contact = body.contact or None
    async with hf.transaction() as session:
        conversation, token, greeting = await conversations.start_conversation(
            hf,
            session,
            agent_id=agent_id,
            channel=body.channel,
            contact=domain.Contact(
                name=contact.name if contact else None,
                email=str(contact.email) if contact and contact.email else None,
                phone=contact.phone if contact else None,
                external_id=contact.external_id if contact else None,
            ),
            language=body.lang,
        )
        return {"id": conversation.id, "token": token, "messages": greeting}


async def _count_message(hf: Handoff, visitor: Visitor) -> None:
    """Count a visitor's message against its conversation and its agent (after the token
    is checked, so that nobody else can use up a visitor's allowance)."""
    await hf.limits.hit(MESSAGES_PER_CONVERSATION, visitor.conversation_id)
    await hf.limits.hit(MESSAGES_PER_AGENT, visitor.agent_id)


@router.post(
    "/conversations/{conversation_id}/messages",
    dependencies=[Depends(per_address(MESSAGES_PER_IP))],
    response_model=ReplyOut,
)
async def post_message(
    conversation_id: str, body: MessageIn, hf: HandoffDep, visitor: VisitorAuth
) -> dict[str, Any]:
    """Send the user's message; the answer, or the handoff notice, comes back at once."""
    await _count_message(hf, visitor)
    reply = await conversations.take_message(
        hf, conversation_id, body.text, client_id=body.client_id
    )
    MESSAGES_RECEIVED.inc()
    return {"messages": reply.messages, "conversation": reply.conversation}


@router.post(
    "/conversations/{conversation_id}/back-to-bot",
    dependencies=[Depends(per_address(MESSAGES_PER_IP))],
    response_model=ReplyOut,
)
async def back_to_bot(
    conversation_id: str, hf: HandoffDep, visitor: VisitorAuth, session: Session
) -> dict[str, Any]:
    """Stop waiting for a person and continue with the AI; the ticket is told.

    Answers like posting a message, and counts as one; when the AI owns the conversation
    already it changes nothing and returns no messages.
    """
    await _count_message(hf, visitor)
    reply = await stretch.back_to_bot(session, conversation_id)
    return {"messages": reply.messages, "conversation": reply.conversation}


@router.get(
    "/conversations/{conversation_id}",
    response_model=ConversationOut,
    response_model_exclude_unset=True,
)
async def get_conversation(
    conversation_id: str, session: Session, token: TokenDep
) -> dict[str, Any]:
    """Return the conversation with its messages, for its visitor or for the team."""
    conversation, for_team = await readable_conversation(session, conversation_id, token)
    return await conversations.conversation_view(session, conversation, for_team=for_team)


@router.get("/conversations/{conversation_id}/events", response_class=EventSourceResponse)
async def conversation_events(
    conversation_id: str, request: Request, hf: HandoffDep, _: StreamVisitorAuth
) -> EventSourceResponse:
    """Stream new messages (`message`) and owner changes (`conversation`) to the visitor.

    Pass the token as a bearer header or `?access_token=`; resume with Last-Event-ID.
    """
    return event_stream(
        hf,
        request,
        resume_point(request, 0),
        lambda session, after: events.for_visitor(session, conversation_id, after),
        events.visitor_key(conversation_id),
    )
