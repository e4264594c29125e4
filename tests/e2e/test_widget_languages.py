"""The widget in a real browser for a Spanish and a French visitor: the service's texts and the
widget's own labels in their language, whether the visitor's words or the page's data-lang said
so, from the request through the wait to the handback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from tests.conftest import Server
from tests.e2e.support import (
    TIMEOUT,
    conversation_id,
    expect,
    messages,
    new_agent,
    newest_is_from,
    open_widget,
    say,
)
from tests.fakes.server import LoopbackServer
from tests.web.chat import ticket_of, wait_for
from tests.web.rules import timed_server
from tests.web.test_languages import FRENCH_REQUEST, SPANISH_REQUEST, configure, wait_notice

from handoff.domain import DEFAULT_HANDOFF_MESSAGE, HandbackReason
from handoff.service.i18n import say as translate
from handoff.service.wording import ASK_FOR_EMAIL, HANDBACK_MESSAGES, WIDGET_LABELS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

pytestmark = pytest.mark.browser


def label(key: str) -> str:
    return translate("es", WIDGET_LABELS[key])


def escalate_in_spanish(page: Page, request: str) -> None:
    say(page, request)
    expect(newest_is_from(page, "assistant")).to_contain_text(translate("es", ASK_FOR_EMAIL))
    say(page, "omitir")
    expect(newest_is_from(page, "assistant")).to_contain_text(
        translate("es", DEFAULT_HANDOFF_MESSAGE)
    )
    expect(page.get_by_test_id("handoff-status")).to_have_text(label("support_team"))
    expect(page.get_by_test_id("handoff-back-to-ai")).to_have_text(label("back_to_ai"))
    expect(page.get_by_test_id("handoff-input")).to_have_attribute(
        "placeholder", label("placeholder")
    )


def test_a_spanish_visitor_gets_the_chat_in_spanish(server: Server, browser: Browser) -> None:
    agent = new_agent(server)
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT)
    page = context.new_page()
    open_widget(page, f"{server.url}/demo/{agent}")
    expect(page.get_by_test_id("handoff-status")).to_have_text("AI assistant")

    escalate_in_spanish(page, "Hola, quiero hablar con una persona de verdad, por favor")

    # After a reload the conversation's language still chooses the labels.
    page.reload()
    page.get_by_test_id("handoff-launcher").click()
    expect(page.get_by_test_id("handoff-back-to-ai")).to_have_text(label("back_to_ai"))
    context.close()


class SpanishSite(LoopbackServer):
    """A Spanish shop that embeds the widget with data-lang="es"."""

    def __init__(self, handoff_url: str, agent_id: str) -> None:
        page = f"""<!doctype html><html lang="es"><head><meta charset="utf-8">
<title>Tienda</title></head><body><h1>Bienvenido a la tienda</h1>
<script src="{handoff_url}/static/widget.js" data-agent="{agent_id}" data-lang="es" defer>
</script></body></html>"""

        async def home(_: Request) -> HTMLResponse:
            return HTMLResponse(page)

        super().__init__(Starlette(routes=[Route("/", home)]), name="Spanish site")


def test_the_pages_lang_holds_whatever_the_visitor_types(server: Server, browser: Browser) -> None:
    agent = new_agent(server)
    with SpanishSite(server.url, agent) as site:
        context = browser.new_context()
        context.set_default_timeout(TIMEOUT)
        page = context.new_page()
        page.goto(site.origin)
        launcher = page.get_by_test_id("handoff-launcher")
        expect(launcher).to_have_attribute("aria-label", label("open_chat"))
        launcher.click()
        expect(page.get_by_test_id("handoff-input")).to_have_attribute(
            "placeholder", label("placeholder")
        )
        escalate_in_spanish(page, "I want to talk to a human being, please")
        context.close()


def test_the_admins_own_texts_speak_spanish_on_a_spanish_page(
    server: Server, browser: Browser
) -> None:
    agent = new_agent(server)
    with server.admin() as admin:
        admin.put(
            f"/api/v1/agents/{agent}/widget",
            json={
                "subtitle": "We answer in minutes",
                "launcher_label": "Chat with Acme",
                "translations": {
                    "es": {
                        "subtitle": "Respondemos en minutos",
                        "launcher_label": "Hablar con Acme",
                    }
                },
            },
        ).raise_for_status()
        admin.patch(
            f"/api/v1/agents/{agent}",
            json={
                "greeting": "Hi! How can I help?",
                "greetings": {"es": "¡Hola! ¿En qué te ayudo?"},
            },
        ).raise_for_status()
    with SpanishSite(server.url, agent) as site:
        context = browser.new_context()
        context.set_default_timeout(TIMEOUT)
        page = context.new_page()
        page.goto(site.origin)
        launcher = page.get_by_test_id("handoff-launcher")
        expect(launcher).to_have_attribute("aria-label", "Hablar con Acme")
        launcher.click()
        expect(page.get_by_test_id("handoff-subtitle")).to_have_text("Respondemos en minutos")
        expect(page.get_by_test_id("handoff-messages")).to_contain_text("¡Hola! ¿En qué te ayudo?")
        expect(page.get_by_test_id("handoff-messages")).not_to_contain_text("How can I help")
        context.close()
    # The same agent on a page without data-lang speaks the admin's default texts.
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT)
    page = context.new_page()
    open_widget(page, f"{server.url}/demo/{agent}")
    expect(page.get_by_test_id("handoff-subtitle")).to_have_text("We answer in minutes")
    context.close()


@pytest.fixture(scope="module")
def timed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of this module's own whose timers tick fast, so the wait notice comes in 1 s."""
    with timed_server("sqlite", tmp_path_factory.mktemp("languages-e2e")) as server:
        configure(server)
        yield server


def demo_widget(server: Server, browser: Browser) -> Page:
    """The demo agent's page in a browser context of its own, with the chat open."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT)
    page = context.new_page()
    open_widget(page, f"{server.url}/demo/{server.demo_agent_id}")
    return page


def system_said(page: Page, text: str) -> Locator:
    return messages(page, "system").filter(has_text=text)


def test_a_french_visitor_waits_and_is_handed_back_in_french(
    timed: Server, browser: Browser
) -> None:
    page = demo_widget(timed, browser)

    say(page, FRENCH_REQUEST)
    expect(newest_is_from(page, "assistant")).to_contain_text(translate("fr", ASK_FOR_EMAIL))
    say(page, "non merci")
    expect(newest_is_from(page, "assistant")).to_contain_text(
        translate("fr", DEFAULT_HANDOFF_MESSAGE)
    )
    expect(page.get_by_test_id("handoff-status")).to_have_text(translate("fr", "Support team"))
    expect(system_said(page, wait_notice("fr"))).to_have_count(1, timeout=TIMEOUT)

    # The team solves the ticket: the handback, and the AI's label, in French.
    chat_id = conversation_id(page, timed.demo_agent_id)
    ticket = wait_for(lambda: ticket_of(timed, timed.admin_token, chat_id))
    with timed.admin() as admin:
        assert admin.post(f"/api/v1/tickets/{ticket['id']}/solve").status_code == 200
    handback = translate("fr", HANDBACK_MESSAGES[HandbackReason.SOLVED])
    assert handback != HANDBACK_MESSAGES[HandbackReason.SOLVED]  # the catalogue has it
    expect(system_said(page, handback)).to_have_count(1, timeout=TIMEOUT)
    expect(page.get_by_test_id("handoff-status")).to_have_text(translate("fr", "AI assistant"))
    page.context.close()


def test_a_spanish_visitor_waits_and_goes_back_to_the_ai_in_spanish(
    timed: Server, browser: Browser
) -> None:
    page = demo_widget(timed, browser)

    escalate_in_spanish(page, SPANISH_REQUEST)
    expect(system_said(page, wait_notice("es"))).to_have_count(1, timeout=TIMEOUT)

    page.get_by_test_id("handoff-back-to-ai").click()
    handback = translate("es", HANDBACK_MESSAGES[HandbackReason.USER])
    assert handback != HANDBACK_MESSAGES[HandbackReason.USER]  # the catalogue has it
    expect(system_said(page, handback)).to_have_count(1, timeout=TIMEOUT)
    expect(page.get_by_test_id("handoff-status")).to_have_text(label("ai_assistant"))
    page.context.close()
