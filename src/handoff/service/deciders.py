"""The decider as the service is configured, as one `Decider`: for `handoff eval` and `bench`.

`TurnDecider` decides each message through the same code as a conversation turn
(`service.turn`): the knowledge base (the demo agent's FAQ unless another is given) answers and
grounds the model; the local decider (`HANDOFF_DECIDER`: the learned model or the rules) judges
the message and its history, whose assistant turns come from the data; with an LLM, the model is
offered the escalate action as a tool, with the local signals as the safety net, and a model
error falls back to the local decision.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from handoff.agent import KnowledgeBase, KnowledgeEntry
from handoff.agent.llm import LLMAgent
from handoff.decide import Decider, Encoder
from handoff.domain import Decision, DecisionContext
from handoff.service.demo import DEMO_AGENT_NAME, demo_faq
from handoff.service.runtime import llm_agent, local_decider
from handoff.service.turn import TurnQuestion, verdict, work_on
from handoff.settings import Settings


class TurnDecider:
    """Decide one message as a conversation turn does."""

    def __init__(
        self,
        local: Decider,
        knowledge: KnowledgeBase,
        llm: LLMAgent | None,
        *,
        grounding_entries: int,
        agent_name: str = DEMO_AGENT_NAME,
    ) -> None:
        self.local = local
        self.knowledge = knowledge
        self.llm = llm
        self.grounding_entries = grounding_entries
        self.agent_name = agent_name
        self.fallbacks = 0  # decisions where the model failed and the local one stood alone
        self._loop = asyncio.new_event_loop()

    def decide(self, ctx: DecisionContext) -> Decision:
        """Return the decision the turn would act on."""
        question = TurnQuestion(
            message=ctx.message,
            history=ctx.history,
            decision_history=ctx.history,
            action=ctx.action,
            covered=True,
            agent_name=self.agent_name,
        )
        work = self._loop.run_until_complete(
            work_on(
                question,
                knowledge=self.knowledge,
                decider=self.local,
                llm=self.llm,
                grounding_entries=self.grounding_entries,
                # The data's own assistant turns stand for the assistant; the FAQ grounds the
                # model and answers, as in a live turn.
                decide_on_answer=False,
            )
        )
        if self.llm is not None and work.reply is None:
            self.fallbacks += 1
        decision = verdict(work)
        assert decision is not None  # an action always decides here
        return decision

    def close(self) -> None:
        if self.llm is not None:
            self._loop.run_until_complete(self.llm.aclose())
        self._loop.close()


def configured_decider(
    settings: Settings,
    encoder: Encoder,
    *,
    use_llm: bool | None,
    knowledge: Sequence[KnowledgeEntry] | None = None,
) -> TurnDecider:
    """Return the decider the settings describe; `use_llm` None means "when configured";
    `knowledge` is the FAQ the turn answers from (default: the demo agent's)."""
    local = local_decider(settings, encoder)
    llm = llm_agent(settings) if use_llm is not False else None
    if use_llm and llm is None:
        raise ValueError("no LLM is configured: set HANDOFF_LLM_BASE_URL and HANDOFF_LLM_MODEL")
    entries = knowledge if knowledge is not None else [KnowledgeEntry(q, a) for q, a in demo_faq()]
    return TurnDecider(
        local,
        KnowledgeBase(entries, encoder),
        llm,
        grounding_entries=settings.llm_knowledge_entries,
    )
