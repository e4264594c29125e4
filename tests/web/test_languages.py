"""Visitors answered in their own language, over HTTP on a server whose timers tick fast:
the email prompt and its retry, a skip word in the visitor's language, the handoff message,
the wait notice and the handback; the widget's `lang`; the admin's texts per language; the
widget's own labels. Both backends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from handoff.domain import DEFAULT_HANDOFF_MESSAGE, HandbackReason, Language
from handoff.service.i18n import say
from handoff.service.wording import (
    ASK_FOR_EMAIL,
    ASK_FOR_EMAIL_AGAIN,
    HANDBACK_MESSAGES,
    OFFLINE_ASK_FOR_EMAIL,
    OFFLINE_HANDOFF,
    OFFLINE_HOW_WITHOUT_EMAIL,
    WAIT_CHOICES_WITHOUT_EMAIL,
    WAIT_NOTICE,
    WIDGET_LABELS,
)
from tests.conftest import BACKENDS, Server
from tests.web.chat import Chat, start_chat, ticket_of, wait_for
from tests.web.rules import demo_action, new_agent, timed_server, update_action
from tests.web.test_business_hours import ZONE, closed_today

SPANISH_REQUEST = "Hola, quiero hablar con una persona de verdad, por favor"
FRENCH_REQUEST = "Bonjour, je voudrais parler à une personne de votre équipe, s'il vous plaît"


@pytest.fixture(scope="module", params=BACKENDS)
def timed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with timed_server(request.param, tmp_path_factory.mktemp(f"lang-{request.param}")) as server:
        yield server


def configure(server: Server, **fields: Any) -> None:
    """Ask for an email, give the wait notice after a second (this module owns its server)."""
    defaults: dict[str, Any] = {
        "ask_for_email": True,
        "wait_timeout_seconds": 1,
        "inactivity_timeout_seconds": None,
        "business_hours": None,
        "handoff_message": None,
        "handoff_messages": None,
    }
    update_action(server, demo_action(server), **(defaults | fields))


def said(reply: dict[str, Any]) -> list[str]:
    """What our side said in a reply (everything after the visitor's own message)."""
    return [m["text"] for m in reply["messages"] if m["role"] != "user"]


def system_texts(chat: Chat) -> list[str]:
    return [m["text"] for m in chat.get()["messages"] if m["role"] == "system"]


def wait_notice(language: str) -> str:
    return say(language, WAIT_NOTICE) + say(language, WAIT_CHOICES_WITHOUT_EMAIL)


def test_a_spanish_visitor_is_answered_in_spanish_from_request_to_handback(
    timed: Server,
) -> None:
    configure(timed)
    chat = start_chat(timed)

    asked = chat.say(SPANISH_REQUEST)
    assert said(asked) == [say("es", ASK_FOR_EMAIL)]
    assert asked["conversation"]["language"] == "es"
    retried = chat.say("mañana te lo digo")
    assert said(retried) == [say("es", ASK_FOR_EMAIL_AGAIN)]

    handed = chat.say("omitir")
    assert handed["conversation"]["owner"] == "human"
    assert said(handed) == [say("es", DEFAULT_HANDOFF_MESSAGE)]
    assert wait_for(lambda: wait_notice("es") in system_texts(chat), timeout=10)

    # A short word in another language says nothing about the visitor's language.
    still = chat.say("ok")
    assert still["conversation"]["language"] == "es"

    back = chat.say("volver a la IA")
    assert back["conversation"]["owner"] == "bot"
    assert said(back) == [say("es", HANDBACK_MESSAGES[HandbackReason.USER])]


def test_a_french_visitor_skips_the_email_in_french_and_hears_the_team_solve_it(
    timed: Server,
) -> None:
    configure(timed)
    chat = start_chat(timed)

    assert said(chat.say(FRENCH_REQUEST)) == [say("fr", ASK_FOR_EMAIL)]
    handed = chat.say("non merci")
    assert handed["conversation"]["owner"] == "human"
    assert said(handed) == [say("fr", DEFAULT_HANDOFF_MESSAGE)]
    assert wait_for(lambda: wait_notice("fr") in system_texts(chat), timeout=10)

    ticket = wait_for(lambda: ticket_of(timed, timed.admin_token, chat.id))
    with timed.admin() as admin:
        assert admin.post(f"/api/v1/tickets/{ticket['id']}/solve").status_code == 200
    after = chat.get()
    assert after["owner"] == "bot"
    assert after["language"] == "fr"
    assert after["messages"][-1]["text"] == say("fr", HANDBACK_MESSAGES[HandbackReason.SOLVED])


def test_the_widgets_lang_wins_over_the_visitors_words(timed: Server) -> None:
    configure(timed)
    with timed.client() as client:
        created = client.post(
            f"/api/v1/agents/{timed.demo_agent_id}/conversations",
            json={"channel": "widget", "lang": "de"},
        )
    assert created.status_code == 201, created.text
    chat = Chat(timed, created.json()["id"], created.json()["token"], [])

    asked = chat.say("I want to talk to a human being, please")
    assert said(asked) == [say("de", ASK_FOR_EMAIL)]
    assert asked["conversation"]["language"] == "de"
    handed = chat.say("skip")
    assert said(handed) == [say("de", DEFAULT_HANDOFF_MESSAGE)]


def test_an_unknown_lang_is_refused_naming_the_field(timed: Server) -> None:
    with timed.client() as client:
        refused = client.post(
            f"/api/v1/agents/{timed.demo_agent_id}/conversations",
            json={"channel": "widget", "lang": "klingon"},
        )
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "lang"]


def test_the_admins_texts_per_language_come_first_then_the_single_text(timed: Server) -> None:
    spanish, single = "Te paso con Ana, de nuestro equipo.", "Connecting you with Ana."
    configure(timed, ask_for_email=False, handoff_message=single, handoff_messages={"es": spanish})
    action = demo_action(timed)
    assert action["handoff_messages"] == {"es": spanish}

    assert said(start_chat(timed).say(SPANISH_REQUEST)) == [spanish]
    assert said(start_chat(timed).say(FRENCH_REQUEST)) == [single]


@pytest.mark.parametrize(
    ("texts", "field"),
    [
        ({"xx": "Hello"}, "handoff_messages"),
        ({"es": ""}, "handoff_messages"),
    ],
)
def test_bad_texts_per_language_are_refused_naming_the_field(
    timed: Server, texts: dict[str, str], field: str
) -> None:
    _, action = new_agent(timed)
    with timed.admin() as admin:
        refused = admin.put(
            f"/api/v1/actions/{action['id']}",
            json={k: action[k] for k in ("name", "platform", "when_to_use", "channels")}
            | {field: texts},
        )
    assert refused.status_code == 422, refused.text
    assert field in str(refused.json()["detail"])


def test_the_alternative_message_per_language_on_an_uncovered_channel(timed: Server) -> None:
    agent_id, _ = new_agent(
        timed,
        channels=["widget"],
        alternative_message="Write to help@example.com.",
        alternative_messages={"fr": "Écrivez à aide@example.com."},
    )
    french = start_chat(timed, "help_page", agent_id=agent_id).say(FRENCH_REQUEST)
    assert said(french) == ["Écrivez à aide@example.com."]
    spanish = start_chat(timed, "help_page", agent_id=agent_id).say(SPANISH_REQUEST)
    assert said(spanish) == ["Write to help@example.com."]


def test_the_widget_gets_its_labels_in_every_language(timed: Server) -> None:
    with timed.client() as client:
        public = client.get(f"/api/v1/agents/{timed.demo_agent_id}/public").json()
    assert public["language"] == "en"
    assert set(public["labels"]) == {language.value for language in Language}
    assert public["labels"]["es"]["title"] == say("es", WIDGET_LABELS["title"])
    assert public["labels"]["en"]["title"] == "Chat with us"
    assert public["labels"]["it"]["placeholder"] != public["labels"]["en"]["placeholder"]


def test_outside_business_hours_the_spanish_visitor_is_told_when_in_spanish(
    timed: Server,
) -> None:
    agent_id, _ = new_agent(timed, business_hours=closed_today(), ask_for_email=False)
    chat = start_chat(timed, agent_id=agent_id)
    when = say("es", "tomorrow at {time} ({zone} time)", time="00:00", zone=ZONE)
    asked = chat.say(SPANISH_REQUEST)
    assert said(asked) == [say("es", OFFLINE_ASK_FOR_EMAIL, when=when)]
    handed = chat.say("no gracias")
    assert handed["conversation"]["owner"] == "human"
    assert said(handed) == [
        say("es", OFFLINE_HANDOFF, when=when) + say("es", OFFLINE_HOW_WITHOUT_EMAIL)
    ]
