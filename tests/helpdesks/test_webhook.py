"""The generic webhook connector against a fake receiving tool over real HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from handoff.domain import (
    Channel,
    Contact,
    Message,
    Reason,
    Role,
    TicketEventKind,
    TicketPacket,
    TicketRef,
)
from handoff.helpdesks.errors import (
    BadSignature,
    InvalidCredentials,
    RateLimited,
    Rejected,
    Unavailable,
)
from handoff.helpdesks.webhook import TIMESTAMP_HEADER, Credentials, WebhookHelpdesk
from tests.fakes.webhook_receiver import FakeReceiver
from tests.helpdesks.delivery import delivered

SECRET = "a-shared-secret-of-some-length"
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
PACKET = TicketPacket(
    idempotency_key="handoff-esc-1",
    subject="Charged twice",
    summary="The user was charged twice.",
    reasons=(Reason.SENSITIVE_TOPIC,),
    transcript=(
        Message(Role.USER, "I was charged twice <script>x</script>", T0),
        Message(Role.ASSISTANT, "I'm connecting you with our team.", T0),
    ),
    contact=Contact(name="Ann", email="ann@example.com"),
    channel=Channel.WIDGET,
    conversation_url="http://127.0.0.1/inbox#conversation=c1",
)


@pytest.fixture
def receiver() -> Iterator[FakeReceiver]:
    with FakeReceiver(SECRET) as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=1.0) as client:
        yield client


def connector(url: str, http: httpx.AsyncClient, secret: str = SECRET) -> WebhookHelpdesk:
    credentials = Credentials(url=url, signing_secret=secret)  # type: ignore[arg-type]
    return WebhookHelpdesk(credentials, http=http, webhook_secret="unused")


async def test_connect_pings_and_refuses_a_wrong_secret(
    receiver: FakeReceiver, http: httpx.AsyncClient
) -> None:
    await connector(receiver.url, http).verify_credentials()
    assert receiver.pings == 1
    with pytest.raises(InvalidCredentials):
        await connector(receiver.url, http, "another-secret-entirely").verify_credentials()


async def test_options_offers_nothing_and_calls_nothing(
    receiver: FakeReceiver, http: httpx.AsyncClient
) -> None:
    assert await connector(receiver.url, http).options() == {}
    assert (receiver.pings, receiver.tickets) == (0, {})  # the tool has no lists to ask for


async def test_unreachable_tool_is_unavailable(http: httpx.AsyncClient) -> None:
    with pytest.raises(Unavailable):
        await connector("http://127.0.0.1:9/handoff", http).verify_credentials()


async def test_create_carries_the_whole_packet(
    receiver: FakeReceiver, http: httpx.AsyncClient
) -> None:
    ref = await connector(receiver.url, http).create_ticket(PACKET)
    assert ref == TicketRef("T-1", "https://tool.example/tickets/T-1")
    sent = receiver.tickets["handoff-esc-1"].packet
    assert sent["subject"] == "Charged twice"
    assert sent["reasons"] == ["sensitive_topic"]
    assert sent["contact"]["email"] == "ann@example.com"
    assert [m["role"] for m in sent["transcript"]] == ["user", "assistant"]
    assert sent["transcript"][0]["created_at"].startswith("2026-11-27T09:00")
    assert "<script>x</script>" in sent["body"]  # plain text: data, not markup


async def test_retry_after_a_lost_response_creates_one_ticket(
    receiver: FakeReceiver, http: httpx.AsyncClient
) -> None:
    receiver.lose_next_create_for = 2.0
    with pytest.raises(Unavailable):
        await connector(receiver.url, http).create_ticket(PACKET)
    ref = await connector(receiver.url, http).create_ticket(PACKET)
    assert len(receiver.tickets) == 1
    assert ref.id == "T-1"


async def test_rate_limit_then_success(receiver: FakeReceiver, http: httpx.AsyncClient) -> None:
    receiver.rate_limit_next = 1
    with pytest.raises(RateLimited) as limited:
        await connector(receiver.url, http).create_ticket(PACKET)
    assert limited.value.retry_after == 7
    assert (await connector(receiver.url, http).create_ticket(PACKET)).id == "T-1"


async def test_validation_error_is_a_readable_rejection(
    receiver: FakeReceiver, http: httpx.AsyncClient
) -> None:
    receiver.reject_next_create = True
    with pytest.raises(Rejected) as rejected:
        await connector(receiver.url, http).create_ticket(PACKET)
    assert rejected.value.status == 422
    assert "HTTP 422 Unprocessable Entity (subject_too_long)" in str(rejected.value)


async def test_follow_up_goes_onto_the_ticket(
    receiver: FakeReceiver, http: httpx.AsyncClient
) -> None:
    ref = await connector(receiver.url, http).create_ticket(PACKET)
    follow_up = Message(Role.USER, "any news?", T0, id=7)
    await connector(receiver.url, http).add_message(ref, follow_up, PACKET.contact)
    assert receiver.tickets["handoff-esc-1"].messages[0]["text"] == "any news?"


async def test_signed_reply_and_solved_parse_notes_do_not(receiver: FakeReceiver) -> None:
    hook = connector(receiver.url, httpx.AsyncClient())
    for kind, expected in [("reply", TicketEventKind.REPLY), ("solved", TicketEventKind.SOLVED)]:
        body, headers = receiver.signed(
            {
                "event_id": f"e-{kind}",
                "ticket_id": "T-1",
                "type": kind,
                "text": "Hi",
                "author": {"name": "Sam"},
            }
        )
        hook.verify_webhook(delivered(body, headers))
        (event,) = await hook.parse_webhook(delivered(body, headers))
        assert event.kind is expected and event.ticket_id == "T-1"
    note = json.dumps({"event_id": "n", "ticket_id": "T-1", "type": "note", "text": "x"}).encode()
    assert await hook.parse_webhook(delivered(note, {})) == []


@pytest.mark.parametrize(("secret", "age"), [("forged-secret-value", 0), (SECRET, 600)])
def test_forged_or_stale_signatures_are_rejected(
    receiver: FakeReceiver, secret: str, age: int
) -> None:
    hook = connector(receiver.url, httpx.AsyncClient())
    body, headers = receiver.signed(
        {"event_id": "e", "ticket_id": "T-1", "type": "reply", "text": "hi"}, secret=secret, age=age
    )
    with pytest.raises(BadSignature):
        hook.verify_webhook(delivered(body, headers), now=time.time())


def test_a_timestamp_of_other_digits_is_a_bad_signature(receiver: FakeReceiver) -> None:
    """ "²" passes `str.isdigit` but is no number: refused as unsigned, not as a crash."""
    hook = connector(receiver.url, httpx.AsyncClient())
    body, headers = receiver.signed({"event_id": "e", "ticket_id": "T-1", "type": "reply"})
    stamped = {
        name: ("\u00b2" if name.lower() == TIMESTAMP_HEADER.lower() else value)
        for name, value in headers.items()
    }
    with pytest.raises(BadSignature):
        hook.verify_webhook(delivered(body, stamped), now=time.time())
