"""What the AI says to the user at each step of a handoff, and what the ticket says about it.

Kept in one place so the voice stays consistent and the texts are easy to find and translate.
"""

from __future__ import annotations

from handoff.domain import HandbackReason

ASK_FOR_EMAIL = (
    "I'll connect you with our support team. What email address can they reach you at, "
    "in case you leave the chat? (Or say “skip” to continue without one.)"
)

ASK_FOR_EMAIL_AGAIN = (
    "That doesn't look like an email address. Please type it like name@example.com, "
    "or say “skip” and I'll connect you right away."
)

HANDBACK_MESSAGES: dict[HandbackReason, str] = {
    HandbackReason.SOLVED: (
        "Our support team has marked this conversation as solved. You're chatting with the "
        "AI assistant again — ask me anything, and I can bring a person back if you need one."
    ),
    HandbackReason.USER: (
        "Okay, I've cancelled your request to the support team. You're chatting with the AI "
        "assistant again — ask me anything, and I can bring a person back if you need one."
    ),
    HandbackReason.INACTIVITY: (
        "This conversation has been quiet for a while, so you're chatting with the AI "
        "assistant again — ask me anything, and I can bring a person back if you need one."
    ),
}

# What the ticket says when the conversation went back to the AI without the team solving it.
HANDBACK_NOTES: dict[HandbackReason, str] = {
    HandbackReason.SOLVED: "The ticket was solved; the conversation went back to the AI.",
    HandbackReason.USER: "The user went back to the AI.",
    HandbackReason.INACTIVITY: (
        "Nobody wrote for a while, so the conversation went back to the AI."
    ),
}

BACK_TO_BOT_CANCELLED_REQUEST = (
    "No problem, I won't connect you with the support team. Ask me anything — I can bring a "
    "person in later if you need one."
)

WAIT_NOTICE = (
    "Thanks for waiting — you keep your place in the queue, and a person from our support "
    "team will answer here as soon as one is free."
)

WAIT_CHOICES_WITH_EMAIL = (
    " Meanwhile you can continue with the AI assistant (say “back to the AI”), or leave the "
    "chat: the team has your email address ({email}) and can reach you there."
)

WAIT_CHOICES_WITHOUT_EMAIL = (
    " Meanwhile you can continue with the AI assistant (say “back to the AI”), or leave your "
    "email address here and the team will reach you there if you leave the chat."
)

EMAIL_KEPT = (
    "Thanks! The support team now has your email address ({email}) and can reach you there "
    "if you leave the chat."
)

OFFLINE_HANDOFF = (
    "Our support team is away right now. I've passed your request on with this conversation, "
    "so you won't need to repeat yourself. A person will answer {when}"
)

OFFLINE_HOW_WITH_EMAIL = " — here in this chat, or by email at {email} if you've left."

OFFLINE_HOW_WITHOUT_EMAIL = (
    " — here in this chat. If you can't stay, leave your email address and they'll reach you there."
)

OFFLINE_UNKNOWN_WHEN = "as soon as the team is back"

OFFLINE_ASK_FOR_EMAIL = (
    "Our support team is away right now; a person will answer {when}. What email address can "
    "they reach you at, in case you leave the chat? (Or say “skip” to get their answer here.)"
)
