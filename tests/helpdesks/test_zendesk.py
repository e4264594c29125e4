"""The Zendesk connector end to end against a faithful fake Zendesk over real HTTP."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

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
from handoff.helpdesks.zendesk import Credentials, ZendeskHelpdesk
from tests.fakes.zendesk import FakeZendesk
from tests.helpdesks.delivery import delivered

SECRET = "zd-signing-secret-abc123"
T0 = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


@pytest.fixture
def fake() -> Iterator[FakeZendesk]:
    with FakeZendesk() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=1.0) as client:
        yield client


def credentials(fake: FakeZendesk, **changes: object) -> Credentials:
    fields: dict[str, object] = {
        "subdomain": fake.subdomain,
        "email": fake.email,
        "api_token": fake.api_token,
        "webhook_signing_secret": SECRET,
        "base_url": fake.base_url,
        **changes,
    }
    return Credentials.model_validate(fields)


@pytest.fixture
def zendesk(fake: FakeZendesk, http: httpx.AsyncClient) -> ZendeskHelpdesk:
    return ZendeskHelpdesk(credentials(fake), http=http, webhook_secret="generated-unused")


def packet(key: str = "esc-0001", **changes: object) -> TicketPacket:
    transcript = [
        Message(Role.USER, "My order #123 never arrived.", T0),
        Message(Role.ASSISTANT, "Sorry to hear that! Let me check.", T0 + timedelta(seconds=5)),
        Message(
            Role.USER, "<script>alert('x')</script> I want a person", T0 + timedelta(minutes=1)
        ),
    ]
    base = TicketPacket(
        idempotency_key=key,
        subject="Order #123 never arrived",
        summary="Customer's order is missing; asked for a human.",
        reasons=(Reason.EXPLICIT_REQUEST, Reason.FRUSTRATION),
        transcript=transcript,
        contact=Contact(name="Ann Lee", email="ann@example.com", phone="+15551234567"),
        channel=Channel.WIDGET,
        conversation_url="https://handoff.example/c/42",
        priority=Priority.HIGH,
        tags=("vip", "Order Issue"),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# --- connect -------------------------------------------------------------------------------


async def test_verify_credentials_accepts_the_agent_token(zendesk: ZendeskHelpdesk) -> None:
    await zendesk.verify_credentials()


async def test_verify_credentials_refuses_a_wrong_token(
    fake: FakeZendesk, http: httpx.AsyncClient
) -> None:
    wrong = ZendeskHelpdesk(credentials(fake, api_token="nope"), http=http, webhook_secret="x")
    with pytest.raises(InvalidCredentials, match="email or API token"):
        await wrong.verify_credentials()
    assert fake.requests[-1].status == 401


async def test_verify_credentials_sends_basic_email_token_auth(
    fake: FakeZendesk, zendesk: ZendeskHelpdesk
) -> None:
    await zendesk.verify_credentials()
    import base64

    auth = fake.requests[-1].headers["authorization"]
    assert base64.b64decode(auth.removeprefix("Basic ")).decode() == (
        f"{fake.email}/token:{fake.api_token}"
    )


async def test_unreachable_zendesk_is_unavailable(http: httpx.AsyncClient) -> None:
    creds = Credentials(
        subdomain="acme", email="a@b.co", api_token="t", base_url="http://127.0.0.1:9"
    )
    with pytest.raises(Unavailable):
        await ZendeskHelpdesk(creds, http=http, webhook_secret="x").verify_credentials()


@pytest.mark.parametrize("subdomain", ["acme corp", "acme.evil.com/", "-acme", ""])
def test_subdomain_is_validated(subdomain: str) -> None:
    with pytest.raises(ValueError):
        Credentials(subdomain=subdomain, email="a@b.co", api_token="t")


def test_credentials_form_has_titles_and_hides_the_token() -> None:
    schema = Credentials.model_json_schema()
    assert all("title" in f and "description" in f for f in schema["properties"].values())
    shown = repr(Credentials(subdomain="acme", email="a@b.co", api_token="tok-XYZZY"))
    assert "tok-XYZZY" not in shown


async def test_options_lists_live_groups_and_brands(
    fake: FakeZendesk, zendesk: ZendeskHelpdesk, http: httpx.AsyncClient
) -> None:
    fake.groups.append({"id": 360004, "name": "Escalations", "deleted": False})
    offered = await zendesk.options()

    assert set(offered) == {"group_id", "brand_id"}
    assert [(c.value, c.label) for c in offered["group_id"]] == [
        ("360001", "Support"),
        ("360002", "Billing"),
        ("360004", "Escalations"),  # live, not a fixed list; the deleted group is left out
    ]
    assert [(c.value, c.label) for c in offered["brand_id"]] == [
        ("470001", "Acme"),
        ("470002", "Acme Kids"),
    ]
    assert Credentials.model_fields.keys() >= offered.keys()

    wrong = ZendeskHelpdesk(credentials(fake, api_token="nope"), http=http, webhook_secret="x")
    with pytest.raises(InvalidCredentials):
        await wrong.options()


async def test_options_follows_next_page(fake: FakeZendesk, zendesk: ZendeskHelpdesk) -> None:
    fake.groups[:] = [{"id": n, "name": f"Group {n}", "deleted": False} for n in range(1, 151)]
    offered = await zendesk.options()
    assert [c.value for c in offered["group_id"]] == [str(n) for n in range(1, 151)]
    assert [r.query["page"] for r in fake.requests_to("GET", "/api/v2/groups")] == ["1", "2"]


# --- create --------------------------------------------------------------------------------


async def test_create_ticket_sends_the_full_packet(
    fake: FakeZendesk, zendesk: ZendeskHelpdesk
) -> None:
    ref = await zendesk.create_ticket(packet())

    assert ref.url == f"https://acme.zendesk.com/agent/tickets/{ref.id}"
    ticket = fake.tickets[int(ref.id)]
    assert ticket["external_id"] == "esc-0001"
    assert ticket["priority"] == "high"
    assert set(ticket["tags"]) == {
        "vip",
        "order_issue",
        "handoff",
        "handoff_explicit_request",
        "handoff_frustration",
    }
    requester = fake.users[ticket["requester_id"]]
    assert (requester["name"], requester["email"], requester["phone"]) == (
        "Ann Lee",
        "ann@example.com",
        "+15551234567",
    )
    # The transcript is the customer's first comment, not the token agent's.
    first = fake.comments[int(ref.id)][0]
    assert first["public"] is True
    assert first["author_id"] == ticket["requester_id"] == ticket["submitter_id"]
    html = first["html_body"]
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "<script>" not in html
    assert "Customer&#x27;s order is missing" in html

    [create] = fake.requests_to("POST", "/api/v2/tickets")
    assert create.headers["idempotency-key"] == "esc-0001"
    assert create.headers["content-type"] == "application/json"
    assert create.status == 201
    assert fake.requests_to("GET", "/api/v2/tickets")[0].query == {"external_id": "esc-0001"}


async def test_create_ticket_sets_group_and_brand(
    fake: FakeZendesk, http: httpx.AsyncClient
) -> None:
    creds = credentials(fake, group_id=77, brand_id=88)
    ref = await ZendeskHelpdesk(creds, http=http, webhook_secret="x").create_ticket(packet())
    assert (fake.tickets[int(ref.id)]["group_id"], fake.tickets[int(ref.id)]["brand_id"]) == (
        77,
        88,
    )


async def test_anonymous_contact_gets_one_stable_requester(
    fake: FakeZendesk, zendesk: ZendeskHelpdesk
) -> None:
    anonymous = Contact()
    first = await zendesk.create_ticket(packet("esc-a", contact=anonymous))
    second = await zendesk.create_ticket(packet("esc-b", contact=anonymous))
    assert first.id != second.id
    requester = fake.tickets[int(first.id)]["requester_id"]
    assert fake.users[requester]["name"] == "Visitor"
    assert fake.users[requester]["email"] is None


async def test_retry_after_a_lost_response_creates_one_ticket(
    fake: FakeZendesk, zendesk: ZendeskHelpdesk
) -> None:
    fake.drop_next_create(stall_seconds=5)
    with pytest.raises(Unavailable, match="did not answer in time"):
        await zendesk.create_ticket(packet())
    assert len(fake.tickets_with_external_id("esc-0001")) == 1  # it did reach Zendesk

    ref = await zendesk.create_ticket(packet())

    assert [t["id"] for t in fake.tickets_with_external_id("esc-0001")] == [int(ref.id)]
    assert len(fake.requests_to("POST", "/api/v2/tickets")) == 1  # found, not re-posted


async def test_idempotency_key_replays_and_refuses_another_payload(fake: FakeZendesk) -> None:
    """The fake answers Idempotency-Key like Zendesk: a hit replays, another payload fails."""
    auth = (f"{fake.email}/token", fake.api_token)
    body = {"ticket": {"subject": "Hi", "comment": {"body": "Help"}}}
    async with httpx.AsyncClient(base_url=fake.base_url, auth=auth) as client:
        headers = {"Idempotency-Key": "k-1"}
        first = await client.post("/api/v2/tickets.json", json=body, headers=headers)
        again = await client.post("/api/v2/tickets.json", json=body, headers=headers)
        other = await client.post(
            "/api/v2/tickets.json",
            json={"ticket": {"subject": "Other", "comment": {"body": "x"}}},
            headers=headers,
        )
    assert (first.status_code, first.headers["x-idempotency-lookup"]) == (201, "miss")
    assert (again.status_code, again.headers["x-idempotency-lookup"]) == (201, "hit")
    assert again.json()["ticket"]["id"] == first.json()["ticket"]["id"]
    assert other.status_code == 400
    assert len(fake.tickets) == 1


async def test_validation_error_is_rejected_with_a_readable_message(
    fake: FakeZendesk, zendesk: ZendeskHelpdesk
) -> None:
    bad = packet(contact=Contact(name="Bob", email="bob-at-example"))
    with pytest.raises(Rejected) as caught:
        await zendesk.create_ticket(bad)
    assert caught.value.status == 422
    # The status and Zendesk's codes (error, field, problem), never its prose.
    assert (
        caught.value.detail
        == "Zendesk: HTTP 422 Unprocessable Entity (RecordInvalid, email, InvalidValue)"
    )
    assert "bob-at-example" not in caught.value.detail
    assert fake.tickets == {}


async def test_rate_limit_then_success(fake: FakeZendesk, zendesk: ZendeskHelpdesk) -> None:
    fake.rate_limit(1, retry_after=7)
    with pytest.raises(RateLimited) as caught:
        await zendesk.create_ticket(packet())
    assert caught.value.retry_after == 7.0
    assert caught.value.retryable

    ref = await zendesk.create_ticket(packet())
    assert int(ref.id) in fake.tickets


async def test_missing_ticket_is_rejected(zendesk: ZendeskHelpdesk) -> None:
    message = Message(Role.USER, "hello?", T0)
    with pytest.raises(Rejected, match="RecordNotFound") as caught:
        await zendesk.add_message(TicketRef("999999", "u"), message, Contact(name="Ann"))
    assert caught.value.status == 404


# --- follow-ups ----------------------------------------------------------------------------


async def test_follow_up_is_added_as_the_customer(
    fake: FakeZendesk, zendesk: ZendeskHelpdesk
) -> None:
    ref = await zendesk.create_ticket(packet())
    contact = packet().contact

    await zendesk.add_message(ref, Message(Role.USER, "Any news? <b>hi</b>", T0), contact)

    comment = fake.comments[int(ref.id)][-1]
    assert comment["author_id"] == fake.tickets[int(ref.id)]["requester_id"]
    assert comment["public"] is True
    assert comment["body"] == "Any news? <b>hi</b>"  # plain body: Zendesk escapes it


def follow_up(message_id: int, text: str = "Any news?") -> Message:
    return Message(Role.USER, text, T0, id=message_id)


async def test_a_retried_follow_up_already_on_the_ticket_is_not_added_again(
    fake: FakeZendesk, zendesk: ZendeskHelpdesk
) -> None:
    """The first try reached Zendesk but its job was never marked done (a worker killed in
    between): the retry finds the comment by its audit's metadata and adds nothing."""
    ref = await zendesk.create_ticket(packet())
    await zendesk.add_message(ref, follow_up(41), packet().contact)

    await zendesk.add_message(ref, follow_up(41), packet().contact)

    assert [c["body"] for c in fake.comments[int(ref.id)][1:]] == ["Any news?"]
    assert len(fake.requests_to("PUT", f"/api/v2/tickets/{ref.id}")) == 1
    audit = fake.audits[int(ref.id)][-1]
    assert audit["metadata"]["custom"] == {"handoff_message_id": "41"}


async def test_the_retry_finds_its_comment_past_the_first_page_of_audits(
    fake: FakeZendesk, zendesk: ZendeskHelpdesk
) -> None:
    ref = await zendesk.create_ticket(packet())
    for n in range(120):  # a long exchange: the follow-up's audit lands on the second page
        fake.agent_reply(ref.id, f"reply {n}")
    await zendesk.add_message(ref, follow_up(41), packet().contact)

    await zendesk.add_message(ref, follow_up(41), packet().contact)

    bodies = [c["body"] for c in fake.comments[int(ref.id)]]
    assert bodies.count("Any news?") == 1
    assert len(fake.requests_to("GET", f"/api/v2/tickets/{ref.id}/audits")) == 4  # 2 pages, twice


async def test_two_follow_ups_with_the_same_words_are_both_added(
    fake: FakeZendesk, zendesk: ZendeskHelpdesk
) -> None:
    ref = await zendesk.create_ticket(packet())
    await zendesk.add_message(ref, follow_up(41, "yes"), packet().contact)
    await zendesk.add_message(ref, follow_up(42, "yes"), packet().contact)

    assert [c["body"] for c in fake.comments[int(ref.id)][1:]] == ["yes", "yes"]


# --- webhooks ------------------------------------------------------------------------------


async def ticket_id(zendesk: ZendeskHelpdesk) -> str:
    return (await zendesk.create_ticket(packet())).id


async def test_signed_agent_reply_becomes_a_reply_event(
    fake: FakeZendesk, zendesk: ZendeskHelpdesk
) -> None:
    tid = await ticket_id(zendesk)
    payload = fake.agent_reply(tid, "We've shipped a replacement.", author_name="Dana")
    body, headers = fake.signed(payload, SECRET)

    zendesk.verify_webhook(delivered(body, headers))
    [event] = await zendesk.parse_webhook(delivered(body, headers))

    assert event.kind is TicketEventKind.REPLY
    assert (event.ticket_id, event.event_id) == (tid, payload["id"])
    assert (event.text, event.author_name) == ("We've shipped a replacement.", "Dana")


async def test_internal_note_and_requester_echo_are_ignored(
    fake: FakeZendesk, zendesk: ZendeskHelpdesk
) -> None:
    tid = await ticket_id(zendesk)
    for payload in (fake.internal_note(tid, "VIP, refund"), fake.requester_comment(tid, "hi")):
        body, headers = fake.signed(payload, SECRET)
        zendesk.verify_webhook(delivered(body, headers))
        assert await zendesk.parse_webhook(delivered(body, headers)) == []


async def test_solved_becomes_a_solved_event(fake: FakeZendesk, zendesk: ZendeskHelpdesk) -> None:
    tid = await ticket_id(zendesk)
    payload = fake.status_changed(tid, "solved")
    body, headers = fake.signed(payload, SECRET)

    zendesk.verify_webhook(delivered(body, headers))
    [event] = await zendesk.parse_webhook(delivered(body, headers))

    assert (event.kind, event.ticket_id, event.event_id) == (
        TicketEventKind.SOLVED,
        tid,
        payload["id"],
    )
    pending = fake.signed(fake.status_changed(tid, "open"), SECRET)
    assert await zendesk.parse_webhook(delivered(*pending)) == []


async def test_forged_signature_is_rejected(fake: FakeZendesk, zendesk: ZendeskHelpdesk) -> None:
    tid = await ticket_id(zendesk)
    body, headers = fake.signed(fake.agent_reply(tid, "hi"), "not-the-secret")
    with pytest.raises(BadSignature):
        zendesk.verify_webhook(delivered(body, headers))

    good_body, good_headers = fake.signed(fake.agent_reply(tid, "hi"), SECRET)
    with pytest.raises(BadSignature):  # body changed after signing
        zendesk.verify_webhook(delivered(good_body.replace(b"hi", b"ho"), good_headers))
    with pytest.raises(BadSignature):
        zendesk.verify_webhook(delivered(good_body, {}))


async def test_stale_signature_is_rejected(fake: FakeZendesk, zendesk: ZendeskHelpdesk) -> None:
    tid = await ticket_id(zendesk)
    stamp = "2025-03-01T09:30:00Z"
    body, headers = fake.signed(fake.agent_reply(tid, "hi"), SECRET, timestamp=stamp)
    signed_at = datetime(2025, 3, 1, 9, 30, tzinfo=UTC).timestamp()

    zendesk.verify_webhook(delivered(body, headers), now=signed_at + 299)
    with pytest.raises(BadSignature, match="window"):
        zendesk.verify_webhook(delivered(body, headers), now=signed_at + 301)
    with pytest.raises(BadSignature, match="window"):
        zendesk.verify_webhook(delivered(body, headers), now=signed_at - 301)


def test_without_a_pasted_secret_webhooks_fail_closed(fake: FakeZendesk) -> None:
    creds = credentials(fake, webhook_signing_secret=None)
    connector = ZendeskHelpdesk(creds, http=httpx.AsyncClient(), webhook_secret="generated")
    body, headers = fake.signed({"type": "x"}, SECRET)
    with pytest.raises(BadSignature):
        connector.verify_webhook(delivered(body, headers))


def test_webhook_setup_names_the_url_and_events(zendesk: ZendeskHelpdesk) -> None:
    steps = " ".join(zendesk.webhook_setup("https://handoff.example/webhooks/zendesk/abc"))
    for needle in (
        "Admin Center",
        "Webhooks",
        "https://handoff.example/webhooks/zendesk/abc",
        "POST",
        "JSON",
        "Comment added",
        "Status changed",
        "signing secret",
    ):
        assert needle.lower() in steps.lower()


async def test_verify_credentials_refuses_an_end_user(
    fake: FakeZendesk, zendesk: ZendeskHelpdesk
) -> None:
    fake.agent["role"] = "end-user"
    with pytest.raises(InvalidCredentials, match="not an agent"):
        await zendesk.verify_credentials()
