"""The escalation policy: run the signals on one user message and combine them into a Decision.

`LocalDecider` needs no API key: regex signals plus the bundled sentence encoder. A signal fires
when its evidence scores at least `FIRE_SCORE`; the decision's score is the highest evidence
score, and a conversation that stays with the AI still carries its near misses as evidence.

The admin's trigger examples (and, more strictly, the sentences of `when_to_use`) are
prototypes: a message very close to one escalates as `SENSITIVE_TOPIC`, because the admin
configured that situation; the user did not necessarily ask for a person, and the inbox should
not say they did.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from handoff.decide.encoder import Encoder
from handoff.decide.signals import (
    DEFAULT_TOPIC_MATCHERS,
    FIRE_SCORE,
    LOW_CONFIDENCE,
    REPEAT_NEAR,
    REPEAT_SIMILARITY,
    TOPIC_EXAMPLE_NEAR,
    TOPIC_EXAMPLE_SIMILARITY,
    TOPIC_MARGIN,
    TOPIC_NEAR,
    TOPIC_SIMILARITY,
    answer_did_not_help,
    closest,
    explicit_request,
    frustration,
    low_confidence,
    repeated_question,
    scaled,
    sensitive_topic,
    topic_key,
)
from handoff.domain import Decision, DecisionContext, Evidence, Reason

# The first reason is the headline the team sees: what the user asked for, then what the
# conversation is about, then how it went.
REASON_PRIORITY: tuple[Reason, ...] = (
    Reason.EXPLICIT_REQUEST,
    Reason.LLM_TOOL_CALL,
    Reason.SENSITIVE_TOPIC,
    Reason.FRUSTRATION,
    Reason.REPEATED_QUESTION,
    Reason.LOW_CONFIDENCE,
)


class Decider(Protocol):
    """Anything that turns one inbound user message in context into a Decision."""

    def decide(self, ctx: DecisionContext) -> Decision: ...


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Cut-offs of the embedding and confidence signals (cosines, except `low_confidence`)."""

    repeat: float = REPEAT_SIMILARITY
    repeat_near: float = REPEAT_NEAR
    topic: float = TOPIC_SIMILARITY
    topic_near: float = TOPIC_NEAR
    # MiniLM cosine to an admin trigger example: paraphrases of one request land at 0.8+.
    trigger: float = 0.7
    trigger_near: float = 0.6
    # `when_to_use` is instructions, not user phrasing: only a near-verbatim match counts.
    when_to_use: float = 0.8
    low_confidence: float = LOW_CONFIDENCE
    low_confidence_run: int = 2
    # A default topic fires at this cosine to its examples, when it beats the closest routine
    # question by `topic_margin`.
    topic_example: float = TOPIC_EXAMPLE_SIMILARITY
    topic_example_near: float = TOPIC_EXAMPLE_NEAR
    topic_margin: float = TOPIC_MARGIN

    def overridden(self, overrides: Mapping[str, float]) -> Thresholds:
        """Return these thresholds with an action's overrides applied."""
        if not overrides:
            return self
        values = {
            k: int(v) if k == "low_confidence_run" else float(v) for k, v in overrides.items()
        }
        return dataclasses.replace(self, **values)  # type: ignore[arg-type]


THRESHOLD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Thresholds))


_SENTENCE = re.compile(r"(?<=[.!?;\n])\s+")


def _when_to_use_sentences(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in _SENTENCE.split(text) if len(s.split()) >= 3)


class LocalDecider:
    """Decide with regex signals and the local encoder; deterministic and CPU-only."""

    def __init__(self, encoder: Encoder, thresholds: Thresholds | None = None) -> None:
        self.encoder = encoder
        self.thresholds = thresholds or Thresholds()

    def decide(self, ctx: DecisionContext) -> Decision:
        """Return whether this message should go to a person, with the evidence."""
        t = self.thresholds.overridden(ctx.action.thresholds)
        text = ctx.message
        found: list[Evidence | None] = [
            explicit_request(text),
            frustration(text, ctx.history),
            answer_did_not_help(text, ctx.history),
            repeated_question(
                text, ctx.history, self.encoder, threshold=t.repeat, near=t.repeat_near
            ),
            low_confidence(
                ctx.answer, ctx.history, threshold=t.low_confidence, run=t.low_confidence_run
            ),
            sensitive_topic(
                text,
                ctx.action.sensitive_topics,
                self.encoder,
                threshold=t.topic,
                near=t.topic_near,
                example_threshold=t.topic_example,
                example_near=t.topic_example_near,
                margin=t.topic_margin,
            ),
            self._trigger_example(text, ctx.action.trigger_examples, ctx.action.when_to_use, t),
        ]
        evidence = sorted((e for e in found if e is not None), key=lambda e: e.score, reverse=True)
        fired = [e for e in evidence if e.score >= FIRE_SCORE]
        if not fired:
            return Decision.stay(evidence)
        reasons = tuple(sorted(dict.fromkeys(e.reason for e in fired), key=REASON_PRIORITY.index))
        return Decision(
            escalate=True, reasons=reasons, score=fired[0].score, evidence=tuple(evidence)
        )

    def trigger_evidence(self, ctx: DecisionContext) -> Evidence | None:
        """The admin's trigger examples and `when_to_use` alone (the learned decider's rules)."""
        t = self.thresholds.overridden(ctx.action.thresholds)
        action = ctx.action
        return self._trigger_example(ctx.message, action.trigger_examples, action.when_to_use, t)

    def custom_topic_evidence(self, ctx: DecisionContext) -> Evidence | None:
        """The action's own sensitive topics (not the four defaults) alone: a learned model
        knows the defaults, not what an admin added."""
        t = self.thresholds.overridden(ctx.action.thresholds)
        custom = [
            topic
            for topic in ctx.action.sensitive_topics
            if topic_key(topic) not in DEFAULT_TOPIC_MATCHERS
        ]
        if not custom:
            return None
        return sensitive_topic(
            ctx.message, custom, self.encoder, threshold=t.topic, near=t.topic_near
        )

    def _trigger_example(
        self, text: str, examples: Sequence[str], when_to_use: str, t: Thresholds
    ) -> Evidence | None:
        best = (
            closest(
                Reason.SENSITIVE_TOPIC,
                self.encoder.similarity(text, list(examples)),
                examples,
                threshold=t.trigger,
                near=t.trigger_near,
                detail=lambda example, sim: (
                    f"close to the admin's trigger example “{example}” (similarity {sim:.2f})"
                ),
            )
            if examples
            else None
        )
        sentences = _when_to_use_sentences(when_to_use)
        if sentences:
            sims = self.encoder.similarity(text, list(sentences))
            i = int(np.argmax(sims))
            sim = float(sims[i])
            if sim >= t.when_to_use and (best is None or best.score < FIRE_SCORE):
                best = Evidence(
                    Reason.SENSITIVE_TOPIC,
                    round(scaled(sim, t.when_to_use, t.trigger_near), 3),
                    f"matches the action's “when to use”: “{sentences[i]}” (similarity {sim:.2f})",
                )
        return best
