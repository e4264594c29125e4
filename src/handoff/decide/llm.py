"""The LLM policy: combine the model's tool call with the local signals, which stay on as a net.

With an LLM configured, the model sees the escalate action as a tool and decides first. The
local decider still runs on every message, and some of its reasons override a model that keeps
chatting (`SAFETY_NET`):

- `EXPLICIT_REQUEST`: a user who asks for a person gets one, always;
- `SENSITIVE_TOPIC`: the admin named these topics (and trigger examples) for people to handle;
- `FRUSTRATION`: an angry user should not be argued with by a bot that misread the mood.

`REPEATED_QUESTION` and `LOW_CONFIDENCE` do not override the model: they measure the local
knowledge-base retrieval, and the model sees the whole history and its own grounding. They still
join the reasons when the model escalates.

Pure functions, no I/O: the agent calls the model, this module only decides.
"""

from __future__ import annotations

from dataclasses import dataclass

from handoff.domain import Decision, Evidence, Reason

SAFETY_NET: frozenset[Reason] = frozenset(
    {Reason.EXPLICIT_REQUEST, Reason.SENSITIVE_TOPIC, Reason.FRUSTRATION}
)
TOOL_CALL_SCORE = 1.0
_DETAIL_MAX_CHARS = 300
_SUMMARY_MAX_CHARS = 600


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model called the escalate tool: the tool's name and the arguments it gave."""

    name: str
    reason: str = ""
    summary: str = ""


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def combine(local: Decision, tool_call: ToolCall | None) -> Decision:
    """Return the decision for one message from the model's tool call and the local decision."""
    if tool_call is not None:
        why = _shorten(tool_call.reason, _DETAIL_MAX_CHARS) or "no reason given"
        called = Evidence(
            Reason.LLM_TOOL_CALL, TOOL_CALL_SCORE, f"the model called {tool_call.name}: {why}"
        )
        local_reasons = local.reasons if local.escalate else ()
        return Decision(
            escalate=True,
            reasons=tuple(dict.fromkeys((Reason.LLM_TOOL_CALL, *local_reasons))),
            score=TOOL_CALL_SCORE,
            evidence=(called, *local.evidence),
        )
    chatted = Evidence(
        Reason.LLM_TOOL_CALL, 0.0, "the model answered without calling the escalate tool"
    )
    if local.escalate and SAFETY_NET.intersection(local.reasons):
        # The safety net's reasons lead; the others fired too and stay, after them.
        reasons = sorted(local.reasons, key=lambda r: r not in SAFETY_NET)
        return Decision(
            escalate=True,
            reasons=tuple(reasons),
            score=local.score,
            evidence=(*local.evidence, chatted),
        )
    return Decision.stay((*local.evidence, chatted))


def ticket_summary(
    extractive: str, *, tool_call: ToolCall | None = None, abstract: str | None = None
) -> str:
    """Return the ticket summary: the model's words first, then the extractive summary."""
    lead = (tool_call.summary if tool_call else "") or (abstract or "")
    lead = _shorten(lead, _SUMMARY_MAX_CHARS)
    why = _shorten(tool_call.reason, _DETAIL_MAX_CHARS) if tool_call else ""
    parts = [f"AI summary: {lead}" if lead else "", f"Why the AI escalated: {why}" if why else ""]
    parts = [p if p.endswith((".", "!", "?", "…")) else p + "." for p in parts if p]
    return " ".join([*parts, extractive]) if parts else extractive
