from __future__ import annotations

import pytest

from handoff.agent import KnowledgeBase, KnowledgeEntry
from handoff.agent.knowledge import FALLBACK_TEXT, SMALL_TALK_SOURCE
from handoff.decide import Encoder

FAQ = [
    KnowledgeEntry("How do I reset my password?", "Use 'Forgot password' on the sign-in page."),
    KnowledgeEntry("How long does shipping take?", "Standard shipping takes 3-5 business days."),
    KnowledgeEntry("Do you ship internationally?", "Yes, we ship to 40 countries."),
    KnowledgeEntry("How do I add a team member?", "Settings → Members → Invite."),
]


@pytest.fixture(scope="module")
def kb(encoder: Encoder) -> KnowledgeBase:
    return KnowledgeBase(FAQ, encoder)


@pytest.mark.parametrize(
    ("text", "source"),
    [
        ("i forgot my password, how can I reset it", "How do I reset my password?"),
        ("how many days until my package arrives", "How long does shipping take?"),
        ("how to invite a colleague", "How do I add a team member?"),
    ],
)
def test_confident_answer(kb: KnowledgeBase, text: str, source: str) -> None:
    answer = kb.answer(text)
    assert answer.source == source
    assert answer.is_confident
    assert answer.text == next(e.answer for e in FAQ if e.question == source)
    assert kb.min_confidence <= answer.confidence <= 1.0


@pytest.mark.parametrize(
    "text", ["what's the weather in Paris", "does the blender jar contain BPA"]
)
def test_low_confidence_falls_back_honestly(kb: KnowledgeBase, text: str) -> None:
    answer = kb.answer(text)
    assert answer.source is None
    assert answer.text == FALLBACK_TEXT
    assert "person" in answer.text
    assert answer.confidence < kb.min_confidence


def test_threshold_is_configurable(encoder: Encoder) -> None:
    strict = KnowledgeBase(FAQ, encoder, min_confidence=0.99)
    assert strict.answer("how many days until my package arrives").source is None


@pytest.mark.parametrize("text", ["hi", "Hello!", "thanks", "thank you so much"])
def test_small_talk_is_not_a_miss(kb: KnowledgeBase, text: str) -> None:
    answer = kb.answer(text)
    assert answer.source == SMALL_TALK_SOURCE
    assert answer.is_confident
    assert answer.text != FALLBACK_TEXT


def test_empty_knowledge_base(encoder: Encoder) -> None:
    answer = KnowledgeBase([], encoder).answer("where is my order?")
    assert answer.source is None and answer.text == FALLBACK_TEXT
