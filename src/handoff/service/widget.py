"""The chat widget's look: an agent's colours and texts, checked and shared publicly.

Everything here is shown on customers' pages to anyone who knows the agent id, so only these
keys are stored and published; the widget inserts the texts as text, never as markup.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from handoff.domain import Language
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
TRANSLATIONS = "translations"
LANGUAGES = tuple(language.value for language in Language)


def check(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Return the settings to store, or raise Invalid naming the first bad field.

    Missing or empty values mean "use the default" and are not stored. `translations` holds
    the texts in other languages, {language: {text: value}}, checked like the others.
    """
    unknown = sorted(set(fields) - {*KEYS, TRANSLATIONS})
    if unknown:
        raise Invalid(unknown[0], f"unknown widget setting; known: {', '.join(KEYS)}")
    settings: dict[str, Any] = {}
    for key in KEYS:
        value = _checked(key, key, fields.get(key))
        if value:
            settings[key] = value.lower() if key in COLOURS else value
    translations = _checked_translations(fields.get(TRANSLATIONS) or {})
    if translations:
        settings[TRANSLATIONS] = translations
    return settings


def _checked(field: str, key: str, raw: object) -> str:
    value = (raw if isinstance(raw, str) else "").strip()
    if not value:
        return ""
    if key in COLOURS and not COLOUR.match(value):
        raise Invalid(field, "must be a colour written #rgb or #rrggbb, like #4f46e5")
    if key in TEXTS and len(value) > TEXTS[key]:
        raise Invalid(field, f"must be at most {TEXTS[key]} characters")
    if key in TEXTS and any(ch in value for ch in "\r\n\t"):
        raise Invalid(field, "must be a single line")
    return value


def _checked_translations(raw: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    translations: dict[str, dict[str, str]] = {}
    for language, texts in raw.items():
        field = f"{TRANSLATIONS}.{language}"
        if language not in LANGUAGES:
            raise Invalid(field, f"unknown language; known: {', '.join(LANGUAGES)}")
        unknown = sorted(set(texts) - set(TEXTS))
        if unknown:
            raise Invalid(f"{field}.{unknown[0]}", f"not a text; texts: {', '.join(TEXTS)}")
        checked = {key: _checked(f"{field}.{key}", key, value) for key, value in texts.items()}
        if any(checked.values()):
            translations[str(language)] = {key: value for key, value in checked.items() if value}
    return translations


def save(agent: Agent, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Replace the agent's widget settings; return what anyone may now read."""
    agent.widget = check(fields)
    return public(agent)


def public(agent: Agent) -> dict[str, Any]:
    """Return the widget settings every key present, None where the default applies."""
    stored = agent.widget or {}
    return {key: stored.get(key) for key in KEYS} | {
        TRANSLATIONS: dict(stored.get(TRANSLATIONS) or {})
    }
