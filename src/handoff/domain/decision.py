"""The escalation decision: whether to hand over, and why, in terms a human can check."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from handoff.domain.action import ActionConfig
from handoff.domain.conversation import Message


class Reason(StrEnum):
    """Why a conversation needs a person."""

    EXPLICIT_REQUEST = "explicit_request"
    FRUSTRATION = "frustration"
    REPEATED_QUESTION = "repeated_question"
    LOW_CONFIDENCE = "low_confidence"
    SENSITIVE_TOPIC = "sensitive_topic"
    LLM_TOOL_CALL = "llm_tool_call"


# What a reason is called on a chip, in a few words (GET /api/v1/vocabulary).
REASON_TITLES: dict[Reason, str] = {
    Reason.EXPLICIT_REQUEST: "Asked for a person",
    Reason.FRUSTRATION: "Frustration",
    Reason.REPEATED_QUESTION: "Repeated question",
    Reason.LOW_CONFIDENCE: "Low confidence",
    Reason.SENSITIVE_TOPIC: "Sensitive topic",
    Reason.LLM_TOOL_CALL: "AI's decision",
}

# What each reason means, in a line: the pages show it (GET /api/v1/vocabulary).
REASON_DESCRIPTIONS: dict[Reason, str] = {
    Reason.EXPLICIT_REQUEST: "The visitor asked for a person",
    Reason.FRUSTRATION: "The visitor sounds frustrated",
    Reason.REPEATED_QUESTION: "The same question came back",
    Reason.LOW_CONFIDENCE: "The AI was not confident in its answer",
    Reason.SENSITIVE_TOPIC: "A sensitive topic came up",
    Reason.LLM_TOOL_CALL: "The language model decided to escalate",
}


@dataclass(frozen=True, slots=True)
class Evidence:
    """One signal that fired, with its score and what it matched."""

    reason: Reason
    score: float
    detail: str


@dataclass(frozen=True, slots=True)
class Decision:
    """The decider's verdict: escalate or not, the reasons, an overall score, the evidence."""

    escalate: bool
    reasons: tuple[Reason, ...] = ()
    score: float = 0.0
    evidence: tuple[Evidence, ...] = ()
    # A calibrated model's probability of each label (the four reasons and "no_escalation"),
    # for the reliability table of `handoff eval`; empty for deciders without one.
    probabilities: tuple[tuple[str, float], ...] = ()

    @classmethod
    def stay(
        cls, evidence: Sequence[Evidence] = (), probabilities: tuple[tuple[str, float], ...] = ()
    ) -> Decision:
        return cls(escalate=False, evidence=tuple(evidence), probabilities=probabilities)


@dataclass(frozen=True, slots=True)
class Answer:
    """The AI's candidate reply and how sure it is."""

    text: str
    confidence: float
    source: str | None = None  # e.g. the knowledge-base question it came from

    @property
    def is_confident(self) -> bool:
        return self.source is not None


@dataclass(frozen=True, slots=True)
class DecisionContext:
    """Everything the decider may look at for one inbound user message."""

    message: str
    history: Sequence[Message]  # earlier messages, oldest first, without `message`
    action: ActionConfig
    answer: Answer | None = None  # what the AI would say, when it has been computed
