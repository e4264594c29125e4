"""The decider as the service is configured, as one `Decider`: for `handoff eval` and `bench`.

Without an LLM it is the local decider (`HANDOFF_DECIDER`: the rules or the learned model).
With one, it decides like a conversation turn does:
the model is offered the escalate action as a tool, and the local signals stay on as the
safety net (`decide.llm.combine`); a model error falls back to the local decision.
"""

from __future__ import annotations

import asyncio

from handoff.agent.llm import LLMAgent, LLMUnavailable
from handoff.decide import Decider, Encoder
from handoff.decide.llm import combine
from handoff.domain import Decision, DecisionContext
from handoff.service.runtime import llm_agent, local_decider
from handoff.settings import Settings


class ModelDecider:
    """The model's tool call combined with the local decision, one message at a time."""

    def __init__(self, local: Decider, llm: LLMAgent, *, agent_name: str = "Support") -> None:
        self.local = local
        self.llm = llm
        self.agent_name = agent_name
        self.fallbacks = 0  # decisions where the model failed and the local one stood alone
        self._loop = asyncio.new_event_loop()

    def decide(self, ctx: DecisionContext) -> Decision:
        """Return the combined decision, or the local one when the model is unavailable."""
        local = self.local.decide(ctx)
        try:
            reply = self._loop.run_until_complete(
                self.llm.respond(
                    history=ctx.history,
                    message=ctx.message,
                    knowledge=(),
                    action=ctx.action,
                    agent_name=self.agent_name,
                )
            )
        except LLMUnavailable:
            self.fallbacks += 1
            return local
        return combine(local, reply.tool_call)

    def close(self) -> None:
        self._loop.run_until_complete(self.llm.aclose())
        self._loop.close()


def configured_decider(settings: Settings, encoder: Encoder, *, use_llm: bool | None) -> Decider:
    """Return the decider the settings describe; `use_llm` None means "when configured"."""
    local = local_decider(settings, encoder)
    llm = llm_agent(settings) if use_llm is not False else None
    if use_llm and llm is None:
        raise ValueError("no LLM is configured: set HANDOFF_LLM_BASE_URL and HANDOFF_LLM_MODEL")
    return local if llm is None else ModelDecider(local, llm)
