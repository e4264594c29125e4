"""The settings page in a real browser: an admin connects a helpdesk through its rendered form,
sets up the Escalate to Human action on it, and restyles the widget; connects WhatsApp from the
tab the API describes; the admin API stores exactly what was entered. A member without the
admin role is told they cannot change settings.

Runs Debian's headless Chromium through Playwright against the ``server`` fixture; the
generic webhook's other end is tests/fakes/webhook_receiver.FakeReceiver, the Cloud API
tests/fakes/graph_api.FakeGraph, both on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest
from tests.conftest import Server
from tests.e2e.support import TIMEOUT, expect, new_agent
from tests.fakes.graph_api import FakeGraph
from tests.fakes.webhook_receiver import FakeReceiver
from tests.helpdesks.harness import HubSpotHarness
from tests.web.chat import wait_for

from handoff.store.db import Database
from handoff.store.models import OutboxJob

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

SECRET = "settings-e2e-signing-secret"
WHEN = "Escalate when the user asks for a person or reports a failed payment."
ALTERNATIVE = "Write to help@acme.test and we answer within a day."
SPANISH_HANDOFF = "Te paso con una persona de nuestro equipo."


def sign_in(server: Server, page: Page, agent_id: str) -> None:
    page.goto(f"{server.url}/settings?agent={agent_id}")
    page.get_by_test_id("login-email").fill(server.member_email)
    page.get_by_test_id("login-password").fill(server.member_password)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("section-integrations")).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_test_id("agent-select")).to_have_value(agent_id)


def platform_choices(page: Page) -> list[str]:
    select = page.get_by_test_id("action-platform")
    values: list[str] = select.locator("option").evaluate_all("os => os.map(o => o.value)")
    return values


def open_new_action(page: Page) -> None:
    page.get_by_test_id("nav-action").click()
    expect(page.get_by_test_id("section-action")).to_be_visible(timeout=TIMEOUT)
    # The agent already has the demo's action on the inbox; this test adds a second one.
    page.get_by_test_id("action-picker").select_option("new")
    expect(page.get_by_test_id("action-status")).to_have_text("New")


def connect_webhook(page: Page, receiver: FakeReceiver) -> None:
    page.get_by_test_id("nav-integrations").click()
    page.get_by_test_id("connect-webhook").click()
    form = page.get_by_test_id("connect-form-webhook")
    secret = form.get_by_test_id("cred-webhook-signing_secret")
    expect(secret).to_have_attribute("type", "password")
    expect(secret).to_have_value("")

    # A URL without its scheme: the 422 names credentials.url and shows at that field.
    url = form.get_by_test_id("cred-webhook-url")
    url.fill(receiver.url.removeprefix("http://"))
    secret.fill(SECRET)
    form.get_by_test_id("connect-submit-webhook").click()
    error = form.get_by_test_id("cred-webhook-url-error")
    expect(error).to_have_text("Endpoint URL must start with http:// or https://", timeout=TIMEOUT)
    expect(url).to_have_attribute("aria-invalid", "true")
    expect(url).to_be_focused()
    expect(form.get_by_test_id("cred-webhook-signing_secret-error")).to_be_hidden()
    assert receiver.pings == 0

    # Correcting the field takes its error away before anything is sent again.
    url.fill(receiver.url)
    expect(error).to_be_hidden()
    expect(url).not_to_have_attribute("aria-invalid", "true")

    # A secret the receiver refuses: the answer's code, invalid_auth, picks the wording.
    secret.fill("not-the-receivers-secret")
    form.get_by_test_id("connect-submit-webhook").click()
    refused = form.get_by_test_id("connect-error-webhook")
    expect(refused).to_contain_text(
        "Not connected, the credentials were refused: ", timeout=TIMEOUT
    )
    expect(refused).not_to_contain_text("invalid_auth")

    secret.fill(SECRET)
    form.get_by_test_id("connect-submit-webhook").click()
    card = page.locator("[data-testid=integration-card][data-platform=webhook]")
    expect(card).to_be_visible(timeout=TIMEOUT)
    assert receiver.pings == 1  # the credentials were checked with a real call
    expect(page.locator("[data-testid=platform-card][data-platform=webhook]")).to_have_count(0)


def fill_action(page: Page) -> None:
    name = page.get_by_test_id("action-name")
    page.get_by_test_id("action-platform").select_option("webhook")
    page.get_by_test_id("action-when").fill(WHEN)
    page.get_by_test_id("action-channel-help_page").uncheck()
    page.get_by_test_id("action-alternative").fill(ALTERNATIVE)
    # The handoff message for Spanish-speaking visitors, folded under the single one.
    page.get_by_test_id("action-handoff-messages").locator("summary").click()
    page.get_by_test_id("action-handoff-messages-es").fill(SPANISH_HANDOFF)

    # Sensitive topics: drop one with its remove button, add one with Enter.
    page.get_by_role("button", name="Remove security").click()
    topic = page.get_by_test_id("action-topics-input")
    topic.fill("chargebacks")
    topic.press("Enter")
    expect(page.get_by_test_id("action-topics-chip")).to_have_count(4)

    # Business hours: Europe/Paris, the preset Monday to Friday 09:00–17:00, Saturday
    # mornings, and Christmas off.
    page.get_by_test_id("hours-custom").check()
    page.get_by_test_id("hours-timezone").fill("Europe/Paris")
    page.get_by_test_id("hours-sat-open").check()
    saturday = page.locator(".day[data-day=sat]")
    saturday.get_by_test_id("hours-start").fill("10:00")
    saturday.get_by_test_id("hours-end").fill("13:00")
    holiday = page.get_by_test_id("hours-holidays-input")
    holiday.fill("2026-12-25")
    holiday.press("Enter")
    expect(page.get_by_test_id("hours-holidays-chip")).to_have_count(1)

    page.get_by_test_id("action-wait").fill("10")  # minutes
    page.get_by_test_id("action-inactivity").fill("2")
    page.get_by_test_id("action-inactivity-unit").select_option("hours")

    # A name that is not identifier-like: the 422 shows at the name, nothing is stored.
    name.fill("Escalate to webhook")
    page.get_by_test_id("action-save-enable").click()
    expect(page.get_by_test_id("action-name-error")).to_contain_text(
        "letters, digits and underscores", timeout=TIMEOUT
    )
    expect(name).to_have_attribute("aria-invalid", "true")
    name.fill("Escalate_To_Webhook")
    expect(page.get_by_test_id("action-name-error")).to_be_hidden()
    expect(name).not_to_have_attribute("aria-invalid", "true")


def stored_action(server: Server, agent_id: str, name: str) -> dict[str, Any]:
    with server.admin() as admin:
        actions = admin.get(f"/api/v1/agents/{agent_id}/actions").json()
    found = [a for a in actions if a["name"] == name]
    assert len(found) == 1, actions
    action: dict[str, Any] = found[0]
    return action


def check_widget(server: Server, page: Page, agent_id: str) -> None:
    page.get_by_test_id("nav-widget").click()
    expect(page.get_by_test_id("section-widget")).to_be_visible(timeout=TIMEOUT)
    snippet = page.get_by_test_id("embed-snippet")
    expect(snippet).to_have_value(re.compile(rf'data-agent="{agent_id}"'))
    page.get_by_test_id("widget-primary_color").fill("#0f766e")
    page.get_by_test_id("widget-subtitle").fill("<b>We reply fast</b>")
    preview = page.get_by_test_id("widget-preview")
    expect(preview).to_have_attribute("data-primary", "#0f766e")
    # Admin text is shown as text, never as markup.
    expect(preview.locator(".wp-subtitle")).to_have_text("<b>We reply fast</b>")
    expect(preview.locator("b")).to_have_count(0)
    page.get_by_test_id("widget-save").click()
    expect(page.get_by_test_id("toast").last).to_contain_text("widget is updated", timeout=TIMEOUT)
    with server.client() as anyone:
        look = anyone.get(f"/api/v1/agents/{agent_id}/widget").json()
    assert look["primary_color"] == "#0f766e"
    assert look["subtitle"] == "<b>We reply fast</b>"
    assert look["text_color"] is None  # left empty: the default


def test_admin_connects_a_helpdesk_and_sets_up_the_action(server: Server, browser: Browser) -> None:
    agent_id = new_agent(server)
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(TIMEOUT)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    with FakeReceiver(SECRET) as receiver:
        sign_in(server, page, agent_id)

        # Before any connection only the built-in inbox can take tickets.
        open_new_action(page)
        assert platform_choices(page) == ["native"]

        connect_webhook(page, receiver)
        with server.admin() as admin:
            listed = admin.get(f"/api/v1/agents/{agent_id}/integrations").json()
        webhook = next(i for i in listed if i["platform"] == "webhook")
        expect(page.get_by_test_id("webhook-url-webhook")).to_have_value(webhook["webhook_url"])
        expect(page.get_by_test_id("setup-steps-webhook")).to_contain_text(webhook["webhook_url"])

        open_new_action(page)
        # Connected platforms only: the webhook now, never the unconnected ones.
        assert platform_choices(page) == ["native", "webhook"]
        fill_action(page)
        page.get_by_test_id("action-save-enable").click()
        expect(page.get_by_test_id("action-status")).to_have_text("Enabled", timeout=TIMEOUT)
        expect(page.get_by_test_id("action-picker")).to_contain_text("Escalate_To_Webhook")

    action = stored_action(server, agent_id, "Escalate_To_Webhook")
    assert action["enabled"] is True
    assert action["platform"] == "webhook"
    assert action["when_to_use"] == WHEN
    assert action["channels"] == ["widget", "api"]
    assert action["alternative_message"] == ALTERNATIVE
    assert action["handoff_messages"] == {"es": SPANISH_HANDOFF}
    assert action["alternative_messages"] == {}
    assert action["sensitive_topics"] == ["billing", "refunds", "account access", "chargebacks"]
    assert action["ask_for_email"] is True
    assert action["wait_timeout_seconds"] == 600
    assert action["inactivity_timeout_seconds"] == 7200
    weekday = [["09:00", "17:00"]]
    assert action["business_hours"] == {
        "timezone": "Europe/Paris",
        "weekly": {
            "mon": weekday,
            "tue": weekday,
            "wed": weekday,
            "thu": weekday,
            "fri": weekday,
            "sat": [["10:00", "13:00"]],
        },
        "holidays": ["2026-12-25"],
    }
    # The demo's action on the same agent was left alone.
    assert stored_action(server, agent_id, "Escalate_To_Human")["platform"] == "native"

    check_widget(server, page, agent_id)

    # The inbox shares the sign-in and links back here for admins.
    page.goto(f"{server.url}/inbox")
    expect(page.get_by_test_id("settings-link")).to_be_visible(timeout=TIMEOUT)
    assert errors == []
    context.close()


async def _park(database_url: str, integration_id: str, error: str) -> None:
    """Leave a job for the integration parked after its retries, as a failing platform does."""
    db = Database(database_url)
    async with db.unit_of_work() as session:
        session.add(
            OutboxJob(
                kind="read_webhook",
                payload={"integration_id": integration_id, "body": "[]"},
                idempotency_key=f"test:{secrets.token_hex(8)}",
                status="failed",
                attempts=5,
                last_error=error,
            )
        )
    await db.dispose()


def test_a_failing_helpdesk_shows_its_error_and_retries_all(
    server: Server, browser: Browser
) -> None:
    agent_id = new_agent(server)
    harness = HubSpotHarness()
    with harness.fake(), server.admin() as admin:
        path = f"/api/v1/agents/{agent_id}/integrations"
        body = {"platform": "hubspot", "credentials": harness.credentials()}
        connected = admin.post(path, json=body)
        assert connected.status_code == 201, connected.text
    integration_id = connected.json()["id"]
    error = "HubSpot refused the credentials: HTTP 401 Unauthorized"
    # Playwright's sync API keeps an event loop running in this thread: write from another.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _park(server.database_url, integration_id, error)).result()

    context = browser.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(TIMEOUT)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(server, page, agent_id)
    card = page.locator("[data-testid=integration-card][data-platform=hubspot]")
    expect(card.locator(".badge")).to_have_text("Failing", timeout=TIMEOUT)
    expect(card.get_by_test_id("health-error-hubspot")).to_have_text(error)
    expect(card.get_by_test_id("health-waiting-hubspot")).to_contain_text(
        "1 job waiting, 1 of them stopped after their retries"
    )

    card.get_by_test_id("retry-all-hubspot").click()
    toast = page.get_by_test_id("toast").last
    expect(toast).to_contain_text("Retrying 1 job on HubSpot now.", timeout=TIMEOUT)

    def settled() -> bool:
        with server.admin() as admin:
            listed = admin.get(f"/api/v1/agents/{agent_id}/integrations").json()
        hubspot = next(i for i in listed if i["platform"] == "hubspot")
        return hubspot["health"]["waiting"] == 0

    wait_for(settled)  # the worker ran the job again, and it went through this time
    page.reload()
    expect(card.locator(".badge")).to_have_text("Connected", timeout=TIMEOUT)
    expect(card.get_by_test_id("health-hubspot")).to_have_count(0)
    assert errors == []
    context.close()


def test_admin_connects_a_channel_from_the_tab_the_api_describes(
    server: Server, browser: Browser
) -> None:
    agent_id = new_agent(server)
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(TIMEOUT)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    with FakeGraph() as graph:
        sign_in(server, page, agent_id)
        # The tab, its words and its form come from GET /api/v1/channels.
        page.get_by_test_id("nav-whatsapp").click()
        expect(page.get_by_test_id("section-whatsapp")).to_be_visible(timeout=TIMEOUT)
        expect(page.locator("#section-title")).to_have_text("WhatsApp")
        form = page.get_by_test_id("whatsapp-form")
        token = form.get_by_test_id("whatsapp-access_token")
        expect(token).to_have_attribute("type", "password")
        form.get_by_test_id("whatsapp-phone_number_id").fill(graph.phone_number_id)
        token.fill("EAAG-expired")
        form.get_by_test_id("whatsapp-app_secret").fill("the app secret")
        form.get_by_test_id("whatsapp-verify_token").fill("the verify token")
        form.get_by_test_id("whatsapp-template_name").fill("reengage")
        form.locator("summary", has_text="Advanced").click()
        form.get_by_test_id("whatsapp-base_url").fill(graph.base_url)
        form.get_by_test_id("whatsapp-submit").click()
        # The API's 422 names the token, and the form shows it there.
        expect(form.get_by_test_id("whatsapp-access_token-error")).to_be_visible(timeout=TIMEOUT)
        expect(page.get_by_test_id("whatsapp-connected")).to_have_count(0)

        token.fill(graph.access_token)
        form.get_by_test_id("whatsapp-submit").click()
        card = page.get_by_test_id("whatsapp-connected")
        expect(card.locator("h3")).to_have_text(graph.display_phone_number, timeout=TIMEOUT)
        expect(card).to_contain_text(f"Phone number ID {graph.phone_number_id}")
        expect(card.locator("summary")).to_have_text("Finish the setup at Meta")
        expect(card.get_by_test_id("whatsapp-steps").locator("li")).not_to_have_count(0)
        # No enabled action covers the new channel yet.
        expect(page.get_by_test_id("whatsapp-tip")).to_be_visible()
        # Reconnecting starts from what was saved, secrets left out.
        card.get_by_test_id("whatsapp-reconnect").click()
        expect(card.get_by_test_id("whatsapp-phone_number_id")).to_have_value(graph.phone_number_id)
        expect(card.get_by_test_id("whatsapp-template_name")).to_have_value("reengage")
        expect(card.get_by_test_id("whatsapp-access_token")).to_have_value("")
        base_url = graph.base_url
    with server.admin() as admin:
        stored = admin.get(f"/api/v1/agents/{agent_id}/channels/whatsapp").json()
    assert stored["template_name"] == "reengage" and stored["base_url"] == base_url
    assert errors == []
    context.close()


def test_a_member_who_is_not_an_admin_is_told_so(server: Server, browser: Browser) -> None:
    email = f"settings-{secrets.token_hex(3)}@example.com"
    with server.admin() as admin:
        workspace_id = admin.get(f"/api/v1/agents/{server.demo_agent_id}").json()["workspace_id"]
        created = admin.post(
            f"/api/v1/workspaces/{workspace_id}/members",
            json={"email": email, "name": "Alex", "role": "agent", "password": "a long secret"},
        )
        assert created.status_code == 201, created.text
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT)
    page = context.new_page()
    page.goto(f"{server.url}/settings")
    page.get_by_test_id("login-email").fill(email)
    page.get_by_test_id("login-password").fill("a long secret")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("not-admin")).to_contain_text("Only admins can change settings")
    expect(page.get_by_test_id("section-integrations")).to_have_count(0)
    # Nor does the inbox offer them the link.
    page.goto(f"{server.url}/inbox")
    expect(page.get_by_test_id("me-name")).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_test_id("settings-link")).to_have_count(0)
    context.close()
