"""The Freshdesk connector end to end, over real HTTP against `tests.fakes.freshdesk`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import ValidationError

from handoff.domain import (
    Channel,
    Contact,
    Message,
    Priority,
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
from handoff.helpdesks.freshdesk import WEBHOOK_BODY, Credentials, FreshdeskHelpdesk
from tests.fakes.freshdesk import FakeFreshdesk
from tests.helpdesks.delivery import delivered

SECRET = "whs-test-secret"
AT = datetime(2025, 5, 1, 9, 30, tzinfo=UTC)
ANN = Contact(name="Ann Lee", email="ann@example.com", phone="+15555550100")


@pytest.fixture
def fake() -> Iterator[FakeFreshdesk]:
    with FakeFreshdesk() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=0.75) as client:
        yield client


def connector(
    fake: FakeFreshdesk, http: httpx.AsyncClient, *, api_key: str | None = None
) -> FreshdeskHelpdesk:
    credentials = Credentials(
        domain="acme", api_key=api_key or fake.api_key, base_url=fake.base_url
    )
    return FreshdeskHelpdesk(credentials, http=http, webhook_secret=SECRET)


def packet(key: str = "handoff-esc-1", contact: Contact = ANN, **extra: object) -> TicketPacket:
    transcript = [
        Message(Role.USER, "My order <script>alert(1)</script> never came & I'm upset", AT),
        Message(Role.ASSISTANT, "Sorry to hear that.", AT),
        Message(Role.USER, "I want a human", AT),
    ]
    fields: dict[str, object] = {
        "idempotency_key": key,
        "subject": "Order never arrived",
        "summary": "Customer's order <b>#123</b> is missing",
        "reasons": (Reason.EXPLICIT_REQUEST, Reason.FRUSTRATION),
        "transcript": transcript,
        "contact": contact,
        "channel": Channel.WIDGET,
        "conversation_url": "https://support.example.com/c/1?a=1&b=2",
        "priority": Priority.HIGH,
        "tags": ("chatbot", "handoff"),
    }
    fields.update(extra)
    return TicketPacket(**fields)  # type: ignore[arg-type]


# connect


async def test_verify_credentials_accepts_the_right_key(
    fake: FakeFreshdesk, http: httpx.AsyncClient
) -> None:
    await connector(fake, http).verify_credentials()
    (call,) = fake.calls("GET", "/api/v2/agents/me")
    assert call.headers["authorization"].startswith("Basic ")


async def test_verify_credentials_names_the_api_key_when_refused(
    fake: FakeFreshdesk, http: httpx.AsyncClient
) -> None:
    with pytest.raises(InvalidCredentials, match="api_key") as caught:
        await connector(fake, http, api_key="wrong").verify_credentials()
    assert "HTTP 401 Unauthorized (invalid_credentials)" in str(caught.value)
    assert "logged in" not in str(caught.value)  # Freshdesk's prose stays out of errors


async def test_options_lists_the_live_single_line_text_fields(
    fake: FakeFreshdesk, http: httpx.AsyncClient
) -> None:
    fake.add_custom_field("cf_chat_reference", "Chat reference")
    fake.add_custom_field("cf_notes", "Notes", "custom_paragraph")  # multi-line: not offered
    offered = await connector(fake, http).options()

    assert list(offered) == ["external_id_field"]
    assert "external_id_field" in Credentials.model_fields
    assert [(c.value, c.label) for c in offered["external_id_field"]] == [
        ("cf_handoff_conversation", "Handoff conversation"),
        ("cf_chat_reference", "Chat reference"),
    ]  # system fields (group, type, ...) are not on the connect form
    for choice in offered["external_id_field"]:  # each one the form accepts as is
        Credentials(domain="acme", api_key="k", external_id_field=choice.value)

    with pytest.raises(InvalidCredentials):
        await connector(fake, http, api_key="wrong").options()


async def test_verify_credentials_names_the_domain_when_there_is_no_helpdesk(
    fake: FakeFreshdesk, http: httpx.AsyncClient
) -> None:
    credentials = Credentials(domain="acme", api_key=fake.api_key, base_url=fake.base_url + "/x")
    helpdesk = FreshdeskHelpdesk(credentials, http=http, webhook_secret=SECRET)
    with pytest.raises(InvalidCredentials, match="domain"):
        await helpdesk.verify_credentials()


async def test_verify_credentials_cannot_connect_is_unavailable(http: httpx.AsyncClient) -> None:
    credentials = Credentials(domain="acme", api_key="k", base_url="http://127.0.0.1:9")
    with pytest.raises(Unavailable):
        await FreshdeskHelpdesk(credentials, http=http, webhook_secret=SECRET).verify_credentials()


@pytest.mark.parametrize(
    ("given", "kept"),
    [("acme", "acme"), ("https://Acme.freshdesk.com/a/tickets", "acme"), (" acme-eu ", "acme-eu")],
)
def test_domain_is_the_bare_subdomain(given: str, kept: str) -> None:
    assert Credentials(domain=given, api_key="k").domain == kept


@pytest.mark.parametrize("given", ["", "acme.zendesk.com/x y", "-acme", "a_b"])
def test_domain_rejects_what_is_not_a_subdomain(given: str) -> None:
    with pytest.raises(ValidationError):
        Credentials(domain=given, api_key="k")


def test_credentials_form_has_titles_and_a_secret_key() -> None:
    schema = Credentials.model_json_schema()
    assert all("title" in p and "description" in p for p in schema["properties"].values())
    assert schema["properties"]["api_key"]["format"] == "password"


# create


async def test_create_ticket_sends_the_whole_packet(
    fake: FakeFreshdesk, http: httpx.AsyncClient
) -> None:
    ref = await connector(fake, http).create_ticket(packet())

    (ticket,) = fake.tickets.values()
    assert ref == TicketRef(str(ticket.id), f"https://acme.freshdesk.com/a/tickets/{ticket.id}")
    (call,) = fake.calls("POST", "/api/v2/tickets")
    body = call.body
    assert (body["priority"], body["status"], body["source"]) == (3, 2, 7)
    assert (body["email"], body["name"], body["phone"]) == (
        "ann@example.com",
        "Ann Lee",
        "+15555550100",
    )
    assert body["tags"] == ["chatbot", "handoff"]
    assert body["custom_fields"] == {"cf_handoff_conversation": "handoff-esc-1"}
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body["description"]
    assert "<script>" not in body["description"]
    assert "&lt;b&gt;#123&lt;/b&gt;" in body["description"]
    assert body["subject"] == "Order never arrived"


async def test_anonymous_user_gets_a_unique_external_id(
    fake: FakeFreshdesk, http: httpx.AsyncClient
) -> None:
    await connector(fake, http).create_ticket(packet(contact=Contact()))
    (call,) = fake.calls("POST", "/api/v2/tickets")
    assert call.body["unique_external_id"] == "handoff-visitor-handoff-esc-1"
    assert call.body["name"] == "Visitor"
    assert "email" not in call.body


async def test_phone_only_user_sends_phone_and_name(
    fake: FakeFreshdesk, http: httpx.AsyncClient
) -> None:
    await connector(fake, http).create_ticket(packet(contact=Contact(phone="+4930123")))
    (call,) = fake.calls("POST", "/api/v2/tickets")
    assert (call.body["phone"], call.body["name"]) == ("+4930123", "+4930123")


async def test_retry_after_a_lost_response_creates_one_ticket(
    fake: FakeFreshdesk, http: httpx.AsyncClient
) -> None:
    helpdesk = connector(fake, http)
    fake.lose_next_create(5)
    with pytest.raises(Unavailable):
        await helpdesk.create_ticket(packet())
    assert len(fake.tickets) == 1  # stored, but the answer never came

    ref = await helpdesk.create_ticket(packet())

    assert list(fake.tickets) == [int(ref.id)]
    assert len(fake.calls("POST", "/api/v2/tickets")) == 1


async def test_retry_finds_the_ticket_while_search_lags(
    fake: FakeFreshdesk, http: httpx.AsyncClient
) -> None:
    helpdesk = connector(fake, http)
    fake.search_lag = 600  # Freshdesk's index takes minutes; the retry comes in seconds
    first = await helpdesk.create_ticket(packet())

    again = await helpdesk.create_ticket(packet())

    assert again == first
    assert len(fake.tickets) == 1
    assert fake.calls("GET", "/api/v2/tickets")[0].query["requester_id"]


async def test_another_escalation_gets_its_own_ticket(
    fake: FakeFreshdesk, http: httpx.AsyncClient
) -> None:
    helpdesk = connector(fake, http)
    one = await helpdesk.create_ticket(packet("handoff-esc-1"))
    two = await helpdesk.create_ticket(packet("handoff-esc-2"))
    assert one != two and len(fake.tickets) == 2


async def test_rate_limit_then_success(fake: FakeFreshdesk, http: httpx.AsyncClient) -> None:
    helpdesk = connector(fake, http)
    fake.rate_limit(1, retry_after="7")
    with pytest.raises(RateLimited) as caught:
        await helpdesk.create_ticket(packet())
    assert caught.value.retry_after == 7.0
    assert caught.value.retryable

    ref = await helpdesk.create_ticket(packet())
    assert list(fake.tickets) == [int(ref.id)]


async def test_validation_error_is_rejected_with_a_readable_message(
    fake: FakeFreshdesk, http: httpx.AsyncClient
) -> None:
    with pytest.raises(Rejected) as caught:
        await connector(fake, http).create_ticket(packet(contact=Contact(email="not-an-email")))
    assert caught.value.status == 400
    assert not caught.value.retryable
    # The status and Freshdesk's codes (field, error code), never its prose.
    assert caught.value.detail == "freshdesk: HTTP 400 Bad Request (email, invalid_value)"
    assert fake.tickets == {}


async def test_a_missing_custom_field_is_rejected_by_name(http: httpx.AsyncClient) -> None:
    with (
        FakeFreshdesk(custom_fields=()) as bare,
        pytest.raises(Rejected, match="cf_handoff_conversation"),
    ):
        await connector(bare, http).create_ticket(packet())


# follow-ups


async def test_follow_up_is_an_incoming_public_note_by_the_requester(
    fake: FakeFreshdesk, http: httpx.AsyncClient
) -> None:
    helpdesk = connector(fake, http)
    ref = await helpdesk.create_ticket(packet())

    await helpdesk.add_message(ref, Message(Role.USER, "Still waiting <3\nplease", AT), ANN)

    (note,) = fake.tickets[int(ref.id)].notes
    assert (note.private, note.incoming) == (False, True)
    assert note.user_id == fake.tickets[int(ref.id)].data["requester_id"]
    assert note.body == "<p>Still waiting &lt;3<br>please</p>"


async def test_follow_up_on_a_deleted_ticket_is_rejected(
    fake: FakeFreshdesk, http: httpx.AsyncClient
) -> None:
    with pytest.raises(Rejected) as caught:
        await connector(fake, http).add_message(
            TicketRef("999999", "https://acme.freshdesk.com/a/tickets/999999"),
            Message(Role.USER, "hello", AT),
            ANN,
        )
    assert caught.value.status == 404


# webhooks


async def ticket_with_echo(fake: FakeFreshdesk, http: httpx.AsyncClient) -> str:
    helpdesk = connector(fake, http)
    ref = await helpdesk.create_ticket(packet())
    await helpdesk.add_message(ref, Message(Role.USER, "Any news?", AT), ANN)
    return ref.id


async def test_agent_reply_with_the_token_is_a_reply(
    fake: FakeFreshdesk, http: httpx.AsyncClient
) -> None:
    helpdesk = connector(fake, http)
    ticket_id = await ticket_with_echo(fake, http)
    body, headers = fake.webhook(
        ticket_id, SECRET, kind="agent_reply", text="Hi Ann,<br>your parcel ships today &amp; more"
    )

    helpdesk.verify_webhook(delivered(body, headers))
    (event,) = await helpdesk.parse_webhook(delivered(body, headers))

    assert event.kind == TicketEventKind.REPLY
    assert event.ticket_id == ticket_id
    assert event.text == "Hi Ann,\nyour parcel ships today & more"
    assert event.author_name == "Dana Agent"
    again = await helpdesk.parse_webhook(delivered(body, headers))  # a redelivery keeps its id
    assert again[0].event_id == event.event_id


async def test_agent_public_note_is_a_reply(fake: FakeFreshdesk, http: httpx.AsyncClient) -> None:
    helpdesk = connector(fake, http)
    ticket_id = await ticket_with_echo(fake, http)
    body, headers = fake.webhook(ticket_id, SECRET, kind="public_note", text="Checking now")
    assert [e.text for e in await helpdesk.parse_webhook(delivered(body, headers))] == [
        "Checking now"
    ]


async def test_two_replies_get_two_event_ids(fake: FakeFreshdesk, http: httpx.AsyncClient) -> None:
    helpdesk = connector(fake, http)
    ticket_id = await ticket_with_echo(fake, http)
    ids = set()
    for stamp in ("Thu, 1 May 2025 at 9:31 AM", "Thu, 1 May 2025 at 9:40 AM"):
        body, headers = fake.webhook(
            ticket_id, SECRET, kind="agent_reply", text="Thanks!", modified_on=stamp
        )
        ids.add((await helpdesk.parse_webhook(delivered(body, headers)))[0].event_id)
    assert len(ids) == 2


@pytest.mark.parametrize("kind", ["private_note", "customer_echo"])
async def test_private_notes_and_our_echoes_are_ignored(
    fake: FakeFreshdesk, http: httpx.AsyncClient, kind: str
) -> None:
    helpdesk = connector(fake, http)
    ticket_id = await ticket_with_echo(fake, http)
    body, headers = fake.webhook(ticket_id, SECRET, kind=kind, text="Any news?")
    helpdesk.verify_webhook(delivered(body, headers))
    assert await helpdesk.parse_webhook(delivered(body, headers)) == []


@pytest.mark.parametrize("kind", ["resolved", "closed"])
async def test_resolved_or_closed_is_solved(
    fake: FakeFreshdesk, http: httpx.AsyncClient, kind: str
) -> None:
    helpdesk = connector(fake, http)
    ticket_id = await ticket_with_echo(fake, http)
    body, headers = fake.webhook(ticket_id, SECRET, kind=kind)
    (event,) = await helpdesk.parse_webhook(delivered(body, headers))
    assert (event.kind, event.ticket_id) == (TicketEventKind.SOLVED, ticket_id)


async def test_reply_sent_and_resolved_at_once_gives_both(
    fake: FakeFreshdesk, http: httpx.AsyncClient
) -> None:
    helpdesk = connector(fake, http)
    ticket_id = await ticket_with_echo(fake, http)
    fake.tickets[int(ticket_id)].data["status"] = 4  # "Send and set as Resolved"
    body, headers = fake.webhook(ticket_id, SECRET, kind="agent_reply", text="Done!")
    kinds = [e.kind for e in await helpdesk.parse_webhook(delivered(body, headers))]
    assert kinds == [TicketEventKind.REPLY, TicketEventKind.SOLVED]


async def test_status_change_to_pending_is_ignored(
    fake: FakeFreshdesk, http: httpx.AsyncClient
) -> None:
    helpdesk = connector(fake, http)
    ticket_id = await ticket_with_echo(fake, http)
    body = json.dumps(
        {
            "ticket_id": ticket_id,
            "triggered_event": "{status:{from:2,to:3}}",
            "status": "Pending",
            "comment": "Dana Agent : <div>old reply</div>",
            "requester": "Ann Lee",
        }
    ).encode()
    assert await helpdesk.parse_webhook(delivered(body, {})) == []


@pytest.mark.parametrize("token", [None, "", "wrong-secret", SECRET + "x"])
async def test_wrong_or_missing_token_is_rejected(
    fake: FakeFreshdesk, http: httpx.AsyncClient, token: str | None
) -> None:
    helpdesk = connector(fake, http)
    ticket_id = await ticket_with_echo(fake, http)
    body, headers = fake.webhook(ticket_id, token, kind="agent_reply", text="Hi")
    with pytest.raises(BadSignature):
        helpdesk.verify_webhook(delivered(body, headers))


async def test_token_header_name_is_case_insensitive(
    fake: FakeFreshdesk, http: httpx.AsyncClient
) -> None:
    connector(fake, http).verify_webhook(delivered(b"{}", {"X-Handoff-Token": SECRET}))


async def test_a_body_that_is_not_ours_is_a_value_error(
    fake: FakeFreshdesk, http: httpx.AsyncClient
) -> None:
    helpdesk = connector(fake, http)
    with pytest.raises(ValueError):
        await helpdesk.parse_webhook(delivered(b"not json", {}))
    with pytest.raises(ValueError):
        await helpdesk.parse_webhook(delivered(b'{"hello": "world"}', {}))


async def test_webhook_setup_gives_the_header_the_secret_and_the_body(
    http: httpx.AsyncClient,
) -> None:
    credentials = Credentials(domain="acme", api_key="k")
    steps = FreshdeskHelpdesk(credentials, http=http, webhook_secret=SECRET).webhook_setup(
        "https://handoff.example.com/api/v1/webhooks/int-1"
    )
    text = "\n".join(steps)
    assert f"X-Handoff-Token: {SECRET}" in text
    assert "https://handoff.example.com/api/v1/webhooks/int-1" in text
    assert WEBHOOK_BODY in text
    assert "Reply is sent" in text and "Status is changed" in text
    assert "cf_handoff_conversation" in text
    # every placeholder sits in a JSON string, so the rendered body is JSON whatever it holds
    assert set(json.loads(WEBHOOK_BODY)) >= {"ticket_id", "triggered_event", "comment"}
