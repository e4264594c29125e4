"""Answering from a FAQ: embed the entries once, return the closest answer or an honest fallback.

The confidence of an `Answer` is the cosine similarity between the user's message and the best
FAQ entry. Below `min_confidence` the knowledge base does not guess: it says so and offers a
person, with `source=None`, which is what the decider's low-confidence signal counts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from handoff.decide.encoder import Encoder, Vector
from handoff.decide.signals import LOW_CONFIDENCE, small_talk_kind
from handoff.domain import Answer

# Measured with MiniLM on a small shop FAQ: paraphrases of a covered question scored 0.59–0.95
# ("do you deliver to Canada" → "Do you ship internationally?" 0.59), unrelated questions
# 0.1–0.4, and look-alikes with the wrong answer 0.55–0.58 ("How do I change my email address?"
# → the delivery-address entry). No cut separates the last two bands cleanly; 0.55 keeps most
# paraphrases and drops most look-alikes. Raise it for FAQs with many similar questions.
DEFAULT_MIN_CONFIDENCE = LOW_CONFIDENCE

FALLBACK_TEXT = (
    "I'm not sure about that one, and I don't want to guess. "
    "I can connect you with a person from our support team if you'd like."
)
SMALL_TALK_SOURCE = "smalltalk"
_SMALL_TALK_REPLIES = {
    "greeting": "Hi! How can I help you today?",
    "thanks": "You're welcome! Is there anything else I can help with?",
    "goodbye": "Goodbye, and thanks for reaching out!",
}
# Texts embedded per step of a build; between steps a build that is no longer wanted stops.
BUILD_STEP = 64


class Superseded(Exception):
    """The build was stopped: a newer version of the knowledge base is wanted instead."""


@dataclass(frozen=True, slots=True)
class KnowledgeEntry:
    """One FAQ entry: a question as users ask it, and the answer to give."""

    question: str
    answer: str


class KnowledgeBase:
    """Retrieve the best FAQ answer for a message by cosine similarity."""

    def __init__(
        self,
        entries: Sequence[KnowledgeEntry],
        encoder: Encoder,
        *,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        previous: KnowledgeBase | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        """Embed the entries (slow: seconds for a thousand). Rows of `previous` are reused for
        entries it had; `stop` is asked between steps and raises `Superseded` when true."""
        self.entries = tuple(entries)
        self.encoder = encoder
        self.min_confidence = min_confidence
        known = previous._rows() if previous is not None else {}
        # Each entry is embedded twice, as its question and as question + answer, and scores the
        # better of the two: the answer adds words users say ("invite a colleague" matches
        # "Settings → Members → Invite" better than "How do I add a team member?").
        self._questions = _embed(encoder, [e.question for e in self.entries], known, stop)
        self._full = _embed(encoder, [_full_text(e) for e in self.entries], known, stop)

    def _rows(self) -> dict[str, Vector]:
        """Return every embedded text with its row, for a rebuild to reuse."""
        rows = dict(zip((e.question for e in self.entries), self._questions, strict=True))
        rows.update(zip((_full_text(e) for e in self.entries), self._full, strict=True))
        return rows

    def answer(self, text: str) -> Answer:
        """Return the best FAQ answer, a small-talk reply, or a fallback that offers a person."""
        kind = small_talk_kind(text)
        if kind is not None:
            return Answer(_SMALL_TALK_REPLIES[kind], confidence=1.0, source=SMALL_TALK_SOURCE)
        if not self.entries or not text.strip():
            return Answer(FALLBACK_TEXT, confidence=0.0, source=None)
        vector = self.encoder.encode_one(text)
        sims = np.maximum(self._questions @ vector, self._full @ vector)
        best = int(np.argmax(sims))
        score = max(0.0, min(1.0, float(sims[best])))
        if score < self.min_confidence:
            return Answer(FALLBACK_TEXT, confidence=score, source=None)
        entry = self.entries[best]
        return Answer(entry.answer, confidence=score, source=entry.question)

    def top(self, text: str, k: int = 4, *, floor: float = 0.3) -> list[KnowledgeEntry]:
        """Return up to k entries closest to the message, best first: an LLM's grounding."""
        if not self.entries or not text.strip():
            return []
        vector = self.encoder.encode_one(text)
        sims = np.maximum(self._questions @ vector, self._full @ vector)
        order = np.argsort(-sims)[:k]
        return [self.entries[int(i)] for i in order if sims[i] >= floor]


def _full_text(entry: KnowledgeEntry) -> str:
    return f"{entry.question} {entry.answer}"


def _embed(
    encoder: Encoder,
    texts: Sequence[str],
    known: Mapping[str, Vector],
    stop: Callable[[], bool] | None,
) -> Vector:
    """Embed texts in steps, reusing known rows; entries stay out of the encoder's cache,
    which is kept for live messages (the knowledge base keeps its own rows)."""
    missing = [t for t in dict.fromkeys(texts) if t not in known]
    fresh: dict[str, Vector] = {}
    for i in range(0, len(missing), BUILD_STEP):
        if stop is not None and stop():
            raise Superseded()
        step = missing[i : i + BUILD_STEP]
        fresh.update(zip(step, encoder.encode(step, cache=False), strict=True))
    if not texts:
        return encoder.encode([])
    return np.stack([known[t] if t in known else fresh[t] for t in texts])
