"""The languages the service speaks to visitors in."""

from __future__ import annotations

from enum import StrEnum


class Language(StrEnum):
    """A language every text the service writes to a visitor exists in (ISO 639-1)."""

    EN = "en"
    ES = "es"
    FR = "fr"
    DE = "de"
    PT = "pt"
    IT = "it"


def N_(text: str) -> str:
    """Mark a text the service writes to visitors for the catalogue (`make messages`); it is
    translated where it is said, in the visitor's language."""
    return text
