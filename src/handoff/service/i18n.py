"""The service's own texts in the visitor's language: gettext catalogues compiled by Babel.

The English text is the message id (marked with `N_` where it is defined, in `wording.py`);
`src/handoff/locale/<lang>/LC_MESSAGES/handoff.po` holds each translation and the `.mo`
beside it is what is read. `make messages` extracts new texts and updates the catalogues,
`make catalogues` compiles them (see the README's "Languages").
"""

from __future__ import annotations

import gettext
from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date

from handoff.domain import N_, Language

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "handoff"


@cache
def _catalogue(language: str) -> gettext.NullTranslations:
    # English is the message ids themselves: no catalogue, the ids come back as they are.
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[language], fallback=True)


def say(language: str, text: str, **fields: str) -> str:
    """Return `text` (an English message id) in `language`, its {fields} filled in."""
    translated = _catalogue(language).gettext(text)
    return translated.format(**fields) if fields else translated


# When the team opens, said in the visitor's language and the team's zone.
_TODAY = N_("today at {time} ({zone} time)")
_TOMORROW = N_("tomorrow at {time} ({zone} time)")
_ON_DAY = N_("on {day} at {time} ({zone} time)")
# A Babel date pattern: translators give their language's order ("EEEE d 'de' MMMM").
_DAY_AND_DATE = N_("EEEE d MMMM")


def describe_opening(language: str, opening: datetime, now: datetime) -> str:
    """Say when the team opens, in its own zone: "mañana a las 09:00 (hora de Europe/Madrid)"."""
    zone = opening.tzinfo
    key = zone.key if isinstance(zone, ZoneInfo) else str(zone)
    local_now = now.astimezone(zone)
    days = (opening.date() - local_now.date()).days
    fields = {"time": f"{opening:%H:%M}", "zone": key}
    if days == 0:
        return say(language, _TODAY, **fields)
    if days == 1:
        return say(language, _TOMORROW, **fields)
    # Within the week the weekday is enough; further off, the date too ("Monday 21 December"),
    # in each language's own order (the pattern is in the catalogue).
    pattern = "EEEE" if days < 7 else say(language, _DAY_AND_DATE)
    day = format_date(opening, pattern, locale=Language(language).value)
    return say(language, _ON_DAY, day=day, **fields)
