"""The settings page's team, knowledge base and canned replies in a real browser: an admin
invites a member and hands over the password shown once, resets it, changes a role and
disables the member; edits an agent's knowledge base and imports a CSV file; writes canned
replies. Each change is checked through the API, and each refusal the server makes (the
last admin, one's own account, a limit) is shown at the field it names.

Runs Debian's headless Chromium through Playwright against the ``server`` fixture.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from tests.conftest import Server
from tests.e2e.support import TIMEOUT, expect, new_agent

if TYPE_CHECKING:
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        Dialog,
        FileChooser,
        Locator,
        Page,
    )

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
SECTIONS = ("integrations", "action", "widget", "knowledge", "team", "canned")


def open_settings(
    server: Server, browser: Browser, agent_id: str, section: str, **context_args: Any
) -> tuple[BrowserContext, Page, list[str]]:
    """Sign in as the demo admin and open one section; the page's script errors are kept."""
    context = browser.new_context(**context_args)
    context.set_default_timeout(TIMEOUT)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server.url}/settings?agent={agent_id}")
    page.get_by_test_id("login-email").fill(server.member_email)
    page.get_by_test_id("login-password").fill(server.member_password)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("section-integrations")).to_be_visible(timeout=TIMEOUT)
    page.get_by_test_id(f"nav-{section}").click()
    expect(page.get_by_test_id(f"section-{section}")).to_be_visible(timeout=TIMEOUT)
    return context, page, errors


def login(server: Server, email: str, password: str) -> httpx.Response:
    with server.client() as client:
        return client.post("/api/v1/auth/login", json={"email": email, "password": password})


def member_by_email(server: Server, email: str) -> dict[str, Any]:
    with server.admin() as admin:
        members: list[dict[str, Any]] = admin.get("/api/v1/members").json()
    return next(m for m in members if m["email"] == email)


def row_of(page: Page, email: str) -> Locator:
    return page.locator(f"[data-testid=member-row][data-email='{email}']")


def shown_password(panel: Locator) -> str:
    expect(panel).to_contain_text("it will not be shown again")
    value: str = panel.get_by_test_id(panel.get_attribute("data-testid") + "-value").input_value()
    assert len(value) >= 16
    return value


def test_admin_invites_a_member_resets_their_password_changes_the_role_and_disables_them(
    server: Server, browser: Browser
) -> None:
    email = f"invited-{secrets.token_hex(3)}@example.com"
    context, page, errors = open_settings(
        server, browser, server.demo_agent_id, "team", viewport={"width": 1360, "height": 900}
    )

    # A malformed email is refused at its field; nobody is created.
    invite = page.get_by_test_id("invite-form")
    invite.get_by_test_id("invite-name").fill("Robin Invited")
    invite.get_by_test_id("invite-email").fill("not-an-email")
    invite.get_by_test_id("invite-submit").click()
    expect(invite.get_by_test_id("invite-email-error")).to_be_visible()
    expect(invite.get_by_test_id("invite-email")).to_have_attribute("aria-invalid", "true")

    invite.get_by_test_id("invite-email").fill(email)
    invite.get_by_test_id("invite-submit").click()
    password = shown_password(invite.get_by_test_id("invite-password"))
    expect(row_of(page, email)).to_be_visible()
    assert member_by_email(server, email)["role"] == "agent"

    # The same email again: the server's conflict, in its own words, at the form.
    invite.get_by_test_id("invite-name").fill("Robin Again")
    invite.get_by_test_id("invite-email").fill(email)
    invite.get_by_test_id("invite-submit").click()
    expect(invite.get_by_test_id("invite-error")).to_contain_text(f"a member with email {email}")
    invite.get_by_test_id("invite-password-done").click()
    expect(invite.get_by_test_id("invite-password")).to_have_count(0)

    # The invited member signs in with the password shown, in a page of their own.
    other = browser.new_context()
    other.set_default_timeout(TIMEOUT)
    theirs = other.new_page()
    theirs.goto(f"{server.url}/inbox")
    theirs.get_by_test_id("login-email").fill(email)
    theirs.get_by_test_id("login-password").fill(password)
    theirs.get_by_test_id("login-submit").click()
    expect(theirs.get_by_test_id("me-name")).to_have_text("Robin Invited", timeout=TIMEOUT)
    other.close()

    # A new password, shown once: the old one stops working, the new one signs in.
    # With the keyboard: Escape takes the question back, Enter asks it and confirms.
    row = row_of(page, email)
    reset = row.get_by_test_id("member-reset")
    reset.click()
    expect(row.get_by_test_id("member-reset-confirm")).to_be_focused()
    page.keyboard.press("Escape")
    expect(row.get_by_test_id("member-reset-confirm")).to_have_count(0)
    expect(reset).to_be_focused()
    page.keyboard.press("Enter")
    expect(row.get_by_test_id("member-reset-confirm")).to_be_focused()
    page.keyboard.press("Enter")
    new_password = shown_password(row.get_by_test_id("reset-password"))
    assert new_password != password
    assert login(server, email, password).status_code == 401
    token = login(server, email, new_password).json()["token"]

    # Promote to admin through the row's form.
    row.get_by_test_id("member-role").select_option("admin")
    row.get_by_test_id("member-save").click()
    expect(row.get_by_test_id("member-role-badge")).to_have_text("admin", timeout=TIMEOUT)
    assert member_by_email(server, email)["role"] == "admin"

    # Disable: after the confirmation their token stops working, and so does signing in.
    row.get_by_test_id("member-toggle").click()
    row.get_by_test_id("member-disable-confirm").click()
    expect(row.get_by_test_id("member-disabled")).to_be_visible(timeout=TIMEOUT)
    expect(row.get_by_test_id("member-toggle")).to_have_text("Enable")
    with server.client(token) as client:
        assert client.get("/api/v1/me").status_code == 401
    assert login(server, email, new_password).status_code == 401
    assert member_by_email(server, email)["disabled"] is True

    # Enabled again, they sign in; then back to an agent.
    row.get_by_test_id("member-toggle").click()
    expect(row.get_by_test_id("member-disabled")).to_be_hidden(timeout=TIMEOUT)
    assert login(server, email, new_password).status_code == 200
    row.get_by_test_id("member-role").select_option("agent")
    row.get_by_test_id("member-save").click()
    expect(row.get_by_test_id("member-role-badge")).to_have_text("agent", timeout=TIMEOUT)
    assert member_by_email(server, email)["role"] == "agent"

    # The server's guards on one's own account, as it words them, where they apply.
    mine = row_of(page, server.member_email)
    mine.get_by_test_id("member-role").select_option("agent")
    mine.get_by_test_id("member-save").click()
    expect(mine.get_by_test_id("member-role-error")).to_have_text(
        "you cannot change this on your own account", timeout=TIMEOUT
    )
    mine.get_by_test_id("member-toggle").click()
    mine.get_by_test_id("member-disable-confirm").click()
    expect(mine.get_by_test_id("member-access-error")).to_have_text(
        "you cannot change this on your own account", timeout=TIMEOUT
    )
    expect(mine.get_by_test_id("member-disable-confirm")).to_have_count(0)
    expect(mine.get_by_test_id("member-access-error")).to_be_focused()
    me = member_by_email(server, server.member_email)
    assert (me["role"], me["disabled"]) == ("admin", False)
    assert errors == []
    context.close()


def entries(page: Page) -> Locator:
    return page.get_by_test_id("knowledge-entry")


def stored_knowledge(server: Server, agent_id: str) -> list[dict[str, str]]:
    with server.admin() as admin:
        response = admin.get(f"/api/v1/agents/{agent_id}/knowledge")
    assert response.status_code == 200, response.text
    found: list[dict[str, str]] = response.json()
    return found


def test_admin_edits_the_knowledge_base_and_imports_a_csv_file(
    server: Server, browser: Browser, tmp_path: Path
) -> None:
    agent_id = new_agent(server)
    before = stored_knowledge(server, agent_id)
    assert len(before) >= 2
    context, page, errors = open_settings(
        server, browser, agent_id, "knowledge", viewport={"width": 1360, "height": 900}
    )
    # Listening from the start has Chromium hand its file choosers to the test well before
    # one opens (a listener added as it opens may miss it).
    choosers: list[FileChooser] = []
    page.on("filechooser", lambda chooser: choosers.append(chooser))
    expect(entries(page)).to_have_count(len(before))
    expect(page.get_by_test_id("knowledge-count")).to_have_text(f"{len(before)} of 1000 entries")

    # Edit the first answer, delete the second entry, add one.
    first = entries(page).nth(0)
    expect(first.get_by_test_id("knowledge-question")).to_have_value(before[0]["question"])
    first.get_by_test_id("knowledge-answer").fill("Use the reset link on the sign-in page.")
    entries(page).nth(1).get_by_test_id("knowledge-delete").click()
    page.get_by_test_id("knowledge-add").click()
    added = entries(page).last
    expect(added.get_by_test_id("knowledge-question")).to_be_focused()
    added.get_by_test_id("knowledge-question").fill("Do you ship abroad?")

    # An empty answer is caught before anything is sent, at that answer.
    page.get_by_test_id("knowledge-save").click()
    last = len(before) - 1
    expect(page.get_by_test_id(f"knowledge-{last}-answer-error")).to_contain_text("Write an answer")
    expect(added.get_by_test_id("knowledge-answer")).to_be_focused()
    assert stored_knowledge(server, agent_id) == before
    added.get_by_test_id("knowledge-answer").fill("Yes, to 40 countries.")
    page.get_by_test_id("knowledge-save").click()
    expect(page.get_by_test_id("knowledge-unsaved")).to_be_hidden(timeout=TIMEOUT)
    expected = [
        {"question": before[0]["question"], "answer": "Use the reset link on the sign-in page."},
        *before[2:],
        {"question": "Do you ship abroad?", "answer": "Yes, to 40 countries."},
    ]
    assert stored_knowledge(server, agent_id) == expected

    # A CSV file: quoted cells with commas, quotes and a line break, and one row refused.
    csv = tmp_path / "faq.csv"
    csv.write_text(
        "question,answer\r\n"
        '"Can I pay by invoice, or card?","Both; ""net 30"" for invoices."\r\n'
        "Where is my order?,\r\n"
        'How do I cancel?,"Open Billing.\nPress Cancel."\r\n'
    )
    # The file input is reached through its button, with the keyboard too.
    page.get_by_test_id("knowledge-import").focus()
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    assert chooser.value.element.get_attribute("data-testid") == "knowledge-file"
    assert choosers == [chooser.value]
    page.get_by_test_id("knowledge-file").set_input_files(str(csv))
    expect(page.get_by_test_id("knowledge-import-summary")).to_have_text(
        "faq.csv: Read 3 rows: 2 entries added, 1 refused (row 3: the answer is empty). "
        "Save to keep them."
    )
    expect(entries(page)).to_have_count(len(expected) + 2)
    page.get_by_test_id("knowledge-save").click()
    expect(page.get_by_test_id("knowledge-unsaved")).to_be_hidden(timeout=TIMEOUT)
    imported = [
        {"question": "Can I pay by invoice, or card?", "answer": 'Both; "net 30" for invoices.'},
        {"question": "How do I cancel?", "answer": "Open Billing.\nPress Cancel."},
    ]
    assert stored_knowledge(server, agent_id) == expected + imported

    # The server has the last word: with the page's own check loosened, its 422 names the
    # entry's answer, and shows there.
    page.evaluate("document.getElementById('settings-app').dataset.knowledgeMaxAnswer = '9000'")
    page.get_by_test_id("nav-integrations").click()
    page.get_by_test_id("nav-knowledge").click()
    long_answer = entries(page).nth(1).get_by_test_id("knowledge-answer")
    long_answer.fill("x" * 5001)
    page.get_by_test_id("knowledge-save").click()
    expect(page.get_by_test_id("knowledge-1-answer-error")).to_have_text(
        "at most 5000 characters (HANDOFF_KNOWLEDGE_MAX_ANSWER_CHARS); got 5001", timeout=TIMEOUT
    )
    expect(long_answer).to_have_attribute("aria-invalid", "true")
    assert stored_knowledge(server, agent_id) == expected + imported

    # An import may replace the list instead of adding to it.
    page.get_by_test_id("knowledge-replace").check()
    page.get_by_test_id("knowledge-file").set_input_files(str(csv))
    expect(entries(page)).to_have_count(2)
    expect(entries(page).nth(1).get_by_test_id("knowledge-answer")).to_have_value(
        imported[1]["answer"]
    )

    # Leaving unsaved edits is asked first: staying keeps them, leaving drops them. One listener
    # answers both questions in turn: a listener per question would unsubscribe and subscribe
    # again between them, and a dialog arriving in that gap is dismissed by Playwright itself.
    asked: list[str] = []
    answers = [False, True]

    def answer(dialog: Dialog) -> None:
        asked.append(dialog.message)
        if answers.pop(0):
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", answer)
    page.get_by_test_id("nav-team").click()
    expect(page.get_by_test_id("nav-knowledge")).to_have_attribute("aria-current", "page")
    expect(entries(page)).to_have_count(2)
    page.get_by_test_id("nav-team").click()
    expect(page.get_by_test_id("section-team")).to_be_visible(timeout=TIMEOUT)
    assert asked == ["Leave the knowledge base? Your changes are not saved."] * 2
    assert stored_knowledge(server, agent_id) == expected + imported
    assert errors == []
    context.close()


def canned_titles(server: Server, workspace_id: str) -> dict[str, str]:
    with server.admin() as admin:
        replies = admin.get("/api/v1/canned-replies", params={"workspace_id": workspace_id})
    return {r["title"]: r["body"] for r in replies.json()}


def test_admin_writes_canned_replies(server: Server, browser: Browser) -> None:
    with server.admin() as admin:
        workspace_id = admin.get(f"/api/v1/agents/{server.demo_agent_id}").json()["workspace_id"]
    title = f"Refund sent {secrets.token_hex(2)}"
    context, page, errors = open_settings(server, browser, server.demo_agent_id, "canned")
    section = page.get_by_test_id("section-canned")
    for variable in ("{first_name}", "{name}", "{email}", "{my_name}"):
        expect(section).to_contain_text(variable)

    # Typed with the keyboard; a variable inserted with its button.
    form = page.get_by_test_id("canned-form")
    form.get_by_test_id("canned-title-input").fill(title)
    body = form.get_by_test_id("canned-body-input")
    body.fill("Hi ")
    form.get_by_role("button", name="Insert {first_name}").press("Enter")
    body.press("End")
    body.type(", your refund is on its way.")
    body.press("Tab")
    form.get_by_test_id("canned-save").focus()
    page.keyboard.press("Enter")
    item = page.get_by_test_id("canned-item").filter(has_text=title)
    written = "Hi {first_name}, your refund is on its way."
    expect(item.get_by_test_id("canned-body")).to_have_text(written, timeout=TIMEOUT)
    assert canned_titles(server, workspace_id)[title] == written

    # The same title again: the server's conflict shows at the title.
    new = page.get_by_test_id("canned-form").last
    new.get_by_test_id("canned-title-input").fill(title)
    new.get_by_test_id("canned-body-input").fill("Another")
    new.get_by_test_id("canned-save").click()
    expect(new.get_by_test_id("canned-title-input-error")).to_contain_text("exists already")
    # An unknown variable is named at the reply.
    new.get_by_test_id("canned-title-input").fill(f"{title} bis")
    new.get_by_test_id("canned-body-input").fill("Dear {surname}")
    new.get_by_test_id("canned-save").click()
    expect(new.get_by_test_id("canned-body-input-error")).to_contain_text("unknown variable")

    # Edit, then delete.
    item.get_by_test_id("canned-edit").click()
    edit = item.get_by_test_id("canned-form")
    edit.get_by_test_id("canned-body-input").fill("Hi {first_name}, the refund is sent. {my_name}")
    edit.get_by_test_id("canned-save").click()
    expect(item.get_by_test_id("canned-body")).to_have_text(
        "Hi {first_name}, the refund is sent. {my_name}", timeout=TIMEOUT
    )
    assert canned_titles(server, workspace_id)[title].endswith("{my_name}")
    item.get_by_test_id("canned-delete").click()
    item.get_by_test_id("canned-delete-confirm").click()
    expect(item).to_have_count(0, timeout=TIMEOUT)
    assert title not in canned_titles(server, workspace_id)
    assert errors == []
    context.close()


def test_every_section_fits_a_phone(server: Server, browser: Browser) -> None:
    context, page, errors = open_settings(
        server, browser, server.demo_agent_id, "integrations", viewport=PHONE
    )
    for section in SECTIONS:
        page.get_by_test_id(f"nav-{section}").click()
        expect(page.get_by_test_id(f"section-{section}")).to_be_visible(timeout=TIMEOUT)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], (section, width)
    assert errors == []
    context.close()
