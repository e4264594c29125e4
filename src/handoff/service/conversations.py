"""The life of a conversation: the owner rule on every inbound message, the bot's turn, the
channel rules, asking for an email and the escalation transaction."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handoff import domain
from handoff.agent import KnowledgeEntry
from handoff.decide import subject_for, summarize
from handoff.decide.llm import ToolCall, ticket_summary
from handoff.domain import (
    ESCALATE_TO_HUMAN,
    ActionConfig,
    BusinessHours,
    Channel,
    Decision,
    Evidence,
    HandbackReason,
    HumanStretch,
    Language,
    Owner,
    Reason,
    Role,
)
from handoff.service import language as languages
from handoff.service.errors import Conflict, Invalid, NotFound
from handoff.service.i18n import describe_opening, say
from handoff.service.lifecycle import transitions as lifecycle
from handoff.service.lifecycle.stages import Stage, stage_of
from handoff.service.metrics import ESCALATIONS_CREATED
from handoff.service.posting import (
    EMAIL,
    Reply,
    Turn,
    post_message,
    publish_state,
    reply_of,
    to_domain,
)
from handoff.service.ratelimit import ESCALATIONS_PER_AGENT
from handoff.service.runtime import Handoff
from handoff.service.security import hash_token, new_token
from handoff.service.sinks import integration_id_of
from handoff.service.stretch import BACK_TO_BOT, CANCEL_WAIT, human_turn
from handoff.service.turn import TurnQuestion, TurnWork, verdict, work_on
from handoff.service.views import (
    contact_json,
    escalation_json,
    message_json,
)
from handoff.service.wording import (
    ASK_FOR_EMAIL,
    ASK_FOR_EMAIL_AGAIN,
    BACK_TO_BOT_CANCELLED_REQUEST,
    OFFLINE_ASK_FOR_EMAIL,
    OFFLINE_HANDOFF,
    OFFLINE_HOW_WITH_EMAIL,
    OFFLINE_HOW_WITHOUT_EMAIL,
    OFFLINE_UNKNOWN_WHEN,
    alternative_message,
    handoff_message,
)
from handoff.store import repositories as repo
from handoff.store.models import (
    Action,
    Agent,
    Conversation,
    Escalation,
    Message,
    OutboxJob,
    utcnow,
)

# "Skip" to the request for an email, in any of the service's languages: a visitor may answer
# in theirs whatever the conversation's language is so far.
DECLINE = re.compile(
    r"^\s*(no|nope|nah|skip|no thanks|no,? thank you|not now|i'?d rather not|rather not|"
    r"prefer not|i don'?t (want to|have one|have an email)"
    r"|omitir|saltar|no,? gracias|ahora no|prefiero no|no tengo"  # es
    r"|passer|ignorer|non|non,? merci|pas maintenant|je pr[ée]f[èe]re pas|je n'?en ai pas"  # fr
    r"|nein|nein,? danke|[üu]berspringen|lieber nicht|jetzt nicht|keine"  # de
    r"|pular|ignorar|n[ãa]o|n[ãa]o,? obrigad[oa]|agora n[ãa]o|prefiro n[ãa]o"  # pt
    r"|salta|saltare|no,? grazie|non ora|preferisco di no|non ce l'?ho)(?!\w)",  # it
    re.IGNORECASE,
)

# Asking for an email more often than this becomes nagging: escalate without one.
MAX_EMAIL_PROMPTS = 2


async def start_conversation(
    hf: Handoff,
    session: AsyncSession,
    *,
    agent_id: str,
    channel: str,
    contact: domain.Contact,
    connection_id: str | None = None,
    language: Language | None = None,
) -> tuple[Conversation, str, list[dict[str, Any]]]:
    """Open a conversation on a channel; return it, its visitor token and the greeting.

    `connection_id` names the channel account whose verified webhook opened it (WhatsApp);
    only such a conversation receives that account's messages or sends to its users.
    `language` is the page's (the widget's `lang`): it holds whatever the visitor writes;
    without it the workspace's default holds until their messages say otherwise.
    """
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
        connection_id=connection_id,
        language=(language or hf.settings.default_language),
        language_pinned=language is not None,
    )
    await repo.add(session, conversation)
    greeting: list[dict[str, Any]] = []
    # The greeting in the conversation's language, else the default one, else none.
    text = agent.greetings.get(conversation.language) or agent.greeting
    if text:
        message = await post_message(session, conversation, agent, Role.ASSISTANT, text)
        greeting.append(message_json(message))
    return conversation, token, greeting


class Stale(Exception):
    """The conversation changed after its draft was taken: the message's unit of work is
    rolled back and the draft taken again."""


# Drafts taken for one message before giving up: each retry means someone else wrote to the
# conversation in between, so this is reached only by a flood of concurrent messages.
DRAFT_ATTEMPTS = 3


async def take_message(
    hf: Handoff, conversation_id: str, text: str, *, client_id: str | None = None
) -> Reply:
    """Take one user message: the model work first (`draft_reply`), outside any transaction,
    then the message's own unit of work; again when the conversation changed in between."""
    heard = await asyncio.to_thread(languages.identify, text)
    for _ in range(DRAFT_ATTEMPTS):
        try:
            draft = await draft_reply(hf, conversation_id, text, client_id=client_id)
            async with hf.transaction() as session:
                return await receive_message(
                    hf,
                    session,
                    conversation_id,
                    text,
                    client_id=client_id,
                    draft=draft,
                    heard=heard,
                )
        except Stale:
            continue
    raise Conflict("the conversation kept changing while this message was answered; send it again")


async def receive_message(
    hf: Handoff,
    session: AsyncSession,
    conversation_id: str,
    text: str,
    *,
    client_id: str | None = None,
    draft: Draft | None = None,
    heard: Language | None = None,
) -> Reply:
    """Take one user message and apply the owner rule: the AI answers only while it owns.

    `heard` is the language the message was identified in beforehand (`language.identify`):
    from this message on, the service writes to the visitor in it, unless the page set one.

    `draft` is the AI's work on the message done beforehand (`draft_reply`), outside this
    transaction; it is used only if the conversation did not change since. When the AI's
    turn needs a draft and has none that fits, this raises `Stale` (see `take_message`).
    """
    conversation = await repo.conversation_for_update(session, conversation_id)
    if conversation is None:
        raise NotFound("conversation not found")
    agent = await session.get(Agent, conversation.agent_id)
    assert agent is not None  # foreign key
    if client_id and await repo.message_by_client_id(session, conversation.id, client_id):
        # A retried send: the message and its answers are stored already.
        return await reply_of(session, conversation, [])

    history = await repo.messages_of(session, conversation.id)
    if draft is not None and not draft.still_fits(conversation, history):
        draft = None  # something happened meanwhile: the AI's turn, if it comes, is Stale
    message = await post_message(session, conversation, agent, Role.USER, text, client_id=client_id)
    conversation.language = languages.choose(
        conversation.language, pinned=conversation.language_pinned, heard=heard
    )
    turn = Turn(hf, session, conversation, agent, history, message)
    new = [message]
    if conversation.owner == Owner.HUMAN:
        new += await human_turn(turn)
    elif conversation.pending_escalation is not None:
        new += await _continue_pending(turn, draft)
    else:
        new += await _bot_turn(turn, draft)
    return await reply_of(session, conversation, new)


RuleKey = tuple[str, datetime, bool]


@dataclass(frozen=True, slots=True)
class Draft:
    """The AI's work on one message, done before the message's transaction: the
    knowledge-base answer, the local decision and the model's reply.

    Encoding takes milliseconds to seconds and a model call seconds; holding the conversation's
    lock (on SQLite, the database's write lock) that long would stall everyone. The draft is
    taken against a snapshot and used only while the snapshot still holds: same stretch, same
    pending request, no message since, the same deciding action.
    """

    seen: int | None  # the newest message id the draft was taken after
    stretch: int
    pending: dict[str, Any] | None
    rule: RuleKey | None
    work: TurnWork  # the knowledge answer, the local decision, the model's reply

    def still_fits(self, conversation: Conversation, history: Sequence[Message]) -> bool:
        newest = history[-1].id if history else None
        return (
            self.seen == newest
            and self.stretch == conversation.stretch
            and conversation.owner == Owner.BOT
            and conversation.pending_escalation == self.pending
        )


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """What the AI's turn reads from the database, read in one short read-only transaction."""

    conversation: Conversation
    history: Sequence[Message]
    stretch_history: Sequence[Message]
    agent: Agent
    rule: ChannelRule | None
    knowledge_version: str
    entries: Sequence[KnowledgeEntry] | None  # None: that version is served or being built
    human_stretch: HumanStretch | None


async def draft_reply(
    hf: Handoff, conversation_id: str, text: str, *, client_id: str | None = None
) -> Draft | None:
    """Do the AI's work on `text` (encoder and model) holding no lock and no transaction;
    None when the AI will not answer this message (a person owns the chat, a retry).
    Raises `Stale` when it must be taken again."""
    async with hf.reading() as session:
        snapshot = await _snapshot(hf, session, conversation_id, client_id)
    if snapshot is None:
        return None
    conversation, rule = snapshot.conversation, snapshot.rule
    knowledge = await hf.knowledge.get(
        snapshot.agent.id, snapshot.knowledge_version, snapshot.entries
    )
    if knowledge is None:
        raise Stale()  # the build it counted on failed: read the entries this time
    question = TurnQuestion(
        message=text,
        history=to_domain(snapshot.history),
        decision_history=to_domain(snapshot.stretch_history),
        action=rule.config if rule is not None else None,
        covered=rule is not None and rule.covered,
        agent_name=snapshot.agent.name,
        stretch=snapshot.human_stretch,
    )
    work = await work_on(
        question,
        knowledge=knowledge,
        decider=hf.decider,
        llm=hf.llm,
        grounding_entries=hf.settings.llm_knowledge_entries,
    )
    history = snapshot.history
    return Draft(
        seen=history[-1].id if history else None,
        stretch=conversation.stretch,
        pending=conversation.pending_escalation,
        rule=_rule_key(rule),
        work=work,
    )


async def _snapshot(
    hf: Handoff, session: AsyncSession, conversation_id: str, client_id: str | None
) -> _Snapshot | None:
    """Read what the AI's turn needs, or None when this message gets no AI turn."""
    conversation = await session.get(Conversation, conversation_id)
    if (
        conversation is None
        or conversation.owner != Owner.BOT
        or (client_id and await repo.message_by_client_id(session, conversation_id, client_id))
    ):
        return None
    pending = conversation.pending_escalation
    if pending is not None and await _pending_action(session, pending) is not None:
        return None  # the user is answering the request for an email
    agent = await session.get(Agent, conversation.agent_id)
    assert agent is not None
    history = await repo.messages_of(session, conversation.id)
    version = await repo.knowledge_version(session, agent.id)
    entries = None
    if hf.knowledge.needs_entries(agent.id, version):
        # Only when the knowledge base changed: a large one is slow to read.
        rows = await repo.knowledge_of(session, agent.id)
        entries = [KnowledgeEntry(question=e.question, answer=e.answer) for e in rows]
    return _Snapshot(
        conversation=conversation,
        history=history,
        stretch_history=await _current_stretch(session, conversation, history),
        agent=agent,
        rule=await _channel_rule(session, agent.id, conversation.channel),
        knowledge_version=version,
        entries=entries,
        human_stretch=await _last_human_stretch(session, conversation),
    )


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
        alternative_message=action.alternative_message,
        business_hours=(
            BusinessHours.parse(action.business_hours) if action.business_hours else None
        ),
        wait_timeout_seconds=action.wait_timeout_seconds,
        inactivity_timeout_seconds=action.inactivity_timeout_seconds,
    )


@dataclass(frozen=True, slots=True)
class ChannelRule:
    """The action that decides on this channel, and whether it may escalate here.

    An enabled action acts only on its own channels; on the agent's other channels the same
    decision runs, and where it would escalate the AI gives the action's alternative instead.
    """

    action: Action
    config: ActionConfig
    covered: bool


async def _channel_rule(session: AsyncSession, agent_id: str, channel: str) -> ChannelRule | None:
    enabled = [
        (action, action_config(action))
        for action in await repo.actions_of(session, agent_id)
        if action.kind == ESCALATE_TO_HUMAN and action.enabled
    ]
    for action, config in enabled:
        if config.covers(Channel(channel)):
            return ChannelRule(action, config, covered=True)
    if enabled:
        return ChannelRule(*enabled[0], covered=False)
    return None


def _rule_key(rule: ChannelRule | None) -> RuleKey | None:
    """Identify the deciding action as it is now: a draft decided with it, or not."""
    if rule is None:
        return None
    return (rule.action.id, rule.action.updated_at, rule.covered)


async def _bot_turn(turn: Turn, draft: Draft | None) -> list[Message]:
    rule = await _channel_rule(turn.session, turn.agent.id, turn.conversation.channel)
    if draft is None or draft.rule != _rule_key(rule):
        raise Stale()
    answer, local, reply = draft.work.answer, draft.work.local, draft.work.reply
    decision = verdict(draft.work)
    if rule is not None and decision is not None and decision.escalate:
        # The model's tool call decides where it answered; the local safety net still holds.
        return await _act_on(turn, rule, decision, reply.tool_call if reply else None)
    if reply is not None and reply.text:
        # The retrieval confidence says how well the knowledge base covered the question.
        return [await turn.say(Role.ASSISTANT, reply.text, confidence=answer.confidence)]
    # No LLM, it failed or it said nothing: the local decision and the knowledge-base answer.
    if rule is not None and local is not None and local.escalate:
        return await _act_on(turn, rule, local)
    return [await turn.say(Role.ASSISTANT, answer.text, confidence=answer.confidence)]


async def _act_on(
    turn: Turn, rule: ChannelRule, decision: Decision, tool_call: ToolCall | None = None
) -> list[Message]:
    """Escalate where the action covers the channel; elsewhere say where a person is."""
    if rule.covered:
        return await _start_escalation(turn, rule.action, decision, tool_call)
    return [
        await turn.say(Role.ASSISTANT, alternative_message(rule.action, turn.conversation.language))
    ]


async def _last_human_stretch(
    session: AsyncSession, conversation: Conversation
) -> HumanStretch | None:
    """Return the latest finished human stretch, so the model knows it is answering again."""
    if conversation.stretch == 0:
        return None
    previous = await repo.latest_escalation(session, conversation.id)
    if previous is None or previous.solved_at is None:
        return None
    reason = HandbackReason(previous.handback_reason or HandbackReason.SOLVED)
    return HumanStretch(previous.created_at, previous.solved_at, reason)


async def _current_stretch(
    session: AsyncSession, conversation: Conversation, history: Sequence[Message]
) -> Sequence[Message]:
    """Return the messages since the last handback: a solved stretch is not held against
    the AI (a question the human already answered may be asked again)."""
    if conversation.stretch == 0:
        return history
    previous = await repo.latest_escalation(session, conversation.id)
    if previous is None or previous.solved_at is None:
        return history
    return [m for m in history if m.created_at >= previous.solved_at]


async def _start_escalation(
    turn: Turn, action: Action, decision: Decision, tool_call: ToolCall | None = None
) -> list[Message]:
    conversation = turn.conversation
    language = conversation.language
    anonymous = not (conversation.contact_email or conversation.contact_phone)
    closed = _closed_until(action, utcnow(), language)
    question = None
    if closed is not None and not conversation.contact_email:
        # Nobody answers before the opening: an email is how the answer reaches a user who
        # leaves, whatever the action says about asking.
        question = say(language, OFFLINE_ASK_FOR_EMAIL, when=closed)
    elif anonymous and action.ask_for_email:
        question = say(language, ASK_FOR_EMAIL)
    if question is not None:
        lifecycle.ask_for_email(
            conversation,
            {
                "action_id": action.id,
                "decision": _decision_json(decision),
                "trigger_message_id": turn.message.id,
                "prompts": 1,
                "tool_call": _tool_call_json(tool_call),
            },
        )
        return [await turn.say(Role.ASSISTANT, question)]
    return await escalate(turn, action, decision, turn.message.id, tool_call=tool_call)


async def _pending_action(session: AsyncSession, pending: dict[str, Any]) -> Action | None:
    """Return the action a pending request waits to escalate with, None if it is off now."""
    action = await session.get(Action, pending.get("action_id", ""))
    return action if action is not None and action.enabled else None


async def _continue_pending(turn: Turn, draft: Draft | None) -> list[Message]:
    conversation = turn.conversation
    pending = conversation.pending_escalation or {}
    action = await _pending_action(turn.session, pending)
    if action is None:
        # The action was switched off meanwhile: forget the request and answer normally.
        lifecycle.drop_escalation_request(conversation)
        return await _bot_turn(turn, draft)
    text = turn.message.text
    if BACK_TO_BOT.match(text) or CANCEL_WAIT.match(text):
        lifecycle.drop_escalation_request(conversation)
        return [
            await turn.say(
                Role.ASSISTANT, say(conversation.language, BACK_TO_BOT_CANCELLED_REQUEST)
            )
        ]
    found = EMAIL.search(text)
    prompts = int(pending.get("prompts", 1))
    if found:
        conversation.contact_email = found.group(0)
    elif not DECLINE.match(text) and prompts < MAX_EMAIL_PROMPTS:
        lifecycle.ask_for_email(conversation, {**pending, "prompts": prompts + 1})
        return [await turn.say(Role.ASSISTANT, say(conversation.language, ASK_FOR_EMAIL_AGAIN))]
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
    Past the agent's escalation limit it raises TooManyRequests, which rolls back the whole
    message: a flood of requests for a person cannot become a flood of tickets, and the
    user's message is taken when sent again.
    """
    session, conversation = turn.session, turn.conversation
    await turn.hf.limits.hit(ESCALATIONS_PER_AGENT, conversation.agent_id)
    everything = await repo.messages_of(session, conversation.id)
    transcript = to_domain([m for m in everything if m.id <= trigger_id])
    escalation = await lifecycle.escalate(
        session,
        conversation,
        action,
        reasons=[r.value for r in decision.reasons],
        evidence=[_evidence_json(e) for e in decision.evidence],
        subject=subject_for(transcript),
        summary=ticket_summary(summarize(transcript, decision), tool_call=tool_call),
    )
    await repo.add(
        session,
        OutboxJob(
            kind="create_ticket",
            payload=_create_ticket_payload(turn.hf, escalation, trigger_id, tool_call),
            integration_id=await integration_id_of(session, conversation, escalation.platform),
            idempotency_key=f"create_ticket:{escalation.id}",
        ),
    )
    notice = await turn.say(Role.ASSISTANT, _handoff_text(action, conversation, utcnow()))
    await publish_state(session, conversation, turn.agent, escalation)
    ESCALATIONS_CREATED.labels(platform=action.platform).inc()
    return [notice]


def _create_ticket_payload(
    hf: Handoff, escalation: Escalation, trigger_id: int, tool_call: ToolCall | None
) -> dict[str, Any]:
    payload: dict[str, Any] = {"escalation_id": escalation.id}
    if tool_call is None and hf.llm is not None:
        # The model kept chatting (or was down) and the safety net escalated: the job asks it
        # for a summary of the talk up to the deciding message, outside any transaction.
        payload["summarize_up_to"] = trigger_id
    return payload


def _hours_of(action: Action) -> BusinessHours | None:
    return BusinessHours.parse(action.business_hours) if action.business_hours else None


def _closed_until(action: Action, now: datetime, language: str) -> str | None:
    """Say when the team opens, or None while it is open (or has no hours)."""
    hours = _hours_of(action)
    if hours is None or hours.is_open(now):
        return None
    opening = hours.next_opening(now)
    if opening is None:
        return say(language, OFFLINE_UNKNOWN_WHEN)
    return describe_opening(language, opening, now)


def _handoff_text(action: Action, conversation: Conversation, now: datetime) -> str:
    """Return the handoff message; outside business hours it says when and how."""
    language = conversation.language
    when = _closed_until(action, now, language)
    if when is None:
        return handoff_message(action, language)
    email = conversation.contact_email
    how = (
        say(language, OFFLINE_HOW_WITH_EMAIL, email=email)
        if email
        else say(language, OFFLINE_HOW_WITHOUT_EMAIL)
    )
    return say(language, OFFLINE_HANDOFF, when=when) + how


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
        "waiting": stage_of(conversation, escalation) == Stage.WAITING,
        "language": conversation.language,
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
