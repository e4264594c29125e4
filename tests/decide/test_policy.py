from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from handoff.decide import THRESHOLD_NAMES, Decider, Encoder, LocalDecider, Thresholds
from handoff.domain import ActionConfig, Answer, DecisionContext, Message, Reason

Convo = Callable[..., list[Message]]


@pytest.fixture(scope="module")
def decider(encoder: Encoder) -> LocalDecider:
    return LocalDecider(encoder)


def test_local_decider_is_a_decider(decider: LocalDecider) -> None:
    assert isinstance(decider, LocalDecider)
    d: Decider = decider
    assert callable(d.decide)


def test_calm_conversation_stays(
    decider: LocalDecider, action: ActionConfig, make_convo: Convo
) -> None:
    history = make_convo(
        ("user", "How do I export my contacts?"),
        ("assistant", "Go to Contacts → Export.", 0.9),
    )
    ctx = DecisionContext("Great, and can I export them as XLSX too?", history, action)
    decision = decider.decide(ctx)
    assert not decision.escalate
    assert decision.reasons == ()


def test_explicit_request_escalates_with_evidence(
    decider: LocalDecider, action: ActionConfig, make_convo: Convo
) -> None:
    history = make_convo(
        ("user", "We need a custom DPA."), ("assistant", "Download it in Settings.", 0.8)
    )
    decision = decider.decide(
        DecisionContext("Then can I talk to a person about the DPA?", history, action)
    )
    assert decision.escalate
    assert decision.reasons[0] is Reason.EXPLICIT_REQUEST
    assert decision.score == max(e.score for e in decision.evidence)
    assert any("talk to a person" in e.detail for e in decision.evidence)


def test_frustration_and_sensitive_topic_both_reported(
    decider: LocalDecider, action: ActionConfig
) -> None:
    ctx = DecisionContext("I was charged twice and nobody helps, this is useless!!!", [], action)
    decision = decider.decide(ctx)
    assert decision.escalate
    # The headline reason is what the conversation is about; the feeling comes second.
    assert decision.reasons == (Reason.SENSITIVE_TOPIC, Reason.FRUSTRATION)


def test_second_fallback_escalates_for_low_confidence(
    decider: LocalDecider, action: ActionConfig, make_convo: Convo
) -> None:
    history = make_convo(
        ("user", "Is the VortexPro jar BPA free?"),
        ("assistant", "I'm not sure about that one.", 0.3),
    )
    fallback = Answer("I'm not sure about that one.", confidence=0.31, source=None)
    ctx = DecisionContext(
        "what material is the jar made of then?", history, action, answer=fallback
    )
    decision = decider.decide(ctx)
    assert decision.escalate
    assert decision.reasons == (Reason.LOW_CONFIDENCE,)
    # The same message with a confident answer stays, keeping the near miss as evidence.
    confident = dataclasses.replace(
        ctx, answer=Answer("It's Tritan.", 0.8, "What is the jar made of?")
    )
    stay = decider.decide(confident)
    assert not stay.escalate


def test_trigger_example_escalates_as_sensitive_topic(
    decider: LocalDecider, action: ActionConfig
) -> None:
    custom = dataclasses.replace(action, trigger_examples=("I want to cancel my contract",))
    ctx = DecisionContext("please cancel my contract", [], custom)
    decision = decider.decide(ctx)
    assert decision.escalate
    assert decision.reasons == (Reason.SENSITIVE_TOPIC,)
    assert "trigger example" in decision.evidence[0].detail
    assert not decider.decide(DecisionContext("please cancel my contract", [], action)).escalate


def test_near_miss_is_kept_when_staying(decider: LocalDecider, action: ActionConfig) -> None:
    decision = decider.decide(DecisionContext("holy shit that was quick, thank you!!", [], action))
    assert not decision.escalate
    assert decision.evidence and decision.evidence[0].reason is Reason.FRUSTRATION


def test_trap_conversation_stays(
    decider: LocalDecider, action: ActionConfig, make_convo: Convo
) -> None:
    history = make_convo(
        ("user", "webhooks stopped firing after we rotated our signing secret"),
        ("assistant", "Verify signatures with the new secret. I can connect you with our team."),
    )
    ctx = DecisionContext(
        "no need for a human, I figured it out. events are flowing again 👍", history, action
    )
    assert not decider.decide(ctx).escalate


def test_decision_is_deterministic(
    decider: LocalDecider, action: ActionConfig, make_convo: Convo
) -> None:
    history = make_convo(
        ("user", "How do I change the delivery address for order 44190?"),
        ("assistant", "Manage saved addresses under Addresses.", 0.7),
    )
    ctx = DecisionContext("How do I change the delivery address for order 44190?", history, action)
    first = decider.decide(ctx)
    second = decider.decide(ctx)
    assert first == second
    assert first.escalate and Reason.REPEATED_QUESTION in first.reasons


def test_clarifying_rephrase_after_a_good_answer_stays(
    decider: LocalDecider, action: ActionConfig, make_convo: Convo
) -> None:
    history = make_convo(
        ("user", "If I downgrade to the free plan, do I lose my projects?"),
        ("assistant", "No: projects stay, but only the 3 most recent remain editable.", 0.8),
    )
    ctx = DecisionContext(
        "So just to be sure I got it: my older projects are still there, only read-only?",
        history,
        action,
    )
    assert not decider.decide(ctx).escalate


def test_action_thresholds_override_the_defaults(
    decider: LocalDecider, action: ActionConfig
) -> None:
    text = "the cash machine only gave me half of what I withdrew"
    assert decider.decide(DecisionContext(text, [], action)).escalate
    strict = dataclasses.replace(action, thresholds={"topic_example": 0.95})
    assert not decider.decide(DecisionContext(text, [], strict)).escalate
    assert Thresholds().overridden({"low_confidence_run": 3}).low_confidence_run == 3
    assert set(THRESHOLD_NAMES) >= {"topic_example", "trigger", "repeat", "low_confidence"}
