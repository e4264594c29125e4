"""The chat widget's look: an agent's colours and texts, checked and shared publicly.

Everything here is shown on customers' pages to anyone who knows the agent id, so only these
keys are stored and published; the widget inserts the texts as text, never as markup.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from handoff.service.errors import Invalid
from handoff.store.models import Agent

COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")

# Colours: the accent (launcher, header, the visitor's bubbles, buttons) and the text drawn
# on it. Pick a `text_color` that reads on `primary_color`.
COLOURS: tuple[str, ...] = ("primary_color", "text_color")

# Texts and their longest allowed length (the widget's header and buttons are narrow).
TEXTS: dict[str, int] = {
    "title": 60,  # the header title; the agent's name by default
    "subtitle": 120,  # a line under the title
    "launcher_label": 40,  # what the launcher button is called (tooltip and screen readers)
    "placeholder": 100,  # the message box's placeholder
    "back_to_ai_label": 40,  # the button that goes back to the AI while the team is awaited
}

KEYS: tuple[str, ...] = (*COLOURS, *TEXTS)


def check(fields: Mapping[str, str | None]) -> dict[str, str]:
    """Return the settings to store, or raise Invalid naming the first bad field.

    Missing or empty values mean "use the default" and are not stored.
    """
    unknown = sorted(set(fields) - set(KEYS))
    if unknown:
        raise Invalid(unknown[0], f"unknown widget setting; known: {', '.join(KEYS)}")
    settings: dict[str, str] = {}
    for key in KEYS:
        value = (fields.get(key) or "").strip()
        if not value:
            continue
        if key in COLOURS and not COLOUR.match(value):
            raise Invalid(key, "must be a colour written #rgb or #rrggbb, like #4f46e5")
        if key in TEXTS and len(value) > TEXTS[key]:
            raise Invalid(key, f"must be at most {TEXTS[key]} characters")
        if key in TEXTS and any(ch in value for ch in "\r\n\t"):
            raise Invalid(key, "must be a single line")
        settings[key] = value.lower() if key in COLOURS else value
    return settings


def save(agent: Agent, fields: Mapping[str, str | None]) -> dict[str, Any]:
    """Replace the agent's widget settings; return what anyone may now read."""
    agent.widget = check(fields)
    return public(agent)


def public(agent: Agent) -> dict[str, Any]:
    """Return the widget settings every key present, None where the default applies."""
    stored = agent.widget or {}
    return {key: stored.get(key) for key in KEYS}
