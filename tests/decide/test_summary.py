from __future__ import annotations

from collections.abc import Callable

from handoff.decide import subject_for, summarize
from handoff.domain import Decision, Message, Reason

Convo = Callable[..., list[Message]]


def test_subject_skips_greetings_and_truncates(make_convo: Convo) -> None:
    long = "My Google Calendar events stopped showing up in Planly since Friday and " * 3
    history = make_convo(("assistant", "Hi! How can I help?"), ("user", "hello"), ("user", long))
    subject = subject_for(history)
    assert subject.startswith("My Google Calendar events")
    assert len(subject) <= 80
    assert subject.endswith("…")


def test_subject_short_question_kept_whole(make_convo: Convo) -> None:
    assert subject_for(make_convo(("user", "  where is  order 90114? "))) == "where is order 90114?"
    assert subject_for([]) == "Support request from chat"


def test_summary_names_problem_attempt_and_reason(make_convo: Convo) -> None:
    history = make_convo(
        ("assistant", "Hi, I'm Nova."),
        ("user", "The app closes every time I tap Statements."),
        ("assistant", "Please update the app and clear its cache.", 0.8),
        ("user", "I already did both, still crashes."),
    )
    decision = Decision(
        escalate=True, reasons=(Reason.REPEATED_QUESTION, Reason.FRUSTRATION), score=0.8
    )
    text = summarize(history, decision)
    assert "The app closes every time I tap Statements." in text
    assert "I already did both, still crashes." in text
    assert "update the app and clear its cache" in text
    assert "ask again" in text and "frustrated" in text
    assert "Nova" not in text
    assert 2 <= text.count(". ") + 1 <= 5


def test_summary_says_when_ai_found_no_answer(make_convo: Convo) -> None:
    history = make_convo(
        ("user", "Is the jar BPA free?"),
        ("assistant", "I'm not sure about that one.", 0.2),
    )
    text = summarize(history, Decision(escalate=True, reasons=(Reason.LOW_CONFIDENCE,), score=0.8))
    assert "could not find an answer" in text
    assert "I'm not sure" not in text
    assert "Is the jar BPA free?" in text


def test_summary_without_answer(make_convo: Convo) -> None:
    text = summarize(
        make_convo(("user", "Can I talk to a person?")),
        Decision(escalate=True, reasons=(Reason.EXPLICIT_REQUEST,), score=0.95),
    )
    assert "had not answered" in text and "asked to talk to a person" in text
