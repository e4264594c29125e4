"""Calls to hosts an admin typed in: they hold up no one else, and carry no stored token away.

A connect check waits on the platform, which may take as long as the HTTP timeout; with a
transaction open across it, SQLite's write lock would stall every other tenant's chats for that
long. A reconnect that points the form at another host must not send the stored OAuth token
there: it needs its own approval.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import Server
from tests.fakes.catch_all import CatchAll
from tests.fakes.zendesk import FakeZendesk
from tests.web.chat import start_chat
from tests.web.test_helpdesk_oauth import approve, new_agent, oauth_form

STALL_SECONDS = 15.0
BOUND_SECONDS = 1.0  # what another tenant may wait, while the connect waits STALL_SECONDS


def connect_zendesk(admin: httpx.Client, agent_id: str, base_url: str) -> httpx.Response:
    form = {"subdomain": "slow", "email": "a@b.test", "api_token": "t0ken", "base_url": base_url}
    return admin.post(
        f"/api/v1/agents/{agent_id}/integrations",
        json={"platform": "zendesk", "credentials": form},
    )


def connect_whatsapp(admin: httpx.Client, agent_id: str, base_url: str) -> httpx.Response:
    form = {
        "phone_number_id": "1098765",
        "access_token": "EAAG-slow",
        "app_secret": "app-secret",
        "verify_token": "verify-me",
        "template_name": "follow_up",
        "base_url": base_url,
    }
    return admin.put(f"/api/v1/agents/{agent_id}/channels/whatsapp", json=form)


Connect = Callable[[httpx.Client, str, str], httpx.Response]


def timed(call: Callable[[], Any]) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


@pytest.mark.parametrize("connect", [connect_zendesk, connect_whatsapp], ids=["helpdesk", "wa"])
def test_a_stalled_connect_check_holds_up_no_other_tenant(
    any_server: Server, connect: Connect
) -> None:
    warm = start_chat(any_server)
    warm.say("hello")  # the first answer loads the encoder: not what is measured here
    with any_server.admin() as admin:
        agent_id = new_agent(admin)
    answers: list[httpx.Response] = []

    def connect_slowly(base_url: str) -> None:
        with any_server.admin() as admin:
            answers.append(connect(admin, agent_id, base_url))

    with CatchAll(delay=STALL_SECONDS, status=503) as slow:
        connecting = threading.Thread(target=connect_slowly, args=(slow.base_url,))
        connecting.start()
        deadline = time.monotonic() + 10
        while not slow.requests:  # the check is on its way and stalls from here
            reached = connecting.is_alive() and time.monotonic() < deadline
            assert reached, f"the connect check never reached the platform: {answers}"
            time.sleep(0.05)

        chats: list[Any] = []
        started = timed(lambda: chats.append(start_chat(any_server)))
        answered = timed(lambda: chats[0].say("what are your opening hours?"))
        still_waiting = connecting.is_alive()
    connecting.join(timeout=30)  # the fake stopped: the stalled check is cut short
    took = f"starting a chat took {started:.2f} s, answering it {answered:.2f} s"
    assert max(started, answered) < BOUND_SECONDS, took
    assert still_waiting, "the check ended before the chat was measured"
    assert answers and answers[0].status_code == 502, answers  # nothing was connected
    with any_server.admin() as admin:
        listed = admin.get(f"/api/v1/agents/{agent_id}/integrations").json()
    assert [i["platform"] for i in listed] == ["native"]


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
