"""Rate limits on the public surface: a flood gets 429 with Retry-After, and nothing is written.

The servers here run with low limits. Most trust X-Forwarded-For from 127.0.0.1 (as behind a
local proxy), so each test counts as its own client address; one trusts no header at all.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from handoff.service.ratelimit import LOGINS_PER_IP, RateLimits, TooManyRequests
from handoff.settings import Settings
from handoff.web.ratelimit import client_address
from tests.conftest import Server, require_postgres, start_server, stop_server
from tests.fakes.graph_api import FakeGraph
from tests.web.chat import tickets_of as conversation_tickets
from tests.web.chat import wait_for
from tests.web.rules import new_agent
from tests.web.test_whatsapp import connect, conversation_ids, new_wa_id, ticket

ESCALATION_WINDOW_SECONDS = 20
LIMITS = {
    "HANDOFF_RATE_LIMIT_CONVERSATIONS_PER_IP": "3/minute",
    "HANDOFF_RATE_LIMIT_CONVERSATIONS_PER_AGENT": "5/minute",
    "HANDOFF_RATE_LIMIT_MESSAGES_PER_IP": "100/minute",
    "HANDOFF_RATE_LIMIT_MESSAGES_PER_AGENT": "6/minute",
    "HANDOFF_RATE_LIMIT_MESSAGES_PER_CONVERSATION": "3/minute",
    "HANDOFF_RATE_LIMIT_ESCALATIONS_PER_AGENT": f"2/{ESCALATION_WINDOW_SECONDS} seconds",
    "HANDOFF_RATE_LIMIT_LOGINS_PER_IP": "3/minute",
    "HANDOFF_RATE_LIMIT_WEBHOOKS_PER_IP": "5/minute",
}
ASK_FOR_A_PERSON = "I want to talk to a human, please"


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """Servers with low limits behind a 'proxy' on 127.0.0.1, started per backend on use."""
    started: dict[str, Server] = {}

    class Lazy(dict[str, Server]):
        def __missing__(self, backend: str) -> Server:
            if backend == "postgres":
                require_postgres()
            env = {**LIMITS, "HANDOFF_TRUSTED_PROXY_HEADER": "X-Forwarded-For"}
            started[backend] = start_server(backend, tmp_path_factory.mktemp(backend), env=env)
            self[backend] = started[backend]
            return started[backend]

    yield Lazy()
    for server in started.values():
        stop_server(server)


@pytest.fixture
def server(proxied: dict[str, Server]) -> Server:
    return proxied["sqlite"]


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with low limits and no trusted proxy header: the peer is the client."""
    server = start_server("sqlite", tmp_path_factory.mktemp("direct"), env=LIMITS)
    yield server
    stop_server(server)


def address() -> str:
    """A client address of the documentation range, new for each caller."""
    return f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"


def open_conversation(
    server: Server, agent_id: str | None = None, forwarded_for: str | None = None
) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    with server.client() as client:
        return client.post(
            f"/api/v1/agents/{agent_id or server.demo_agent_id}/conversations",
            json={"channel": "widget"},
            headers=headers,
        )


def send(server: Server, chat: dict[str, Any], text: str, **extra: Any) -> httpx.Response:
    with server.client(chat["token"]) as client:
        return client.post(
            f"/api/v1/conversations/{chat['id']}/messages", json={"text": text, **extra}
        )


def user_messages(server: Server, chat: dict[str, Any]) -> list[str]:
    with server.client(chat["token"]) as client:
        messages = client.get(f"/api/v1/conversations/{chat['id']}").json()["messages"]
    return [m["text"] for m in messages if m["role"] == "user"]


def assert_limited(response: httpx.Response, limit: str) -> int:
    """Check a 429 names its limit and says when to come back; return that wait."""
    assert response.status_code == 429, response.text
    assert f"rate limit {limit}" in response.json()["detail"]
    assert response.json()["code"] == "rate_limited"
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    return retry_after


def test_one_address_opens_a_few_conversations_then_gets_429(server: Server) -> None:
    agent_id, mine = new_agent(server)[0], address()
    created = [open_conversation(server, agent_id, forwarded_for=mine) for _ in range(3)]
    assert [r.status_code for r in created] == [201, 201, 201]

    refused = open_conversation(server, agent_id, forwarded_for=mine)
    assert_limited(refused, "conversations_per_ip")
    assert "new conversations from this address" in refused.json()["detail"]
    # Someone else, behind the same trusted proxy, is not held back.
    assert open_conversation(server, agent_id, forwarded_for=address()).status_code == 201


def test_refusals_are_counted_and_readable_across_origins(server: Server) -> None:
    agent_id, mine = new_agent(server)[0], address()
    answers = [open_conversation(server, agent_id, forwarded_for=mine) for _ in range(4)]
    assert answers[-1].status_code == 429
    # A page on another site (the widget) may read Retry-After.
    with server.client() as client:
        answer = client.post(
            f"/api/v1/agents/{agent_id}/conversations",
            json={"channel": "widget"},
            headers={"X-Forwarded-For": mine, "Origin": "https://shop.example.com"},
        )
        assert answer.status_code == 429
        assert "retry-after" in answer.headers["Access-Control-Expose-Headers"].lower()
    with server.admin() as admin:
        metrics = admin.get("/metrics").text
    counted = [
        line
        for line in metrics.splitlines()
        if line.startswith('handoff_requests_rate_limited_total{limit="conversations_per_ip"}')
    ]
    assert counted and float(counted[0].split()[-1]) >= 2


def test_addresses_a_client_writes_itself_do_not_count(server: Server) -> None:
    # The proxy appends the address it saw; whatever the client put before it is ignored.
    agent_id, mine = new_agent(server)[0], address()
    answers = [
        open_conversation(server, agent_id, forwarded_for=f"{address()}, {mine}") for _ in range(4)
    ]
    assert [a.status_code for a in answers[:3]] == [201, 201, 201]
    assert_limited(answers[3], "conversations_per_ip")


def test_one_agent_takes_a_few_conversations_from_everyone(server: Server) -> None:
    agent_id, _ = new_agent(server)
    statuses = [
        open_conversation(server, agent_id, forwarded_for=address()).status_code for _ in range(5)
    ]
    assert statuses == [201] * 5
    assert_limited(
        open_conversation(server, agent_id, forwarded_for=address()), "conversations_per_agent"
    )


def test_one_conversation_sends_a_few_messages_then_gets_429(server: Server) -> None:
    agent_id, _ = new_agent(server)
    chat = open_conversation(server, agent_id, forwarded_for=address()).json()
    for n in range(3):
        assert send(server, chat, f"What are your opening hours? ({n})").status_code == 200

    assert_limited(send(server, chat, "One more question"), "messages_per_conversation")
    assert "One more question" not in user_messages(server, chat)
    assert len(user_messages(server, chat)) == 3


def test_one_agent_takes_a_few_messages_from_all_its_conversations(server: Server) -> None:
    agent_id, _ = new_agent(server)
    chats = [open_conversation(server, agent_id, forwarded_for=address()).json() for _ in range(3)]
    for chat in chats[:2]:
        for n in range(3):
            assert send(server, chat, f"How do I reset my password? ({n})").status_code == 200

    assert_limited(send(server, chats[2], "And the invoice?"), "messages_per_agent")
    assert user_messages(server, chats[2]) == []


def tickets_of(server: Server, conversation_ids: set[str]) -> list[dict[str, Any]]:
    with server.admin() as admin:
        return [t for id in sorted(conversation_ids) for t in conversation_tickets(admin, id)]


def wait_for_tickets(server: Server, conversation_ids: set[str], count: int) -> None:
    deadline = time.monotonic() + 30
    while len(tickets_of(server, conversation_ids)) < count:
        assert time.monotonic() < deadline, "the tickets were not created"
        time.sleep(0.2)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_escalations_past_the_agent_cap_are_refused_whole(
    proxied: dict[str, Server], backend: str
) -> None:
    server = proxied[backend]
    agent_id, _ = new_agent(server)
    chats = [open_conversation(server, agent_id, forwarded_for=address()).json() for _ in range(3)]
    ids = {chat["id"] for chat in chats}
    started = time.monotonic()
    for chat in chats[:2]:
        answer = send(server, chat, ASK_FOR_A_PERSON)
        assert answer.status_code == 200, answer.text
        assert answer.json()["conversation"]["owner"] == "human"

    refused = send(server, chats[2], ASK_FOR_A_PERSON, client_id="ask-1")
    # The cap is 2 per 20 s: the first two escalations took far less than that.
    assert time.monotonic() - started < ESCALATION_WINDOW_SECONDS
    retry_after = assert_limited(refused, "escalations_per_agent")
    # Nothing of the refused message was written: no message, no escalation, no ticket.
    assert user_messages(server, chats[2]) == []
    wait_for_tickets(server, ids, 2)
    time.sleep(1)  # a ticket for the refused message would have been created by now
    assert len(tickets_of(server, ids)) == 2
    with server.client(chats[2]["token"]) as client:
        assert client.get(f"/api/v1/conversations/{chats[2]['id']}").json()["owner"] == "bot"

    # Sent again once the window moved on, the same message is taken and escalated.
    time.sleep(retry_after)
    again = send(server, chats[2], ASK_FOR_A_PERSON, client_id="ask-1")
    assert again.status_code == 200, again.text
    assert again.json()["conversation"]["owner"] == "human"
    assert user_messages(server, chats[2]) == [ASK_FOR_A_PERSON]
    wait_for_tickets(server, ids, 3)


def test_a_whatsapp_request_past_the_cap_waits_in_the_outbox(server: Server) -> None:
    # Meta has its 200 already: the message is retried from the outbox until the cap allows.
    with FakeGraph() as graph:
        number = connect(server, graph)
        users = [new_wa_id() for _ in range(3)]
        for wa_id in users[:2]:
            number.text(wa_id, ASK_FOR_A_PERSON)
        first = [wait_for(lambda w=w: conversation_ids(number, w)) for w in users[:2]]
        wait_for(lambda: all(ticket(number, c) for [c] in first))

        number.text(users[2], ASK_FOR_A_PERSON)
        refused = wait_for(lambda: capped_job(server, users[2]))
        assert refused["status"] == "pending"  # to be tried again, not dropped
        [waiting] = conversation_ids(number, users[2])
        with server.admin() as admin:
            held = admin.get(f"/api/v1/conversations/{waiting}").json()
        assert [m for m in held["messages"] if m["role"] == "user"] == []
        assert ticket(number, waiting) is None
        # The job's backoff outlasts the 20 s window within its retry budget.
        assert wait_for(lambda: ticket(number, waiting), timeout=90)


def capped_job(server: Server, wa_id: str) -> dict[str, Any] | None:
    """Return the WhatsApp message job the escalation cap sent back to the queue, if any."""
    with server.admin() as admin:
        jobs: list[dict[str, Any]] = admin.get("/api/v1/jobs").json()
    return next(
        (
            job
            for job in jobs
            if job["payload"].get("wa_id") == wa_id
            and "escalations_per_agent" in (job["last_error"] or "")
        ),
        None,
    )


def test_password_guessing_is_slowed_down(server: Server) -> None:
    mine = address()

    def login(password: str) -> httpx.Response:
        with server.client() as client:
            return client.post(
                "/api/v1/auth/login",
                json={"email": server.member_email, "password": password},
                headers={"X-Forwarded-For": mine},
            )

    assert [login(f"guess-{n}").status_code for n in range(3)] == [401, 401, 401]
    # Even the right password waits: the guesser cannot tell it was right.
    assert_limited(login(server.member_password), "logins_per_ip")


def test_webhook_floods_get_429(server: Server) -> None:
    mine = address()
    with server.client() as client:
        statuses = [
            client.post(
                "/api/v1/webhooks/no-such-integration",
                content=b"{}",
                headers={"X-Forwarded-For": mine},
            ).status_code
            for _ in range(6)
        ]
    assert statuses == [404] * 5 + [429]


def test_without_a_trusted_proxy_header_every_request_is_its_peer(direct: Server) -> None:
    # Nobody configured a proxy: X-Forwarded-For is the client's own claim and is ignored.
    answers = [open_conversation(direct, forwarded_for=address()) for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [201, 201, 201]
    assert_limited(answers[3], "conversations_per_ip")


def test_the_header_is_ignored_unless_configured() -> None:
    assert client_address("127.0.0.1", ["198.51.100.7"], Settings()) == "127.0.0.1"


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("127.0.0.1", ["198.51.100.7"], "198.51.100.7"),
        # A peer that is not a trusted proxy speaks for itself.
        ("192.0.2.10", ["198.51.100.7"], "192.0.2.10"),
        # The rightmost address that is not ours; what the client wrote before it is not.
        ("127.0.0.1", ["1.2.3.4, 198.51.100.7, 10.0.0.2"], "198.51.100.7"),
        ("127.0.0.1", ["1.2.3.4", "198.51.100.7"], "198.51.100.7"),
        # Only proxies in the chain: the first is where the request came from.
        ("127.0.0.1", ["10.0.0.3, 10.0.0.2"], "10.0.0.3"),
        ("127.0.0.1", [], "127.0.0.1"),
    ],
)
def test_a_trusted_proxy_names_the_client(peer: str, forwarded: list[str], expected: str) -> None:
    settings = Settings(
        trusted_proxy_header="X-Forwarded-For",
        trusted_proxies=["127.0.0.1", "10.0.0.0/8"],  # type: ignore[list-item]
    )
    assert client_address(peer, forwarded, settings) == expected


@pytest.mark.parametrize("value", ["60/minut", "sixty a minute", "0/minute"])
def test_a_mistyped_limit_stops_the_start(value: str) -> None:
    with pytest.raises(ValidationError, match="rate_limit_messages_per_ip"):
        Settings(rate_limit_messages_per_ip=value)


def test_an_empty_limit_is_no_limit() -> None:
    assert Settings(rate_limit_messages_per_ip="").rate_limit_messages_per_ip == ""


async def test_a_request_one_window_refuses_uses_up_no_other_window() -> None:
    limits = RateLimits({LOGINS_PER_IP: "3/minute;1/second"})
    await limits.hit(LOGINS_PER_IP, "198.51.100.7")
    with pytest.raises(TooManyRequests):  # the second within the second
        await limits.hit(LOGINS_PER_IP, "198.51.100.7")
    for _ in range(2):  # the refused one took none of the three a minute allows
        await asyncio.sleep(1.05)
        await limits.hit(LOGINS_PER_IP, "198.51.100.7")
