"""The visitor's language: identification, the choice kept on the conversation, the
catalogues and the visitor's own words for "skip" and "back to the AI"."""

from __future__ import annotations

import gettext
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from babel.messages.pofile import read_po

from handoff.domain import Language
from handoff.service.conversations import DECLINE
from handoff.service.i18n import DOMAIN, LOCALE_DIR, describe_opening, say
from handoff.service.language import choose, identify
from handoff.service.stretch import BACK_TO_BOT
from handoff.service.wording import ASK_FOR_EMAIL, WAIT_CHOICES_WITHOUT_EMAIL, WIDGET_LABELS

TRANSLATED = [language for language in Language if language != Language.EN]


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Hola, necesito hablar con una persona sobre mi factura", Language.ES),
        ("Bonjour, je voudrais parler à quelqu'un de mon colis", Language.FR),
        ("Ich möchte bitte mit einem Menschen sprechen", Language.DE),
        ("Preciso de ajuda com o meu pedido", Language.PT),
        ("Ho bisogno di aiuto con il mio ordine", Language.IT),
        ("Where is my order? It has not arrived yet", Language.EN),
    ],
)
def test_a_clear_sentence_is_identified(text: str, language: Language) -> None:
    assert identify(text) == language


@pytest.mark.parametrize(
    "text", ["ok", "merci", "gracias", "non merci", "salta", "pular", "jan@example.com", "👍"]
)
def test_a_short_message_says_nothing(text: str) -> None:
    assert identify(text) is None


def test_an_email_address_does_not_count_as_words() -> None:
    assert identify("mi correo: jean.dupont@example.fr") is None


def test_choice_follows_a_clear_message_and_keeps_the_language_otherwise() -> None:
    assert choose("en", pinned=False, heard=Language.ES) == "es"
    assert choose("es", pinned=False, heard=None) == "es"  # "ok" identified nothing
    assert choose("de", pinned=True, heard=Language.ES) == "de"  # the page's lang holds


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_text_is_translated_and_compiled(language: Language) -> None:
    """Each catalogue translates every text of the template, keeps its {fields}, and its
    compiled .mo says what the .po says (run `make catalogues` after editing a .po)."""
    template = read_po((LOCALE_DIR / "handoff.pot").open("rb"))
    po = read_po((LOCALE_DIR / language.value / "LC_MESSAGES" / "handoff.po").open("rb"))
    compiled = gettext.translation(DOMAIN, LOCALE_DIR, languages=[language.value])
    ids = {m.id for m in template if m.id}
    assert ids == {m.id for m in po if m.id}
    for message in po:
        if not message.id:
            continue
        assert message.string and "fuzzy" not in message.flags, message.id
        assert _fields(message.string) == _fields(str(message.id)), message.id
        assert compiled.gettext(str(message.id)) == message.string


def _fields(text: str) -> set[str]:
    return {part.split("}")[0] for part in text.split("{")[1:]}


def test_english_is_the_message_ids_themselves() -> None:
    assert say("en", ASK_FOR_EMAIL) == ASK_FOR_EMAIL
    assert "omitir" in say("es", ASK_FOR_EMAIL)


PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    ("language", "opening", "now", "text"),
    [
        ("en", (2026, 3, 2, 9), (2026, 3, 2, 7), "today at 09:00 (Europe/Paris time)"),
        ("en", (2026, 3, 3, 9), (2026, 3, 2, 19), "tomorrow at 09:00 (Europe/Paris time)"),
        ("en", (2026, 3, 9, 9), (2026, 3, 6, 19), "on Monday at 09:00 (Europe/Paris time)"),
        (
            "en",
            (2026, 12, 28, 9),
            (2026, 12, 14, 19),
            "on Monday 28 December at 09:00 (Europe/Paris time)",
        ),
        ("es", (2026, 3, 3, 9), (2026, 3, 2, 19), "mañana a las 09:00 (hora de Europe/Paris)"),
        ("fr", (2026, 3, 9, 9), (2026, 3, 6, 19), "lundi à 09:00 (heure de Europe/Paris)"),
        (
            "de",
            (2026, 12, 28, 9),
            (2026, 12, 14, 19),
            "am Montag, 28. Dezember um 09:00 (Zeit in Europe/Paris)",
        ),
        (
            "es",
            (2026, 12, 28, 9),
            (2026, 12, 14, 19),
            "el lunes 28 de diciembre a las 09:00 (hora de Europe/Paris)",
        ),
    ],
)
def test_describe_opening(
    language: str, opening: tuple[int, ...], now: tuple[int, ...], text: str
) -> None:
    at = datetime(*opening, tzinfo=PARIS)  # type: ignore[misc]
    assert describe_opening(language, at, datetime(*now, tzinfo=PARIS)) == text  # type: ignore[misc]


@pytest.mark.parametrize(
    "text",
    [
        "skip",
        "no thanks",
        "omitir",
        "no gracias",
        "No, gracias.",
        "non merci",
        "passer",
        "nein danke",
        "überspringen",
        "pular",
        "não, obrigado",
        "salta",
        "no grazie",
    ],
)
def test_skip_words_in_every_language(text: str) -> None:
    assert DECLINE.match(text)


@pytest.mark.parametrize("text", ["nobody told me", "nonsense", "saltamontes", "passerby"])
def test_words_that_only_start_like_skip_are_not_skip(text: str) -> None:
    assert not DECLINE.match(text)


@pytest.mark.parametrize("language", TRANSLATED)
def test_what_the_wait_notice_says_to_type_goes_back_to_the_ai(language: Language) -> None:
    notice = say(language, WAIT_CHOICES_WITHOUT_EMAIL)
    phrase = notice.split("«")[-1].split("»")[0] if "«" in notice else notice.split("„")[1]
    phrase = phrase.split("“")[0].strip()
    assert BACK_TO_BOT.match(phrase), phrase


def test_the_widgets_english_labels_are_the_catalogues_ids() -> None:
    """The widget shows its English texts until the server's labels arrive: the same texts."""
    script = (LOCALE_DIR.parent / "web" / "static" / "widget.js").read_text()
    block = script.split("const ENGLISH = {", 1)[1].split("};", 1)[0]
    english = dict(re.findall(r'^\s*(\w+): "(.*)",$', block, re.MULTILINE))
    assert english == WIDGET_LABELS
