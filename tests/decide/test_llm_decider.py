"""The LLM policy: the model's tool call decides, the local safety net still holds."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from handoff.decide import Encoder, LocalDecider
from handoff.decide.llm import SAFETY_NET, ToolCall, combine, ticket_summary
from handoff.domain import ActionConfig, Decision, DecisionContext, Evidence, Message, Reason

Convo = Callable[..., list[Message]]
CALL = ToolCall("Escalate_To_Human", reason="The user wants a refund.", summary="Broken blender.")


def local(*reasons: Reason, score: float = 0.9) -> Decision:
    evidence = tuple(Evidence(r, score, f"{r.value} fired") for r in reasons)
    if not reasons:
        return Decision.stay((Evidence(Reason.FRUSTRATION, 0.3, "near miss"),))
    return Decision(escalate=True, reasons=reasons, score=score, evidence=evidence)


def test_tool_call_escalates_on_its_own() -> None:
    decision = combine(local(), CALL)
    assert decision.escalate
    assert decision.reasons == (Reason.LLM_TOOL_CALL,)
    assert decision.score == 1.0
    first = decision.evidence[0]
    assert first == Evidence(
        Reason.LLM_TOOL_CALL,
        1.0,
        "the model called Escalate_To_Human: The user wants a refund.",
    )
    assert Evidence(Reason.FRUSTRATION, 0.3, "near miss") in decision.evidence


def test_tool_call_keeps_the_local_reasons_after_its_own() -> None:
    decision = combine(local(Reason.LOW_CONFIDENCE, Reason.EXPLICIT_REQUEST), CALL)
    assert decision.reasons == (
        Reason.LLM_TOOL_CALL,
        Reason.LOW_CONFIDENCE,
        Reason.EXPLICIT_REQUEST,
    )
    assert [e.reason for e in decision.evidence] == [
        Reason.LLM_TOOL_CALL,
        Reason.LOW_CONFIDENCE,
        Reason.EXPLICIT_REQUEST,
    ]


def test_tool_call_without_a_reason_says_so() -> None:
    decision = combine(local(), ToolCall("Escalate_To_Human"))
    assert decision.evidence[0].detail == "the model called Escalate_To_Human: no reason given"


def test_a_long_reason_is_shortened_in_the_evidence() -> None:
    decision = combine(local(), ToolCall("Escalate_To_Human", reason="word " * 200))
    assert len(decision.evidence[0].detail) < 400
    assert decision.evidence[0].detail.endswith("…")


def test_explicit_request_is_honoured_when_the_model_keeps_chatting() -> None:
    decision = combine(local(Reason.EXPLICIT_REQUEST, score=0.95), None)
    assert decision.escalate
    assert decision.reasons == (Reason.EXPLICIT_REQUEST,)
    assert decision.score == 0.95
    assert decision.evidence[-1].reason == Reason.LLM_TOOL_CALL
    assert decision.evidence[-1].score == 0.0


@pytest.mark.parametrize("reason", sorted(SAFETY_NET))
def test_safety_net_reasons_override_the_model(reason: Reason) -> None:
    assert combine(local(reason), None).escalate


@pytest.mark.parametrize("reason", [Reason.REPEATED_QUESTION, Reason.LOW_CONFIDENCE])
def test_retrieval_signals_defer_to_the_model(reason: Reason) -> None:
    decision = combine(local(reason), None)
    assert not decision.escalate
    assert decision.reasons == ()
    assert Evidence(reason, 0.9, f"{reason.value} fired") in decision.evidence


def test_safety_net_reasons_lead_the_others() -> None:
    decision = combine(local(Reason.LOW_CONFIDENCE, Reason.FRUSTRATION), None)
    assert decision.escalate
    assert decision.reasons == (Reason.FRUSTRATION, Reason.LOW_CONFIDENCE)


def test_nothing_anywhere_stays() -> None:
    decision = combine(local(), None)
    assert decision == Decision.stay(
        (
            Evidence(Reason.FRUSTRATION, 0.3, "near miss"),
            Evidence(
                Reason.LLM_TOOL_CALL, 0.0, "the model answered without calling the escalate tool"
            ),
        )
    )


def test_the_safety_net_is_the_documented_one() -> None:
    assert (
        frozenset({Reason.EXPLICIT_REQUEST, Reason.SENSITIVE_TOPIC, Reason.FRUSTRATION})
        == SAFETY_NET
    )


def test_a_real_request_for_a_human_beats_a_chatty_model(
    encoder: Encoder, action: ActionConfig, make_convo: Convo
) -> None:
    ctx = DecisionContext(
        message="I want to talk to a human",
        history=make_convo(("user", "how do I export contacts?"), ("assistant", "Go to Settings.")),
        action=action,
    )
    decision = combine(LocalDecider(encoder).decide(ctx), None)
    assert decision.escalate
    assert decision.reasons[0] == Reason.EXPLICIT_REQUEST


def test_ticket_summary_leads_with_the_model_words() -> None:
    text = ticket_summary("The user asked: “refund?”.", tool_call=CALL)
    assert text == (
        "AI summary: Broken blender. Why the AI escalated: The user wants a refund. "
        "The user asked: “refund?”."
    )


def test_ticket_summary_uses_the_abstract_without_a_tool_call() -> None:
    text = ticket_summary("Extractive.", abstract="The customer wants a refund")
    assert text == "AI summary: The customer wants a refund. Extractive."


def test_ticket_summary_falls_back_to_the_extractive_one() -> None:
    assert ticket_summary("Extractive.") == "Extractive."
    assert ticket_summary("Extractive.", tool_call=ToolCall("X")) == "Extractive."


def test_ticket_summary_prefers_the_tool_summary_and_bounds_it() -> None:
    call = ToolCall("X", reason="", summary="long " * 500)
    text = ticket_summary("E.", tool_call=call, abstract="ignored")
    assert "ignored" not in text
    assert len(text) < 700
