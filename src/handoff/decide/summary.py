"""Ticket subject and summary for the support agent: extractive, short, plain text."""

from __future__ import annotations

from collections.abc import Sequence

from handoff.decide.signals import LOW_CONFIDENCE, small_talk_kind
from handoff.domain import Decision, Message, Reason, Role

SUBJECT_MAX_CHARS = 80
_QUOTE_MAX_CHARS = 200
_FALLBACK_SUBJECT = "Support request from chat"

_REASON_WORDS: dict[Reason, str] = {
    Reason.EXPLICIT_REQUEST: "the user asked to talk to a person",
    Reason.FRUSTRATION: "the user sounded frustrated",
    Reason.REPEATED_QUESTION: "the user had to ask again because the answer did not help",
    Reason.LOW_CONFIDENCE: "the AI could not find an answer twice in a row",
    Reason.SENSITIVE_TOPIC: "the request is on a topic the team handles itself",
    Reason.LLM_TOOL_CALL: "the AI judged that the request needs a person",
}


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    # Cut at a word boundary unless that throws away most of the text.
    if " " in cut and cut.rfind(" ") > limit // 2:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:.-") + "…"


def _substantive(message: Message) -> bool:
    return (
        message.role == Role.USER
        and bool(message.text.strip())
        and small_talk_kind(message.text) is None
    )


def _first_question(history: Sequence[Message]) -> Message | None:
    return next((m for m in history if _substantive(m)), None)


def subject_for(history: Sequence[Message]) -> str:
    """Return a ticket subject from the user's first real question, at most 80 characters."""
    first = _first_question(history)
    if first is None:
        return _FALLBACK_SUBJECT
    return _shorten(first.text, SUBJECT_MAX_CHARS)


def _sentence(text: str) -> str:
    text = text.rstrip()
    return text if text.endswith((".", "!", "?", "…")) else text + "."


def summarize(history: Sequence[Message], decision: Decision) -> str:
    """Summarise the problem, what the AI tried and why it escalated, in 2–4 sentences."""
    first = _first_question(history)
    parts: list[str] = []
    if first is None:
        parts.append("The user has not described a problem yet.")
    else:
        parts.append(f"The user asked: “{_shorten(first.text, _QUOTE_MAX_CHARS)}”")
        last = next((m for m in reversed(history) if _substantive(m)), None)
        if last is not None and last is not first:
            parts.append(f"Their latest message: “{_shorten(last.text, _QUOTE_MAX_CHARS)}”")
    # What the AI tried: its last answer after the user's first question (greetings before it
    # say nothing about the problem).
    start = history.index(first) if first is not None else len(history)
    # Only answers count (they carry a confidence); prompts such as "what's your email?" do not.
    answers = [m for m in history[start:] if m.role == Role.ASSISTANT and m.confidence is not None]
    if not answers:
        parts.append("The AI had not answered yet.")
    elif answers[-1].confidence is not None and answers[-1].confidence < LOW_CONFIDENCE:
        parts.append("The AI could not find an answer.")
    else:
        parts.append(f"The AI last answered: “{_shorten(answers[-1].text, _QUOTE_MAX_CHARS)}”")
    why = [_REASON_WORDS.get(r, r.value.replace("_", " ")) for r in decision.reasons]
    if why:
        parts.append("Escalated because " + " and ".join(why) + ".")
    elif not decision.escalate:
        parts.append("Not escalated by the decider.")
    return " ".join(_sentence(p) for p in parts)
