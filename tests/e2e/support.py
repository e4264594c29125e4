"""What the widget's browser tests share: Chromium, a fresh agent, the widget and the inbox.

Chromium is Debian's /usr/bin/chromium driven by Playwright (never a downloaded browser).
Each test gets its own AI agent in the demo workspace, so the demo member sees its tickets
and one test's theme or conversations never leak into another's.
"""

from __future__ import annotations

import re
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from tests.conftest import Server
from tests.web.chat import member_token, tickets_of, wait_for

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Locator, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT = 20_000  # ms, for anything that waits on the server
# The README's screenshots: the browser tests take them, so they show the pages as they are.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
QUESTION = "How do I reset my password?"


class NetworkCut:
    """A TCP relay on 127.0.0.1 in front of the server, whose cable the test can pull.

    A page loaded through `url` talks to the server only through the relay; `cut()` drops
    every open connection (live streams included) and refuses new ones until `restore()`,
    the way a lost network looks to a browser.
    """

    def __init__(self, upstream_port: int) -> None:
        self._upstream = ("127.0.0.1", upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._down = False
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            self._down = True
            dropped, self._open = self._open, set()
        for sock in dropped:
            _close(sock)

    def restore(self) -> None:
        with self._lock:
            self._down = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        _close(self._listener)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refused = self._down
            if refused:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self._upstream)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open |= {client, upstream}
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            _close(src)
            _close(dst)


def _close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@contextmanager
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_agent(server: Server) -> str:
    """Create an AI agent beside the demo one: same workspace, knowledge and action."""
    with server.admin() as client:
        demo = client.get(f"/api/v1/agents/{server.demo_agent_id}").json()
        faq = client.get(f"/api/v1/agents/{server.demo_agent_id}/knowledge").json()
        agent = client.post(
            "/api/v1/agents",
            json={
                "workspace_id": demo["workspace_id"],
                "name": f"Acme Assistant {secrets.token_hex(2)}",
                "channels": ["widget", "help_page", "api"],
                "greeting": demo["greeting"],
            },
        ).json()
        assert client.put(f"/api/v1/agents/{agent['id']}/knowledge", json=faq).status_code == 200
        action = client.post(
            f"/api/v1/agents/{agent['id']}/actions",
            json={
                "name": "Escalate_To_Human",
                "platform": "native",
                "when_to_use": "Use when the user asks for a person.",
                "channels": ["widget", "help_page", "api"],
                "enabled": True,
            },
        )
        assert action.status_code == 201, action.text
    agent_id: str = agent["id"]
    return agent_id


def messages(page: Page, role: str | None = None) -> Locator:
    selector = "[data-testid=handoff-message]"
    if role:
        selector += f"[data-role={role}]"
    return page.locator(selector)


def say(page: Page, text: str) -> None:
    """Type into the widget and send with Enter, as a visitor would."""
    box = page.get_by_test_id("handoff-input")
    box.fill(text)
    box.press("Enter")
    expect(messages(page, "user").last).to_contain_text(text, timeout=TIMEOUT)
    expect(box).to_have_value("")


def newest_is_from(page: Page, role: str) -> Locator:
    last = messages(page).last
    expect(last).to_have_attribute("data-role", role, timeout=TIMEOUT)
    expect(last).to_have_attribute("data-id", re.compile(r"\S"))
    return last


def open_widget(page: Page, url: str) -> None:
    page.goto(url)
    page.get_by_test_id("handoff-launcher").click()
    expect(page.get_by_test_id("handoff-panel")).to_be_visible()
    # The greeting shows once the conversation exists.
    expect(messages(page, "assistant").first).to_be_visible(timeout=TIMEOUT)


def escalate(page: Page) -> None:
    """Ask for a person and give an email, as an anonymous visitor."""
    say(page, "I want to talk to a human")
    expect(newest_is_from(page, "assistant")).to_contain_text(re.compile("email", re.I))
    say(page, "jane@example.com")
    expect(page.get_by_test_id("handoff-status")).to_contain_text("Support team", timeout=TIMEOUT)


def conversation_id(page: Page, agent_id: str) -> str:
    session = page.evaluate(
        "key => JSON.parse(localStorage.getItem(key))", f"handoff:{agent_id}:widget"
    )
    assert session and session["id"]
    return str(session["id"])


@dataclass
class Inbox:
    """The demo member's inbox in its own browser context, and the same member over HTTP."""

    server: Server
    page: Page
    token: str

    def open_ticket(self, conversation: str) -> str:
        """Wait for the conversation's ticket, open it in the inbox, return its id."""
        ticket = wait_for(lambda: self.ticket_of(conversation), timeout=TIMEOUT / 1000)
        row = self.page.locator(f"[data-testid=ticket-row][data-conversation='{conversation}']")
        expect(row).to_be_visible(timeout=TIMEOUT)
        row.click()
        expect(self.page.get_by_test_id("ticket-view")).to_have_attribute("data-id", ticket["id"])
        ticket_id: str = ticket["id"]
        return ticket_id

    def ticket_of(self, conversation: str) -> dict[str, Any] | None:
        with self.client() as client:
            return next(iter(tickets_of(client, conversation)), None)

    def client(self) -> httpx.Client:
        return self.server.client(self.token)

    def reply(self, text: str) -> None:
        """Reply through the inbox page (Enter sends) and see it in the transcript."""
        box = self.page.get_by_test_id("reply-input")
        box.fill(text)
        box.press("Enter")
        expect(self.transcript(text, "human_agent")).to_have_count(1, timeout=TIMEOUT)
        expect(box).to_have_value("")

    def transcript(self, text: str, role: str) -> Locator:
        return self.page.locator(f"[data-testid=transcript-message][data-role={role}]").filter(
            has_text=text
        )


def sign_in(server: Server, context: BrowserContext) -> Inbox:
    page = context.new_page()
    page.goto(f"{server.url}/inbox")
    page.get_by_test_id("login-email").fill(server.member_email)
    page.get_by_test_id("login-password").fill(server.member_password)
    page.get_by_test_id("login-submit").click()
    # Attached, not visible: a phone's narrow top bar leaves the name out.
    expect(page.get_by_test_id("me-name")).to_be_attached(timeout=TIMEOUT)
    return Inbox(server, page, member_token(server))
