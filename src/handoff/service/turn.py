"""The AI's work on one user message, the same in a live conversation and in `handoff eval`.

The knowledge base's answer; the local decision, which sees that answer; and, with an LLM,
the model's reply grounded on the closest knowledge entries. `verdict` is the decision the
turn acts on: the model's tool call with the local signals as the safety net, or the local
decision alone. Encoder work runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from handoff.agent import KnowledgeBase
from handoff.agent.llm import LLMAgent, LLMReply, LLMUnavailable, Prompt
from handoff.decide import Decider
from handoff.decide.llm import combine
from handoff.domain import ActionConfig, Answer, Decision, DecisionContext, HumanStretch, Message


@dataclass(frozen=True, slots=True)
class TurnQuestion:
    """One user message and what the AI's turn on it may look at."""

    message: str
    history: Sequence[Message]  # the conversation so far: what the model is shown
    decision_history: Sequence[Message]  # since the last person's stretch: what the decider sees
    action: ActionConfig | None  # the action deciding on this channel; None: nothing decides
    covered: bool  # the action may escalate on this channel: the model is offered the tool
    agent_name: str
    stretch: HumanStretch | None = None


@dataclass(frozen=True, slots=True)
class TurnWork:
    """The knowledge-base answer, the local decision and the model's reply."""

    answer: Answer
    local: Decision | None  # None: no action decides
    reply: LLMReply | None  # None: no model, or it was unavailable


async def work_on(
    question: TurnQuestion,
    *,
    knowledge: KnowledgeBase,
    decider: Decider,
    llm: LLMAgent | None,
    grounding_entries: int,
    decide_on_answer: bool = True,
) -> TurnWork:
    """Answer from the knowledge base, decide locally and ask the model (when there is one).

    `decide_on_answer=False` keeps the answer from the local decision: for replayed data whose
    own assistant turns stand for the assistant (`handoff eval`), where an answer from another
    knowledge base would make every message look unanswered."""
    answer = await asyncio.to_thread(knowledge.answer, question.message)
    local = None
    if question.action is not None:
        # Uncovered channels run the same decision: it says when to offer the alternative.
        context = DecisionContext(
            message=question.message,
            history=question.decision_history,
            action=question.action,
            answer=answer if decide_on_answer else None,
        )
        local = await asyncio.to_thread(decider.decide, context)
    reply = None
    if llm is not None:
        grounding = await asyncio.to_thread(knowledge.top, question.message, grounding_entries)
        prompt = Prompt(
            history=question.history,
            message=question.message,
            knowledge=grounding,
            action=question.action if question.covered else None,
            agent_name=question.agent_name,
            stretch=question.stretch,
        )
        try:
            reply = await llm.respond(prompt)
        except LLMUnavailable:
            reply = None  # the local decision and the knowledge-base answer stand alone
    return TurnWork(answer, local, reply)


def verdict(work: TurnWork) -> Decision | None:
    """The decision the turn acts on (None when no action decides)."""
    if work.local is None or work.reply is None:
        return work.local
    return combine(work.local, work.reply.tool_call)
