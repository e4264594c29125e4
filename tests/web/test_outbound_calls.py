"""Calls to hosts an admin typed in: they hold up no one else, and carry no stored token away.

A connect check, an option list or the check after an OAuth code exchange waits on the
platform, which may take as long as the HTTP timeout; with a transaction open across it,
SQLite's write lock would stall every other tenant's chats for that long. A reconnect that
points the form at another host must not send the stored OAuth token there: it needs its own
approval.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Server
from tests.fakes.catch_all import CatchAll
from tests.fakes.zendesk import FakeZendesk
from tests.web.chat import start_chat
from tests.web.test_helpdesk_oauth import approve, new_agent, oauth_form

STALL_SECONDS = 15.0
BOUND_SECONDS = 1.0  # what another tenant may wait while the call waits STALL_SECONDS


@dataclass
class Slow:
    """A call to a platform that stalls: how to make it, and how to tell it is stalling."""

    call: Callable[[httpx.Client], httpx.Response]  # made with an admin client
    stalling: Callable[[], bool]
    status: int | None = None  # what the call answers once the stall is cut short, if known


SlowCall = Callable[[Server, str], AbstractContextManager[Slow]]


@contextmanager
def helpdesk_connect(server: Server, agent_id: str) -> Iterator[Slow]:
    form = {"subdomain": "slow", "email": "a@b.test", "api_token": "t0ken"}
    with CatchAll(delay=STALL_SECONDS, status=503) as slow:
        body = {"platform": "zendesk", "credentials": {**form, "base_url": slow.base_url}}
        yield Slow(
            lambda admin: admin.post(f"/api/v1/agents/{agent_id}/integrations", json=body),
            lambda: bool(slow.requests),
            status=502,
        )


@contextmanager
def whatsapp_connect(server: Server, agent_id: str) -> Iterator[Slow]:
    form = {
        "phone_number_id": "1098765",
        "access_token": "EAAG-slow",
        "app_secret": "app-secret",
        "verify_token": "verify-me",
        "template_name": "follow_up",
    }
    with CatchAll(delay=STALL_SECONDS, status=503) as slow:
        body = {**form, "base_url": slow.base_url}
        yield Slow(
            lambda admin: admin.put(f"/api/v1/agents/{agent_id}/channels/whatsapp", json=body),
            lambda: bool(slow.requests),
            status=502,
        )


def _asked(fake: FakeZendesk, path: str) -> Callable[[], bool]:
    return lambda: any(r.path.startswith(path) for r in fake.requests)


@contextmanager
def option_lists(server: Server, agent_id: str) -> Iterator[Slow]:
    with FakeZendesk() as fake:
        form = {
            "subdomain": fake.subdomain,
            "email": fake.email,
            "api_token": fake.api_token,
            "base_url": fake.base_url,
        }
        with server.admin() as admin:
            connected = admin.post(
                f"/api/v1/agents/{agent_id}/integrations",
                json={"platform": "zendesk", "credentials": form},
            )
            assert connected.status_code == 201, connected.text
        fake.delays["/api/v2/groups"] = STALL_SECONDS
        yield Slow(
            lambda admin: admin.get(f"/api/v1/agents/{agent_id}/integrations/zendesk/options"),
            _asked(fake, "/api/v2/groups"),
        )


@contextmanager
def oauth_callback(server: Server, agent_id: str) -> Iterator[Slow]:
    with FakeZendesk() as fake:
        fake.delays["/api/v2/users/me"] = STALL_SECONDS  # the check after the code exchange
        yield Slow(
            lambda admin: approve(server, admin, agent_id, "zendesk", oauth_form(fake)),
            _asked(fake, "/api/v2/users/me"),
        )


@pytest.mark.parametrize(
    "slow_call",
    [helpdesk_connect, whatsapp_connect, option_lists, oauth_callback],
    ids=["connect", "whatsapp", "options", "oauth"],
)
def test_a_stalled_platform_call_holds_up_no_other_tenant(
    any_server: Server, slow_call: SlowCall
) -> None:
    warm = start_chat(any_server)
    warm.say("hello")  # the first answer loads the encoder: not what is measured here
    with any_server.admin() as admin:
        agent_id = new_agent(admin)
    answers: list[httpx.Response] = []
    with slow_call(any_server, agent_id) as slow:

        def call() -> None:
            with any_server.admin() as admin:
                answers.append(slow.call(admin))

        calling = threading.Thread(target=call)
        calling.start()
        deadline = time.monotonic() + 10
        while not slow.stalling():  # the call is on its way and stalls from here
            reached = calling.is_alive() and time.monotonic() < deadline
            assert reached, f"the call never reached the platform: {answers}"
            time.sleep(0.05)

        chats: list[Any] = []
        started = timed(lambda: chats.append(start_chat(any_server)))
        answered = timed(lambda: chats[0].say("what are your opening hours?"))
        still_waiting = calling.is_alive()
    calling.join(timeout=30)  # the fake stopped: the stalled call is cut short
    took = f"starting a chat took {started:.2f} s, answering it {answered:.2f} s"
    assert max(started, answered) < BOUND_SECONDS, took
    assert still_waiting, "the call ended before the chat was measured"
    assert answers and answers[0].status_code != 500, answers
    if slow.status is not None:
        assert answers[0].status_code == slow.status, answers[0].text


def timed(call: Callable[[], Any]) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


def test_a_reconnect_to_another_host_never_sends_the_stored_token(any_server: Server) -> None:
    # The stranger's host says yes to anything, as an attacker's would.
    agent_user = {"user": {"id": 1, "role": "admin", "email": "x@evil.test"}}
    with FakeZendesk() as zendesk, CatchAll(body=agent_user) as stranger:
        with any_server.admin() as admin:
            agent_id = new_agent(admin)
            page = approve(any_server, admin, agent_id, "zendesk", oauth_form(zendesk))
            assert page.status_code == 200, page.text
            [access_token] = zendesk.oauth.access_tokens
            [refresh_token] = zendesk.oauth.refresh_tokens
            path = f"/api/v1/agents/{agent_id}/integrations"

            # Only the public client id, a wrong secret and another host.
            moved = oauth_form(zendesk, client_secret="wrong", base_url=stranger.base_url)
            answer = admin.post(path, json={"platform": "zendesk", "credentials": moved})
            assert answer.status_code == 422, answer.text
            problem = answer.json()["detail"][0]
            assert problem["loc"] == ["body", "credentials.auth"]
            assert "base_url" in problem["msg"] and "/integrations/authorize" in problem["msg"]

            # Leaving out the secret names it.
            bare = {k: v for k, v in moved.items() if k != "client_secret"}
            missing = admin.post(path, json={"platform": "zendesk", "credentials": bare})
            assert missing.status_code == 422, missing.text
            assert "client_secret" in missing.text

            # The same host keeps the approval, as before.
            same = admin.post(
                path, json={"platform": "zendesk", "credentials": oauth_form(zendesk)}
            )
            assert same.status_code == 201, same.text
        for token in (access_token, refresh_token, zendesk.oauth.client_secret):
            assert not stranger.seen(token)
        assert stranger.requests == []
