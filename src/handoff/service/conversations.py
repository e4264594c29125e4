"""The life of a conversation: the owner rule on every inbound message, the bot's turn,
asking for an email, the escalation transaction and the handback."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handoff import domain
from handoff.agent import KnowledgeBase, KnowledgeEntry
from handoff.agent.llm import LLMAgent, LLMReply, LLMUnavailable
from handoff.decide import subject_for, summarize
from handoff.decide.llm import ToolCall, combine, ticket_summary
from handoff.domain import (
    ESCALATE_TO_HUMAN,
    ActionConfig,
    Channel,
    Decision,
    DecisionContext,
    EscalationStatus,
    Evidence,
    HandbackReason,
    Owner,
    Reason,
    Role,
)
from handoff.service import events
from handoff.service.errors import Invalid, NotFound
from handoff.service.metrics import ESCALATIONS_CREATED, HANDBACKS
from handoff.service.runtime import Handoff
from handoff.service.security import hash_token, new_token
from handoff.service.tickets import touch_ticket
from handoff.service.views import (
    contact_json,
    conversation_state_json,
    escalation_json,
    message_json,
)
from handoff.store import repositories as repo
from handoff.store.models import (
    Action,
    Agent,
    Conversation,
    Escalation,
    Member,
    Message,
    OutboxJob,
    utcnow,
)

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
DECLINE = re.compile(
    r"^\s*(no|nope|nah|skip|no thanks|no,? thank you|not now|i'?d rather not|rather not|"
    r"prefer not|i don'?t (want to|have one|have an email))\b",
    re.IGNORECASE,
)
ASK_FOR_EMAIL = (
    "I'll connect you with our support team. What email address can they reach you at, "
    "in case you leave the chat? (Or say “skip” to continue without one.)"
)
ASK_FOR_EMAIL_AGAIN = (
    "That doesn't look like an email address. Please type it like name@example.com, "
    "or say “skip” and I'll connect you right away."
)
HANDBACK_MESSAGES: dict[HandbackReason, str] = {
    HandbackReason.SOLVED: (
        "Our support team has marked this conversation as solved. You're chatting with the "
        "AI assistant again — ask me anything, and I can bring a person back if you need one."
    ),
}
# Asking for an email more often than this becomes nagging: escalate without one.
MAX_EMAIL_PROMPTS = 2


@dataclass(frozen=True, slots=True)
class Reply:
    """What a channel gets back for one inbound message."""

    messages: list[dict[str, Any]]
    conversation: dict[str, Any]


async def start_conversation(
    hf: Handoff,
    session: AsyncSession,
    *,
    agent_id: str,
    channel: str,
    contact: domain.Contact,
) -> tuple[Conversation, str, list[dict[str, Any]]]:
    """Open a conversation on a channel; return it, its visitor token and the greeting."""
    agent = await session.get(Agent, agent_id)
    if agent is None:
        raise NotFound("agent not found")
    if channel not in agent.channels:
        raise Invalid(
            "channel", f"this agent does not answer on '{channel}'; it answers on {agent.channels}"
        )
    token = new_token("hv")
    conversation = Conversation(
        agent_id=agent.id,
        channel=channel,
        owner=Owner.BOT,
        token_hash=hash_token(token),
        contact_name=contact.name,
        contact_email=contact.email,
        contact_phone=contact.phone,
        contact_external_id=contact.external_id,
    )
    await repo.add(session, conversation)
    greeting: list[dict[str, Any]] = []
    if agent.greeting:
        message = await post_message(session, conversation, agent, Role.ASSISTANT, agent.greeting)
        greeting.append(message_json(message))
    return conversation, token, greeting


@dataclass(slots=True)
class Turn:
    """One inbound user message, handled inside the caller's unit of work."""

    hf: Handoff
    session: AsyncSession
    conversation: Conversation
    agent: Agent
    history: Sequence[Message]  # the conversation before this message
    message: Message  # the user's message, stored already

    async def say(self, role: Role, text: str, *, confidence: float | None = None) -> Message:
        """Post a message from our side into the conversation."""
        return await post_message(
            self.session, self.conversation, self.agent, role, text, confidence=confidence
        )


async def receive_message(
    hf: Handoff,
    session: AsyncSession,
    conversation_id: str,
    text: str,
    *,
    client_id: str | None = None,
) -> Reply:
    """Take one user message and apply the owner rule: the AI answers only while it owns."""
    conversation = await repo.conversation_for_update(session, conversation_id)
    if conversation is None:
        raise NotFound("conversation not found")
    agent = await session.get(Agent, conversation.agent_id)
    assert agent is not None  # foreign key
    if client_id and await repo.message_by_client_id(session, conversation.id, client_id):
        # A retried send: the message and its answers are stored already.
        return await _reply(session, conversation, [])

    history = await repo.messages_of(session, conversation.id)
    message = await post_message(session, conversation, agent, Role.USER, text, client_id=client_id)
    turn = Turn(hf, session, conversation, agent, history, message)
    new = [message]
    if conversation.owner == Owner.HUMAN:
        await _relay_to_team(turn)
    elif conversation.pending_escalation is not None:
        new += await _continue_pending(turn)
    else:
        new += await _bot_turn(turn)
    return await _reply(session, conversation, new)


async def _reply(
    session: AsyncSession, conversation: Conversation, new: Sequence[Message]
) -> Reply:
    escalation = await repo.latest_escalation(session, conversation.id)
    return Reply(
        messages=[message_json(m) for m in new],
        conversation=conversation_state_json(conversation, escalation),
    )


async def post_message(
    session: AsyncSession,
    conversation: Conversation,
    agent: Agent,
    role: Role,
    text: str,
    *,
    author: Member | None = None,
    author_name: str | None = None,
    confidence: float | None = None,
    client_id: str | None = None,
) -> Message:
    """Store a message and publish it to the visitor, and to the team while a ticket is open."""
    message = Message(
        conversation_id=conversation.id,
        role=role,
        text=text,
        author_id=author.id if author else None,
        author_name=author_name,
        confidence=confidence,
        client_id=client_id,
    )
    await repo.add(session, message)
    conversation.updated_at = utcnow()
    ticket = await repo.open_ticket_of(session, conversation.id)
    await events.publish(
        session,
        workspace_id=agent.workspace_id,
        conversation_id=conversation.id,
        type="message",
        data={"message": message_json(message, author), "ticket_id": ticket.id if ticket else None},
        to_visitor=True,
        to_team=ticket is not None,
    )
    return message


def action_config(action: Action) -> ActionConfig:
    return ActionConfig(
        name=action.name,
        platform=action.platform,
        when_to_use=action.when_to_use,
        channels=frozenset(Channel(c) for c in action.channels),
        enabled=action.enabled,
        handoff_message=action.handoff_message,
        ask_for_email=action.ask_for_email,
        sensitive_topics=tuple(action.sensitive_topics),
        trigger_examples=tuple(action.trigger_examples),
        thresholds=dict(action.thresholds),
    )


async def _covering_action(
    session: AsyncSession, agent_id: str, channel: str
) -> tuple[Action, ActionConfig] | None:
    for action in await repo.actions_of(session, agent_id):
        config = action_config(action)
        if action.kind == ESCALATE_TO_HUMAN and config.covers(Channel(channel)):
            return action, config
    return None


def to_domain(messages: Sequence[Message]) -> list[domain.Message]:
    return [
        domain.Message(
            id=m.id,
            role=Role(m.role),
            text=m.text,
            created_at=m.created_at,
            confidence=m.confidence,
        )
        for m in messages
    ]


async def _bot_turn(turn: Turn) -> list[Message]:
    entries = [
        KnowledgeEntry(question=e.question, answer=e.answer)
        for e in await repo.knowledge_of(turn.session, turn.agent.id)
    ]
    knowledge = turn.hf.knowledge_base(turn.agent.id, entries)
    answer = await asyncio.to_thread(knowledge.answer, turn.message.text)
    covering = await _covering_action(turn.session, turn.agent.id, turn.conversation.channel)
    local: Decision | None = None
    if covering is not None:
        context = DecisionContext(
            message=turn.message.text,
            history=to_domain(await _current_stretch(turn)),
            action=covering[1],
            answer=answer,
        )
        local = await asyncio.to_thread(turn.hf.decider.decide, context)
    llm = turn.hf.llm
    reply = None
    if llm is not None:
        reply = await _ask_llm(turn, llm, knowledge, covering[1] if covering else None)
    if reply is not None:
        # The model answered: its tool call decides, the local safety net still holds.
        if covering is not None and local is not None:
            decision = combine(local, reply.tool_call)
            if decision.escalate:
                return await _start_escalation(turn, covering[0], decision, reply.tool_call)
        if reply.text:
            # The retrieval confidence says how well the knowledge base covered the question.
            return [await turn.say(Role.ASSISTANT, reply.text, confidence=answer.confidence)]
    # No LLM, or it failed: the local decision and the knowledge-base answer, never silence.
    if covering is not None and local is not None and local.escalate:
        return await _start_escalation(turn, covering[0], local)
    return [await turn.say(Role.ASSISTANT, answer.text, confidence=answer.confidence)]


async def _ask_llm(
    turn: Turn, llm: LLMAgent, knowledge: KnowledgeBase, action: ActionConfig | None
) -> LLMReply | None:
    """Return the model's reply, or None when it is unavailable (the caller falls back)."""
    grounding = await asyncio.to_thread(
        knowledge.top, turn.message.text, turn.hf.settings.llm_knowledge_entries
    )
    try:
        return await llm.respond(
            history=to_domain(turn.history),
            message=turn.message.text,
            knowledge=grounding,
            action=action,
            agent_name=turn.agent.name,
        )
    except LLMUnavailable:
        return None


async def _current_stretch(turn: Turn) -> Sequence[Message]:
    """Return the messages since the last handback: a solved stretch is not held against
    the AI (a question the human already answered may be asked again)."""
    if turn.conversation.stretch == 0:
        return turn.history
    previous = await repo.latest_escalation(turn.session, turn.conversation.id)
    if previous is None or previous.solved_at is None:
        return turn.history
    return [m for m in turn.history if m.created_at >= previous.solved_at]


async def _start_escalation(
    turn: Turn, action: Action, decision: Decision, tool_call: ToolCall | None = None
) -> list[Message]:
    conversation = turn.conversation
    anonymous = not (conversation.contact_email or conversation.contact_phone)
    if anonymous and action.ask_for_email:
        conversation.pending_escalation = {
            "action_id": action.id,
            "decision": _decision_json(decision),
            "trigger_message_id": turn.message.id,
            "prompts": 1,
            "tool_call": _tool_call_json(tool_call),
        }
        return [await turn.say(Role.ASSISTANT, ASK_FOR_EMAIL)]
    return await escalate(turn, action, decision, turn.message.id, tool_call=tool_call)


async def _continue_pending(turn: Turn) -> list[Message]:
    conversation = turn.conversation
    pending = conversation.pending_escalation or {}
    action = await turn.session.get(Action, pending.get("action_id", ""))
    if action is None or not action.enabled:
        # The action was switched off meanwhile: forget the request and answer normally.
        conversation.pending_escalation = None
        return await _bot_turn(turn)
    text = turn.message.text
    found = EMAIL.search(text)
    prompts = int(pending.get("prompts", 1))
    if found:
        conversation.contact_email = found.group(0)
    elif not DECLINE.match(text) and prompts < MAX_EMAIL_PROMPTS:
        conversation.pending_escalation = {**pending, "prompts": prompts + 1}
        return [await turn.say(Role.ASSISTANT, ASK_FOR_EMAIL_AGAIN)]
    decision = _decision_from_json(pending["decision"])
    trigger_id = int(pending.get("trigger_message_id", turn.message.id))
    tool_call = _tool_call_from_json(pending.get("tool_call"))
    return await escalate(turn, action, decision, trigger_id, tool_call=tool_call)


async def escalate(
    turn: Turn,
    action: Action,
    decision: Decision,
    trigger_id: int,
    *,
    tool_call: ToolCall | None = None,
) -> list[Message]:
    """Hand the conversation to humans: escalation, outbox job and owner change in one go.

    `trigger_id` is the user message that decided it; the summary stops there, before any
    exchange about the user's email. The caller's unit of work commits all of it, or none.
    """
    session, conversation = turn.session, turn.conversation
    everything = await repo.messages_of(session, conversation.id)
    transcript = to_domain([m for m in everything if m.id <= trigger_id])
    abstract: str | None = None
    llm = turn.hf.llm
    if tool_call is None and llm is not None and llm.available:
        # The model kept chatting (or was down) and the safety net escalated: ask it for a
        # summary once; the extractive one stays in the ticket either way.
        try:
            abstract = await llm.summarize(transcript, decision.reasons)
        except LLMUnavailable:
            abstract = None
    escalation = Escalation(
        conversation_id=conversation.id,
        stretch=conversation.stretch,
        action_id=action.id,
        platform=action.platform,
        status=EscalationStatus.PENDING,
        reasons=[r.value for r in decision.reasons],
        evidence=[_evidence_json(e) for e in decision.evidence],
        subject=subject_for(transcript),
        summary=ticket_summary(
            summarize(transcript, decision), tool_call=tool_call, abstract=abstract
        ),
    )
    conversation.owner = Owner.HUMAN
    conversation.pending_escalation = None
    await repo.add(session, escalation)
    await repo.add(
        session,
        OutboxJob(
            kind="create_ticket",
            payload={"escalation_id": escalation.id},
            idempotency_key=f"create_ticket:{escalation.id}",
            max_attempts=turn.hf.settings.job_max_attempts,
        ),
    )
    notice = await turn.say(Role.ASSISTANT, action.handoff_message)
    await publish_state(session, conversation, turn.agent, escalation)
    ESCALATIONS_CREATED.labels(platform=action.platform).inc()
    return [notice]


async def publish_state(
    session: AsyncSession, conversation: Conversation, agent: Agent, escalation: Escalation | None
) -> None:
    """Tell the visitor's stream who owns the conversation now."""
    await events.publish(
        session,
        workspace_id=agent.workspace_id,
        conversation_id=conversation.id,
        type="conversation",
        data=conversation_state_json(conversation, escalation),
        to_visitor=True,
        to_team=False,
    )


async def _relay_to_team(turn: Turn) -> None:
    """Put a visitor's message onto the ticket while the human team owns the conversation."""
    session, conversation = turn.session, turn.conversation
    escalation = await repo.latest_escalation(session, conversation.id)
    if escalation is None or escalation.platform == domain.NATIVE:
        ticket = await repo.open_ticket_of(session, conversation.id)
        if ticket is not None:  # before the worker creates it, the transcript carries the message
            await touch_ticket(session, ticket, waiting=True)
        return
    await repo.add(
        session,
        OutboxJob(
            kind="add_message",
            payload={"escalation_id": escalation.id, "message_id": turn.message.id},
            idempotency_key=f"add_message:{turn.message.id}",
            max_attempts=turn.hf.settings.job_max_attempts,
        ),
    )


async def hand_back(
    session: AsyncSession,
    conversation: Conversation,
    escalation: Escalation,
    reason: HandbackReason,
) -> Message:
    """Return the conversation to the AI, close the stretch, and say so to the user."""
    agent = await session.get(Agent, conversation.agent_id)
    assert agent is not None
    escalation.status = EscalationStatus.SOLVED
    escalation.solved_at = utcnow()
    conversation.owner = Owner.BOT
    conversation.stretch += 1
    message = await post_message(
        session, conversation, agent, Role.SYSTEM, HANDBACK_MESSAGES[reason]
    )
    await publish_state(session, conversation, agent, escalation)
    HANDBACKS.labels(reason=reason.value).inc()
    return message


async def conversation_view(
    session: AsyncSession, conversation: Conversation, *, for_team: bool = False
) -> dict[str, Any]:
    """Return the conversation as its API shape, messages included."""
    messages = await repo.messages_of(session, conversation.id)
    authors = await repo.members_by_id(session, {m.author_id for m in messages if m.author_id})
    escalation = await repo.latest_escalation(session, conversation.id)
    return {
        "id": conversation.id,
        "agent_id": conversation.agent_id,
        "channel": conversation.channel,
        "owner": conversation.owner,
        "contact": contact_json(conversation),
        "messages": [
            message_json(m, authors.get(m.author_id) if m.author_id else None) for m in messages
        ],
        "escalation": escalation_json(escalation, for_team=for_team),
    }


def _evidence_json(evidence: Evidence) -> dict[str, Any]:
    return {"reason": evidence.reason.value, "score": evidence.score, "detail": evidence.detail}


def _decision_json(decision: Decision) -> dict[str, Any]:
    return {
        "reasons": [r.value for r in decision.reasons],
        "score": decision.score,
        "evidence": [_evidence_json(e) for e in decision.evidence],
    }


def _tool_call_json(tool_call: ToolCall | None) -> dict[str, str] | None:
    if tool_call is None:
        return None
    return {"name": tool_call.name, "reason": tool_call.reason, "summary": tool_call.summary}


def _tool_call_from_json(data: dict[str, str] | None) -> ToolCall | None:
    if not data:
        return None
    return ToolCall(data["name"], data.get("reason", ""), data.get("summary", ""))


def _decision_from_json(data: dict[str, Any]) -> Decision:
    return Decision(
        escalate=True,
        reasons=tuple(Reason(r) for r in data["reasons"]),
        score=float(data["score"]),
        evidence=tuple(
            Evidence(reason=Reason(e["reason"]), score=float(e["score"]), detail=e["detail"])
            for e in data["evidence"]
        ),
    )


__all__ = [
    "Reply",
    "conversation_view",
    "escalate",
    "hand_back",
    "post_message",
    "receive_message",
    "start_conversation",
]
