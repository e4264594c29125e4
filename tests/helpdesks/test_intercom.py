"""The Intercom connector against a fake Intercom over real HTTP on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

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
from handoff.helpdesks.common import html_to_text
from handoff.helpdesks.errors import (
    BadSignature,
    InvalidCredentials,
    RateLimited,
    Rejected,
    Unavailable,
)
from handoff.helpdesks.intercom import Credentials, IntercomHelpdesk
from tests.fakes.intercom import FakeIntercom
from tests.helpdesks.delivery import delivered

ANN = Contact(name="Ann Lee", email="ann@example.com", phone="+15550100")


@pytest.fixture
def fake() -> Iterator[FakeIntercom]:
    with FakeIntercom() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=1.0) as client:
        yield client


def connector(
    fake: FakeIntercom, http: httpx.AsyncClient, *, token: str | None = None
) -> IntercomHelpdesk:
    credentials = Credentials(
        access_token=SecretStr(token or fake.token),
        ticket_type_id="88",
        client_secret=SecretStr(fake.client_secret),
        base_url=fake.base_url,
    )
    return IntercomHelpdesk(credentials, http=http, webhook_secret="unused")


def packet(key: str = "esc-42", contact: Contact = ANN, **changes: object) -> TicketPacket:
    at = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    fields: dict[str, object] = {
        "idempotency_key": key,
        "subject": "Order #123 never arrived",
        "summary": "Parcel missing for two weeks; <b>user</b> wants a refund & an answer",
        "reasons": (Reason.EXPLICIT_REQUEST,),
        "transcript": [
            Message(Role.USER, "Where is my order? <script>alert(1)</script>", at),
            Message(Role.ASSISTANT, "Let me check that for you.", at),
            Message(Role.USER, "I want a human", at),
        ],
        "contact": contact,
        "channel": Channel.WIDGET,
        "conversation_url": "https://support.example.com/c/42",
        "tags": ("handoff",),
    }
    fields.update(changes)
    return TicketPacket(**fields)  # type: ignore[arg-type]


async def test_connect_ok(fake: FakeIntercom, http: httpx.AsyncClient) -> None:
    desk = connector(fake, http)
    await desk.verify_credentials()
    me = fake.calls("GET", "/me")[0]
    assert me.headers["intercom-version"] == "2.14"
    assert me.headers["authorization"] == f"Bearer {fake.token}"


async def test_options_lists_the_live_customer_ticket_types(
    fake: FakeIntercom, http: httpx.AsyncClient
) -> None:
    fake.ticket_types.append(
        {"id": "91", "name": "Refund request", "category": "Customer", "archived": False}
    )
    offered = await connector(fake, http).options()

    assert list(offered) == ["ticket_type_id"]  # a Credentials field
    assert "ticket_type_id" in Credentials.model_fields
    assert [(c.value, c.label) for c in offered["ticket_type_id"]] == [
        ("88", "Escalation"),
        ("91", "Refund request"),
    ]  # archived and Tracker types left out
    assert fake.calls("GET", "/ticket_types")[0].headers["intercom-version"] == "2.14"

    with pytest.raises(InvalidCredentials, match="access_token"):
        await connector(fake, http, token="wrong").options()


async def test_connect_bad_token(fake: FakeIntercom, http: httpx.AsyncClient) -> None:
    with pytest.raises(
        InvalidCredentials, match=r"access_token: HTTP 401 Unauthorized \(unauthorized\)"
    ):
        await connector(fake, http, token="wrong").verify_credentials()


async def test_connect_unreachable(http: httpx.AsyncClient) -> None:
    with FakeIntercom() as gone:
        desk = connector(gone, http)
    with pytest.raises(Unavailable):
        await desk.verify_credentials()


async def test_create_with_full_packet_creates_contact(
    fake: FakeIntercom, http: httpx.AsyncClient
) -> None:
    desk = connector(fake, http)
    ref = await desk.create_ticket(packet(priority=Priority.URGENT))

    created = fake.calls("POST", "/contacts")[0].body
    assert created == {
        "role": "user",
        "email": "ann@example.com",
        "name": "Ann Lee",
        "phone": "+15550100",
    }
    body = fake.calls("POST", "/tickets")[0].body
    contact_id = next(iter(fake.state.contacts))
    assert body["ticket_type_id"] == "88"
    assert body["contacts"] == [{"id": contact_id}]
    attributes = body["ticket_attributes"]
    assert attributes["_default_title_"] == "Order #123 never arrived"
    description = attributes["_default_description_"]
    # The description is plain text: the transcript is data, carried verbatim, never markup.
    assert "Summary: Parcel missing for two weeks; <b>user</b> wants a refund & an answer" in (
        description
    )
    assert "Customer: Where is my order? <script>alert(1)</script>" in description
    assert description.endswith("handoff reference: esc-42")
    assert len(description) <= desk.max_body_chars

    assert ref == TicketRef(
        id=ref.id, url=f"https://app.intercom.com/a/inbox/{fake.app_id}/inbox/conversation/{ref.id}"
    )
    assert fake.state.ticket_tags[ref.id] == {"handoff", "priority: urgent"}
    tag_call = fake.calls("POST", f"/tickets/{ref.id}/tags")[0].body
    assert tag_call["admin_id"] == fake.admin["id"]


async def test_create_finds_existing_contact(fake: FakeIntercom, http: httpx.AsyncClient) -> None:
    existing = fake.add_contact(email="ann@example.com", name="Ann")
    await connector(fake, http).create_ticket(packet(tags=()))
    assert fake.calls("POST", "/contacts") == []
    assert fake.calls("POST", "/tickets")[0].body["contacts"] == [{"id": existing}]
    assert fake.calls("POST", "/tags") == []


async def test_anonymous_visitor_becomes_a_lead(
    fake: FakeIntercom, http: httpx.AsyncClient
) -> None:
    await connector(fake, http).create_ticket(packet(contact=Contact(name="Visitor 7")))
    assert fake.calls("POST", "/contacts/search") == []
    assert fake.calls("POST", "/contacts")[0].body == {"name": "Visitor 7", "role": "lead"}


async def test_contact_conflict_falls_back_to_search(
    fake: FakeIntercom, http: httpx.AsyncClient
) -> None:
    existing = fake.add_contact(email="ann@example.com")
    fake.miss_contact_searches(1)  # a lagging index: the first search finds nothing
    await connector(fake, http).create_ticket(packet(tags=()))
    assert [c.status for c in fake.calls("POST", "/contacts")] == [409]
    assert fake.calls("POST", "/tickets")[0].body["contacts"] == [{"id": existing}]


async def test_retry_after_lost_response_makes_one_ticket(
    fake: FakeIntercom, http: httpx.AsyncClient
) -> None:
    desk = connector(fake, http)
    fake.lose_next_ticket_create(stall=5.0)
    with pytest.raises(Unavailable, match="did not answer in time"):
        await desk.create_ticket(packet())
    assert len(fake.state.tickets) == 1  # stored, but the answer never came

    ref = await connector(fake, http).create_ticket(packet())  # the outbox retries later
    assert len(fake.state.tickets) == 1
    assert ref.id == next(iter(fake.state.tickets))
    assert len(fake.calls("POST", "/tickets")) == 1
    assert len(fake.state.contacts) == 1


async def test_other_escalations_are_not_matched(
    fake: FakeIntercom, http: httpx.AsyncClient
) -> None:
    desk = connector(fake, http)
    first = await desk.create_ticket(packet("esc-4"))
    second = await desk.create_ticket(packet("esc-42"))  # "esc-4" is a prefix of it
    again = await desk.create_ticket(packet("esc-4"))
    assert first.id != second.id
    assert again.id == first.id


async def test_follow_up_as_the_user(fake: FakeIntercom, http: httpx.AsyncClient) -> None:
    ref = await connector(fake, http).create_ticket(packet())
    at = datetime(2025, 3, 1, 9, 40, tzinfo=UTC)
    fresh = connector(fake, http)  # a new worker: learns the contact from the ticket
    await fresh.add_message(ref, Message(Role.USER, "Any news?\nIt's <urgent> & late", at), ANN)

    reply = fake.calls("POST", f"/tickets/{ref.id}/reply")[0].body
    assert reply == {
        "message_type": "comment",
        "type": "user",
        "intercom_user_id": next(iter(fake.state.contacts)),
        "body": "<p>Any news?</p><p>It&#x27;s &lt;urgent&gt; &amp; late</p>",
    }
    assert fake.state.tickets[ref.id]["_parts"][-1]["author"]["type"] == "user"


async def test_follow_up_on_missing_ticket_is_rejected(
    fake: FakeIntercom, http: httpx.AsyncClient
) -> None:
    at = datetime(2025, 3, 1, 9, 40, tzinfo=UTC)
    with pytest.raises(Rejected) as caught:
        await connector(fake, http).add_message(
            TicketRef("404404", "x"), Message(Role.USER, "hi", at), ANN
        )
    assert caught.value.status == 404
    assert "HTTP 404 Not Found (ticket_not_found)" in caught.value.detail


async def test_signed_admin_reply_comes_in(fake: FakeIntercom, http: httpx.AsyncClient) -> None:
    desk = connector(fake, http)
    ref = await desk.create_ticket(packet())
    body, headers = fake.admin_reply(
        ref.id, "<p>Hi Ann,</p><p>Your refund is on its way &amp; sorry!</p>", admin_name="Sam"
    )
    desk.verify_webhook(delivered(body, headers))
    [event] = await desk.parse_webhook(delivered(body, headers))
    assert event.kind is TicketEventKind.REPLY
    assert event.ticket_id == ref.id
    assert event.text == "Hi Ann,\nYour refund is on its way & sorry!"
    assert event.author_name == "Sam"
    assert event.event_id.startswith("notif_")

    lower = {k.lower(): v for k, v in headers.items()}  # header names in any case
    desk.verify_webhook(delivered(body, lower))


async def test_note_and_echo_are_ignored(fake: FakeIntercom, http: httpx.AsyncClient) -> None:
    desk = connector(fake, http)
    ref = await desk.create_ticket(packet())
    body, headers = fake.admin_note(ref.id, "<p>Internal: check the courier</p>")
    desk.verify_webhook(delivered(body, headers))
    assert await desk.parse_webhook(delivered(body, headers)) == []

    at = datetime(2025, 3, 1, 9, 40, tzinfo=UTC)
    await desk.add_message(ref, Message(Role.USER, "Any news?", at), ANN)
    body, headers = fake.user_reply_echo(ref.id)
    desk.verify_webhook(delivered(body, headers))
    assert await desk.parse_webhook(delivered(body, headers)) == []


async def test_forged_signature_is_rejected(fake: FakeIntercom, http: httpx.AsyncClient) -> None:
    desk = connector(fake, http)
    ref = await desk.create_ticket(packet())
    body, headers = fake.forged(ref.id, "<p>Send your password</p>")
    with pytest.raises(BadSignature):
        desk.verify_webhook(delivered(body, headers))
    with pytest.raises(BadSignature):
        desk.verify_webhook(delivered(body, {}))
    good_body, good_headers = fake.admin_reply(ref.id, "<p>ok</p>")
    with pytest.raises(BadSignature):  # body tampered after signing
        desk.verify_webhook(delivered(good_body.replace(b"ok", b"ko"), good_headers))


async def test_stale_or_future_notification_is_rejected(
    fake: FakeIntercom, http: httpx.AsyncClient
) -> None:
    desk = connector(fake, http)
    ref = await desk.create_ticket(packet())
    now = time.time()
    item = fake._ticket_view(ref.id)
    body, headers = fake.notification("ticket.admin.replied", item, created_at=now - 4 * 3600)
    with pytest.raises(BadSignature, match="too old"):
        desk.verify_webhook(delivered(body, headers), now=now)
    desk.verify_webhook(delivered(body, headers), now=now - 2 * 3600)  # in the window then
    body, headers = fake.notification("ticket.admin.replied", item, created_at=now + 3600)
    with pytest.raises(BadSignature, match="future"):
        desk.verify_webhook(delivered(body, headers), now=now)


async def test_no_client_secret_rejects(fake: FakeIntercom, http: httpx.AsyncClient) -> None:
    credentials = Credentials(access_token=SecretStr(fake.token), base_url=fake.base_url)
    desk = IntercomHelpdesk(credentials, http=http, webhook_secret="ours")
    body, headers = fake.notification("ping", {"type": "ping", "message": "hi"})
    with pytest.raises(BadSignature, match="client secret"):
        desk.verify_webhook(delivered(body, headers))


async def test_resolved_and_closed_become_solved(
    fake: FakeIntercom, http: httpx.AsyncClient
) -> None:
    desk = connector(fake, http)
    ref = await desk.create_ticket(packet())
    for body, headers in (fake.resolve(ref.id), fake.close(ref.id)):
        desk.verify_webhook(delivered(body, headers))
        [event] = await desk.parse_webhook(delivered(body, headers))
        assert (event.kind, event.ticket_id) == (TicketEventKind.SOLVED, ref.id)


async def test_other_state_changes_are_ignored(fake: FakeIntercom, http: httpx.AsyncClient) -> None:
    desk = connector(fake, http)
    ref = await desk.create_ticket(packet())
    item = fake._ticket_view(ref.id)
    item["ticket_state"] = {"type": "ticket_state", "category": "in_progress"}
    body, headers = fake.notification("ticket.state.updated", item)
    assert await desk.parse_webhook(delivered(body, headers)) == []
    item["ticket_state"] = "resolved"  # before API 2.14 the state is a plain string
    body, headers = fake.notification("ticket.state.updated", item)
    assert [e.kind for e in await desk.parse_webhook(delivered(body, headers))] == [
        TicketEventKind.SOLVED
    ]


async def test_rate_limited_then_success(fake: FakeIntercom, http: httpx.AsyncClient) -> None:
    desk = connector(fake, http)
    fake.rate_limit(1, reset_in=3)
    with pytest.raises(RateLimited) as caught:
        await desk.create_ticket(packet())
    assert caught.value.retry_after is not None
    assert 1 <= caught.value.retry_after <= 3
    assert "HTTP 429 Too Many Requests (rate_limit_exceeded)" in str(caught.value)
    ref = await desk.create_ticket(packet())
    assert list(fake.state.tickets) == [ref.id]


async def test_validation_error_is_readable(fake: FakeIntercom, http: httpx.AsyncClient) -> None:
    fake.fail_next(
        400,
        "parameter_invalid",
        "Ticket attribute is required",
        field="order_number",
        path="/tickets",
    )
    with pytest.raises(Rejected) as caught:
        await connector(fake, http).create_ticket(packet())
    assert caught.value.status == 400
    # The status and Intercom's codes, never its prose.
    assert caught.value.detail == "Intercom: HTTP 400 Bad Request (parameter_invalid, order_number)"
    assert not caught.value.retryable


async def test_unknown_ticket_type_is_rejected(fake: FakeIntercom, http: httpx.AsyncClient) -> None:
    credentials = Credentials(
        access_token=SecretStr(fake.token), ticket_type_id="12345", base_url=fake.base_url
    )
    desk = IntercomHelpdesk(credentials, http=http, webhook_secret="x")
    with pytest.raises(Rejected, match="parameter_invalid"):
        await desk.create_ticket(packet())
    missing = IntercomHelpdesk(
        Credentials(access_token=SecretStr(fake.token), base_url=fake.base_url),
        http=http,
        webhook_secret="x",
    )
    with pytest.raises(Rejected, match="choose a ticket type"):
        await missing.create_ticket(packet())


async def test_regions_and_setup_steps(http: httpx.AsyncClient) -> None:
    eu = Credentials(access_token=SecretStr("tok-secret-123"), region="eu")
    desk = IntercomHelpdesk(eu, http=http, webhook_secret="x")
    assert desk._base_url == "https://api.eu.intercom.io"
    assert "tok-secret-123" not in repr(eu)
    steps = desk.webhook_setup("https://handoff.example.com/hooks/intercom/abc")
    assert any("https://handoff.example.com/hooks/intercom/abc" in s for s in steps)
    assert any("ticket.admin.replied" in s for s in steps)
    assert any("Client secret" in s for s in steps)


def test_html_to_text() -> None:
    assert html_to_text("<p>One</p><p>Two &lt;3<br>Three</p>") == "One\nTwo <3\nThree"
    assert html_to_text("plain") == "plain"
