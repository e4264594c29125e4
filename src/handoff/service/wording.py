"""What the AI says to the user at each step of a handoff, and what the ticket says about it.

Kept in one place so the voice stays consistent and the texts are easy to find. The texts for
visitors are English message ids marked `N_`: `i18n.say` gives them in the visitor's language
(the catalogues in src/handoff/locale). The ticket's notes are for the team and stay English.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handoff.domain import N_, HandbackReason, Language
from handoff.domain.action import (
    DEFAULT_ALTERNATIVE_MESSAGE,
    DEFAULT_HANDOFF_MESSAGE,
    EITHER_PLACE,
    NO_PLACE,
)
from handoff.service.channels import places as channel_places
from handoff.service.i18n import say
from handoff.store.models import Action

ASK_FOR_EMAIL = N_(
    "I'll connect you with our support team. What email address can they reach you at, "
    "in case you leave the chat? (Or say “skip” to continue without one.)"
)

ASK_FOR_EMAIL_AGAIN = N_(
    "That doesn't look like an email address. Please type it like name@example.com, "
    "or say “skip” and I'll connect you right away."
)

HANDBACK_MESSAGES: dict[HandbackReason, str] = {
    HandbackReason.SOLVED: N_(
        "Our support team has marked this conversation as solved. You're chatting with the "
        "AI assistant again — ask me anything, and I can bring a person back if you need one."
    ),
    HandbackReason.USER: N_(
        "Okay, I've cancelled your request to the support team. You're chatting with the AI "
        "assistant again — ask me anything, and I can bring a person back if you need one."
    ),
    HandbackReason.INACTIVITY: N_(
        "This conversation has been quiet for a while, so you're chatting with the AI "
        "assistant again — ask me anything, and I can bring a person back if you need one."
    ),
}

REOPENED = N_(
    "Our support team has reopened your request: a person will answer you here. You can "
    "keep writing to them."
)

# What the ticket says when the conversation went back to the AI without the team solving it.
HANDBACK_NOTES: dict[HandbackReason, str] = {
    HandbackReason.SOLVED: "The ticket was solved; the conversation went back to the AI.",
    HandbackReason.USER: "The user went back to the AI.",
    HandbackReason.INACTIVITY: (
        "Nobody wrote for a while, so the conversation went back to the AI."
    ),
}

BACK_TO_BOT_CANCELLED_REQUEST = N_(
    "No problem, I won't connect you with the support team. Ask me anything — I can bring a "
    "person in later if you need one."
)

WAIT_NOTICE = N_(
    "Thanks for waiting — you keep your place in the queue, and a person from our support "
    "team will answer here as soon as one is free."
)

WAIT_CHOICES_WITH_EMAIL = N_(
    " Meanwhile you can continue with the AI assistant (say “back to the AI”), or leave the "
    "chat: the team has your email address ({email}) and can reach you there."
)

WAIT_CHOICES_WITHOUT_EMAIL = N_(
    " Meanwhile you can continue with the AI assistant (say “back to the AI”), or leave your "
    "email address here and the team will reach you there if you leave the chat."
)

EMAIL_KEPT = N_(
    "Thanks! The support team now has your email address ({email}) and can reach you there "
    "if you leave the chat."
)

OFFLINE_HANDOFF = N_(
    "Our support team is away right now. I've passed your request on with this conversation, "
    "so you won't need to repeat yourself. A person will answer {when}"
)

OFFLINE_HOW_WITH_EMAIL = N_(" — here in this chat, or by email at {email} if you've left.")

OFFLINE_HOW_WITHOUT_EMAIL = N_(
    " — here in this chat. If you can't stay, leave your email address and they'll reach you there."
)

OFFLINE_UNKNOWN_WHEN = N_("as soon as the team is back")

OFFLINE_ASK_FOR_EMAIL = N_(
    "Our support team is away right now; a person will answer {when}. What email address can "
    "they reach you at, in case you leave the chat? (Or say “skip” to get their answer here.)"
)

# Said on WhatsApp to an image, a voice note or a location: nothing we could read or relay.
TEXT_ONLY = N_(
    "Sorry, I can only read text messages here. Please type your question and I'll help right away."
)


# The chat widget's own texts. The widget is one file that runs on customers' pages: it gets
# these in every language with the agent's public details and shows the conversation's.
WIDGET_LABELS: dict[str, str] = {
    "title": N_("Chat with us"),
    "open_chat": N_("Open chat"),
    "minimise_chat": N_("Minimise chat"),
    "minimise": N_("Minimise"),
    "ai_assistant": N_("AI assistant"),
    "ai": N_("AI"),
    "you": N_("You"),
    "support_team": N_("Support team"),
    "back_to_ai": N_("Back to the AI"),
    "conversation": N_("Conversation"),
    "loading": N_("Loading…"),
    "greeting": N_("Ask us anything — we usually answer right away."),
    "placeholder": N_("Write a message…"),
    "send": N_("Send message"),
    "send_hint": N_("Send (Enter)"),
    "composer": N_("Send a message"),
    "powered_by": N_("Powered by "),
    "someone": N_("Someone from our team"),
    "joined": N_("{name} joined the conversation"),
    "typing": N_("{name} is typing…"),
    "assistant_typing": N_("The assistant is typing…"),
    "team_unreachable": N_(
        "We couldn't reach our team right now. Leave a message and we'll get back to you."
    ),
    "with_team": N_("You're chatting with our support team."),
    "team_will_reply": N_("A person from our team will reply here. You can keep this page open."),
    "sending": N_("Sending…"),
    "unread_one": N_("{label}, 1 new message"),
    "unread_many": N_("{label}, {count} new messages"),
    "arrived_one": N_("1 new message in the chat"),
    "arrived_many": N_("{count} new messages in the chat"),
    "arrived_from": N_("{news}, the latest from {name}."),
    "waiting_network": N_("Waiting for the network…"),
    "retrying": N_("Retrying…"),
    "not_sent": N_("Your message could not be sent."),
    "failed": N_("That didn't work. Please try again."),
    "not_available": N_("This chat is not available."),
    "offline": N_("Can't reach the server. Check your connection and try again."),
    "too_fast": N_("You're sending messages a little fast. Please wait a moment."),
    "server_error": N_("Something went wrong on our side. Please try again."),
}


def widget_labels() -> dict[str, dict[str, str]]:
    """The widget's texts in every language: {"es": {"title": "Chatea con nosotros", ...}}."""
    return {
        language.value: {key: say(language, text) for key, text in WIDGET_LABELS.items()}
        for language in Language
    }


def handoff_message(action: Action, language: str) -> str:
    """The admin's handoff message in `language`, else their single one, else the default."""
    own = action.handoff_message if action.handoff_message != DEFAULT_HANDOFF_MESSAGE else None
    return _admin_text(action.handoff_messages, own, language) or say(
        language, DEFAULT_HANDOFF_MESSAGE
    )


def alternative_message(action: Action, language: str) -> str:
    """What the AI says on a channel the action does not cover, as `handoff_message` chooses."""
    chosen = _admin_text(action.alternative_messages, action.alternative_message, language)
    return chosen or say(language, DEFAULT_ALTERNATIVE_MESSAGE, where=_places(action, language))


def _admin_text(per_language: Mapping[str, Any], single: str | None, language: str) -> str | None:
    return per_language.get(language) or single or None


def _places(action: Action, language: str) -> str:
    """Where a person can be reached: "the chat on our website or WhatsApp"."""
    covered = [place for c, place in channel_places().items() if c.value in action.channels]
    places = [say(language, place) for place in covered]
    if not places:
        return say(language, NO_PLACE)
    where = places[0]
    for place in places[1:]:
        where = say(language, EITHER_PLACE, first=where, second=place)
    return where
